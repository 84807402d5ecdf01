#include "loadgen/sha256.hh"

#include <cassert>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mailwing::loadgen {
namespace sha256_detail {
namespace {

alignas(16) constexpr uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

constexpr uint32_t initial_state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline uint32_t load_be32(const unsigned char* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

using compress_fn = void (*)(uint32_t*, const unsigned char*, size_t);

compress_fn choose_compress() {
  return cpu_has_sha_extensions() ? compress_sha_extensions : compress_portable;
}

// Chosen once per process (the CPU does not change under us), at first use so that no
// static initialisation order matters.
void compress(uint32_t state[8], const unsigned char* data, size_t blocks) {
  static const compress_fn chosen = choose_compress();
  chosen(state, data, blocks);
}

}  // namespace

void compress_portable(uint32_t state[8], const unsigned char* data, size_t blocks) {
  for (; blocks > 0; --blocks, data += 64) {
    uint32_t w[64];
    for (int t = 0; t < 16; ++t) w[t] = load_be32(data + 4 * t);
    for (int t = 16; t < 64; ++t) {
      uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; ++t) {
      uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + round_constants[t] + w[t];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

#if defined(__x86_64__)

bool cpu_has_sha_extensions() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1");
}

// sha256rnds2 works on the state as two registers, ABEF and CDGH (A in the top lane), and
// does two rounds per call with the next two W+K values from the low lanes of its third
// operand. Two rounds turn the old ABEF into the new CDGH, so the two calls of a group
// alternate which register they write and the roles are back in place after each group. The message schedule for W[t..t+3] is
//   msg2(msg1(W[t-16..t-13], W[t-12..t-9]) + W[t-7..t-4], W[t-4..t-1]).
__attribute__((target("sha,sse4.1,ssse3"))) void compress_sha_extensions(uint32_t state[8],
                                                                          const unsigned char* data,
                                                                          size_t blocks) {
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&state[0])), 0xB1);
  __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&state[4])), 0x1B);
  __m128i abef = _mm_alignr_epi8(dcba, hgfe, 8);
  __m128i cdgh = _mm_blend_epi16(hgfe, dcba, 0xF0);

  for (; blocks > 0; --blocks, data += 64) {
    const __m128i abef_saved = abef;
    const __m128i cdgh_saved = cdgh;
    __m128i w[4];
    for (int i = 0; i < 4; ++i) {
      w[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * i)), byte_swap);
    }
    for (int group = 0; group < 16; ++group) {
      if (group >= 4) {
        __m128i next = _mm_sha256msg1_epu32(w[group & 3], w[(group + 1) & 3]);
        next = _mm_add_epi32(next, _mm_alignr_epi8(w[(group + 3) & 3], w[(group + 2) & 3], 4));
        w[group & 3] = _mm_sha256msg2_epu32(next, w[(group + 3) & 3]);
      }
      __m128i wk = _mm_add_epi32(w[group & 3],
                                 _mm_load_si128(reinterpret_cast<const __m128i*>(&round_constants[4 * group])));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
    }
    abef = _mm_add_epi32(abef, abef_saved);
    cdgh = _mm_add_epi32(cdgh, cdgh_saved);
  }

  __m128i abef_lanes = _mm_shuffle_epi32(abef, 0x1B);  // F E B A -> A B E F in lanes 0..3
  __m128i cdgh_lanes = _mm_shuffle_epi32(cdgh, 0xB1);  // H G D C -> G H C D
  _mm_storeu_si128(reinterpret_cast<__m128i*>(&state[0]), _mm_blend_epi16(abef_lanes, cdgh_lanes, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(&state[4]), _mm_alignr_epi8(cdgh_lanes, abef_lanes, 8));
}

#else

bool cpu_has_sha_extensions() { return false; }

void compress_sha_extensions(uint32_t state[8], const unsigned char* data, size_t blocks) {
  compress_portable(state, data, blocks);
}

#endif

}  // namespace sha256_detail

void sha256::reset() {
  std::memcpy(state_, sha256_detail::initial_state, sizeof(state_));
  total_bytes_ = 0;
  block_used_bytes_ = 0;
}

void sha256::update(std::string_view bytes) {
  const unsigned char* data = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t size = bytes.size();
  total_bytes_ += size;
  if (block_used_bytes_ > 0) {
    size_t take = std::min(block_bytes - block_used_bytes_, size);
    std::memcpy(block_ + block_used_bytes_, data, take);
    block_used_bytes_ += take;
    data += take;
    size -= take;
    if (block_used_bytes_ < block_bytes) return;
    sha256_detail::compress(state_, block_, 1);
    block_used_bytes_ = 0;
  }
  if (size >= block_bytes) {
    sha256_detail::compress(state_, data, size / block_bytes);
    data += size / block_bytes * block_bytes;
    size %= block_bytes;
  }
  std::memcpy(block_, data, size);
  block_used_bytes_ = size;
}

sha256::digest sha256::finish() {
  assert(block_used_bytes_ < block_bytes);
  uint64_t total_bits = total_bytes_ * 8;
  block_[block_used_bytes_++] = 0x80;
  if (block_used_bytes_ > block_bytes - 8) {
    std::memset(block_ + block_used_bytes_, 0, block_bytes - block_used_bytes_);
    sha256_detail::compress(state_, block_, 1);
    block_used_bytes_ = 0;
  }
  std::memset(block_ + block_used_bytes_, 0, block_bytes - 8 - block_used_bytes_);
  for (int i = 0; i < 8; ++i) block_[block_bytes - 1 - i] = static_cast<unsigned char>(total_bits >> (8 * i));
  sha256_detail::compress(state_, block_, 1);
  block_used_bytes_ = 0;
  digest out;
  for (int i = 0; i < 8; ++i) {
    out[4 * i] = static_cast<unsigned char>(state_[i] >> 24);
    out[4 * i + 1] = static_cast<unsigned char>(state_[i] >> 16);
    out[4 * i + 2] = static_cast<unsigned char>(state_[i] >> 8);
    out[4 * i + 3] = static_cast<unsigned char>(state_[i]);
  }
  return out;
}

}  // namespace mailwing::loadgen
