#pragma once
// The live progress line on stderr: rates over the last interval, totals, errors.
// Rewritten in place with "\r"; only when stderr is a terminal (a log file or a test
// harness gets the final table and nothing else). Main thread only.

#include <cstdint>
#include <string>

namespace mailwing::loadgen {

struct progress_sample {
  double elapsed_s = 0;
  uint64_t messages = 0;   // completed so far
  uint64_t bytes = 0;
  uint64_t errors = 0;
  uint64_t connections = 0;  // currently open
};

class progress_line {
 public:
  // unit: what `messages` counts ("msgs").
  progress_line(bool enabled, std::string unit) : enabled_(enabled), unit_(std::move(unit)) {}
  static bool stderr_is_tty();

  bool enabled() const { return enabled_; }
  void update(const progress_sample& now);
  // Erases the line so the final table starts on a clean one.
  void finish();

  // The text update() prints (without "\r" and the erase sequence), for tests.
  static std::string format(const progress_sample& previous, const progress_sample& now,
                            const std::string& unit);

 private:
  bool enabled_;
  bool printed_ = false;
  std::string unit_;
  progress_sample previous_;
};

}  // namespace mailwing::loadgen
