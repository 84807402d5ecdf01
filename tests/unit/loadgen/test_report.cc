#include "loadgen/report.hh"

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "loadgen/progress.hh"

namespace mailwing::loadgen {
namespace {

TEST(Report, Commas) {
  EXPECT_EQ(with_commas(0), "0");
  EXPECT_EQ(with_commas(999), "999");
  EXPECT_EQ(with_commas(1000), "1,000");
  EXPECT_EQ(with_commas(20000), "20,000");
  EXPECT_EQ(with_commas(123456), "123,456");
  EXPECT_EQ(with_commas(1234567), "1,234,567");
}

TEST(Report, LatencyJsonHasEveryPercentileInMicroseconds) {
  histogram latency;
  for (uint64_t i = 1; i <= 1000; ++i) latency.record(i * 1000);  // 1..1000 us
  json_writer json;
  write_latency_us(json, latency);
  const std::string& text = json.text();
  // Exact values, within the histogram's precision (1/128 above).
  for (auto [key, exact] : {std::pair{"\"count\": ", 1000.0}, {"\"min\": ", 1.0}, {"\"p50\": ", 500.0},
                            {"\"p90\": ", 900.0}, {"\"p99\": ", 990.0}, {"\"p99.9\": ", 999.0},
                            {"\"max\": ", 1000.0}}) {
    size_t at = text.find(key);
    ASSERT_NE(at, std::string::npos) << key << " in " << text;
    double value = std::stod(text.substr(at + std::string(key).size()));
    EXPECT_GE(value, exact) << key;
    EXPECT_LE(value, exact * (1 + 1.0 / 128)) << key;
  }
}

TEST(Report, ErrorLogCountsKindsAndKeepsDistinctSamples) {
  error_log errors;
  for (int i = 0; i < 100; ++i) errors.add("rejected", "RCPT: 550 no");
  errors.add("timeout", "no reply");
  EXPECT_EQ(errors.total(), 101u);
  EXPECT_EQ(errors.by_kind().at("rejected"), 100u);
  EXPECT_EQ(errors.samples().size(), 2u);
  EXPECT_EQ(errors.summary(), "rejected 100, timeout 1");
  error_log other;
  other.add("timeout", "no reply");
  errors.merge(other);
  EXPECT_EQ(errors.by_kind().at("timeout"), 2u);
  EXPECT_EQ(errors.samples().size(), 2u);
  EXPECT_EQ(error_log().summary(), "none");
}

TEST(Report, Printable) {
  EXPECT_EQ(printable("ok\r\n\x80"), "ok???");
  EXPECT_EQ(printable("abcdef", 3), "abc...");
}

TEST(Report, ProgressLineShowsRatesOverTheInterval) {
  progress_sample before{1.0, 1000, 1000000, 0, 20};
  progress_sample now{2.0, 31000, 33000000, 2, 20};
  std::string line = progress_line::format(before, now, "msgs");
  EXPECT_NE(line.find("30,000 msgs/s"), std::string::npos) << line;
  EXPECT_NE(line.find("32.0 MB/s"), std::string::npos) << line;
  EXPECT_NE(line.find("done 31,000"), std::string::npos) << line;
  EXPECT_NE(line.find("errors 2"), std::string::npos) << line;
}

}  // namespace
}  // namespace mailwing::loadgen
