#pragma once
// MD5 (RFC 1321), for POP3 APOP only (RFC 1939 §7 defines the digest as MD5). Not used
// for anything that needs collision resistance; libsodium has no MD5.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailwing::util {

std::array<uint8_t, 16> md5(std::string_view bytes);
// Lower-case hex, as APOP clients send it.
std::string md5_hex(std::string_view bytes);

}  // namespace mailwing::util
