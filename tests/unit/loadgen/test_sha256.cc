// loadgen::sha256 against FIPS 180-4 known answers and against libsodium on every length
// around the block and padding boundaries, fed whole and in pieces, on both compression
// paths (the SHA extensions one only where this CPU has them).
#include "loadgen/sha256.hh"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <random>
#include <string>

#include "loadgen/body_hash.hh"

namespace mailwing::loadgen {
namespace {

std::string hex_of(const sha256::digest& digest) { return hex(digest.data(), digest.size()); }

std::string libsodium_hex(std::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return hex(digest, sizeof(digest));
}

std::string random_bytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(hex_of(sha256::of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex_of(sha256::of("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex_of(sha256::of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  sha256 million;
  std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk);
  EXPECT_EQ(hex_of(million.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, MatchesLibsodiumAtEveryLengthAndSplit) {
  ASSERT_GE(sodium_init(), 0);
  for (size_t size = 0; size <= 300; ++size) {
    std::string bytes = random_bytes(size, uint32_t(size));
    std::string expected = libsodium_hex(bytes);
    ASSERT_EQ(hex_of(sha256::of(bytes)), expected) << size;
    for (size_t piece : {size_t(1), size_t(7), size_t(63), size_t(64), size_t(65)}) {
      sha256 hash;
      for (size_t at = 0; at < size; at += piece) hash.update(std::string_view(bytes).substr(at, piece));
      ASSERT_EQ(hex_of(hash.finish()), expected) << size << " in pieces of " << piece;
    }
  }
}

TEST(Sha256, ResetStartsOver) {
  sha256 hash;
  hash.update("something else entirely");
  hash.reset();
  hash.update("abc");
  EXPECT_EQ(hex_of(hash.finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, BothCompressionPathsAgree) {
  if (!sha256_detail::cpu_has_sha_extensions()) GTEST_SKIP() << "this CPU has no SHA extensions";
  std::string blocks = random_bytes(64 * 37, 99);
  const unsigned char* data = reinterpret_cast<const unsigned char*>(blocks.data());
  for (size_t count = 1; count <= 37; count += 4) {
    uint32_t portable[8], extensions[8];
    for (int i = 0; i < 8; ++i) portable[i] = extensions[i] = 0x01020304u * uint32_t(i + 1);
    sha256_detail::compress_portable(portable, data, count);
    sha256_detail::compress_sha_extensions(extensions, data, count);
    ASSERT_EQ(std::memcmp(portable, extensions, sizeof(portable)), 0) << count << " blocks";
  }
}

}  // namespace
}  // namespace mailwing::loadgen
