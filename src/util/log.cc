#include "mailwing/util/log.hh"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

#include "mailwing/util/clock.hh"

namespace mailwing::util {
namespace {

std::atomic<log_severity> threshold{log_severity::info};
thread_local char thread_name[16] = "main";

// Lines waiting for the writer thread. 1 MiB holds thousands of lines: a burst passes, a
// stderr that stopped draining does not pin more than this.
constexpr size_t pending_bytes_max = 1 << 20;

struct log_writer {
  std::mutex mutex;
  std::condition_variable wake;
  std::string pending;        // guarded by mutex
  bool running = false;       // guarded by mutex
  bool stopping = false;      // guarded by mutex
  bool waiting = false;       // guarded by mutex: the writer sleeps on `wake`
  std::thread thread;
  std::atomic<uint64_t> dropped{0};
};

log_writer& writer() {
  static log_writer instance;
  return instance;
}

const char* severity_name(log_severity severity) {
  switch (severity) {
    case log_severity::debug: return "debug";
    case log_severity::info: return "info";
    case log_severity::warn: return "warn";
    case log_severity::error: return "error";
  }
  return "?";
}

void write_stderr(const char* data, size_t size) {
  while (size > 0) {
    ssize_t written = ::write(STDERR_FILENO, data, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // nowhere to report it
    data += written;
    size -= static_cast<size_t>(written);
  }
}

// "2026-11-23T13:39:05.123Z warn shard0: " into `out`; returns its length.
size_t format_prefix(log_severity severity, char* out, size_t room) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  int size = std::snprintf(out, room, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", utc.tm_year + 1900,
                           utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                           now.tv_nsec / 1000000, severity_name(severity), thread_name);
  return size < 0 ? 0 : std::min(static_cast<size_t>(size), room - 1);
}

void writer_main() {
  set_thread_log_name("log");
  log_writer& state = writer();
  std::string batch;
  batch.reserve(pending_bytes_max);
  uint64_t dropped_reported = 0;
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(state.mutex);
      while (state.pending.empty() && !state.stopping) {
        state.waiting = true;
        state.wake.wait(lock);
        state.waiting = false;
      }
      batch.swap(state.pending);
      stopping = state.stopping;
    }
    write_stderr(batch.data(), batch.size());
    batch.clear();
    uint64_t dropped = state.dropped.load(std::memory_order_relaxed);
    if (dropped != dropped_reported) {
      char line[160];
      size_t size = format_prefix(log_severity::warn, line, sizeof(line));
      int more = std::snprintf(line + size, sizeof(line) - size,
                               "%llu log lines dropped: stderr did not keep up\n",
                               static_cast<unsigned long long>(dropped - dropped_reported));
      if (more > 0) write_stderr(line, size + std::min(static_cast<size_t>(more), sizeof(line) - size - 1));
      dropped_reported = dropped;
    }
    if (stopping) return;
  }
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
  char line[2048];
  size_t size = format_prefix(severity, line, sizeof(line));
  size_t body = std::min(text.size(), sizeof(line) - size - 1);
  std::memcpy(line + size, text.data(), body);
  size += body;
  line[size++] = '\n';
  log_writer& state = writer();
  bool buffered = false;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(state.mutex);
    if (state.running) {
      buffered = true;
      if (state.pending.size() + size > pending_bytes_max) {
        state.dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      state.pending.append(line, size);
      wake = state.waiting;
    }
  }
  if (wake) state.wake.notify_one();
  // Without a writer thread: one write per line, so lines from different threads never mix.
  if (!buffered) write_stderr(line, size);
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

void logf_suppressed(log_severity severity, uint64_t suppressed, const char* fmt, ...) {
  if (!log_enabled(severity)) return;
  char text[1900];
  va_list args;
  va_start(args, fmt);
  int size = std::vsnprintf(text, sizeof(text), fmt, args);
  va_end(args);
  if (size < 0) return;
  auto used = std::min(static_cast<size_t>(size), sizeof(text) - 1);
  if (suppressed > 0) {
    int more = std::snprintf(text + used, sizeof(text) - used, " (%llu similar lines suppressed)",
                             static_cast<unsigned long long>(suppressed));
    if (more > 0) used = std::min(used + static_cast<size_t>(more), sizeof(text) - 1);
  }
  log_line(severity, std::string_view(text, used));
}

void start_log_writer() {
  log_writer& state = writer();
  std::lock_guard<std::mutex> lock(state.mutex);
  if (state.running) return;
  state.pending.reserve(pending_bytes_max);
  state.stopping = false;
  state.running = true;
  // The writer must never be the thread a process signal lands on (the server takes
  // SIGTERM with sigwait on its main thread): it starts with every signal blocked.
  sigset_t all;
  sigset_t before;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &before);
  state.thread = std::thread(writer_main);
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

void stop_log_writer() {
  log_writer& state = writer();
  {
    std::lock_guard<std::mutex> lock(state.mutex);
    if (!state.running) return;
    state.stopping = true;
  }
  state.wake.notify_one();
  state.thread.join();
  // Lines that came after the writer's last look.
  std::lock_guard<std::mutex> lock(state.mutex);
  write_stderr(state.pending.data(), state.pending.size());
  state.pending.clear();
  state.running = false;
}

uint64_t log_lines_dropped() { return writer().dropped.load(std::memory_order_relaxed); }

bool log_limiter::allow(uint64_t& suppressed) {
  uint64_t now = monotonic_ms();
  uint64_t next = next_ms_.load(std::memory_order_relaxed);
  if (now < next || !next_ms_.compare_exchange_strong(next, now + interval_ms_, std::memory_order_relaxed)) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace mailwing::util
