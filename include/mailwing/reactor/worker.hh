#pragma once
// A shard's blocking worker: one thread that runs work which may block for long
// (an argon2id password check, a syncfs checkpoint) so the shard's loop never does.
//
// Jobs go in through a single-producer queue fed by the shard; results come back as tasks
// posted to the shard's worker slot. Owned by its shard: only that shard's thread may call
// run(); start/stop happen on the main thread.

#include <atomic>
#include <thread>

#include "mailwing/reactor/shard.hh"
#include "mailwing/util/task_queue.hh"

namespace mailwing::reactor {

class worker {
 public:
  explicit worker(shard& owner);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  void start();
  // Runs the queued jobs, then ends the thread. Main thread, after the shard stopped.
  void stop();

  // Shard thread: runs `job` on the worker thread; `job` reports back with
  // shard().post(shard().worker_slot(), ...).
  void run(util::task* job);

  shard& owner() { return owner_; }

 private:
  void thread_main();

  shard& owner_;
  util::task_queue jobs_;
  std::atomic<uint32_t> jobs_posted_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace mailwing::reactor
