#include "mailwing/util/crc32c.hh"

#include <nmmintrin.h>
#include <wmmintrin.h>

#include <cstring>

// The crc32 instruction has a latency of 3 cycles but a throughput of one per cycle, so
// one dependency chain runs at a third of the possible speed. Large buffers are cut into
// three adjacent streams whose CRCs are computed together and then combined: the CRC of
// a||b is crc(a)·x^(8·|b|) + crc(b) (mod P, states without the final xor), and the
// multiplication by a constant power of x is one carry-less multiply reduced by one more
// crc32 instruction.

namespace mailwing::util {
namespace {

constexpr uint32_t castagnoli_reflected = 0x82F63B78u;

// x^n mod P in the bit-reflected form of the crc32 instruction's state, where bit 31
// holds the coefficient of x^0.
constexpr uint32_t x_pow_mod_p(uint32_t n) {
  uint32_t r = 0x80000000u;
  for (; n > 0; --n) r = (r >> 1) ^ ((r & 1u) ? castagnoli_reflected : 0u);
  return r;
}

// clmul of two reflected 32-bit values yields x·A·B as a reflected 64-bit value, and
// crc32(0, v) multiplies v by x^32, so crc32(0, clmul(crc, x^(8n-33))) == crc·x^(8n).
struct stride {
  size_t stream_bytes;
  uint32_t shift_one_stream;   // x^(8·stream_bytes - 33) mod P
  uint32_t shift_two_streams;  // x^(16·stream_bytes - 33) mod P
};

constexpr stride make_stride(size_t stream_bytes) {
  return {stream_bytes, x_pow_mod_p(uint32_t(8 * stream_bytes - 33)),
          x_pow_mod_p(uint32_t(16 * stream_bytes - 33))};
}

// Long strides make the combining cost negligible; the short one keeps medium buffers
// (a few hundred bytes, typical journal records) off the single slow chain.
constexpr stride strides[] = {make_stride(4096), make_stride(256), make_stride(32)};

uint64_t load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t clmul32(uint32_t a, uint32_t b) {
  __m128i product = _mm_clmulepi64_si128(_mm_cvtsi32_si128(int(a)), _mm_cvtsi32_si128(int(b)), 0);
  return uint64_t(_mm_cvtsi128_si64(product));
}

uint32_t crc_three_streams(uint32_t crc, const unsigned char* p, const stride& s) {
  const size_t n = s.stream_bytes;
  uint64_t c0 = crc;
  uint64_t c1 = 0;
  uint64_t c2 = 0;
  for (size_t i = 0; i < n; i += 8) {
    c0 = _mm_crc32_u64(c0, load64(p + i));
    c1 = _mm_crc32_u64(c1, load64(p + n + i));
    c2 = _mm_crc32_u64(c2, load64(p + 2 * n + i));
  }
  uint64_t shifted = clmul32(uint32_t(c0), s.shift_two_streams) ^
                     clmul32(uint32_t(c1), s.shift_one_stream);
  return uint32_t(_mm_crc32_u64(0, shifted)) ^ uint32_t(c2);
}

}  // namespace

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size_bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t state = ~crc;

  // Aligned 8-byte loads never straddle a cache line.
  while (size_bytes > 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0) {
    state = _mm_crc32_u8(state, *p++);
    --size_bytes;
  }
  for (const stride& s : strides) {
    while (size_bytes >= 3 * s.stream_bytes) {
      state = crc_three_streams(state, p, s);
      p += 3 * s.stream_bytes;
      size_bytes -= 3 * s.stream_bytes;
    }
  }
  uint64_t state64 = state;
  for (; size_bytes >= 8; size_bytes -= 8, p += 8) state64 = _mm_crc32_u64(state64, load64(p));
  state = uint32_t(state64);
  for (; size_bytes > 0; --size_bytes) state = _mm_crc32_u8(state, *p++);
  return ~state;
}

}  // namespace mailwing::util
