#pragma once
// A shard: one thread, pinned to one core, running one reactor loop. It owns its backend,
// its connections, buffer pools and timers; nothing it owns is touched by another thread.
//
// Work for a shard arrives through its inbound task queues, one single-producer queue per
// producer: one per other shard, one for its store committer thread, one for its
// blocking worker thread, one for the main thread and one for the password check pool
// (auth::check_pool, whose threads take turns as its producer). A producer pushes, then wakes the shard through its eventfd,
// but only when the shard is about to sleep (the `sleeping_` handshake), so a busy shard
// takes no syscall per task.
//
// Construction, start() and stop() happen on the main thread; everything else on the
// shard's own thread unless a method says otherwise.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "mailwing/reactor/backend.hh"
#include "mailwing/reactor/timer_list.hh"
#include "mailwing/util/block_pool.hh"
#include "mailwing/util/clock.hh"
#include "mailwing/util/task_queue.hh"

namespace mailwing::reactor {

enum class backend_choice : uint8_t { auto_select, io_uring, epoll };

class shard;

// Called once per loop iteration, before the shard waits for I/O: the place to start
// work that should batch everything the iteration produced (a group commit, a flush).
class loop_hook {
 public:
  virtual void before_wait() = 0;
  // True while the hook has work in progress that must finish before the shard stops.
  virtual bool busy() const { return false; }
  // When the hook next needs a turn of the loop even if nothing else happens (a periodic
  // checkpoint); UINT64_MAX for never.
  virtual uint64_t next_wake_ms() const { return UINT64_MAX; }

 protected:
  ~loop_hook() = default;
};

struct shard_options {
  backend_choice backend = backend_choice::auto_select;
  backend_options io;
  int cpu = -1;  // pin to this CPU; -1 = don't pin
};

class shard final : private wake_handler {
 public:
  // Producer slots in the inbound queue array, after the shard slots [0, shard_count).
  static constexpr uint32_t extra_producers = 4;
  uint32_t committer_slot() const { return shard_count_; }
  uint32_t worker_slot() const { return shard_count_ + 1; }
  uint32_t main_slot() const { return shard_count_ + 2; }  // the main thread (signals)
  uint32_t auth_slot() const { return shard_count_ + 3; }  // auth::check_pool

  shard(uint32_t id, uint32_t shard_count, shard_options options);
  ~shard();
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  uint32_t id() const { return id_; }
  uint32_t shard_count() const { return shard_count_; }

  // Main thread: starts the thread; `setup` runs first on it (create the backend's users:
  // listeners, sessions' factories). Blocks until setup finished; rethrows its error.
  void start(const std::function<void(shard&)>& setup);
  // Any thread: asks the loop to finish once every loop_hook is idle and `drained` says
  // so. Main thread: join().
  void request_stop();
  void join();
  bool stop_requested() const { return stop_requested_.load(std::memory_order_acquire); }

  // The shard's thread only, after start():
  reactor::backend& io() { return *backend_; }
  // The loop's time, read once per turn. After a wait that may have slept, the first
  // caller reads the clock again: a deadline armed for input that woke the loop must
  // count from the wake-up, not from before the sleep (or it expires at once).
  uint64_t now_ms() const {
    if (now_stale_) {
      now_ms_ = util::monotonic_ms();
      now_stale_ = false;
    }
    return now_ms_;
  }
  void add_timer_list(timer_list& list) { timer_lists_.push_back(&list); }
  // A timer list owned by the shard, shared by every user that needs this duration (the
  // send timeouts of all connections of one protocol, say).
  timer_list& timer_list_for(uint64_t duration_ms);
  void add_loop_hook(loop_hook& hook) { loop_hooks_.push_back(&hook); }
  // Decides when a stopping shard may exit (e.g. "no connections left").
  void set_drained_check(std::function<bool()> drained) { drained_ = std::move(drained); }
  // Runs on the shard's thread once when a stop is requested (force = false: finish
  // politely), and once more with force = true if the shard is still not drained after
  // drain_timeout_ms (close whatever is left).
  void add_stop_hook(std::function<void(bool force)> hook) { stop_hooks_.push_back(std::move(hook)); }
  static constexpr uint64_t drain_timeout_ms = 10000;
  util::block_pool& output_pool() { return output_pool_; }
  // For connections that finished sending and wait for the peer's FIN (net::connection).
  timer_list& linger_timeouts() { return linger_timeouts_; }
  static constexpr uint64_t linger_timeout_ms = 2000;
  util::block_pool& body_pool() { return body_pool_; }
  // Blocks of input_stash_bytes: where a connection keeps input its session has not taken
  // yet, so that no pooled receive buffer waits on a session (net::connection).
  util::block_pool& stash_pool() { return stash_pool_; }
  size_t input_stash_bytes() const { return stash_pool_.block_bytes(); }

  // Runs `work` on `target`'s thread. Call from this shard's thread only.
  void submit_to(shard& target, util::task* work);

  // Any thread, for the producer that owns `slot` (committer_slot() or worker_slot(); a
  // shard uses submit_to): queue work for this shard and wake it if it sleeps.
  void post(uint32_t slot, util::task* work);

  // For the loop's sleep: the eventfd that wakes this shard. Any thread.
  void wake();

 private:
  void thread_main(const std::function<void(shard&)>& setup);
  void loop();
  bool run_inbound_tasks();
  void on_wake() override {}
  int wait_timeout_ms() const;
  bool may_exit() const;

  uint32_t id_;
  uint32_t shard_count_;
  shard_options options_;
  std::unique_ptr<reactor::backend> backend_;
  int event_fd_ = -1;
  mutable uint64_t now_ms_ = 0;
  mutable bool now_stale_ = false;  // the loop waited since now_ms_ was read
  std::vector<std::unique_ptr<util::task_queue>> inbound_;
  std::vector<timer_list*> timer_lists_;
  std::vector<loop_hook*> loop_hooks_;
  std::function<bool()> drained_;
  std::vector<std::function<void(bool)>> stop_hooks_;
  uint64_t stop_seen_ms_ = 0;  // when the loop first saw the stop request; 0 = not yet
  bool forced_ = false;
  util::block_pool output_pool_;
  util::block_pool body_pool_;
  util::block_pool stash_pool_;
  std::vector<std::unique_ptr<timer_list>> owned_timer_lists_;
  timer_list linger_timeouts_{linger_timeout_ms};
  std::thread thread_;
  alignas(64) std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_requested_{false};
};

// 64 KiB body blocks: large enough that a 1 KB message is one block and a big message
// is few writes, small enough that a paused connection doesn't pin much.
inline constexpr size_t body_block_bytes = 64 * 1024;
inline constexpr size_t output_block_bytes = 16 * 1024;
// A connection's input stash holds one receive buffer plus this much: a session that
// stopped with a few commands left still takes the next small packet without the
// connection having to stop receiving (net::connection).
inline constexpr size_t input_stash_slack_bytes = 4 * 1024;

// Which backend `auto` picks here: io_uring unless /proc/sys/kernel/io_uring_disabled
// forbids it or setting up a ring fails (seccomp, old kernel). Logs nothing.
backend_choice resolve_backend(backend_choice requested);

}  // namespace mailwing::reactor
