#include "mailwing/wire/dot_unstuffer.hh"

#include <smmintrin.h>

#include <cassert>

namespace mailwing::wire {
namespace {

constexpr size_t block_bytes = 64;
constexpr size_t vector_bytes = 16;
// Output space a block with bare LFs needs: every byte may double, and the piecewise copy
// below writes up to one vector past the end of each piece.
constexpr size_t expanded_out_bytes_max = 2 * block_bytes + vector_bytes;

// What the byte before a block was, as the bit to shift into bit 0 of a mask (0 or 1).
struct preceding {
  uint64_t cr;       // a CR: an LF next is not bare
  uint64_t crlf;     // the LF of a CRLF, or the start of the data: a "." next is stuffed
  uint64_t bare_lf;  // a bare LF: a "." next is kept and starts a stored line
};

struct block_run {
  size_t consumed_bytes;
  size_t produced_bytes;
  preceding last;  // about the last consumed byte
  bool dot_line_seen;
};

// Bit i is set when byte i of the 64 bytes compared into a..d is set.
uint64_t to_mask(__m128i a, __m128i b, __m128i c, __m128i d) {
  auto m = [](__m128i v) { return uint64_t(uint16_t(_mm_movemask_epi8(v))); };
  return m(a) | m(b) << 16 | m(c) << 32 | m(d) << 48;
}

// Byte 15 set when `bit` is: the compare result for the byte before a block.
__m128i last_byte_flag(uint64_t bit) { return _mm_insert_epi8(_mm_setzero_si128(), -int(bit), 15); }

// Converts whole 64-byte blocks. Most blocks hold no bare LF and no "." after an LF; a
// test that stays in vector registers finds those, and they are copied as they are.
// The others get exact bit masks, and their bare LFs are expanded here. It stops before
// a "." that follows a CRLF, which the state machine must see because it may end the
// data, and when too little input or output space is left for a block.
block_run run_blocks(const char* in, size_t in_bytes, char* out, size_t out_bytes,
                     preceding before) {
  block_run r{0, 0, before, false};
  const __m128i lf_char = _mm_set1_epi8('\n');
  const __m128i cr_char = _mm_set1_epi8('\r');
  const __m128i dot_char = _mm_set1_epi8('.');
  __m128i cr_prev = last_byte_flag(before.cr);
  __m128i lf_prev = last_byte_flag(before.crlf | before.bare_lf);
  while (in_bytes - r.consumed_bytes >= block_bytes &&
         out_bytes - r.produced_bytes >= block_bytes) {
    const char* src = in + r.consumed_bytes;
    char* dst = out + r.produced_bytes;
    const auto* vectors = reinterpret_cast<const __m128i*>(src);
    __m128i v[4];
    __m128i lf[4];
    __m128i cr[4];
    __m128i dot[4];
    __m128i changed = _mm_setzero_si128();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm_loadu_si128(vectors + i);
      lf[i] = _mm_cmpeq_epi8(v[i], lf_char);
      cr[i] = _mm_cmpeq_epi8(v[i], cr_char);
      dot[i] = _mm_cmpeq_epi8(v[i], dot_char);
      // Each byte lined up with the compare result of the byte before it.
      __m128i cr_before = _mm_alignr_epi8(cr[i], i == 0 ? cr_prev : cr[i - 1], 15);
      __m128i lf_before = _mm_alignr_epi8(lf[i], i == 0 ? lf_prev : lf[i - 1], 15);
      changed = _mm_or_si128(changed, _mm_andnot_si128(cr_before, lf[i]));
      changed = _mm_or_si128(changed, _mm_and_si128(dot[i], lf_before));
    }
    cr_prev = cr[3];
    lf_prev = lf[3];

    if (_mm_movemask_epi8(changed) == 0) {
      auto* out_vectors = reinterpret_cast<__m128i*>(dst);
      for (int i = 0; i < 4; ++i) _mm_storeu_si128(out_vectors + i, v[i]);
      r.consumed_bytes += block_bytes;
      r.produced_bytes += block_bytes;
      // No bare LF here, so an LF at the end closes a CRLF.
      r.last = {uint64_t(src[block_bytes - 1] == '\r'), uint64_t(src[block_bytes - 1] == '\n'), 0};
      continue;
    }

    if (out_bytes - r.produced_bytes < expanded_out_bytes_max) break;
    uint64_t lf_mask = to_mask(lf[0], lf[1], lf[2], lf[3]);
    uint64_t cr_mask = to_mask(cr[0], cr[1], cr[2], cr[3]);
    uint64_t dot_mask = to_mask(dot[0], dot[1], dot[2], dot[3]);
    uint64_t bare_lf = lf_mask & ~(cr_mask << 1 | r.last.cr);
    uint64_t crlf = lf_mask & ~bare_lf;
    uint64_t stuffed = dot_mask & (crlf << 1 | r.last.crlf);
    uint64_t dot_line = dot_mask & (bare_lf << 1 | r.last.bare_lf);

    // Only the bytes before the first stuffed dot are this block's to convert.
    uint64_t usable = stuffed != 0 ? (stuffed & (0 - stuffed)) - 1 : ~uint64_t{0};
    size_t end = stuffed != 0 ? size_t(__builtin_ctzll(stuffed)) : block_bytes;
    r.dot_line_seen |= (dot_line & usable) != 0;
    // The pieces between bare LFs are copied a vector at a time from a copy of the block
    // with a vector of slack, not with memcpy: its size dispatch mispredicts on lengths
    // like these.
    alignas(vector_bytes) char staged[block_bytes + vector_bytes];
    for (int i = 0; i < 4; ++i) _mm_store_si128(reinterpret_cast<__m128i*>(staged) + i, v[i]);
    _mm_store_si128(reinterpret_cast<__m128i*>(staged) + 4, _mm_setzero_si128());
    auto copy_piece = [&staged](char* to, size_t from_byte, size_t size_bytes) {
      for (size_t k = 0; k < size_bytes; k += vector_bytes) {
        __m128i piece = _mm_loadu_si128(reinterpret_cast<const __m128i*>(staged + from_byte + k));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(to + k), piece);
      }
    };
    size_t from = 0;
    for (uint64_t bare = bare_lf & usable; bare != 0; bare &= bare - 1) {
      auto lf_at = size_t(__builtin_ctzll(bare));
      copy_piece(dst, from, lf_at - from);
      dst += lf_at - from;
      *dst++ = '\r';
      *dst++ = '\n';
      from = lf_at + 1;
    }
    copy_piece(dst, from, end - from);
    dst += end - from;
    r.consumed_bytes += end;
    r.produced_bytes = size_t(dst - out);
    if (stuffed != 0) {
      r.last = {0, 1, 0};
      return r;
    }
    r.last = {cr_mask >> 63, crlf >> 63, bare_lf >> 63};
  }
  return r;
}

}  // namespace

