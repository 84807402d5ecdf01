#pragma once
// Failed logins per client address, across every session, protocol (SMTP AUTH and POP3)
// and shard, and the rule that spaces password checks by them.
//
// The rule: checks from one client address run one at a time, and after n recent failures
// from that address the next check starts no sooner than delay(n) after the previous one
// ended. Spacing the *checks* is what limits guesses: delaying only failure answers does
// not, since a guesser gives up on a slow answer after a few milliseconds and reconnects
// (success answers would come fast). Here every answer — success too — waits its turn, so
// a hundred parallel connections from one address get no more guesses than one.
//
// A client address is an IPv4 address, or an IPv6 address's /64: one end site gets a
// whole /64, so counting single IPv6 addresses would let a guesser rotate through them.
//
// Bounded memory under a flood of distinct addresses: the table keeps only addresses with
// a check running or a failure remembered, at most entries_max of them; a full stripe
// drops its stalest entry. Keys are hashed with a per-process random key (SipHash), so
// addresses cannot be chosen to collide.
//
// Shared by all shards (striped mutexes; touched only on logins, never on the mail path).
// Any thread.

#include <array>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace mailwing::auth {

class failure_table {
 public:
  failure_table();
  failure_table(const failure_table&) = delete;
  failure_table& operator=(const failure_table&) = delete;

  // Who a login comes from: net::peer_address::key (an IPv4 address, or an IPv6 /64).
  struct client {
    std::array<uint8_t, 16> bytes{};
    bool operator==(const client&) const = default;
  };

  struct admission {
    bool admitted;         // the check may start now; it is counted as running
    uint64_t retry_at_ms;  // otherwise: when to ask again
  };
  admission try_start(const client& who, uint64_t now_ms);
  // Ends a check try_start admitted; `failed` counts a failure against the client.
  void finish(const client& who, uint64_t now_ms, bool failed);

  // The spacing after `failures` recent failures: none before the first failure, then
  // one second, doubling per failure up to 30 s. A user who mistyped three times waits
  // 4 s for the fourth try; a guesser gets about two guesses a minute per address once
  // it has failed six times, where the old code answered 4,400 a second. The cap keeps a
  // household or office behind one NAT address usable while someone there mistypes.
  static uint64_t delay_ms(uint32_t failures);
  // Failures are forgotten this long after an address's last failure: long enough that
  // a guesser cannot wait it out between rounds for a better rate (a 15-minute pause buys
  // six fast guesses, where staying on buys thirty), short enough that a user who
  // mistyped is not slowed down for the rest of the day.
  static constexpr uint64_t failure_memory_ms = 15 * 60 * 1000;
  // While another check from the same address runs, ask again this often: a check takes
  // milliseconds (plain) to a few hundred (argon2id in a queue).
  static constexpr uint64_t running_poll_ms = 100;
  static constexpr size_t stripe_count = 16;
  static constexpr size_t entries_per_stripe_max = 1024;  // 16,384 addresses, ~1.5 MiB

 private:
  struct entry {
    uint32_t failures = 0;
    bool running = false;
    uint64_t last_end_ms = 0;      // when the last check ended
    uint64_t last_failure_ms = 0;
  };
  struct client_hash {
    const std::array<uint8_t, 16>* key;
    size_t operator()(const client& who) const;
  };
  struct stripe {
    std::mutex mutex;
    std::unordered_map<client, entry, client_hash> entries;
  };

  stripe& stripe_of(const client& who);
  // Makes room for one more entry in a full stripe (its mutex held).
  static void evict_one(stripe& s, uint64_t now_ms);
  static void forget_stale_failures(entry& e, uint64_t now_ms);

  std::array<uint8_t, 16> hash_key_{};
  std::array<stripe, stripe_count> stripes_;
};

}  // namespace mailwing::auth
