#include "mailwing/util/log.hh"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <algorithm>
#include <cstring>

namespace mailwing::util {
namespace {

std::atomic<log_severity> threshold{log_severity::info};
thread_local char thread_name[16] = "main";

const char* severity_name(log_severity severity) {
  switch (severity) {
    case log_severity::debug: return "debug";
    case log_severity::info: return "info";
    case log_severity::warn: return "warn";
    case log_severity::error: return "error";
  }
  return "?";
}

}  // namespace

void set_log_threshold(log_severity value) { threshold.store(value, std::memory_order_relaxed); }

bool log_enabled(log_severity severity) {
  return severity >= threshold.load(std::memory_order_relaxed);
}

void set_thread_log_name(std::string_view name) {
  size_t size = std::min(name.size(), sizeof(thread_name) - 1);
  std::memcpy(thread_name, name.data(), size);
  thread_name[size] = '\0';
}

void log_line(log_severity severity, std::string_view text) {
  if (!log_enabled(severity)) return;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char line[2048];
  int prefix = std::snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                             utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                             utc.tm_min, utc.tm_sec, now.tv_nsec / 1000000,
                             severity_name(severity), thread_name);
  size_t size = static_cast<size_t>(prefix);
  size_t room = sizeof(line) - size - 1;
  size_t body = std::min(text.size(), room);
  std::memcpy(line + size, text.data(), body);
  size += body;
  line[size++] = '\n';
  // One write per line: lines from different threads never interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line, size);
  (void)ignored;
}

void logf(log_severity severity, const char* fmt, ...) {
  if (!log_enabled(severity)) return;
  char text[1900];
  va_list args;
  va_start(args, fmt);
  int size = std::vsnprintf(text, sizeof(text), fmt, args);
  va_end(args);
  if (size < 0) return;
  log_line(severity, std::string_view(text, std::min(static_cast<size_t>(size), sizeof(text) - 1)));
}

}  // namespace mailwing::util
