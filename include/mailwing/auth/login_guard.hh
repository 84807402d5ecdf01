#pragma once
// One session's way to check a login: waits for the client address's turn (the failure
// table's spacing) and for the session's own (the same delays, counted over this
// session's failures), runs the check on the check pool, counts a failure, and answers.
// SMTP AUTH and POP3 USER/PASS, APOP and AUTH PLAIN all go through it, so there is one
// throttle for every way to guess a password.
//
// The answer comes as a callback on the session's shard, never inside check(); only
// cancel() answers (`cancelled`) at once.
//
// A login_guard is a member of its session and is owned by the session's shard; only that
// thread calls it. wait_timers belong to a service on that shard.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailwing/auth/authenticator.hh"
#include "mailwing/net/peer_address.hh"
#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/timer_list.hh"
#include "mailwing/store/directory.hh"

namespace mailwing::auth {

// Waits of any length on the fixed-duration timer_lists: lists of 100 ms, 400 ms, 1.6 s,
// 6.4 s and 25.6 s; a wait is armed on the longest list not longer than what is left of
// it, then again on a shorter one: a 30 s wait costs a few wake-ups, not hundreds of polls,
// and the shard's loop has only five more lists to look at.
class wait_timers {
 public:
  explicit wait_timers(reactor::shard& owner);
  wait_timers(const wait_timers&) = delete;
  wait_timers& operator=(const wait_timers&) = delete;

  // `entry` fires at most wait_ms from now (at least 100 ms, the shortest list).
  void arm(reactor::timer_entry& entry, uint64_t now_ms, uint64_t wait_ms);

  static constexpr uint64_t shortest_ms = 100;
  static constexpr size_t list_count = 5;  // each 4 times as long as the one before

 private:
  std::vector<std::unique_ptr<reactor::timer_list>> lists_;  // shortest first
};

enum class login_outcome : uint8_t {
  accepted,     // `mailbox` is the user's
  rejected,     // wrong user name or password; counted as a failure
  unavailable,  // the check pool's queue is full: try later (nothing was checked)
  cancelled,    // cancel() ended a check that had not started
};

struct login_result {
  login_outcome outcome;
  std::optional<store::mailbox_id> mailbox;
};

class login_guard final : private reactor::timer_entry {
 public:
  using callback = std::function<void(const login_result&)>;

  // `protocol` names the logins in the log ("smtp", "pop3").
  login_guard(authenticator& auth, wait_timers& timers, reactor::shard& owner, const char* protocol);
  ~login_guard() override;
  login_guard(const login_guard&) = delete;
  login_guard& operator=(const login_guard&) = delete;

  // Checks `offered` for a client at `peer_address` (which must outlive the check: the
  // session's own); `done` gets the result. A failure is logged.
  void check(const net::peer_address& peer, credentials offered, callback done);
  // A check still waiting for its turn ends now with `cancelled` (the session is closing);
  // one that runs already finishes as usual.
  void cancel();
  // On the check pool: cancel() would not end it.
  bool running() const { return state_ == state::running; }
  // Checks of this session that failed.
  uint32_t failures() const { return failures_; }

 private:
  enum class state : uint8_t {
    idle,
    waiting,    // for the address's or the session's turn (timer armed)
    running,    // on the check pool
    refusing,   // the pool was full: answering `unavailable` after a short pause
  };

  void on_timer() override;
  void try_start();
  void finished(bool ok);
  void answer(login_outcome outcome);

  authenticator& auth_;
  wait_timers& timers_;
  reactor::shard& owner_;
  const char* protocol_;
  state state_ = state::idle;
  failure_table::client client_;
  uint32_t failures_ = 0;
  uint64_t last_end_ms_ = 0;  // when this session's last check ended
  authenticator::prepared_check pending_;
  std::string login_;             // of the pending check, for the log
  std::string_view peer_address_;  // of the pending check, for the log (the connection's)
  callback done_;
};

}  // namespace mailwing::auth
