#pragma once
// A small, fast, seedable pseudo-random generator (splitmix64) for message content and
// size draws. Deterministic for a given seed, so a run can be repeated byte for byte.
// Not for anything secret.

#include <cstdint>

namespace mailwing::loadgen {

class rng {
 public:
  explicit rng(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound); bound > 0. (The modulo bias is irrelevant at these bounds.)
  uint64_t below(uint64_t bound) { return next() % bound; }
  // Uniform in [0, 1).
  double unit() { return double(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

}  // namespace mailwing::loadgen
