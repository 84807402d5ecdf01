#pragma once
// SASL responses as SMTP AUTH (RFC 4954) and POP3 AUTH (RFC 5034) carry them: one base64
// line, "=" for an empty response; and the PLAIN mechanism's message inside (RFC 4616).
// The "*" that cancels an exchange is the protocols' business: they answer it differently.

#include <optional>
#include <string>
#include <string_view>

#include "mailwing/auth/credentials.hh"

namespace mailwing::auth {

// The decoded bytes of one response line; nullopt when it is not valid base64.
std::optional<std::string> decode_response(std::string_view line);

enum class plain_status : unsigned char {
  ok,
  cannot_decode,  // not base64
  malformed,      // not authzid NUL authcid NUL passwd
};

// Fills `offered` from a PLAIN response line. An authzid naming someone other than the
// authcid leaves the login empty: acting as another user is not something this server
// offers, and such a login must fail — after a check like any other, so that it is
// throttled and timed like any other.
plain_status decode_plain(std::string_view line, credentials& offered);

}  // namespace mailwing::auth
