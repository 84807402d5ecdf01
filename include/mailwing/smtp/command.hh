#pragma once
// Parsing of SMTP command lines (RFC 5321 §4.1, RFC 1870 SIZE, RFC 6152 8BITMIME,
// RFC 6531 SMTPUTF8, RFC 4954 AUTH). Pure functions over views into the line; nothing
// here allocates. The session decides the replies; the error enums say which reply fits.

#include <cstdint>
#include <optional>
#include <string_view>

namespace mailwing::smtp {

enum class verb : uint8_t {
  helo, ehlo, mail, rcpt, data, bdat, rset, noop, quit, vrfy, expn, help, auth,
  starttls, unknown,
};

struct command {
  verb name;
  // Text after the verb and the spaces that follow it, with trailing spaces and tabs
  // removed. Empty when there is none.
  std::string_view argument;
};

// The verb is matched case-insensitively and must be followed by a space or the end of
// the line ("MAILX" is unknown). Never fails: anything else is verb::unknown, and so is
// any line that contains a NUL byte.
command parse_command(std::string_view line);

// A mailbox split at its last "@". local_part is as written (a Dot-string, or a
// Quoted-string including its quotes); domain is a domain name or an address literal
// such as "[192.0.2.1]". For the special path <postmaster> (RFC 5321 §4.1.1.3),
// local_part is "postmaster" and domain is empty.
struct mailbox {
  std::string_view local_part;
  std::string_view domain;
};

enum class body_type : uint8_t { unspecified, seven_bit, eight_bit_mime };

enum class path_error : uint8_t {
  none,
  syntax,             // no "FROM:" / "TO:", no angle brackets, junk: 501 5.5.4
  bad_address,        // the address inside <> breaks RFC 5321 Mailbox syntax: 501 5.1.7 / 5.1.3
  unknown_parameter,  // an ESMTP keyword this server does not implement: 555 5.5.4
  bad_parameter,      // a known keyword with a bad value (SIZE=x, BODY=foo): 501 5.5.4
};

struct mail_from {
  path_error error = path_error::none;
  bool null_sender = false;  // MAIL FROM:<>
  mailbox sender;            // empty when null_sender
  std::optional<uint64_t> size_bytes;  // SIZE=
  body_type body = body_type::unspecified;  // BODY=7BIT / BODY=8BITMIME
  bool smtputf8 = false;     // SMTPUTF8
};

struct rcpt_to {
  path_error error = path_error::none;
  mailbox recipient;
};

// `argument` is the command's argument, e.g. "FROM:<a@b.example> SIZE=100" (the verb
// already removed). Accepted: "FROM:" case-insensitively, optional spaces before "<"
// (as many clients send), a source route "<@a,@b:user@c>" which is ignored
// (RFC 5321 §4.1.2), parameters SIZE, BODY, SMTPUTF8 and AUTH (RFC 4954 §5; its value
// is checked as xtext and ignored). Non-ASCII bytes in the address are allowed only when
// the SMTPUTF8 parameter is present.
mail_from parse_mail_from(std::string_view argument);

// `argument` like "TO:<user@domain>". No parameters are implemented (any is
// unknown_parameter). "<postmaster>" (any case) is accepted without a domain.
// Non-ASCII bytes in the address are allowed only when utf8_allowed (the transaction's
// MAIL FROM had SMTPUTF8).
rcpt_to parse_rcpt_to(std::string_view argument, bool utf8_allowed);

}  // namespace mailwing::smtp
