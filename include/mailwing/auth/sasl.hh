#pragma once
// SASL responses as SMTP AUTH (RFC 4954) and POP3 AUTH (RFC 5034) carry them: one base64
// line, "=" for an empty response; and the PLAIN mechanism's message inside (RFC 4616).
// The "*" that cancels an exchange is the protocols' business: they answer it differently.

#include <optional>
#include <string>
#include <string_view>

namespace mailwing::auth {

// The decoded bytes of one response line; nullopt when it is not valid base64.
std::optional<std::string> decode_response(std::string_view line);

struct plain_message {
  enum class status : unsigned char {
    ok,
    cannot_decode,  // not base64
    malformed,      // not authzid NUL authcid NUL passwd
  };
  status result = status::malformed;
  std::string login;     // authcid
  std::string password;
  // An authzid naming someone other than the authcid: acting as another user is not
  // something this server offers, so such a login must fail (after a check like any other,
  // so that it is throttled and timed like any other).
  bool other_identity = false;
};

plain_message decode_plain(std::string_view line);

}  // namespace mailwing::auth
