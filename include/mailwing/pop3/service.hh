#pragma once
// The POP3 service on one shard: what its sessions share (timer lists, the carry pool,
// APOP timestamps) plus the acceptor and the drain at shutdown. Mirrors smtp::service.
//
// Owned by its shard; only that shard's thread uses it. `pop3_shared` is built once on
// the main thread and is read-only for every shard.

#include <cstdint>
#include <string>
#include <vector>

#include <string_view>
#include <unordered_map>

#include "mailwing/auth/login.hh"
#include "mailwing/config/config.hh"
#include "mailwing/net/acceptor.hh"
#include "mailwing/net/session_registry.hh"
#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/timer_list.hh"
#include "mailwing/reactor/worker.hh"
#include "mailwing/store/directory.hh"
#include "mailwing/store/store_shard.hh"
#include "mailwing/util/block_pool.hh"

namespace mailwing::pop3 {

class session;

struct pop3_shared {
  const config::config* cfg = nullptr;
  const store::directory* mailboxes = nullptr;
  std::vector<store::store_shard*> stores;  // indexed by shard id
  net::connection_limit* limit = nullptr;
  auth::login_context login;
};

class service {
 public:
  service(const pop3_shared& shared, reactor::shard& owner, reactor::worker& worker);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  void listen(int listen_fd);
  // Shutdown: sessions close (no UPDATE, RFC 1939 §6) except those committing a QUIT;
  // with force, all of them.
  void drain(bool force);
  size_t session_count() const { return sessions_.size(); }

  const pop3_shared& shared() const { return shared_; }
  const config::config& cfg() const { return *shared_.cfg; }
  reactor::shard& owner() { return owner_; }
  reactor::worker& worker() { return worker_; }
  reactor::timer_list& autologout_timeouts() { return autologout_timeouts_; }
  reactor::timer_list& failure_delays() { return failure_delays_; }
  util::block_pool& carry_pool() { return carry_pool_; }
  util::block_pool& read_pool() { return read_pool_; }

  // "<4711.2.1700000000000@mx.example.test>": unique per session (RFC 1939 §7).
  std::string next_timestamp();

  // Failed logins from one client address on this shard in the last minute, this one
  // included: a client that reconnects after each guess is slowed down all the same.
  uint32_t note_failed_login(std::string_view peer_address);

  net::session_registry<session>& sessions() { return sessions_; }

  // A failed login is answered only after this, from the second failure on (in the
  // session, or from the client's address within a minute).
  static constexpr uint64_t failure_delay_ms = 1000;
  static constexpr uint64_t failure_memory_ms = 60000;
  static constexpr uint32_t line_bytes_max = 1024;

 private:
  const pop3_shared& shared_;
  reactor::shard& owner_;
  reactor::worker& worker_;
  reactor::timer_list autologout_timeouts_;
  reactor::timer_list failure_delays_;
  util::block_pool carry_pool_;
  util::block_pool read_pool_;  // the sessions' log_windows
  net::acceptor acceptor_;
  std::vector<int> listen_fds_;
  net::session_registry<session> sessions_;
  bool draining_ = false;
  uint64_t timestamp_counter_ = 0;
  struct failures {
    uint32_t count;
    uint64_t last_ms;
  };
  std::unordered_map<std::string, failures> failures_by_address_;
};

}  // namespace mailwing::pop3
