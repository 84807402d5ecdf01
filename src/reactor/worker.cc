#include "mailwing/reactor/worker.hh"

#include <pthread.h>

#include <cstdio>

#include "mailwing/util/log.hh"

namespace mailwing::reactor {

worker::worker(shard& owner) : owner_(owner) {}

worker::~worker() { stop(); }

void worker::start() {
  thread_ = std::thread([this] { thread_main(); });
}

void worker::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  jobs_posted_.fetch_add(1, std::memory_order_release);
  jobs_posted_.notify_one();
  thread_.join();
}

void worker::run(util::task* job) {
  jobs_.push(job);
  jobs_posted_.fetch_add(1, std::memory_order_release);
  jobs_posted_.notify_one();
}

void worker::thread_main() {
  char name[16];
  std::snprintf(name, sizeof(name), "worker%u", owner_.id());
  util::set_thread_log_name(name);
  pthread_setname_np(pthread_self(), name);
  for (;;) {
    uint32_t seen = jobs_posted_.load(std::memory_order_acquire);
    while (util::task* job = jobs_.pop()) job->run();
    if (stopping_.load(std::memory_order_acquire)) break;
    // Sleeps until run() or stop() bumps the counter past what we saw.
    jobs_posted_.wait(seen, std::memory_order_acquire);
  }
}

}  // namespace mailwing::reactor
