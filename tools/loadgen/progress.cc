#include "loadgen/progress.hh"

#include <unistd.h>

#include <cinttypes>
#include <cstdio>

#include "loadgen/report.hh"

namespace mailwing::loadgen {

bool progress_line::stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

std::string progress_line::format(const progress_sample& previous, const progress_sample& now,
                                  const std::string& unit) {
  double interval_s = now.elapsed_s - previous.elapsed_s;
  double rate = 0, mb_rate = 0;
  if (interval_s > 0) {
    rate = double(now.messages - previous.messages) / interval_s;
    mb_rate = double(now.bytes - previous.bytes) / interval_s / 1e6;
  }
  char text[256];
  std::snprintf(text, sizeof(text), "[%6.1fs] %10s %s/s %8.1f MB/s   done %s   errors %s   conns %s",
                now.elapsed_s, with_commas(uint64_t(rate + 0.5)).c_str(), unit.c_str(), mb_rate,
                with_commas(now.messages).c_str(), with_commas(now.errors).c_str(),
                with_commas(now.connections).c_str());
  return text;
}

void progress_line::update(const progress_sample& now) {
  if (!enabled_) return;
  std::string text(1, '\r');
  text += format(previous_, now, unit_);
  text += "\033[K";
  ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
  previous_ = now;
  printed_ = true;
}

void progress_line::finish() {
  if (!enabled_ || !printed_) return;
  static constexpr char erase[] = "\r\033[K";
  ssize_t ignored = ::write(STDERR_FILENO, erase, sizeof(erase) - 1);
  (void)ignored;
  printed_ = false;
}

}  // namespace mailwing::loadgen
