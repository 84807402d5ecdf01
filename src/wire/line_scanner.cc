#include "mailwing/wire/line_scanner.hh"

#include <immintrin.h>

#include <cassert>
#include <cstdint>
#include <cstring>

namespace mailwing::wire {
namespace {

// Bit i is set when at[i] is LF. A function, because a lambda in an AVX2 function would
// not inherit the target attribute.
__attribute__((target("avx2"))) uint32_t lf_mask(const char* at) {
  __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at));
  return uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi8('\n'))));
}

// Command lines are mostly shorter than 64 bytes, so one 64-byte step finds their end
// with a branch that is predicted right; a search in 32-byte steps, or memchr, takes a
// data-dependent branch per line that mispredicts on a mix of lengths. memchr finishes
// the tail because reading past `end` is not allowed, even within the same page.
__attribute__((target("avx2"))) const char* find_lf_avx2(const char* p, const char* end) {
  for (; end - p >= 64; p += 64) {
    uint64_t mask = lf_mask(p) | uint64_t(lf_mask(p + 32)) << 32;
    if (mask != 0) return p + __builtin_ctzll(mask);
  }
  if (end - p >= 32) {
    uint32_t mask = lf_mask(p);
    if (mask != 0) return p + __builtin_ctz(mask);
    p += 32;
  }
  return static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
}

// Zero (memchr) until this file's dynamic initialization has run, which is still correct.
const bool cpu_has_avx2 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") != 0;
}();

// Requires p < end (memchr must not get a null pointer, which an empty view may hold).
const char* find_lf(const char* p, const char* end) {
  assert(p < end);
  if (cpu_has_avx2) return find_lf_avx2(p, end);
  return static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
}

size_t without_cr(const char* line, size_t size_bytes) {
  return size_bytes > 0 && line[size_bytes - 1] == '\r' ? size_bytes - 1 : size_bytes;
}

}  // namespace

line_scanner::line_scanner(size_t line_bytes_max, util::block_pool& carry_pool)
    : line_bytes_max_(line_bytes_max), carry_pool_(carry_pool) {
  // +1: a carried line may end with the CR of its CRLF.
  assert(carry_pool.block_bytes() >= line_bytes_max + 1);
}

line_scanner::~line_scanner() { reset(); }

void line_scanner::release_carry() {
  if (carry_ != nullptr) carry_pool_.release(carry_);
  carry_ = nullptr;
  carry_size_ = 0;
}

void line_scanner::reset() {
  release_carry();
  state_ = state::between_lines;
}

bool line_scanner::too_long(size_t bytes, char last) const {
  return bytes > line_bytes_max_ + 1 || (bytes == line_bytes_max_ + 1 && last != '\r');
}

line_scanner::event line_scanner::next(std::string_view& input) {
  // The line returned by the previous call had to stay readable until now.
  if (state_ == state::carry_returned) reset();
  for (;;) {
    if (input.empty()) return {status::need_more, {}};
    const char* begin = input.data();
    const char* end = begin + input.size();
    const char* lf = find_lf(begin, end);
    auto taken_bytes = size_t((lf != nullptr ? lf : end) - begin);

    switch (state_) {
      case state::discarding:
        if (lf == nullptr) {
          input = {};
          return {status::need_more, {}};
        }
        input.remove_prefix(taken_bytes + 1);
        state_ = state::between_lines;
        continue;  // the next line may be in the same chunk

      case state::between_lines:
        if (lf != nullptr) {
          input.remove_prefix(taken_bytes + 1);
          std::string_view line(begin, without_cr(begin, taken_bytes));
          if (line.size() > line_bytes_max_) return {status::too_long, {}};
          return {status::line, line};
        }
        input = {};
        if (too_long(taken_bytes, end[-1])) {
          state_ = state::discarding;
          return {status::too_long, {}};
        }
        // The line continues in a later chunk. Only here is memory taken for it.
        carry_ = carry_pool_.acquire();
        std::memcpy(carry_, begin, taken_bytes);
        carry_size_ = taken_bytes;
        state_ = state::carrying;
        return {status::need_more, {}};

      case state::carrying: {
        size_t line_bytes = carry_size_ + taken_bytes;
        if (lf == nullptr) {
          input = {};
          if (too_long(line_bytes, end[-1])) {
            release_carry();
            state_ = state::discarding;
            return {status::too_long, {}};
          }
          std::memcpy(carry_ + carry_size_, begin, taken_bytes);
          carry_size_ = line_bytes;
          return {status::need_more, {}};
        }
        input.remove_prefix(taken_bytes + 1);
        char last = taken_bytes > 0 ? lf[-1] : carry_[carry_size_ - 1];
        if (line_bytes - (last == '\r' ? 1 : 0) > line_bytes_max_) {
          reset();
          return {status::too_long, {}};
        }
        std::memcpy(carry_ + carry_size_, begin, taken_bytes);
        state_ = state::carry_returned;
        return {status::line, std::string_view(carry_, without_cr(carry_, line_bytes))};
      }

      case state::carry_returned:
        break;
    }
    assert(false && "carry_returned is left at the top of next()");
    return {status::need_more, {}};
  }
}

}  // namespace mailwing::wire
