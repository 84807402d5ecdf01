#include "mailwing/reactor/shard.hh"

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <fstream>
#include <future>
#include <system_error>

#include "mailwing/util/clock.hh"
#include "mailwing/util/log.hh"

namespace mailwing::reactor {

shard::shard(uint32_t id, uint32_t shard_count, shard_options options)
    : id_(id),
      shard_count_(shard_count),
      options_(options),
      output_pool_(output_block_bytes, 256),
      body_pool_(body_block_bytes, 256),
      stash_pool_(options.io.recv_buffer_bytes + input_stash_slack_bytes, 64) {
  timer_lists_.push_back(&linger_timeouts_);
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) throw std::system_error(errno, std::system_category(), "eventfd");
  for (uint32_t slot = 0; slot < shard_count + extra_producers; ++slot) {
    inbound_.push_back(std::make_unique<util::task_queue>());
  }
}

shard::~shard() {
  assert(!thread_.joinable());
  backend_.reset();
  ::close(event_fd_);
}

void shard::start(const std::function<void(shard&)>& setup) {
  std::promise<void> started;
  std::future<void> result = started.get_future();
  thread_ = std::thread([this, &setup, &started] {
    char name[16];
    std::snprintf(name, sizeof(name), "shard%u", id_);
    util::set_thread_log_name(name);
    pthread_setname_np(pthread_self(), name);
    try {
      if (options_.cpu >= 0) {
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        CPU_SET(options_.cpu, &cpus);
        // Pinning is an optimisation; a container may forbid it.
        if (pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus) != 0) {
          MW_LOG_DEBUG("could not pin to cpu %d", options_.cpu);
        }
      }
      backend_ = options_.backend == backend_choice::epoll ? make_epoll_backend(options_.io)
                                                           : make_io_uring_backend(options_.io);
      backend_->add_wake_fd(event_fd_, *this);
      now_ms_ = util::monotonic_ms();
      setup(*this);
      started.set_value();
    } catch (...) {
      started.set_exception(std::current_exception());
      return;
    }
    loop();
  });
  try {
    result.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

timer_list& shard::timer_list_for(uint64_t duration_ms) {
  for (const auto& list : owned_timer_lists_) {
    if (list->duration_ms() == duration_ms) return *list;
  }
  owned_timer_lists_.push_back(std::make_unique<timer_list>(duration_ms));
  timer_lists_.push_back(owned_timer_lists_.back().get());
  return *owned_timer_lists_.back();
}

void shard::request_stop() {
  stop_requested_.store(true, std::memory_order_release);
  wake();
}

void shard::join() {
  if (thread_.joinable()) thread_.join();
}

void shard::submit_to(shard& target, util::task* work) {
  target.post(id_, work);
}

void shard::post(uint32_t slot, util::task* work) {
  assert(slot < inbound_.size());
  inbound_[slot]->push(work);
  // Pairs with the fence in loop(): either the shard sees the task before it sleeps, or
  // we see it sleeping and wake it. Only the producer that flips the flag writes the
  // eventfd: the rest of a burst aimed at a sleeping shard would otherwise each pay a
  // syscall for the same wake-up.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed) && sleeping_.exchange(false, std::memory_order_acq_rel)) wake();
}

void shard::wake() {
  uint64_t one = 1;
  ssize_t ignored = ::write(event_fd_, &one, sizeof(one));
  (void)ignored;
}

bool shard::run_inbound_tasks() {
  bool ran = false;
  for (auto& queue : inbound_) {
    // Bounded per queue and pass so one chatty producer cannot starve the sockets.
    for (int budget = 256; budget > 0; --budget) {
      util::task* work = queue->pop();
      if (work == nullptr) break;
      work->run();
      ran = true;
    }
  }
  return ran;
}

int shard::wait_timeout_ms() const {
  uint64_t next = UINT64_MAX;
  for (const timer_list* list : timer_lists_) next = std::min(next, list->next_deadline_ms());
  for (const loop_hook* hook : loop_hooks_) next = std::min(next, hook->next_wake_ms());
  if (stop_requested()) next = std::min(next, now_ms_ + 50);
  if (next == UINT64_MAX) return -1;
  if (next <= now_ms_) return 0;
  return static_cast<int>(std::min<uint64_t>(next - now_ms_, 60000));
}

bool shard::may_exit() const {
  if (!stop_requested()) return false;
  for (const loop_hook* hook : loop_hooks_) {
    if (hook->busy()) return false;
  }
  return !drained_ || drained_();
}

void shard::loop() {
  for (;;) {
    now_ms_ = util::monotonic_ms();
    now_stale_ = false;
    bool ran = run_inbound_tasks();
    for (timer_list* list : timer_lists_) list->expire(now_ms_);
    if (stop_requested()) {
      if (stop_seen_ms_ == 0) {
        stop_seen_ms_ = now_ms_;
        for (auto& hook : stop_hooks_) hook(false);
      } else if (!forced_ && now_ms_ - stop_seen_ms_ >= drain_timeout_ms) {
        forced_ = true;
        MW_LOG_WARN("drain timeout: closing the remaining connections");
        for (auto& hook : stop_hooks_) hook(true);
      }
    }
    for (loop_hook* hook : loop_hooks_) hook->before_wait();
    if (may_exit()) break;
    int timeout_ms = ran ? 0 : wait_timeout_ms();
    if (timeout_ms != 0) {
      sleeping_.store(true, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      for (auto& queue : inbound_) {
        if (queue->has_items()) {
          timeout_ms = 0;
          break;
        }
      }
    }
    if (timeout_ms != 0) now_stale_ = true;
    backend_->run_once(timeout_ms);
    sleeping_.store(false, std::memory_order_relaxed);
  }
  MW_LOG_DEBUG("loop finished");
}

backend_choice resolve_backend(backend_choice requested) {
  if (requested != backend_choice::auto_select) return requested;
  std::ifstream disabled("/proc/sys/kernel/io_uring_disabled");
  int value = 0;
  if (disabled >> value && value == 2) return backend_choice::epoll;
  try {
    backend_options probe;
    probe.recv_buffer_count = 8;
    probe.recv_buffer_bytes = 4096;
    probe.queue_depth = 8;
    make_io_uring_backend(probe);
    return backend_choice::io_uring;
  } catch (const std::exception&) {
    return backend_choice::epoll;
  }
}

}  // namespace mailwing::reactor
