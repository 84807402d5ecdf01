#pragma once
// Logging to stderr. Format: "2026-11-23T13:39:05.123Z info shard1: text".
// printf-style formatting (GCC 12's libstdc++ has no <format>, and a logging library is
// not worth a dependency).
//
// Never blocking a shard: while the writer thread runs (start_log_writer, from the
// server's start to its end), a line is copied into a bounded in-memory buffer and the
// writer thread does the write(2). A stderr that does not drain (a stuck pipe, a slow
// journal) then costs lines — dropped and counted, the count logged once the writer is
// free again — never a stalled shard. Without the writer (the command line tools, start
// up, tests) each line is one write(2), so lines from different threads never mix.
//
// Repeated lines: any line that input from outside can repeat (a failed accept, a failed
// login, a refused commit) is logged through MW_LOG_*_LIMITED, which lets one line per
// call site through per interval and says how many were suppressed, so no input can make
// the log grow without bound.

#include <atomic>
#include <cstdint>
#include <string_view>

namespace mailwing::util {

enum class log_severity : uint8_t { debug, info, warn, error };

void set_log_threshold(log_severity threshold);
bool log_enabled(log_severity severity);

// The name the calling thread logs under ("main", "shard0", "commit1", ...).
void set_thread_log_name(std::string_view name);

void log_line(log_severity severity, std::string_view text);

[[gnu::format(printf, 2, 3)]] void logf(log_severity severity, const char* fmt, ...);
// As logf, with " (N similar lines suppressed)" appended when suppressed > 0.
[[gnu::format(printf, 3, 4)]] void logf_suppressed(log_severity severity, uint64_t suppressed,
                                                   const char* fmt, ...);

// Main thread. Lines logged between start and stop go through the writer thread; stop
// writes everything still buffered before it returns.
void start_log_writer();
void stop_log_writer();
// Lines dropped because the buffer was full (the writer could not keep up).
uint64_t log_lines_dropped();

// One per call site (MW_LOG_*_LIMITED): at most one line per interval_ms. Any thread.
class log_limiter {
 public:
  explicit constexpr log_limiter(uint32_t interval_ms) : interval_ms_(interval_ms) {}
  // True when a line may be logged now; then `suppressed` is how many were not since.
  bool allow(uint64_t& suppressed);

 private:
  uint32_t interval_ms_;
  std::atomic<uint64_t> next_ms_{0};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace mailwing::util

#define MW_LOG_DEBUG(...) \
  do { if (::mailwing::util::log_enabled(::mailwing::util::log_severity::debug)) \
         ::mailwing::util::logf(::mailwing::util::log_severity::debug, __VA_ARGS__); } while (0)
#define MW_LOG_INFO(...) ::mailwing::util::logf(::mailwing::util::log_severity::info, __VA_ARGS__)
#define MW_LOG_WARN(...) ::mailwing::util::logf(::mailwing::util::log_severity::warn, __VA_ARGS__)
#define MW_LOG_ERROR(...) ::mailwing::util::logf(::mailwing::util::log_severity::error, __VA_ARGS__)

#define MW_LOG_LIMITED_(severity, interval_ms, ...)                                         \
  do {                                                                                     \
    if (::mailwing::util::log_enabled(severity)) {                                         \
      static ::mailwing::util::log_limiter mw_limiter_{interval_ms};                       \
      uint64_t mw_suppressed_ = 0;                                                         \
      if (mw_limiter_.allow(mw_suppressed_)) {                                             \
        ::mailwing::util::logf_suppressed(severity, mw_suppressed_, __VA_ARGS__);          \
      }                                                                                    \
    }                                                                                      \
  } while (0)
// At most one line per `interval_ms` from this call site; the next one says how many
// were suppressed meanwhile.
#define MW_LOG_DEBUG_LIMITED(interval_ms, ...) \
  MW_LOG_LIMITED_(::mailwing::util::log_severity::debug, interval_ms, __VA_ARGS__)
#define MW_LOG_INFO_LIMITED(interval_ms, ...) \
  MW_LOG_LIMITED_(::mailwing::util::log_severity::info, interval_ms, __VA_ARGS__)
#define MW_LOG_WARN_LIMITED(interval_ms, ...) \
  MW_LOG_LIMITED_(::mailwing::util::log_severity::warn, interval_ms, __VA_ARGS__)
#define MW_LOG_ERROR_LIMITED(interval_ms, ...) \
  MW_LOG_LIMITED_(::mailwing::util::log_severity::error, interval_ms, __VA_ARGS__)
