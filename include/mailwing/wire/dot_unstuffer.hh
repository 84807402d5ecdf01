#pragma once
// Turns the bytes a client sends after DATA into the message as stored.
//
// RFC 5321 §4.5.2: a line that starts with "." has that dot removed; the data ends with
// the line "." — the five bytes CR LF "." CR LF, where the first CRLF ends the message's
// last line and belongs to the message. Only this exact sequence ends the data: a bare LF
// never starts or ends a line here, so "\n.\n" or "\n.\r\n" cannot end the message
// (SMTP smuggling). The empty message is the input ".\r\n" at the very start.
//
// Stored form: every bare LF (one not preceded by CR) is stored as CRLF, so the stored
// message has CRLF line ends and POP3 sizes are exact. Dot removal happens only after a
// real CRLF (or at the start); a line that begins after a bare LF keeps its dots.
// A CR not followed by LF is stored as it is.
//
// The state is an explicit enum that survives any split of the input: feeding the same
// bytes in one call or one byte per call gives the same output.
//
// has_dot_line() tells whether any line of the *stored* message starts with "." — such a
// message needs dot-stuffing when POP3 sends it; one without can be spliced as it is.
//
// Owned by one SMTP session, on that session's shard.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mailwing::wire {

class dot_unstuffer {
 public:
  dot_unstuffer() { reset(); }

  struct result {
    size_t consumed_bytes;  // bytes of input used
    size_t produced_bytes;  // bytes written to out
    bool finished;          // the end-of-data sequence was consumed (it is not in out)
  };

  // Consumes input and writes stored bytes to out[0 .. out_capacity). Stops when the data
  // ends, when input is used up, or when out has fewer than 2 bytes left (a bare LF
  // becomes two bytes). Requires out_capacity >= 2 for progress. Bytes after the
  // end-of-data sequence are not consumed: they are the client's next command. Once the
  // data has ended, feed() consumes nothing and reports finished until reset().
  result feed(std::string_view input, char* out, size_t out_capacity);

  // Starts a new message: at line start, no dot line seen.
  void reset();

  bool has_dot_line() const { return has_dot_line_; }

 private:
  enum class state : uint8_t {
    line_start,      // after CRLF, or at the start of the data
    line_start_dot,  // a "." at line start was seen (and dropped, unless the data ends)
    line_start_dot_cr,  // ".\r" at line start, CR held back: "\n" next ends the data
    in_line,         // inside a line
    in_line_cr,      // right after a CR (already written): LF next ends the line
    after_bare_lf,   // right after a bare LF (stored as CRLF): not a line start for dots
    ended,           // the end-of-data sequence was consumed; only reset() leaves
  };
  state state_;
  bool has_dot_line_;
};

}  // namespace mailwing::wire
