#pragma once
// The SMTP service on one shard: what every session of that shard shares — timer lists,
// the carry-block pool, the body budget, queue ids, the cached date, the login waits —
// plus the acceptor that creates sessions and the drain at shutdown.
//
// Owned by its shard; only that shard's thread uses it. `smtp_shared` is built once on
// the main thread and is read-only for every shard.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mailwing/auth/authenticator.hh"
#include "mailwing/auth/login_guard.hh"
#include "mailwing/config/config.hh"
#include "mailwing/net/acceptor.hh"
#include "mailwing/net/session_registry.hh"
#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/timer_list.hh"
#include "mailwing/smtp/message_builder.hh"
#include "mailwing/smtp/recipients.hh"
#include "mailwing/store/directory.hh"
#include "mailwing/store/store_shard.hh"
#include "mailwing/util/block_pool.hh"

namespace mailwing::smtp {

class session;

struct smtp_shared {
  const config::config* cfg = nullptr;
  const store::directory* mailboxes = nullptr;
  const recipient_resolver* recipients = nullptr;
  std::vector<store::store_shard*> stores;  // indexed by shard id
  net::connection_limit* limit = nullptr;
  // The certificate for STARTTLS/STLS and the implicit-TLS listeners; null: TLS is off.
  const net::tls_context_holder* tls = nullptr;
  auth::authenticator* auth = nullptr;
  std::string spool_dir;
};

class service {
 public:
  service(const smtp_shared& shared, reactor::shard& owner);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // Starts accepting on `listen_fd` (a socket bound for this shard); `implicit_tls`: the
  // smtps listeners (RFC 8314).
  void listen(int listen_fd, bool implicit_tls);
  // Shutdown: idle sessions get 421 and close now, busy ones after their transaction;
  // with force, every session closes at once.
  void drain(bool force);

  const smtp_shared& shared() const { return shared_; }
  const config::config& cfg() const { return *shared_.cfg; }
  reactor::shard& owner() { return owner_; }
  auth::wait_timers& login_waits() { return login_waits_; }
  reactor::timer_list& command_timeouts() { return command_timeouts_; }
  reactor::timer_list& data_timeouts() { return data_timeouts_; }
  util::block_pool& carry_pool() { return carry_pool_; }
  body_budget& budget() { return budget_; }

  // "5F3A9C1200000017": unique across shards and restarts (time, shard, counter).
  std::string next_queue_id();
  // RFC 5322 date-time of now, e.g. "Mon, 23 Nov 2026 13:39:05 +0000"; cached per second.
  std::string_view date_now();

  // Sessions register themselves so that drain() can reach them.
  net::session_registry<session>& sessions() { return sessions_; }

 private:
  const smtp_shared& shared_;
  reactor::shard& owner_;
  reactor::timer_list command_timeouts_;
  reactor::timer_list data_timeouts_;
  auth::wait_timers login_waits_;
  util::block_pool carry_pool_;
  body_budget budget_;
  net::listener_set listeners_;
  net::session_registry<session> sessions_;
  bool draining_ = false;
  uint32_t queue_counter_;
  int64_t date_second_ = -1;
  char date_text_[40] = {};
};

}  // namespace mailwing::smtp
