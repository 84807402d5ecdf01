#include <arpa/inet.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include <string>

#include "mailwing/auth/failure_table.hh"
#include "mailwing/net/peer_address.hh"

namespace mailwing::auth {
namespace {

using client = failure_table::client;

// The client a connection from `text` counts as (net::peer_address makes the key).
client client_of(const std::string& text) {
  sockaddr_storage address{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr), 1) << text;
    v6->sin6_family = AF_INET6;
  }
  return client{net::peer_address_from(address).key};
}

TEST(FailureTable, DelaysDoubleFromOneSecondUpToThirty) {
  EXPECT_EQ(failure_table::delay_ms(0), 0u);
  EXPECT_EQ(failure_table::delay_ms(1), 1000u);
  EXPECT_EQ(failure_table::delay_ms(2), 2000u);
  EXPECT_EQ(failure_table::delay_ms(3), 4000u);
  EXPECT_EQ(failure_table::delay_ms(5), 16000u);
  EXPECT_EQ(failure_table::delay_ms(6), 30000u);
  EXPECT_EQ(failure_table::delay_ms(7), 30000u);
  EXPECT_EQ(failure_table::delay_ms(UINT32_MAX), 30000u);
}

TEST(FailureTable, ClientsAreIpv4AddressesAndIpv6Slash64s) {
  EXPECT_EQ(client_of("192.0.2.1"), client_of("192.0.2.1"));
  EXPECT_NE(client_of("192.0.2.1"), client_of("192.0.2.2"));
  EXPECT_EQ(client_of("2001:db8:1:2::1"), client_of("2001:db8:1:2:ffff::9"));
  EXPECT_NE(client_of("2001:db8:1:2::1"), client_of("2001:db8:1:3::1"));
  // An IPv4 host is one client however it connects (v4-mapped over IPv6 or not), and
  // no IPv6 prefix stands for it.
  EXPECT_NE(client_of("0.0.0.0"), client_of("::"));
  EXPECT_EQ(client_of("::ffff:192.0.2.1"), client_of("192.0.2.1"));
}

TEST(FailureTable, OneCheckAtATimePerClient) {
  failure_table table;
  client a = client_of("192.0.2.1");
  client b = client_of("192.0.2.2");
  EXPECT_TRUE(table.try_start(a, 1000).admitted);
  failure_table::admission second = table.try_start(a, 1000);
  EXPECT_FALSE(second.admitted);
  EXPECT_EQ(second.retry_at_ms, 1000 + failure_table::running_poll_ms);
  EXPECT_TRUE(table.try_start(b, 1000).admitted);  // another client is not held up
  table.finish(a, 1005, false);
  EXPECT_TRUE(table.try_start(a, 1005).admitted);  // no failure: no wait
  table.finish(a, 1006, false);
  table.finish(b, 1006, false);
}

TEST(FailureTable, ChecksAreSpacedByRecentFailures) {
  failure_table table;
  client a = client_of("198.51.100.7");
  uint64_t now = 50000;
  for (uint32_t failures = 1; failures <= 8; ++failures) {
    ASSERT_TRUE(table.try_start(a, now).admitted) << failures;
    table.finish(a, now + 3, true);
    uint64_t allowed = now + 3 + failure_table::delay_ms(failures);
    failure_table::admission early = table.try_start(a, allowed - 1);
    EXPECT_FALSE(early.admitted);
    EXPECT_EQ(early.retry_at_ms, allowed);
    now = allowed;
  }
  // A success is spaced like a failure, and it does not reset the count (an attacker with
  // one account of its own must not be able to clear it between guesses).
  ASSERT_TRUE(table.try_start(a, now).admitted);
  table.finish(a, now, false);
  EXPECT_FALSE(table.try_start(a, now + failure_table::delay_ms(8) - 1).admitted);
  EXPECT_TRUE(table.try_start(a, now + failure_table::delay_ms(8)).admitted);
}

TEST(FailureTable, FailuresAreForgottenAfterAQuietSpell) {
  failure_table table;
  client a = client_of("203.0.113.9");
  uint64_t now = 1000;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(table.try_start(a, now).admitted);
    table.finish(a, now, true);
    now += 60000;
  }
  now -= 60000;
  EXPECT_FALSE(table.try_start(a, now + 1000).admitted);
  uint64_t later = now + failure_table::failure_memory_ms + 1;
  EXPECT_TRUE(table.try_start(a, later).admitted);
  table.finish(a, later, true);  // counts from one again
  EXPECT_FALSE(table.try_start(a, later + 999).admitted);
  EXPECT_TRUE(table.try_start(a, later + 1000).admitted);
}

// Each shard reads the clock once per loop turn: a check on a shard whose `now` is a
// little behind must not see a failure recorded "in the future" as long forgotten.
TEST(FailureTable, ALaggingClockForgetsNothing) {
  failure_table table;
  client a = client_of("203.0.113.10");
  ASSERT_TRUE(table.try_start(a, 100000).admitted);
  table.finish(a, 100000, true);
  EXPECT_FALSE(table.try_start(a, 99998).admitted);
  EXPECT_FALSE(table.try_start(a, 100999).admitted);
  EXPECT_TRUE(table.try_start(a, 101000).admitted);
}

TEST(FailureTable, BoundedUnderAFloodOfAddresses) {
  failure_table table;
  // Far more failing addresses than the table holds: it keeps working, and keeps the
  // most recent ones.
  uint64_t now = 1;
  const size_t total = failure_table::stripe_count * failure_table::entries_per_stripe_max * 3;
  for (size_t i = 0; i < total; ++i) {
    std::string address = "10." + std::to_string(i >> 16 & 255) + "." + std::to_string(i >> 8 & 255) + "." +
                          std::to_string(i & 255);
    client who = client_of(address);
    ASSERT_TRUE(table.try_start(who, now).admitted) << address;
    table.finish(who, now, true);
    ++now;
  }
  client last = client_of("10." + std::to_string((total - 1) >> 16 & 255) + "." +
                                         std::to_string((total - 1) >> 8 & 255) + "." +
                                         std::to_string((total - 1) & 255));
  EXPECT_FALSE(table.try_start(last, now).admitted);
}

}  // namespace
}  // namespace mailwing::auth
