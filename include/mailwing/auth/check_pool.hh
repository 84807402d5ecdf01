#pragma once
// The threads that verify passwords, apart from everything else.
//
// An argon2id check costs tens of milliseconds of CPU and 64 MiB on purpose. On the shard's
// worker thread a password flood would queue up in front of checkpoints and compaction;
// so checks get threads of their own, at a lower CPU priority (nice 10) than the shards,
// workers and commit threads, with a bounded queue: past queue_max waiting checks, submit
// refuses and the session answers "try later" (SMTP 454 4.7.0, POP3 -ERR [SYS/TEMP]).
// A password flood therefore costs at most these threads' share of the CPU and
// threads × 64 MiB of memory, and never delays mail.
//
// Results go back to the shard that asked, through its auth_slot(): the pool's threads
// take turns as that slot's one producer (a mutex per shard).
//
// start()/stop() on the main thread; submit() on any shard's thread.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "mailwing/reactor/shard.hh"

namespace mailwing::auth {

class check_pool {
 public:
  // Half the shards' cores, at least one, at most four: a flood can take at most half the
  // CPU from mail, and at most 256 MiB of argon2id memory.
  static uint32_t threads_for(uint32_t shard_count);
  // Checks waiting for a thread, per thread: 16 argon2id checks are about 1 s of work on
  // an idle core (4 s on this busy 2-core VM, 230 ms each), about the longest a login
  // should wait in the queue rather than hear "try later". Plain-text checks take
  // microseconds, so only a flood fills the queue then.
  static constexpr size_t queued_per_thread_max = 16;

  check_pool(uint32_t thread_count, uint32_t shard_count);
  ~check_pool();
  check_pool(const check_pool&) = delete;
  check_pool& operator=(const check_pool&) = delete;

  void start();
  // Runs what is queued, then ends the threads. After the shards stopped, before they are
  // destroyed (results are posted to them).
  void stop();

  // Runs `check` on a pool thread, then `done(result)` on `origin`'s thread. False, with
  // nothing run, when queue_max checks are already waiting.
  bool submit(reactor::shard& origin, std::function<bool()> check, std::function<void(bool)> done);

  size_t queue_max() const { return queue_max_; }

 private:
  struct job {
    reactor::shard* origin;
    std::function<bool()> check;
    std::function<void(bool)> done;
  };
  void thread_main(uint32_t index);

  uint32_t thread_count_;
  size_t queue_max_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::unique_ptr<std::mutex[]> post_mutexes_;  // per shard id: one producer at a time
};

}  // namespace mailwing::auth
