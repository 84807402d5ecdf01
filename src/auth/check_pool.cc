#include "mailwing/auth/check_pool.hh"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "mailwing/util/log.hh"
#include "mailwing/util/task.hh"

namespace mailwing::auth {

uint32_t check_pool::threads_for(uint32_t shard_count) { return std::clamp<uint32_t>(shard_count / 2, 1, 4); }

check_pool::check_pool(uint32_t thread_count, uint32_t shard_count)
    : thread_count_(thread_count),
      queue_max_(queued_per_thread_max * thread_count),
      post_mutexes_(new std::mutex[shard_count]) {}

check_pool::~check_pool() { stop(); }

void check_pool::start() {
  for (uint32_t index = 0; index < thread_count_; ++index) {
    threads_.emplace_back([this, index] { thread_main(index); });
  }
}

void check_pool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

bool check_pool::submit(reactor::shard& origin, std::function<bool()> check, std::function<void(bool)> done) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= queue_max_) return false;
    queue_.push_back({&origin, std::move(check), std::move(done)});
  }
  wake_.notify_one();
  return true;
}

void check_pool::thread_main(uint32_t index) {
  char name[16];
  std::snprintf(name, sizeof(name), "auth%u", index);
  util::set_thread_log_name(name);
  pthread_setname_np(pthread_self(), name);
  // Per thread on Linux. Best effort: without it the queue bound still holds.
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10) != 0) {
    MW_LOG_DEBUG("could not lower the priority of the password check threads");
  }
  for (;;) {
    job next;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    bool result = next.check();
    reactor::shard& origin = *next.origin;
    util::task* answer = util::make_task([result, done = std::move(next.done)] { done(result); });
    std::lock_guard lock(post_mutexes_[origin.id()]);
    origin.post(origin.auth_slot(), answer);
  }
}

}  // namespace mailwing::auth
