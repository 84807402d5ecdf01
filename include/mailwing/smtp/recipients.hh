#pragma once
// Which mailbox, if any, an RCPT TO address delivers to.
//
// Rules (DESIGN.md §3): only local domains are served — anything else is refused, so the
// server is never an open relay; "user+tag@domain" delivers to user@domain;
// postmaster@<local domain> and the bare <postmaster> always deliver to the configured
// postmaster mailbox (RFC 5321 §4.5.1); an unknown local part goes to the domain's
// catch-all mailbox when one is configured, and is refused otherwise. Local parts and
// domains compare case-insensitively (RFC 5321 allows case-sensitive local parts, but a
// mailbox that differs from another only by case is a trap nobody wants).
//
// Built once at startup; read-only afterwards and shared by all shards.

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "mailwing/config/config.hh"
#include "mailwing/smtp/command.hh"
#include "mailwing/store/directory.hh"

namespace mailwing::smtp {

enum class recipient_status : uint8_t { local, unknown_user, not_local };

struct recipient {
  recipient_status status;
  store::mailbox_id mailbox = 0;  // when local
};

class recipient_resolver {
 public:
  recipient_resolver(const config::config& cfg, const store::directory& mailboxes);

  recipient resolve(const mailbox& address) const;

 private:
  struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  const store::directory& mailboxes_;
  std::unordered_set<std::string, string_hash, std::equal_to<>> local_domains_;
  std::unordered_map<std::string, store::mailbox_id, string_hash, std::equal_to<>> catch_all_;
  store::mailbox_id postmaster_;
};

}  // namespace mailwing::smtp
