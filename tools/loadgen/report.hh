#pragma once
// Pieces of the tools' final reports shared by the blaster and the drainer: number
// formatting for the human table, and the JSON objects both emit the same way
// (latency percentiles from a histogram, reply-code counts, errors).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loadgen/histogram.hh"
#include "loadgen/json_writer.hh"

namespace mailwing::loadgen {

// 1234567 -> "1,234,567"
std::string with_commas(uint64_t number);

// The percentiles every report gives, in this order.
struct percentile_point {
  const char* name;  // "p50", "p90", "p99", "p99.9"
  double fraction;
};
inline constexpr percentile_point report_percentiles[] = {
    {"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99.9", 0.999}};

// {"count": n, "min": .., "mean": .., "p50": .., "p90": .., "p99": .., "p99.9": .., "max": ..}
// in microseconds, from a histogram of nanoseconds.
void write_latency_us(json_writer& json, const histogram& latency_ns);
// "p50 0.41 ms  p90 0.63 ms  p99 1.21 ms  p99.9 2.10 ms  max 5.30 ms"
std::string latency_summary(const histogram& latency_ns);

// Errors by kind, and the first few in full for the report.
class error_log {
 public:
  static constexpr size_t samples_max = 20;

  void add(const std::string& kind, const std::string& detail);
  void merge(const error_log& other);
  uint64_t total() const { return total_; }
  const std::map<std::string, uint64_t>& by_kind() const { return by_kind_; }
  const std::vector<std::string>& samples() const { return samples_; }

  // {"total": n, "by_kind": {...}, "samples": [...]}
  void write_json(json_writer& json) const;
  // "none" or "timeout 3, closed 1"
  std::string summary() const;

 private:
  uint64_t total_ = 0;
  std::map<std::string, uint64_t> by_kind_;
  std::vector<std::string> samples_;
};

// Makes server text safe to print and to put in JSON: control and non-ASCII bytes
// become '?', and it is cut to max_bytes.
std::string printable(std::string_view text, size_t max_bytes = 200);

}  // namespace mailwing::loadgen
