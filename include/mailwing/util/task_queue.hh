#pragma once
// An unbounded single-producer/single-consumer queue of tasks (Vyukov's intrusive
// design): push is two stores, pop one load, no locks and no allocation beyond the task.
// Unbounded on purpose: a shard must never block on another shard's full queue (that is
// how two shards deadlock); back-pressure is applied where work enters, at the sockets.
//
// Exactly one thread may push and exactly one (other) thread may pop, for the queue's
// whole life. The consumer keeps the last popped task as the queue's anchor and deletes
// it on the next pop (or when the queue is destroyed).

#include <atomic>

#include "mailwing/util/task.hh"

namespace mailwing::util {

class task_queue {
 public:
  task_queue() : head_(&stub_), tail_(&stub_) {}
  ~task_queue() {
    while (task* item = pop()) (void)item;
    if (head_ != &stub_) delete head_;
  }
  task_queue(const task_queue&) = delete;
  task_queue& operator=(const task_queue&) = delete;

  // Producer only.
  void push(task* item) {
    item->next_.store(nullptr, std::memory_order_relaxed);
    tail_->next_.store(item, std::memory_order_release);
    tail_ = item;
  }

  // Consumer only. The returned task stays owned by the queue: run it, don't delete it.
  task* pop() {
    task* next = head_->next_.load(std::memory_order_acquire);
    if (next == nullptr) return nullptr;
    task* previous = head_;
    head_ = next;
    if (previous != &stub_) delete previous;
    return next;
  }

  // Consumer only: true when pop() would return a task.
  bool has_items() const { return head_->next_.load(std::memory_order_acquire) != nullptr; }

 private:
  class stub_task final : public task {
   public:
    void run() override {}
  };
  stub_task stub_;
  alignas(64) task* head_;  // consumer's
  alignas(64) task* tail_;  // producer's
};

}  // namespace mailwing::util
