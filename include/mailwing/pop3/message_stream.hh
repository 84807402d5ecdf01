#pragma once
// Turns a stored message into a POP3 multi-line response body (RFC 1939 §3): a "." at
// the start of a line is doubled, the response ends with CRLF "." CRLF, and for TOP only
// the headers, the blank line and the first n body lines are sent.
//
// The stream works on any split of the message into chunks (its state — line start,
// header/body, lines left — survives a chunk boundary), so a session can feed it the log
// in bounded reads and keep its memory bounded for any message size.
//
// A message that needs none of this (no line starts with ".", whole message wanted) does
// not come here: the session sends it with connection::write_file, without user space.
//
// Owned by one POP3 session, on that session's shard.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailwing::pop3 {

class message_stream {
 public:
  // body_lines: nullopt for RETR (everything), n for TOP (headers + n body lines).
  void start(std::optional<uint64_t> body_lines);

  // Appends the response bytes for `chunk` (the next bytes of the message) to `out`.
  // Returns false once the rest of the message is not wanted (TOP is done): stop reading.
  bool feed(std::string_view chunk, std::string& out);

  // The end of the response: a CRLF if the message did not end with one, then ".\r\n".
  void finish(std::string& out) const;

 private:
  void stuff(std::string_view chunk, std::string& out);

  enum class part : uint8_t { headers, body, done };
  part part_ = part::headers;
  uint64_t line_bytes_ = 0;      // bytes of the current line so far (0: at line start)
  char previous_ = '\n';         // the last byte passed on ('\n' before the first)
  char before_previous_ = '\r';
  bool limited_ = false;         // TOP
  uint64_t body_lines_left_ = 0;
};

}  // namespace mailwing::pop3
