#pragma once
// The one canonical form of a mailbox address, used both where mail is delivered (RCPT TO,
// smtp::recipient_resolver) and where users log in (SMTP AUTH, POP3): so an address that
// receives mail is the address that logs in to read it, whatever case or quoting a
// client writes it in.
//
// Canonical: the local part without Quoted-string quotes and backslash escapes, both
// parts lower-cased (ASCII; RFC 5321 allows case-sensitive local parts, but mailboxes that
// differ only by case are a trap nobody wants), the domain without a trailing root dot.
// Config addresses are stored lower-cased, so they are already canonical.
//
// Plus-addressing (user+tag@ delivers to user@) is a delivery rule, not part of the
// canonical form: it stays in the recipient resolver, and a login names the user itself.

#include <optional>
#include <string>
#include <string_view>

namespace mailwing::auth {

struct canonical_address {
  std::string local_part;
  std::string domain;  // empty for the bare <postmaster> of RCPT TO
  std::string text() const { return local_part + "@" + domain; }
};

canonical_address canonicalize(std::string_view local_part, std::string_view domain);

// "local@domain" (split at the last '@') in canonical form; nullopt when it is not an
// address (no '@', or an empty side).
std::optional<std::string> canonical_login(std::string_view login);

}  // namespace mailwing::auth
