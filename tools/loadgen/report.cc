#include "loadgen/report.hh"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace mailwing::loadgen {

std::string with_commas(uint64_t number) {
  std::string digits = std::to_string(number);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  size_t lead = digits.size() % 3;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (i + 3 - lead) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

void write_latency_us(json_writer& json, const histogram& latency_ns) {
  json.begin_object();
  json.field("count", latency_ns.count());
  json.field("min", double(latency_ns.min()) / 1e3);
  json.field("mean", latency_ns.mean() / 1e3);
  for (const percentile_point& point : report_percentiles) {
    json.field(point.name, double(latency_ns.percentile(point.fraction)) / 1e3);
  }
  json.field("max", double(latency_ns.max()) / 1e3);
  json.end_object();
}

std::string latency_summary(const histogram& latency_ns) {
  if (latency_ns.count() == 0) return "no samples";
  std::string out;
  char item[64];
  for (const percentile_point& point : report_percentiles) {
    std::snprintf(item, sizeof(item), "%s %.2f ms  ", point.name,
                  double(latency_ns.percentile(point.fraction)) / 1e6);
    out += item;
  }
  std::snprintf(item, sizeof(item), "max %.2f ms", double(latency_ns.max()) / 1e6);
  out += item;
  return out;
}

void error_log::add(const std::string& kind, const std::string& detail) {
  ++total_;
  ++by_kind_[kind];
  std::string sample = kind;
  sample += ": ";
  sample += detail;
  // Distinct samples only: a thousand identical refusals say no more than one.
  if (samples_.size() < samples_max && std::find(samples_.begin(), samples_.end(), sample) == samples_.end()) {
    samples_.push_back(std::move(sample));
  }
}

void error_log::merge(const error_log& other) {
  total_ += other.total_;
  for (const auto& [kind, count] : other.by_kind_) by_kind_[kind] += count;
  for (const std::string& sample : other.samples_) {
    if (samples_.size() < samples_max && std::find(samples_.begin(), samples_.end(), sample) == samples_.end()) {
      samples_.push_back(sample);
    }
  }
}

void error_log::write_json(json_writer& json) const {
  json.begin_object();
  json.field("total", total_);
  json.key("by_kind");
  json.begin_object();
  for (const auto& [kind, count] : by_kind_) json.field(kind, count);
  json.end_object();
  json.key("samples");
  json.begin_array();
  for (const std::string& sample : samples_) json.value(sample);
  json.end_array();
  json.end_object();
}

std::string error_log::summary() const {
  if (total_ == 0) return "none";
  std::string out;
  for (const auto& [kind, count] : by_kind_) {
    if (!out.empty()) out += ", ";
    out += kind + " " + with_commas(count);
  }
  return out;
}

std::string printable(std::string_view text, size_t max_bytes) {
  std::string out;
  for (char c : text.substr(0, max_bytes)) {
    auto byte = static_cast<unsigned char>(c);
    out += byte >= 0x20 && byte < 0x7f ? c : '?';
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

}  // namespace mailwing::loadgen
