#pragma once
// MD5 (RFC 1321), only for POP3 APOP (RFC 1939 §7), which is defined in terms of it.
// libsodium has no MD5; this is the textbook algorithm, not on any hot path.

#include <string>
#include <string_view>

namespace mailwing::loadgen {

// Lower-case hex digest.
std::string md5_hex(std::string_view bytes);

}  // namespace mailwing::loadgen
