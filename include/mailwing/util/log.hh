#pragma once
// Logging to stderr, one write(2) per line so lines from different shards never mix.
// Format: "2026-11-23T13:39:05.123Z info shard1: text". printf-style formatting (GCC 12's
// libstdc++ has no <format>, and a logging library is not worth a dependency).

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

}  // namespace mailwing::util

#define MW_LOG_DEBUG(...) \
  do { if (::mailwing::util::log_enabled(::mailwing::util::log_severity::debug)) \
         ::mailwing::util::logf(::mailwing::util::log_severity::debug, __VA_ARGS__); } while (0)
#define MW_LOG_INFO(...) ::mailwing::util::logf(::mailwing::util::log_severity::info, __VA_ARGS__)
#define MW_LOG_WARN(...) ::mailwing::util::logf(::mailwing::util::log_severity::warn, __VA_ARGS__)
#define MW_LOG_ERROR(...) ::mailwing::util::logf(::mailwing::util::log_severity::error, __VA_ARGS__)
