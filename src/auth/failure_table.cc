#include "mailwing/auth/failure_table.hh"

#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

#include "mailwing/auth/password.hh"

namespace mailwing::auth {

failure_table::failure_table() {
  init_crypto();
  static_assert(crypto_shorthash_KEYBYTES == 16);
  randombytes_buf(hash_key_.data(), hash_key_.size());
  for (stripe& s : stripes_) {
    s.entries = std::unordered_map<client, entry, client_hash>(entries_per_stripe_max, client_hash{&hash_key_});
  }
}

size_t failure_table::client_hash::operator()(const client& who) const {
  unsigned char out[crypto_shorthash_BYTES];
  crypto_shorthash(out, who.bytes.data(), who.bytes.size(), key->data());
  size_t value;
  static_assert(sizeof(value) <= sizeof(out));
  std::memcpy(&value, out, sizeof(value));
  return value;
}

uint64_t failure_table::delay_ms(uint32_t failures) {
  if (failures == 0) return 0;
  constexpr uint64_t first_ms = 1000;
  constexpr uint64_t max_ms = 30000;
  return failures > 6 ? max_ms : std::min(max_ms, first_ms << (failures - 1));
}

failure_table::stripe& failure_table::stripe_of(const client& who) {
  return stripes_[client_hash{&hash_key_}(who) % stripe_count];
}

void failure_table::forget_stale_failures(entry& e, uint64_t now_ms) {
  // Shards read the clock once per loop turn, so another shard's `now` may be a little
  // behind the time a failure was recorded at: that is not a long time ago.
  if (e.failures > 0 && now_ms > e.last_failure_ms && now_ms - e.last_failure_ms > failure_memory_ms) {
    e.failures = 0;
  }
}

void failure_table::evict_one(stripe& s, uint64_t now_ms) {
  // The entry whose last failure is oldest (forgotten ones first), among those with no
  // check running: a running check's finish must find its entry, or it would be counted
  // as a fresh client.
  auto victim = s.entries.end();
  for (auto it = s.entries.begin(); it != s.entries.end(); ++it) {
    if (it->second.running) continue;
    forget_stale_failures(it->second, now_ms);
    if (it->second.failures == 0) {
      victim = it;
      break;
    }
    if (victim == s.entries.end() || it->second.last_failure_ms < victim->second.last_failure_ms) victim = it;
  }
  // Every entry running a check: the table is larger than the checks that can run at once
  // (the check pool's queue), so this does not happen; forgetting the oldest would be
  // the fallback, and costs one client its spacing.
  if (victim == s.entries.end()) victim = s.entries.begin();
  s.entries.erase(victim);
}

failure_table::admission failure_table::try_start(const client& who, uint64_t now_ms) {
  stripe& s = stripe_of(who);
  std::lock_guard lock(s.mutex);
  auto found = s.entries.find(who);
  if (found == s.entries.end()) {
    if (s.entries.size() >= entries_per_stripe_max) evict_one(s, now_ms);
    s.entries.emplace(who, entry{0, true, 0, 0});
    return {true, now_ms};
  }
  entry& e = found->second;
  if (e.running) return {false, now_ms + running_poll_ms};
  forget_stale_failures(e, now_ms);
  uint64_t allowed_ms = e.last_end_ms + delay_ms(e.failures);
  if (now_ms < allowed_ms) return {false, allowed_ms};
  e.running = true;
  return {true, now_ms};
}

void failure_table::finish(const client& who, uint64_t now_ms, bool failed) {
  stripe& s = stripe_of(who);
  std::lock_guard lock(s.mutex);
  auto found = s.entries.find(who);
  if (found == s.entries.end()) {
    if (!failed) return;
    if (s.entries.size() >= entries_per_stripe_max) evict_one(s, now_ms);
    found = s.entries.emplace(who, entry{}).first;
  }
  entry& e = found->second;
  e.running = false;
  e.last_end_ms = now_ms;
  forget_stale_failures(e, now_ms);
  if (failed) {
    e.failures = e.failures == UINT32_MAX ? e.failures : e.failures + 1;
    e.last_failure_ms = now_ms;
  }
  // Nothing to remember: no failure, nothing running. Keeps the table to the addresses
  // that matter, so legitimate logins never fill it.
  if (e.failures == 0) s.entries.erase(found);
}

}  // namespace mailwing::auth
