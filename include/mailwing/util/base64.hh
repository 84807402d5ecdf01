#pragma once
// RFC 4648 base64, for SASL (AUTH PLAIN / AUTH LOGIN). Not on a hot path.

#include <optional>
#include <string>
#include <string_view>

namespace mailwing::util {

std::string base64_encode(std::string_view bytes);

// Strict decoding: the standard alphabet only, no whitespace, '=' padding optional but
// never in the middle. Returns nullopt on any violation.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace mailwing::util
