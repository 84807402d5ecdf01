#pragma once
// Work handed from one thread to another: a heap object with run(), linked intrusively
// into a task_queue. Tasks carry plain values and raw pointers; their destructor may run
// later than run() (see task_queue), so anything that must happen at a point in time
// happens inside run().

#include <atomic>
#include <type_traits>
#include <utility>

namespace mailwing::util {

class task {
 public:
  virtual ~task() = default;
  virtual void run() = 0;

 private:
  friend class task_queue;
  std::atomic<task*> next_{nullptr};
};

template <class F>
class function_task final : public task {
 public:
  explicit function_task(F&& function) : function_(std::move(function)) {}
  void run() override { function_(); }

 private:
  F function_;
};

template <class F>
task* make_task(F&& function) {
  return new function_task<std::decay_t<F>>(std::forward<F>(function));
}

}  // namespace mailwing::util
