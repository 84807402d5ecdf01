#pragma once
// Checking a login (SMTP AUTH, POP3 USER/PASS and AUTH PLAIN) without stalling the shard
// and without telling, by answer or by time, whether the user exists.
//
// The check always runs on the shard's blocking worker and its answer comes back as a
// task on the shard. When any user has an argon2id hash (`decoy_hash` is not empty),
// every login pays for one argon2id verification — against the user's hash, or the decoy
// for an unknown user or a plain-text password — so the time an answer takes does not
// depend on which of those it was.
//
// Called on a shard's thread; `done` runs on that thread.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "mailwing/config/config.hh"
#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/worker.hh"
#include "mailwing/store/directory.hh"

namespace mailwing::auth {

struct login_context {
  const config::config* cfg = nullptr;
  const store::directory* mailboxes = nullptr;  // mailbox i is user i
  std::string decoy_hash;  // an argon2id hash of nothing anyone knows; "" if no user has one
};

// `done(mailbox)` gets the user's mailbox when `login` (a full address, any case) and
// `password` match, nullopt otherwise.
void check_login(const login_context& context, reactor::worker& worker, std::string_view login,
                 std::string password, std::function<void(std::optional<store::mailbox_id>)> done);

// "local@domain" lower-cased with quoting removed; nullopt when it is not an address.
std::optional<std::string> normalize_login(std::string_view login);

}  // namespace mailwing::auth