void dot_unstuffer::reset() {
  state_ = state::line_start;
  has_dot_line_ = false;
}

dot_unstuffer::result dot_unstuffer::feed(std::string_view input, char* out, size_t out_capacity) {
  const char* in = input.data();
  const size_t in_size = input.size();
  size_t in_pos = 0;
  size_t out_pos = 0;
  // Locals, not members: `out` may alias *this as far as the compiler knows, so members
  // would be stored and reloaded around every output byte.
  state st = state_;
  bool dot_line = has_dot_line_;

  while (st != state::ended && in_pos < in_size && out_capacity - out_pos >= 2) {
    // Between the rare bytes that need the state machine, input goes through in blocks.
    // The states that hold nothing back map onto what the blocks need to know.
    if (st != state::line_start_dot && st != state::line_start_dot_cr &&
        in_size - in_pos >= block_bytes && out_capacity - out_pos >= block_bytes) {
      preceding before{st == state::in_line_cr, st == state::line_start,
                       st == state::after_bare_lf};
      block_run run =
          run_blocks(in + in_pos, in_size - in_pos, out + out_pos, out_capacity - out_pos, before);
      in_pos += run.consumed_bytes;
      out_pos += run.produced_bytes;
      dot_line |= run.dot_line_seen;
      st = run.last.crlf ? state::line_start
           : run.last.cr ? state::in_line_cr
           : run.last.bare_lf ? state::after_bare_lf
                              : state::in_line;
      if (in_pos == in_size || out_capacity - out_pos < 2) break;
    }

    char c = in[in_pos++];
    switch (st) {
      case state::line_start:
        if (c == '.') {
          st = state::line_start_dot;
          continue;
        }
        break;
      case state::line_start_dot:
        if (c == '\r') {
          st = state::line_start_dot_cr;
          continue;
        }
        // The dot is dropped; what follows starts the stored line.
        if (c == '.') dot_line = true;
        break;
      case state::line_start_dot_cr:
        if (c == '\n') {
          st = state::ended;
          continue;
        }
        // ".\r" and more: not the end after all. The held CR is content.
        out[out_pos++] = '\r';
        st = state::in_line_cr;
        break;
      case state::after_bare_lf:
        // Stored as a line start (the LF became CRLF) although it is none for dots.
        if (c == '.') dot_line = true;
        break;
      case state::in_line:
      case state::in_line_cr:
        break;
      case state::ended:
        assert(false);
        break;
    }

    // `c` is line content here; only its line-end role is left to decide.
    if (c == '\r') {
      out[out_pos++] = '\r';
      st = state::in_line_cr;
    } else if (c == '\n') {
      if (st != state::in_line_cr) {
        out[out_pos++] = '\r';
        out[out_pos++] = '\n';
        st = state::after_bare_lf;
      } else {
        out[out_pos++] = '\n';
        st = state::line_start;
      }
    } else {
      out[out_pos++] = c;
      st = state::in_line;
    }
  }
  state_ = st;
  has_dot_line_ = dot_line;
  return {in_pos, out_pos, st == state::ended};
}

}  // namespace mailwing::wire
