#pragma once
// Splits received bytes into command lines without copying them.
//
// A line that lies inside one received chunk is returned as a view into that chunk. Only a
// line split across chunks is assembled in a carry block taken from a block_pool, and the
// block goes back to the pool at the first call after that line was returned (the line
// must stay readable until then), so a connection whose input was read up to need_more
// holds no memory here. The carry is the only state that survives a chunk boundary.
//
// A line ends at LF; one CR right before the LF is not part of the line. (RFC 5321 asks
// for CRLF; accepting a bare LF on *command* lines is harmless and what Postfix does.
// DATA content is not scanned here: see dot_unstuffer, where a bare LF never ends data.)
//
// Lines longer than line_bytes_max (excluding the line end) are not returned: one too_long
// event is reported as soon as the line is known to be too long — before its LF, which a
// hostile client may never send — and the rest of it, up to and including the next LF, is
// dropped without a further event. So the caller can answer "500 5.5.2 line too long" at
// once and stays in sync with a client that does end the line.
//
// Owned by one connection, on that connection's shard.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mailwing/util/block_pool.hh"

namespace mailwing::wire {

class line_scanner {
 public:
  // carry_pool's blocks must hold at least line_bytes_max + 1 bytes.
  line_scanner(size_t line_bytes_max, util::block_pool& carry_pool);
  ~line_scanner();
  line_scanner(const line_scanner&) = delete;
  line_scanner& operator=(const line_scanner&) = delete;

  enum class status : unsigned char {
    line,       // `line` holds one complete line without its line end
    too_long,   // the current line passed line_bytes_max; its content is dropped
    need_more,  // `input` is used up; an unfinished line (if any) is carried
  };
  struct event {
    status kind;
    std::string_view line;  // valid until the next call, or until `input`'s bytes go away
  };

  // Consumes bytes from the front of `input` up to and including the next line end (or up
  // to the point where the current line became too long), and advances `input` past them.
  // With status::need_more, all of `input` was consumed.
  event next(std::string_view& input);

  // Drops any carried partial line and returns the carry block to the pool.
  void reset();

 private:
  // What survives between calls (and so between received chunks).
  enum class state : uint8_t {
    between_lines,  // nothing carried
    carrying,       // carry_ holds the start of an unfinished line
    carry_returned, // carry_ holds the line returned last; released at the next call
    discarding,     // inside a line already reported too_long: dropping bytes up to LF
  };

  // Whether `bytes` octets of a line without its LF, the last of them `last`, already
  // make the line longer than line_bytes_max (a final CR may still be the CR of CRLF).
  bool too_long(size_t bytes, char last) const;
  void release_carry();

  size_t line_bytes_max_;
  util::block_pool& carry_pool_;
  char* carry_ = nullptr;   // block from carry_pool_, only while carrying / carry_returned
  size_t carry_size_ = 0;   // bytes of the current line held in carry_
  state state_ = state::between_lines;
};

}  // namespace mailwing::wire
