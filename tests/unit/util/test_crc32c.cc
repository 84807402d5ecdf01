#include "mailwing/util/crc32c.hh"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mailwing::util {
namespace {

// Bit at a time, straight from the definition, to check the fast code against.
uint32_t crc32c_bitwise(uint32_t crc, const unsigned char* p, size_t size_bytes) {
  crc = ~crc;
  for (size_t i = 0; i < size_bytes; ++i) {
    crc ^= p[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
  }
  return ~crc;
}

uint32_t crc_of(std::string_view text) { return crc32c(text.data(), text.size()); }

TEST(Crc32c, CheckValue) { EXPECT_EQ(crc_of("123456789"), 0xE3069283u); }

TEST(Crc32c, EmptyInputKeepsTheCrc) {
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  EXPECT_EQ(crc32c_extend(0xE3069283u, "", 0), 0xE3069283u);
}

// RFC 3720 appendix B.4.
TEST(Crc32c, Rfc3720Vectors) {
  std::vector<unsigned char> bytes(32, 0x00);
  EXPECT_EQ(crc32c(bytes.data(), bytes.size()), 0x8A9136AAu);
  bytes.assign(32, 0xFF);
  EXPECT_EQ(crc32c(bytes.data(), bytes.size()), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) bytes[size_t(i)] = static_cast<unsigned char>(i);
  EXPECT_EQ(crc32c(bytes.data(), bytes.size()), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) bytes[size_t(i)] = static_cast<unsigned char>(31 - i);
  EXPECT_EQ(crc32c(bytes.data(), bytes.size()), 0x113FDB5Cu);

  const unsigned char iscsi_read_pdu[48] = {
      0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(crc32c(iscsi_read_pdu, sizeof iscsi_read_pdu), 0xD9963A56u);
}

TEST(Crc32c, ExtendComposes) {
  std::string text = "The quick brown fox jumps over the lazy dog";
  uint32_t whole = crc_of(text);
  for (size_t split = 0; split <= text.size(); ++split) {
    uint32_t first = crc32c_extend(0, text.data(), split);
    EXPECT_EQ(crc32c_extend(first, text.data() + split, text.size() - split), whole) << split;
  }
}

// Lengths around every stride of the three-stream code, at every alignment.
TEST(Crc32c, MatchesBitwiseReference) {
  std::mt19937_64 random(42);
  std::vector<unsigned char> buffer(3 * 4096 * 3 + 64);
  for (auto& b : buffer) b = static_cast<unsigned char>(random());

  std::vector<size_t> sizes;
  for (size_t size = 0; size <= 300; ++size) sizes.push_back(size);
  for (size_t stride : {32u, 256u, 4096u}) {
    for (size_t blocks : {1u, 2u, 3u}) {
      for (int delta = -9; delta <= 9; ++delta)
        sizes.push_back(3 * stride * blocks + size_t(delta));
    }
  }
  for (int i = 0; i < 200; ++i) sizes.push_back(random() % (buffer.size() - 8));

  for (size_t size : sizes) {
    for (size_t offset = 0; offset < 8; ++offset) {
      const unsigned char* p = buffer.data() + offset;
      uint32_t seed = static_cast<uint32_t>(random());
      ASSERT_EQ(crc32c_extend(seed, p, size), crc32c_bitwise(seed, p, size))
          << "size " << size << " offset " << offset;
    }
  }
}

TEST(Crc32c, RandomSplitsCompose) {
  std::mt19937_64 random(7);
  std::vector<unsigned char> buffer(50000);
  for (auto& b : buffer) b = static_cast<unsigned char>(random());
  uint32_t whole = crc32c(buffer.data(), buffer.size());
  for (int round = 0; round < 100; ++round) {
    uint32_t crc = 0;
    size_t done = 0;
    while (done < buffer.size()) {
      size_t piece = std::min(buffer.size() - done, size_t(random() % 20000));
      crc = crc32c_extend(crc, buffer.data() + done, piece);
      done += piece;
    }
    ASSERT_EQ(crc, whole);
  }
}

}  // namespace
}  // namespace mailwing::util
