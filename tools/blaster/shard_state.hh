#pragma once
// One blaster shard's share of a run: its connections, the message budget they draw
// from, the open-loop pacer, and the results they record (latency histogram, reply
// codes, errors). Owned by its shard and touched only by that shard's thread, except the
// `progress` atomics (read by the main thread for the live line) and `finished()`; the
// main thread reads the rest only after the shard was joined.

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "blaster/options.hh"
#include "loadgen/body_pool.hh"
#include "loadgen/histogram.hh"
#include "loadgen/report.hh"
#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/timer_list.hh"
#include "mailwing/util/block_pool.hh"

namespace mailwing::blaster {

class smtp_client;

// Read-only for every shard once the shards start, except stop_sending.
struct run_context {
  const options* opts = nullptr;
  const loadgen::body_pool* pool = nullptr;
  std::string date_header;     // "Date: ...\r\n", the same for every message of the run
  std::vector<std::string> hash_headers;  // per pool body: "X-Mailwing-Hash: ...\r\n"
  std::string to_prefix;       // --to split around "{n}"
  std::string to_suffix;
  bool to_has_number = false;
  uint64_t run_id = 0;         // in Message-IDs, so runs do not collide
  uint64_t deadline_ns = 0;    // --duration: no message starts after this (0: none)
  std::atomic<bool> stop_sending{false};  // Ctrl-C: finish what is in flight, then QUIT
};

// What the server said about itself, from the first session that got that far.
struct server_info {
  bool known = false;
  std::string greeting;
  bool pipelining = false;
  bool chunking = false;
  bool auth = false;
  bool used_pipelining = false;
  bool used_bdat = false;
};

class shard_state final : private reactor::timer_entry {
 public:
  shard_state(reactor::shard& owner, run_context& run, uint32_t index, uint32_t shard_count,
              uint64_t message_budget, const std::vector<int>& fds);
  ~shard_state() override;

  // --- for the connections (shard thread) ---
  enum class take : uint8_t { message, wait, done };
  // A message to start now: `due_ns` is when it was due (open loop) or now. `wait`: none
  // is due yet (open loop); `done`: no more will come. Takes nothing unless it returns
  // `message`.
  take take_message(uint64_t now, uint64_t& due_ns, uint64_t& sequence);
  // take() said wait: call client.message_available() when one is due (or it is over).
  void wait_for_message(smtp_client& client);
  void cancel_wait(smtp_client& client);
  // The session finished its greeting/EHLO/AUTH (or failed before that).
  void client_ready();
  void client_gone(smtp_client& client);

  void record_success(uint64_t latency_ns, uint64_t message_bytes, uint64_t now);
  void record_failure(const std::string& kind, const std::string& detail);
  void record_error(const std::string& kind, const std::string& detail);  // not a message
  void count_reply(int code) { ++reply_codes_[code < 0 || code >= 1000 ? 0 : code]; }
  void note_server(const server_info& info);

  reactor::shard& owner() { return owner_; }
  run_context& run() { return run_; }
  const options& opts() const { return *run_.opts; }
  reactor::timer_list& reply_timeouts() { return reply_timeouts_; }
  util::block_pool& carry_pool() { return carry_pool_; }
  bool open_loop() const { return run_.opts->rate > 0; }

  // --- progress (any thread) ---
  struct progress_counters {
    std::atomic<uint64_t> accepted{0};
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> connections{0};
  };
  progress_counters progress;
  bool finished() const { return finished_.load(std::memory_order_acquire); }

  // --- results (main thread, after join) ---
  uint64_t accepted = 0;
  uint64_t failed = 0;
  uint64_t bytes = 0;
  uint64_t started = 0;
  uint64_t first_start_ns = UINT64_MAX;
  uint64_t last_done_ns = 0;
  uint64_t due_not_started = 0;   // open loop: due when the run ended, never sent
  loadgen::histogram latency_ns;
  loadgen::error_log errors;
  server_info server;
  const std::vector<uint64_t>& reply_codes() const { return reply_codes_; }

 private:
  void on_timer() override;  // the pacer tick (open loop) and stop checks
  void schedule_due(uint64_t now);
  void wake_waiters();
  bool out_of_messages(uint64_t now) const;

  reactor::shard& owner_;
  run_context& run_;
  uint32_t index_;
  uint32_t shard_count_;
  util::block_pool carry_pool_;
  reactor::timer_list reply_timeouts_;
  reactor::timer_list ticks_{1};
  std::vector<smtp_client*> clients_;
  std::vector<smtp_client*> waiting_;
  uint32_t clients_total_ = 0;
  uint32_t clients_ready_ = 0;
  uint64_t budget_;               // messages this shard may still start (or schedule)
  uint64_t sequence_ = 0;         // messages started by this shard
  // Open loop.
  double interval_ns_ = 0;
  uint64_t schedule_start_ns_ = 0;
  uint64_t scheduled_ = 0;
  std::deque<uint64_t> due_;      // due times of messages not yet started
  bool pacing_ = false;
  std::vector<uint64_t> reply_codes_;
  std::atomic<bool> finished_{false};
};

}  // namespace mailwing::blaster
