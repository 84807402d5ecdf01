#include "mailwing/auth/address.hh"

#include "mailwing/util/ascii.hh"

namespace mailwing::auth {

canonical_address canonicalize(std::string_view local_part, std::string_view domain) {
  canonical_address out;
  if (local_part.size() >= 2 && local_part.front() == '"' && local_part.back() == '"') {
    local_part = local_part.substr(1, local_part.size() - 2);
    for (size_t i = 0; i < local_part.size(); ++i) {
      if (local_part[i] == '\\' && i + 1 < local_part.size()) ++i;
      out.local_part.push_back(util::ascii_lower(local_part[i]));
    }
  } else {
    util::append_lower(out.local_part, local_part);
  }
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  util::append_lower(out.domain, domain);
  return out;
}

std::optional<std::string> canonical_login(std::string_view login) {
  size_t at = login.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == login.size()) return std::nullopt;
  return canonicalize(login.substr(0, at), login.substr(at + 1)).text();
}

}  // namespace mailwing::auth
