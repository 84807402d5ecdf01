// util/task_queue.hh: the single-producer/single-consumer task queue between threads.

#include "mailwing/util/task_queue.hh"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "mailwing/util/task.hh"

namespace mailwing::util {
namespace {

// Records its number into the consumer's list when run; counts destructions.
class numbered_task final : public task {
 public:
  numbered_task(uint64_t number, std::vector<uint64_t>* ran, std::atomic<uint64_t>* destroyed)
      : number_(number), ran_(ran), destroyed_(destroyed) {}
  ~numbered_task() override {
    if (destroyed_ != nullptr) destroyed_->fetch_add(1, std::memory_order_relaxed);
  }
  void run() override { ran_->push_back(number_); }

 private:
  uint64_t number_;
  std::vector<uint64_t>* ran_;
  std::atomic<uint64_t>* destroyed_;
};

TEST(TaskQueue, EmptyQueuePopsNothing) {
  task_queue queue;
  EXPECT_FALSE(queue.has_items());
  EXPECT_EQ(queue.pop(), nullptr);
  EXPECT_EQ(queue.pop(), nullptr);
}

TEST(TaskQueue, FifoOnOneThread) {
  task_queue queue;
  std::vector<uint64_t> ran;
  for (uint64_t i = 0; i < 100; ++i) queue.push(new numbered_task(i, &ran, nullptr));
  EXPECT_TRUE(queue.has_items());
  while (task* item = queue.pop()) item->run();
  EXPECT_FALSE(queue.has_items());
  ASSERT_EQ(ran.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) EXPECT_EQ(ran[i], i);
}

// A popped task stays alive (it is the queue's anchor) until the next pop or the end of
// the queue; every task is destroyed exactly once.
TEST(TaskQueue, PoppedTaskLivesUntilTheNextPop) {
  std::atomic<uint64_t> destroyed{0};
  std::vector<uint64_t> ran;
  {
    task_queue queue;
    for (uint64_t i = 0; i < 3; ++i) queue.push(new numbered_task(i, &ran, &destroyed));
    task* first = queue.pop();
    ASSERT_NE(first, nullptr);
    first->run();
    EXPECT_EQ(destroyed.load(), 0u);
    task* second = queue.pop();
    ASSERT_NE(second, nullptr);
    EXPECT_EQ(destroyed.load(), 1u);  // the first one
    second->run();
    // A pop that finds nothing keeps the anchor.
    task* third = queue.pop();
    ASSERT_NE(third, nullptr);
    EXPECT_EQ(queue.pop(), nullptr);
    EXPECT_EQ(destroyed.load(), 2u);
    third->run();
  }
  EXPECT_EQ(destroyed.load(), 3u);
  EXPECT_EQ(ran, (std::vector<uint64_t>{0, 1, 2}));
}

TEST(TaskQueue, DestroyingTheQueueDeletesTasksNeverPopped) {
  std::atomic<uint64_t> destroyed{0};
  std::vector<uint64_t> ran;
  {
    task_queue queue;
    for (uint64_t i = 0; i < 10; ++i) queue.push(new numbered_task(i, &ran, &destroyed));
    for (int i = 0; i < 4; ++i) queue.pop()->run();
  }
  EXPECT_EQ(destroyed.load(), 10u);
  EXPECT_EQ(ran.size(), 4u);  // the rest were deleted, not run
}

TEST(TaskQueue, PushAfterDrainingStillWorks) {
  task_queue queue;
  std::vector<uint64_t> ran;
  for (uint64_t round = 0; round < 5; ++round) {
    queue.push(new numbered_task(round, &ran, nullptr));
    EXPECT_TRUE(queue.has_items());
    task* item = queue.pop();
    ASSERT_NE(item, nullptr);
    item->run();
    EXPECT_FALSE(queue.has_items());
    EXPECT_EQ(queue.pop(), nullptr);
  }
  EXPECT_EQ(ran, (std::vector<uint64_t>{0, 1, 2, 3, 4}));
}

TEST(TaskQueue, MakeTaskRunsTheLambda) {
  task_queue queue;
  int value = 0;
  queue.push(make_task([&value] { value += 40; }));
  queue.push(make_task([&value] { value += 2; }));
  while (task* item = queue.pop()) item->run();
  EXPECT_EQ(value, 42);
}

// One producer thread, one consumer thread, millions of tasks: every task arrives once,
// in order. (Run it under ThreadSanitizer or ASan to check the memory orders too.)
TEST(TaskQueue, TwoThreadsPreserveOrder) {
#if defined(__SANITIZE_ADDRESS__)
  constexpr uint64_t count = 1'000'000;
#else
  constexpr uint64_t count = 3'000'000;
#endif
  std::atomic<uint64_t> destroyed{0};
  std::vector<uint64_t> ran;
  ran.reserve(count);
  {
    task_queue queue;
    std::thread producer([&] {
      for (uint64_t i = 0; i < count; ++i) {
        queue.push(new numbered_task(i, &ran, &destroyed));
        if (i % 100'000 == 0) std::this_thread::yield();  // let the queue run empty now and then
      }
    });
    uint64_t empty_polls = 0;
    while (ran.size() < count) {
      task* item = queue.pop();
      if (item == nullptr) {
        ++empty_polls;
        continue;
      }
      item->run();
    }
    producer.join();
    EXPECT_EQ(queue.pop(), nullptr);
    (void)empty_polls;
  }
  ASSERT_EQ(ran.size(), count);
  uint64_t out_of_order = 0;
  for (uint64_t i = 0; i < count; ++i) out_of_order += ran[i] != i;
  EXPECT_EQ(out_of_order, 0u);
  EXPECT_EQ(destroyed.load(), count);
}

// The consumer may check has_items() and sleep; the producer's task must become visible.
TEST(TaskQueue, ConsumerSeesTasksPushedWhileItChecks) {
  constexpr uint64_t count = 200'000;
  std::vector<uint64_t> ran;
  task_queue queue;
  std::atomic<bool> producer_done{false};
  std::thread producer([&] {
    for (uint64_t i = 0; i < count; ++i) queue.push(new numbered_task(i, &ran, nullptr));
    producer_done.store(true, std::memory_order_release);
  });
  for (;;) {
    bool done = producer_done.load(std::memory_order_acquire);
    while (queue.has_items()) queue.pop()->run();
    if (done) break;
  }
  producer.join();
  EXPECT_FALSE(queue.has_items());
  ASSERT_EQ(ran.size(), count);
  EXPECT_EQ(ran.back(), count - 1);
}

}  // namespace
}  // namespace mailwing::util
