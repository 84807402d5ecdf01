#pragma once
// The POP3 service on one shard: what its sessions share (timer lists, the carry pool,
// APOP timestamps, the login waits) plus the acceptor and the drain at shutdown. Mirrors
// smtp::service.
//
// Owned by its shard; only that shard's thread uses it. `pop3_shared` is built once on
// the main thread and is read-only for every shard.

#include <cstdint>
#include <string>
#include <vector>

#include "mailwing/auth/authenticator.hh"
#include "mailwing/auth/login_guard.hh"
#include "mailwing/config/config.hh"
#include "mailwing/net/acceptor.hh"
#include "mailwing/net/session_registry.hh"
#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/timer_list.hh"
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
  // The certificate for STARTTLS/STLS and the implicit-TLS listeners; null: TLS is off.
  const net::tls_context_holder* tls = nullptr;
  auth::authenticator* auth = nullptr;
};

class service {
 public:
  service(const pop3_shared& shared, reactor::shard& owner);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // `implicit_tls`: the pop3s listeners (RFC 8314).
  void listen(int listen_fd, bool implicit_tls);
  // Shutdown: sessions close (no UPDATE, RFC 1939 §6) except those committing a QUIT;
  // with force, all of them.
  void drain(bool force);

  const pop3_shared& shared() const { return shared_; }
  const config::config& cfg() const { return *shared_.cfg; }
  reactor::shard& owner() { return owner_; }
  reactor::timer_list& autologout_timeouts() { return autologout_timeouts_; }
  auth::wait_timers& login_waits() { return login_waits_; }
  util::block_pool& carry_pool() { return carry_pool_; }
  util::block_pool& read_pool() { return read_pool_; }

  // "<4711.2.1700000000000@mx.example.test>": unique per session (RFC 1939 §7).
  std::string next_timestamp();

  net::session_registry<session>& sessions() { return sessions_; }

  static constexpr uint32_t line_bytes_max = 1024;

 private:
  const pop3_shared& shared_;
  reactor::shard& owner_;
  reactor::timer_list autologout_timeouts_;
  auth::wait_timers login_waits_;
  util::block_pool carry_pool_;
  util::block_pool read_pool_;  // the sessions' log_windows
  net::listener_set listeners_;
  net::session_registry<session> sessions_;
  bool draining_ = false;
  uint64_t timestamp_counter_ = 0;
};

}  // namespace mailwing::pop3
