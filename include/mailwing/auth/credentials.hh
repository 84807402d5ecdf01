#pragma once
// What a client offers to log in, whichever protocol and mechanism it used.

#include <string>

namespace mailwing::auth {

struct credentials {
  std::string login;           // an address as the client wrote it
  std::string secret;          // the password, or the APOP digest in hex
  std::string apop_timestamp;  // the greeting's <timestamp> for APOP (RFC 1939 §7); else empty
};

}  // namespace mailwing::auth
