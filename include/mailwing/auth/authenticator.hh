#pragma once
// What every login of the server shares, whichever protocol and shard it comes through:
// the users, the failure table that spaces checks per client address, and the pool of
// threads that run the checks. Sessions use it through a login_guard.
//
// Nothing in an answer, nor its timing, tells whether a user exists: when any user has an
// argon2id hash, every check costs exactly one argon2id verification — the user's own,
// or, for an unknown user, a plain-text password or APOP, one against `decoy_hash`, a
// hash of random bytes that no password matches.
//
// Built once on the main thread before the shards start (start()/stop() there too);
// read-only afterwards apart from the thread-safe failure table and pool.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "mailwing/auth/check_pool.hh"
#include "mailwing/auth/credentials.hh"
#include "mailwing/auth/failure_table.hh"
#include "mailwing/config/config.hh"
#include "mailwing/store/directory.hh"

namespace mailwing::auth {

class authenticator {
 public:
  authenticator(const config::config& cfg, const store::directory& mailboxes, uint32_t shard_count);
  authenticator(const authenticator&) = delete;
  authenticator& operator=(const authenticator&) = delete;

  void start() { pool_.start(); }
  // After the shards stopped.
  void stop() { pool_.stop(); }

  failure_table& failures() { return failures_; }
  check_pool& pool() { return pool_; }

  struct prepared_check {
    std::optional<store::mailbox_id> mailbox;  // the user named, if one exists
    std::function<bool()> verify;              // for a pool thread: true when they match
  };
  // Any shard thread. The secret is wiped once verified.
  prepared_check prepare(credentials offered) const;

 private:
  bool verify(std::optional<store::mailbox_id> mailbox, credentials& offered) const;

  const config::config& cfg_;
  const store::directory& mailboxes_;
  std::string decoy_hash_;  // empty when no user has an argon2id hash
  failure_table failures_;
  check_pool pool_;
};

}  // namespace mailwing::auth
