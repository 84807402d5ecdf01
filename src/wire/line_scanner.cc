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

bool line_scanner::has_partial() const { return carry_size_ > 0 || discarding_; }

void line_scanner::reset() {
  if (carry_ != nullptr) carry_pool_.release(carry_);
  carry_ = nullptr;
  carry_size_ = 0;
  discarding_ = false;
}

line_scanner::event line_scanner::next(std::string_view& input) {
  // A carry block with nothing in it holds the line returned by the previous call, which
  // had to stay readable until now.
  if (carry_ != nullptr && carry_size_ == 0) reset();
  if (input.empty()) return {status::need_more, {}};

  const char* begin = input.data();
  const char* end = begin + input.size();
  const char* lf = find_lf(begin, end);

  if (carry_ == nullptr && !discarding_) {
    if (lf != nullptr) {
      auto line_bytes = size_t(lf - begin);
      input.remove_prefix(line_bytes + 1);
      std::string_view line(begin, without_cr(begin, line_bytes));
      if (line.size() > line_bytes_max_) return {status::too_long, {}};
      return {status::line, line};
    }
    // The line continues in a later chunk. Only here is memory taken for it.
    input = {};
    if (size_t(end - begin) > line_bytes_max_ + 1) {
      discarding_ = true;
    } else {
      carry_ = carry_pool_.acquire();
      std::memcpy(carry_, begin, size_t(end - begin));
      carry_size_ = size_t(end - begin);
    }
    return {status::need_more, {}};
  }

  auto taken_bytes = size_t((lf != nullptr ? lf : end) - begin);
  input.remove_prefix(lf != nullptr ? taken_bytes + 1 : taken_bytes);
  if (!discarding_ && carry_size_ + taken_bytes > line_bytes_max_ + 1) {
    reset();
    discarding_ = true;
  }
  if (discarding_) {
    if (lf == nullptr) return {status::need_more, {}};
    discarding_ = false;
    return {status::too_long, {}};
  }

  std::memcpy(carry_ + carry_size_, begin, taken_bytes);
  carry_size_ += taken_bytes;
  if (lf == nullptr) return {status::need_more, {}};

  size_t line_bytes = without_cr(carry_, carry_size_);
  carry_size_ = 0;
  if (line_bytes > line_bytes_max_) {
    reset();
    return {status::too_long, {}};
  }
  return {status::line, std::string_view(carry_, line_bytes)};
}

}  // namespace mailwing::wire
