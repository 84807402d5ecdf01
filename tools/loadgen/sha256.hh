#pragma once
// SHA-256 (FIPS 180-4) for the load generators' integrity check.
//
// Why not libsodium's: it has no SHA extensions path, and at ~4 us per 1 KB message it
// was half of mailwing-drainer's CPU, so the drain benchmark measured the hash instead of
// the server. This one compresses with the x86 SHA extensions (sha256rnds2/msg1/msg2)
// where the CPU has them and falls back to plain C elsewhere; both paths are checked
// against libsodium in tests/unit/loadgen/test_sha256.cc.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mailwing::loadgen {

class sha256 {
 public:
  static constexpr size_t digest_bytes = 32;
  using digest = std::array<unsigned char, digest_bytes>;

  sha256() { reset(); }
  void reset();
  void update(std::string_view bytes);
  digest finish();  // then reset() before reuse

  static digest of(std::string_view bytes) {
    sha256 hash;
    hash.update(bytes);
    return hash.finish();
  }

 private:
  static constexpr size_t block_bytes = 64;
  uint32_t state_[8];
  uint64_t total_bytes_;
  unsigned char block_[block_bytes];
  size_t block_used_bytes_;
};

namespace sha256_detail {
// Compress `blocks` whole 64-byte blocks into state. Exposed for the tests.
void compress_portable(uint32_t state[8], const unsigned char* data, size_t blocks);
void compress_sha_extensions(uint32_t state[8], const unsigned char* data, size_t blocks);
bool cpu_has_sha_extensions();
}  // namespace sha256_detail

}  // namespace mailwing::loadgen
