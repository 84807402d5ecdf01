#include "mailwing/auth/sasl.hh"

#include <algorithm>

#include "mailwing/auth/address.hh"
#include "mailwing/util/base64.hh"

namespace mailwing::auth {

std::optional<std::string> decode_response(std::string_view line) {
  if (line == "=") return std::string();
  return util::base64_decode(line);
}

plain_status decode_plain(std::string_view line, credentials& offered) {
  std::optional<std::string> decoded = decode_response(line);
  if (!decoded) return plain_status::cannot_decode;
  std::string_view text = *decoded;
  size_t first = text.find('\0');
  size_t second = first == std::string_view::npos ? first : text.find('\0', first + 1);
  if (second == std::string_view::npos) return plain_status::malformed;
  std::string_view authzid = text.substr(0, first);
  std::string_view authcid = text.substr(first + 1, second - first - 1);
  bool other_identity = !authzid.empty() && authzid != authcid &&
                        canonical_login(authzid).value_or(std::string(authzid)) !=
                            canonical_login(authcid).value_or(std::string(authcid));
  offered.login = other_identity ? std::string() : std::string(authcid);
  offered.secret = text.substr(second + 1);
  offered.apop_timestamp.clear();
  std::fill(decoded->begin(), decoded->end(), '\0');
  return plain_status::ok;
}

}  // namespace mailwing::auth
