#pragma once
// Parsing of POP3 command lines (RFC 1939 §3, RFC 2449, RFC 5034): a case-insensitive
// keyword, then arguments separated by spaces. Views into the line; no allocation.

#include <cstdint>
#include <optional>
#include <string_view>

namespace mailwing::pop3 {

enum class verb : uint8_t {
  user, pass, apop, auth, capa, stat, list, uidl, retr, top, dele, rset, noop, quit, stls,
  unknown,
};

struct command {
  verb name;
  // Everything after the keyword and one space; PASS takes it whole, since a password
  // may contain spaces (RFC 1939 §7).
  std::string_view rest;
  std::string_view arguments[2];
  uint8_t argument_count;  // up to 2 counted; more makes too_many_arguments
  bool too_many_arguments;
};

command parse_command(std::string_view line);

// A message number: decimal digits only, no sign, fits in 32 bits... so "1", "42"; not
// "", "+1", "0x1", "99999999999".
std::optional<uint32_t> parse_number(std::string_view text);

// TOP's line count (RFC 1939 §7: any non-negative number): decimal digits only, of any
// length; a count past UINT64_MAX means the same as UINT64_MAX (the whole message).
std::optional<uint64_t> parse_line_count(std::string_view text);

}  // namespace mailwing::pop3
