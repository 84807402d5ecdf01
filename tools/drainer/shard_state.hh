#pragma once
// One drainer shard's share of a run: the accounts it drains, its POP3 sessions (at most
// `sessions` at a time; a session that finished a mailbox is replaced by a new one for the
// next account), and the results they record. Owned by its shard's thread, except the
// `progress` atomics and finished(); the main thread reads the rest after join().

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "drainer/options.hh"
#include "loadgen/histogram.hh"
#include "loadgen/report.hh"
#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/timer_list.hh"
#include "mailwing/util/block_pool.hh"

namespace mailwing::drainer {

class pop3_client;

struct run_context {
  const options* opts = nullptr;
  std::atomic<bool> stop{false};  // Ctrl-C: no new mailboxes; sessions QUIT after what is in flight
};

struct integrity_failure {
  std::string user;
  uint64_t message = 0;       // POP3 message number
  std::string kind;           // "mismatch"
  std::string expected_hex;
  std::string actual_hex;
  uint64_t expected_bytes = 0;  // UINT64_MAX: the header gave none
  uint64_t body_bytes = 0;
};

class shard_state final : private reactor::loop_hook {
 public:
  shard_state(reactor::shard& owner, run_context& run, uint32_t index, std::vector<size_t> accounts,
              uint32_t sessions, std::vector<int> fds);
  ~shard_state();

  // --- for sessions (shard thread) ---
  void session_gone(pop3_client& client);
  void record_login(uint64_t ns) { ++logins; login_ns.record(ns); }
  void record_retr(uint64_t latency, uint64_t message_bytes, uint64_t now);
  void record_verified() { ++verified; }
  void record_unverified() { ++unverified; }
  void record_integrity_failure(integrity_failure failure);
  void record_deleted() { ++deleted; }
  void record_quit(uint64_t ns) { quit_ns.record(ns); }
  void record_error(const std::string& kind, const std::string& detail);
  void count_reply(bool ok) { ++(ok ? ok_replies : err_replies); }
  void note_mailbox(uint64_t message_count, uint64_t octets) {
    ++mailboxes;
    stat_messages += message_count;
    stat_octets += octets;
  }

  reactor::shard& owner() { return owner_; }
  const options& opts() const { return *run_.opts; }
  run_context& run() { return run_; }
  reactor::timer_list& reply_timeouts() { return reply_timeouts_; }
  util::block_pool& carry_pool() { return carry_pool_; }
  // Scratch for unstuffed RETR bytes; consumed before the next use.
  char* scratch() { return scratch_.data(); }
  size_t scratch_bytes() const { return scratch_.size(); }

  // --- progress (any thread) ---
  struct progress_counters {
    std::atomic<uint64_t> messages{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> connections{0};
  };
  progress_counters progress;
  bool finished() const { return finished_.load(std::memory_order_acquire); }

  // --- results (main thread, after join) ---
  uint64_t messages = 0, bytes = 0, verified = 0, unverified = 0, deleted = 0, logins = 0;
  uint64_t mailboxes = 0, stat_messages = 0, stat_octets = 0;
  uint64_t ok_replies = 0, err_replies = 0;
  uint64_t integrity_failures = 0;
  std::vector<integrity_failure> failures;  // the first failures_kept
  static constexpr size_t failures_kept = 1000;
  uint64_t first_start_ns = UINT64_MAX, last_done_ns = 0;
  loadgen::histogram login_ns, retr_ns, quit_ns;
  loadgen::error_log errors;

 private:
  void before_wait() override;  // opens sessions for waiting accounts
  void open_sessions();
  void start_session(int fd);

  reactor::shard& owner_;
  run_context& run_;
  uint32_t index_;
  util::block_pool carry_pool_;
  reactor::timer_list reply_timeouts_;
  std::vector<char> scratch_;
  std::vector<size_t> accounts_;  // indices into opts().accounts, not yet started
  size_t next_account_ = 0;
  uint32_t sessions_max_;
  std::vector<pop3_client*> clients_;
  std::atomic<bool> finished_{false};
};

}  // namespace mailwing::drainer
