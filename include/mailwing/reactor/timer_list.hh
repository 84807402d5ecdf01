#pragma once
// Deadlines for many connections at O(1) per reset.
//
// Every entry of a timer_list has the same duration, so arming (re)appends at the tail
// and the list stays sorted by deadline without a heap: expiry pops from the head. A
// connection that sees traffic simply moves to the tail again. Each timeout kind (SMTP
// command, SMTP data, POP3 autologout) is one list.
//
// Owned by one shard; only that shard's thread may use it.

#include <cassert>
#include <cstdint>

namespace mailwing::reactor {

class timer_list;

class timer_entry {
 public:
  virtual void on_timer() = 0;
  bool armed() const { return list_ != nullptr; }
  // Disarms the entry, whichever list it is on.
  inline void disarm_timer();

 protected:
  // Virtual although protected: GCC's -Wnon-virtual-dtor counts the friend below as
  // access to the destructor, and the build uses -Werror.
  virtual ~timer_entry() = default;

 private:
  friend class timer_list;
  uint64_t deadline_ms_ = 0;
  timer_entry* previous_ = nullptr;
  timer_entry* next_ = nullptr;
  timer_list* list_ = nullptr;
};

class timer_list {
 public:
  explicit timer_list(uint64_t duration_ms) : duration_ms_(duration_ms) {}
  timer_list(const timer_list&) = delete;
  timer_list& operator=(const timer_list&) = delete;

  uint64_t duration_ms() const { return duration_ms_; }

  // Sets the entry's deadline to now + duration, moving it from any list it was on.
  void arm(timer_entry& entry, uint64_t now_ms) {
    if (entry.list_ != nullptr) entry.list_->disarm(entry);
    entry.deadline_ms_ = now_ms + duration_ms_;
    assert(tail_ == nullptr || tail_->deadline_ms_ <= entry.deadline_ms_);
    entry.list_ = this;
    entry.previous_ = tail_;
    entry.next_ = nullptr;
    if (tail_ != nullptr) {
      tail_->next_ = &entry;
    } else {
      head_ = &entry;
    }
    tail_ = &entry;
  }

  void disarm(timer_entry& entry) {
    if (entry.list_ != this) return;
    if (entry.previous_ != nullptr) {
      entry.previous_->next_ = entry.next_;
    } else {
      head_ = entry.next_;
    }
    if (entry.next_ != nullptr) {
      entry.next_->previous_ = entry.previous_;
    } else {
      tail_ = entry.previous_;
    }
    entry.list_ = nullptr;
    entry.previous_ = entry.next_ = nullptr;
  }

  // Disarms and fires every entry whose deadline has passed. on_timer may re-arm.
  void expire(uint64_t now_ms) {
    while (head_ != nullptr && head_->deadline_ms_ <= now_ms) {
      timer_entry& entry = *head_;
      disarm(entry);
      entry.on_timer();
    }
  }

  // UINT64_MAX when empty.
  uint64_t next_deadline_ms() const { return head_ == nullptr ? UINT64_MAX : head_->deadline_ms_; }

 private:
  uint64_t duration_ms_;
  timer_entry* head_ = nullptr;
  timer_entry* tail_ = nullptr;
};

inline void timer_entry::disarm_timer() {
  if (list_ != nullptr) list_->disarm(*this);
}

}  // namespace mailwing::reactor
