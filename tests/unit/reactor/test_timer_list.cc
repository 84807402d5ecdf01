// reactor/timer_list.hh: fixed-duration deadline lists.

#include "mailwing/reactor/timer_list.hh"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mailwing::reactor {
namespace {

class named_entry final : public timer_entry {
 public:
  named_entry(std::string name, std::vector<std::string>* fired) : name_(std::move(name)), fired_(fired) {}
  void on_timer() override {
    fired_->push_back(name_);
    if (then) then();
  }
  std::function<void()> then;  // runs inside on_timer

 private:
  std::string name_;
  std::vector<std::string>* fired_;
};

using names = std::vector<std::string>;

TEST(TimerList, EmptyList) {
  timer_list list(100);
  EXPECT_EQ(list.duration_ms(), 100u);
  EXPECT_EQ(list.next_deadline_ms(), UINT64_MAX);
  list.expire(UINT64_MAX);
}

TEST(TimerList, ExpiresInArmOrderAtTheirDeadlines) {
  names fired;
  timer_list list(100);
  named_entry a("a", &fired), b("b", &fired), c("c", &fired);
  list.arm(a, 1000);
  list.arm(b, 1010);
  list.arm(c, 1010);
  EXPECT_TRUE(a.armed() && b.armed() && c.armed());
  EXPECT_EQ(list.next_deadline_ms(), 1100u);
  list.expire(1099);
  EXPECT_TRUE(fired.empty());
  list.expire(1100);  // a deadline equal to now has passed
  EXPECT_EQ(fired, names{"a"});
  EXPECT_FALSE(a.armed());
  EXPECT_EQ(list.next_deadline_ms(), 1110u);
  list.expire(5000);
  EXPECT_EQ(fired, (names{"a", "b", "c"}));
  EXPECT_FALSE(b.armed() || c.armed());
  EXPECT_EQ(list.next_deadline_ms(), UINT64_MAX);
  list.expire(10000);
  EXPECT_EQ(fired.size(), 3u);
}

TEST(TimerList, RearmMovesToTheTail) {
  names fired;
  timer_list list(50);
  named_entry a("a", &fired), b("b", &fired), c("c", &fired);
  list.arm(a, 0);
  list.arm(b, 10);
  list.arm(c, 20);
  list.arm(a, 30);  // traffic on a: its deadline moves to 80
  EXPECT_EQ(list.next_deadline_ms(), 60u);
  list.expire(70);
  EXPECT_EQ(fired, (names{"b", "c"}));
  EXPECT_TRUE(a.armed());
  EXPECT_EQ(list.next_deadline_ms(), 80u);
  list.expire(80);
  EXPECT_EQ(fired, (names{"b", "c", "a"}));
}

TEST(TimerList, RearmTheOnlyAndTheLastEntry) {
  names fired;
  timer_list list(10);
  named_entry a("a", &fired), b("b", &fired);
  list.arm(a, 0);
  list.arm(a, 5);  // only entry
  EXPECT_EQ(list.next_deadline_ms(), 15u);
  list.arm(b, 6);
  list.arm(b, 7);  // already the tail
  list.expire(15);
  EXPECT_EQ(fired, names{"a"});
  list.expire(17);
  EXPECT_EQ(fired, (names{"a", "b"}));
}

TEST(TimerList, DisarmHeadMiddleTail) {
  names fired;
  timer_list list(10);
  named_entry a("a", &fired), b("b", &fired), c("c", &fired), d("d", &fired), e("e", &fired);
  list.arm(a, 0);
  list.arm(b, 1);
  list.arm(c, 2);
  list.arm(d, 3);
  list.arm(e, 4);
  list.disarm(c);  // middle
  list.disarm(a);  // head
  e.disarm_timer();  // tail, through the entry
  EXPECT_FALSE(a.armed() || c.armed() || e.armed());
  EXPECT_EQ(list.next_deadline_ms(), 11u);
  // Disarming twice, or an entry never armed, is harmless.
  list.disarm(c);
  c.disarm_timer();
  named_entry never("never", &fired);
  list.disarm(never);
  list.expire(100);
  EXPECT_EQ(fired, (names{"b", "d"}));
  // The list can be used again after it ran empty.
  list.arm(c, 200);
  list.expire(210);
  EXPECT_EQ(fired, (names{"b", "d", "c"}));
}

// An entry belongs to one list at a time; arming on another moves it.
TEST(TimerList, EntryMovesBetweenLists) {
  names fired;
  timer_list short_list(10), long_list(1000);
  named_entry a("a", &fired), b("b", &fired);
  short_list.arm(a, 0);
  short_list.arm(b, 0);
  long_list.arm(a, 0);
  EXPECT_EQ(short_list.next_deadline_ms(), 10u);
  EXPECT_EQ(long_list.next_deadline_ms(), 1000u);
  // Disarming through the wrong list does nothing.
  short_list.disarm(a);
  EXPECT_TRUE(a.armed());
  short_list.expire(500);
  EXPECT_EQ(fired, names{"b"});
  EXPECT_EQ(short_list.next_deadline_ms(), UINT64_MAX);
  a.disarm_timer();
  EXPECT_EQ(long_list.next_deadline_ms(), UINT64_MAX);
  long_list.expire(5000);
  EXPECT_EQ(fired, names{"b"});
}

// on_timer may re-arm its own entry (a keep-alive) or disarm others.
TEST(TimerList, CallbacksMayRearmAndDisarm) {
  names fired;
  timer_list list(10);
  named_entry a("a", &fired), b("b", &fired), c("c", &fired);
  uint64_t now = 0;
  a.then = [&] { list.arm(a, now); };  // re-arms itself: fires once per expire
  b.then = [&] { list.disarm(c); };
  list.arm(a, 0);
  list.arm(b, 0);
  list.arm(c, 0);
  now = 10;
  list.expire(now);
  EXPECT_EQ(fired, (names{"a", "b"}));
  EXPECT_TRUE(a.armed());
  EXPECT_FALSE(c.armed());
  EXPECT_EQ(list.next_deadline_ms(), 20u);
  now = 25;
  list.expire(now);
  EXPECT_EQ(fired, (names{"a", "b", "a"}));
  EXPECT_EQ(list.next_deadline_ms(), 35u);
}

TEST(TimerList, ManyEntriesExpireInOrder) {
  names fired;
  timer_list list(1000);
  std::vector<std::unique_ptr<named_entry>> entries;
  for (int i = 0; i < 1000; ++i) {
    entries.push_back(std::make_unique<named_entry>(std::to_string(i), &fired));
    list.arm(*entries.back(), static_cast<uint64_t>(i));
  }
  // Re-arm every even one later: they go behind the odd ones.
  for (int i = 0; i < 1000; i += 2) list.arm(*entries[static_cast<size_t>(i)], 1000);
  for (int i = 1; i < 1000; i += 4) list.disarm(*entries[static_cast<size_t>(i)]);
  list.expire(1999);
  names expected;
  for (int i = 3; i < 1000; i += 4) expected.push_back(std::to_string(i));
  EXPECT_EQ(fired, expected);
  list.expire(2000);
  for (int i = 0; i < 1000; i += 2) expected.push_back(std::to_string(i));
  EXPECT_EQ(fired, expected);
  EXPECT_EQ(list.next_deadline_ms(), UINT64_MAX);
}

}  // namespace
}  // namespace mailwing::reactor
