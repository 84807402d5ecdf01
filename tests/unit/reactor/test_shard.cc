// reactor/shard.hh and worker.hh: the loop, its inbound queues and wake-ups, timers,
// stopping, and the blocking worker — on both backends.

#include "mailwing/reactor/shard.hh"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "mailwing/reactor/timer_list.hh"
#include "mailwing/reactor/worker.hh"
#include "mailwing/util/clock.hh"
#include "mailwing/util/task.hh"
#include "reactor_test_util.hh"

namespace mailwing::reactor {
namespace {

using namespace testing;  // reactor test helpers

shard_options options_for(backend_choice backend) {
  shard_options options;
  options.backend = backend;
  options.io.recv_buffer_count = 8;
  options.io.queue_depth = 64;
  return options;
}

class Shard : public ::testing::TestWithParam<backend_choice> {
 protected:
  void SetUp() override { MW_SKIP_IF_BACKEND_UNAVAILABLE(GetParam()); }

  // A started shard with an inbox.
  struct running {
    std::unique_ptr<shard> loop;
    std::unique_ptr<shard_inbox> inbox;
    running() = default;
    running(running&&) = default;
    ~running() {
      if (loop) {
        loop->request_stop();
        loop->join();
      }
    }
  };
  running start(uint32_t id = 0, uint32_t count = 1, std::function<void(shard&)> more = {}) {
    running out;
    out.loop = std::make_unique<shard>(id, count, options_for(GetParam()));
    out.inbox = std::make_unique<shard_inbox>(*out.loop);
    shard_inbox* inbox = out.inbox.get();
    out.loop->start([inbox, more](shard& owner) {
      owner.add_loop_hook(*inbox);
      if (more) more(owner);
    });
    return out;
  }
};

TEST_P(Shard, SetupRunsOnTheShardThreadBeforeStartReturns) {
  std::thread::id setup_thread;
  bool setup_done = false;
  shard loop(3, 4, options_for(GetParam()));
  EXPECT_EQ(loop.id(), 3u);
  EXPECT_EQ(loop.shard_count(), 4u);
  EXPECT_EQ(loop.committer_slot(), 4u);
  EXPECT_EQ(loop.worker_slot(), 5u);
  loop.start([&](shard& owner) {
    setup_thread = std::this_thread::get_id();
    EXPECT_STREQ(owner.io().name(), backend_name(GetParam()));
    EXPECT_GT(owner.now_ms(), 0u);
    setup_done = true;
  });
  EXPECT_TRUE(setup_done);
  EXPECT_NE(setup_thread, std::this_thread::get_id());
  loop.request_stop();
  loop.join();
}

TEST_P(Shard, SetupErrorIsRethrown) {
  shard loop(0, 1, options_for(GetParam()));
  try {
    loop.start([](shard&) { throw std::runtime_error("setup failed on purpose"); });
    FAIL() << "start() returned";
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "setup failed on purpose");
  }
  loop.join();  // harmless: the thread is already gone
}

TEST_P(Shard, StopWithNothingToDo) {
  running shard_a = start();
  EXPECT_TRUE(shard_a.inbox->call([] { return true; }));
  EXPECT_FALSE(shard_a.loop->stop_requested());
  shard_a.loop->request_stop();
  EXPECT_TRUE(shard_a.loop->stop_requested());
  shard_a.loop->join();
}

// Another thread posting into a slot it owns: every task runs, in order, whether the
// shard was busy or asleep when it arrived.
TEST_P(Shard, PostFromOtherThreadsWakesTheShard) {
  running shard_a = start();
  shard& loop = *shard_a.loop;
  constexpr int count = 100000;
  std::vector<int> from_worker_slot, from_committer_slot;  // shard thread only
  auto producer = [&loop](uint32_t slot, std::vector<int>* out) {
    for (int i = 0; i < count; ++i) {
      loop.post(slot, util::make_task([out, i] { out->push_back(i); }));
      // Now and then let the shard run dry and fall asleep.
      if (i % 10000 == 9999) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  };
  std::thread a(producer, loop.worker_slot(), &from_worker_slot);
  std::thread b(producer, loop.committer_slot(), &from_committer_slot);
  a.join();
  b.join();
  EXPECT_TRUE(eventually([&] {
    return shard_a.inbox->call([&] { return from_worker_slot.size() == count && from_committer_slot.size() == count; });
  }));
  shard_a.inbox->call([&] {
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(from_worker_slot[static_cast<size_t>(i)], i);
      ASSERT_EQ(from_committer_slot[static_cast<size_t>(i)], i);
    }
  });
}

// A single task posted to a sleeping shard runs (no lost wake-up), many times over.
TEST_P(Shard, EveryPostToASleepingShardRuns) {
  running shard_a = start();
  shard& loop = *shard_a.loop;
  for (int round = 0; round < 300; ++round) {
    std::promise<void> ran;
    std::future<void> done = ran.get_future();
    loop.post(loop.worker_slot(), util::make_task([&ran] { ran.set_value(); }));
    ASSERT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready) << "round " << round;
    if (round % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Tasks bounce between two shards with submit_to.
TEST_P(Shard, SubmitToBetweenShards) {
  running first = start(0, 2);
  running second = start(1, 2);
  struct bouncer {
    static void bounce(shard* here, shard* there, int left, std::promise<void>* done, std::atomic<int>* hops) {
      hops->fetch_add(1);
      if (left == 0) {
        done->set_value();
        return;
      }
      here->submit_to(*there, util::make_task([here, there, left, done, hops] {
        bounce(there, here, left - 1, done, hops);
      }));
    }
  };
  std::promise<void> done;
  std::atomic<int> hops{0};
  shard* a = first.loop.get();
  shard* b = second.loop.get();
  first.inbox->call([&] { bouncer::bounce(a, b, 20000, &done, &hops); });
  ASSERT_EQ(done.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(hops.load(), 20001);

  // Both flood each other at once.
  std::atomic<int> on_a{0}, on_b{0};
  first.inbox->post([&] {
    for (int i = 0; i < 50000; ++i) a->submit_to(*b, util::make_task([&on_b] { on_b.fetch_add(1); }));
  });
  second.inbox->post([&] {
    for (int i = 0; i < 50000; ++i) b->submit_to(*a, util::make_task([&on_a] { on_a.fetch_add(1); }));
  });
  EXPECT_TRUE(eventually([&] { return on_a.load() == 50000 && on_b.load() == 50000; }));
}

class fire_once final : public timer_entry {
 public:
  void on_timer() override {
    fired_at = util::monotonic_ms();
    fired.store(true);
  }
  uint64_t fired_at = 0;
  std::atomic<bool> fired{false};
};

// A timer wakes an otherwise idle shard, not before its deadline.
TEST_P(Shard, TimerFiresOnAnIdleShard) {
  timer_list timers(80);
  fire_once entry;
  running shard_a = start(0, 1, [&timers](shard& owner) { owner.add_timer_list(timers); });
  uint64_t armed_at = 0;
  shard_a.inbox->call([&] {
    armed_at = util::monotonic_ms();
    timers.arm(entry, shard_a.loop->now_ms());
  });
  EXPECT_TRUE(eventually([&] { return entry.fired.load(); }));
  EXPECT_GE(entry.fired_at + 1, armed_at + 80) << "fired early";
}

// Stop waits for the drained check and calls the stop hooks once (force = false).
TEST_P(Shard, StopHooksAndDrainedCheck) {
  std::atomic<bool> drained{false};
  std::atomic<int> polite{0}, forced{0};
  std::thread::id hook_thread;
  running shard_a = start(0, 1, [&](shard& owner) {
    owner.set_drained_check([&drained] { return drained.load(); });
    owner.add_stop_hook([&](bool force) {
      hook_thread = std::this_thread::get_id();
      (force ? forced : polite).fetch_add(1);
    });
  });
  shard_a.loop->request_stop();
  EXPECT_TRUE(eventually([&] { return polite.load() == 1; }));
  // Not drained yet: the loop still runs.
  EXPECT_TRUE(shard_a.inbox->call([] { return true; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_EQ(polite.load(), 1);
  EXPECT_EQ(forced.load(), 0);
  drained.store(true);
  shard_a.loop->join();
  EXPECT_NE(hook_thread, std::this_thread::get_id());
  EXPECT_EQ(polite.load(), 1);
}

class busy_hook final : public loop_hook {
 public:
  void before_wait() override { iterations.fetch_add(1); }
  bool busy() const override { return busy_flag.load(); }
  std::atomic<bool> busy_flag{true};
  std::atomic<int> iterations{0};
};

TEST_P(Shard, BusyLoopHookDelaysTheExit) {
  busy_hook hook;
  running shard_a = start(0, 1, [&hook](shard& owner) { owner.add_loop_hook(hook); });
  shard_a.loop->request_stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Still looping: the inbox still answers.
  EXPECT_TRUE(shard_a.inbox->call([] { return true; }));
  EXPECT_GT(hook.iterations.load(), 0);
  hook.busy_flag.store(false);
  shard_a.loop->join();
}

// Jobs run on the worker thread and report back through the worker slot.
TEST_P(Shard, WorkerRunsJobsAndReportsBack) {
  shard loop(0, 1, options_for(GetParam()));
  worker helper(loop);
  shard_inbox inbox(loop);
  EXPECT_EQ(&helper.owner(), &loop);
  helper.start();
  loop.start([&inbox](shard& owner) { owner.add_loop_hook(inbox); });
  constexpr int count = 20000;
  std::atomic<int> on_worker{0};
  std::vector<int> reported;  // shard thread only
  std::thread::id shard_thread = inbox.call([] { return std::this_thread::get_id(); });
  inbox.call([&] {
    for (int i = 0; i < count; ++i) {
      helper.run(util::make_task([&, i] {
        EXPECT_NE(std::this_thread::get_id(), shard_thread);
        on_worker.fetch_add(1);
        loop.post(loop.worker_slot(), util::make_task([&reported, i] { reported.push_back(i); }));
      }));
    }
  });
  EXPECT_TRUE(eventually([&] { return inbox.call([&] { return reported.size() == count; }); }));
  inbox.call([&] {
    for (int i = 0; i < count; ++i) ASSERT_EQ(reported[static_cast<size_t>(i)], i);
  });
  EXPECT_EQ(on_worker.load(), count);
  loop.request_stop();
  loop.join();
  helper.stop();
  helper.stop();  // twice is harmless
}

// worker::stop runs what was queued before it ends the thread.
TEST_P(Shard, WorkerStopRunsQueuedJobs) {
  shard loop(0, 1, options_for(GetParam()));
  worker helper(loop);
  shard_inbox inbox(loop);
  helper.start();
  loop.start([&inbox](shard& owner) { owner.add_loop_hook(inbox); });
  std::atomic<int> ran{0};
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  inbox.call([&] {
    helper.run(util::make_task([gate] { gate.wait(); }));  // blocks the worker for now
    for (int i = 0; i < 1000; ++i) helper.run(util::make_task([&ran] { ran.fetch_add(1); }));
  });
  loop.request_stop();
  loop.join();
  release.set_value();
  helper.stop();
  EXPECT_EQ(ran.load(), 1000);
}

INSTANTIATE_TEST_SUITE_P(Backends, Shard, ::testing::Values(backend_choice::epoll, backend_choice::io_uring),
                         backend_param_name);

}  // namespace
}  // namespace mailwing::reactor
