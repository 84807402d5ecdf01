// record.hh: the 40-byte mailbox log record header.

#include "mailwing/store/record.hh"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "store_test_util.hh"

namespace mailwing::store {
namespace {

using testing::get_le;
using testing::raw_header;

std::string encode(const record_header& header) {
  std::string bytes(record_header_bytes, '\x55');
  encode_record_header(header, std::span<char, record_header_bytes>(bytes.data(), record_header_bytes));
  return bytes;
}

decoded_header decode(const std::string& bytes) {
  EXPECT_EQ(bytes.size(), record_header_bytes);
  return decode_record_header(std::span<const char, record_header_bytes>(bytes.data(), record_header_bytes));
}

record_header sample_header() {
  record_header header;
  header.type = record_type::message;
  header.flags = record_flag_has_dot_line;
  header.uid = 0x0102030405060708ull;
  header.arrival_ms = 1732368000123ull;
  header.payload_bytes = 123456789;
  header.payload_crc32c = 0xDEADBEEFu;
  return header;
}

void expect_same(const record_header& a, const record_header& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.flags, b.flags);
  EXPECT_EQ(a.uid, b.uid);
  EXPECT_EQ(a.arrival_ms, b.arrival_ms);
  EXPECT_EQ(a.payload_bytes, b.payload_bytes);
  EXPECT_EQ(a.payload_crc32c, b.payload_crc32c);
}

TEST(RecordHeader, MagicSpellsMWL1) {
  uint32_t magic = record_magic;
  char bytes[4];
  std::memcpy(bytes, &magic, 4);
  EXPECT_EQ(std::string(bytes, 4), "MWL1");
}

TEST(RecordHeader, RoundTrip) {
  record_header header = sample_header();
  decoded_header decoded = decode(encode(header));
  ASSERT_EQ(decoded.status, header_status::ok);
  expect_same(decoded.header, header);
}

TEST(RecordHeader, RoundTripExtremes) {
  for (uint64_t value : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{1} << 32,
                         std::numeric_limits<uint64_t>::max()}) {
    for (record_type type : {record_type::message, record_type::tombstone}) {
      record_header header;
      header.type = type;
      header.flags = static_cast<uint8_t>(value);
      header.uid = value;
      header.arrival_ms = ~value;
      header.payload_bytes = value;
      header.payload_crc32c = static_cast<uint32_t>(value >> 7);
      decoded_header decoded = decode(encode(header));
      ASSERT_EQ(decoded.status, header_status::ok) << value;
      expect_same(decoded.header, header);
    }
  }
}

// The bytes on disk follow the table in record.hh, little-endian, reserved bytes zero.
TEST(RecordHeader, LayoutMatchesTheFormat) {
  record_header header = sample_header();
  std::string bytes = encode(header);
  EXPECT_EQ(bytes.substr(0, 4), "MWL1");
  EXPECT_EQ(static_cast<uint8_t>(bytes[4]), 1);
  EXPECT_EQ(static_cast<uint8_t>(bytes[5]), record_flag_has_dot_line);
  EXPECT_EQ(get_le<uint16_t>(bytes, 6), 0);
  EXPECT_EQ(static_cast<uint8_t>(bytes[8]), 0x08);  // little-endian uid
  EXPECT_EQ(get_le<uint64_t>(bytes, 8), header.uid);
  EXPECT_EQ(get_le<uint64_t>(bytes, 16), header.arrival_ms);
  EXPECT_EQ(get_le<uint64_t>(bytes, 24), header.payload_bytes);
  EXPECT_EQ(get_le<uint32_t>(bytes, 32), header.payload_crc32c);
  EXPECT_EQ(get_le<uint32_t>(bytes, 36), util::crc32c(bytes.data(), 36));
  // The independent builder produces exactly the same bytes.
  EXPECT_EQ(bytes, raw_header(1, header.flags, header.uid, header.arrival_ms, header.payload_bytes,
                              header.payload_crc32c));

  header.type = record_type::tombstone;
  EXPECT_EQ(static_cast<uint8_t>(encode(header)[4]), 2);
}

TEST(RecordHeader, DecodesHandBuiltHeader) {
  decoded_header decoded = decode(raw_header(2, 0, 42, 7, 24, 0x12345678u));
  ASSERT_EQ(decoded.status, header_status::ok);
  EXPECT_EQ(decoded.header.type, record_type::tombstone);
  EXPECT_EQ(decoded.header.uid, 42u);
  EXPECT_EQ(decoded.header.arrival_ms, 7u);
  EXPECT_EQ(decoded.header.payload_bytes, 24u);
  EXPECT_EQ(decoded.header.payload_crc32c, 0x12345678u);
}

TEST(RecordHeader, BadMagic) {
  std::string good = encode(sample_header());
  for (size_t i = 0; i < 4; ++i) {
    std::string bytes = good;
    bytes[i] = static_cast<char>(bytes[i] ^ 0x20);
    EXPECT_EQ(decode(bytes).status, header_status::bad_magic) << "byte " << i;
  }
  EXPECT_EQ(decode(std::string(record_header_bytes, '\0')).status, header_status::bad_magic);
  // The journal's magic is not a record's.
  std::string journal = good;
  std::memcpy(journal.data(), "MWJ1", 4);
  EXPECT_EQ(decode(journal).status, header_status::bad_magic);
}

// Any single flipped bit after the magic is caught by the header CRC.
TEST(RecordHeader, EveryFlippedBitAfterTheMagicIsBadCrc) {
  std::string good = encode(sample_header());
  for (size_t i = 4; i < record_header_bytes; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bytes = good;
      bytes[i] = static_cast<char>(bytes[i] ^ (1 << bit));
      EXPECT_EQ(decode(bytes).status, header_status::bad_crc) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(RecordHeader, NonZeroReservedBytesAreCoveredByTheCrc) {
  std::string bytes = encode(sample_header());
  bytes[6] = 1;
  EXPECT_EQ(decode(bytes).status, header_status::bad_crc);
}

TEST(RecordHeader, UnknownTypeWithValidCrcIsBadType) {
  for (uint8_t type : {0, 3, 4, 0x81, 0xFF}) {
    EXPECT_EQ(decode(raw_header(type, 0, 1, 1, 0, 0)).status, header_status::bad_type)
        << int(type);
  }
  EXPECT_EQ(decode(raw_header(1, 0, 1, 1, 0, 0)).status, header_status::ok);
  EXPECT_EQ(decode(raw_header(2, 0, 1, 1, 0, 0)).status, header_status::ok);
}

// encode writes all 40 bytes, whatever was in the buffer before.
TEST(RecordHeader, EncodeOverwritesTheWholeBuffer) {
  record_header header = sample_header();
  std::string a(record_header_bytes, '\0');
  std::string b(record_header_bytes, '\xFF');
  encode_record_header(header, std::span<char, record_header_bytes>(a.data(), record_header_bytes));
  encode_record_header(header, std::span<char, record_header_bytes>(b.data(), record_header_bytes));
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace mailwing::store
