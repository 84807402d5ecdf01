#include "loadgen/histogram.hh"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace mailwing::loadgen {
namespace {

TEST(Histogram, SmallValuesAreExact) {
  for (uint64_t value = 0; value < 256; ++value) {
    EXPECT_EQ(histogram::index_of(value), value);
    EXPECT_EQ(histogram::highest_in_bucket(histogram::index_of(value)), value);
  }
}

TEST(Histogram, BucketsAreContiguousAndNarrow) {
  // Every value falls in a bucket whose upper end is at or above it and at most 1/128
  // of the value above it; bucket indices never decrease as values grow.
  size_t previous_index = 0;
  for (uint64_t value = 1; value < (uint64_t{1} << 41); value += 1 + value / 97) {
    size_t index = histogram::index_of(value);
    ASSERT_LT(index, histogram::bucket_count);
    ASSERT_GE(index, previous_index);
    uint64_t high = histogram::highest_in_bucket(index);
    ASSERT_GE(high, value);
    ASSERT_LE(double(high - value), double(value) / 128.0 + 1) << value;
    previous_index = index;
  }
  // The bucket boundaries line up: the value after a bucket's highest starts the next.
  for (size_t index = 0; index + 1 < histogram::index_of(histogram::value_max); ++index) {
    ASSERT_EQ(histogram::index_of(histogram::highest_in_bucket(index) + 1), index + 1) << index;
  }
}

TEST(Histogram, EmptyReportsZero) {
  histogram empty;
  EXPECT_EQ(empty.count(), 0u);
  EXPECT_EQ(empty.percentile(0.5), 0u);
  EXPECT_EQ(empty.max(), 0u);
  EXPECT_EQ(empty.min(), 0u);
  EXPECT_EQ(empty.mean(), 0.0);
}

TEST(Histogram, PercentilesMatchSortedSamplesWithinPrecision) {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> latency(std::log(400000.0), 1.0);  // ~400 us median
  std::vector<uint64_t> samples;
  histogram recorded;
  for (int i = 0; i < 200000; ++i) {
    auto value = uint64_t(latency(random));
    samples.push_back(value);
    recorded.record(value);
  }
  std::sort(samples.begin(), samples.end());
  for (double fraction : {0.5, 0.9, 0.99, 0.999}) {
    size_t rank = size_t(std::ceil(fraction * double(samples.size())));
    uint64_t exact = samples[rank - 1];
    uint64_t reported = recorded.percentile(fraction);
    EXPECT_GE(reported, exact) << fraction;
    EXPECT_LE(double(reported), double(exact) * (1 + 1.0 / 128) + 1) << fraction;
  }
  EXPECT_EQ(recorded.max(), samples.back());
  EXPECT_EQ(recorded.min(), samples.front());
  EXPECT_EQ(recorded.percentile(1.0), samples.back());
  EXPECT_EQ(recorded.count(), samples.size());
}

TEST(Histogram, PercentileNeverExceedsMax) {
  histogram recorded;
  recorded.record(1000);  // bucket [1000, 1003]
  EXPECT_EQ(recorded.percentile(0.5), 1000u);
  EXPECT_EQ(recorded.percentile(0.999), 1000u);
}

TEST(Histogram, MergeAddsCounts) {
  histogram a, b;
  for (uint64_t v = 1; v <= 100; ++v) a.record(v);
  for (uint64_t v = 101; v <= 200; ++v) b.record(v);
  a.merge(b);
  EXPECT_EQ(a.count(), 200u);
  EXPECT_EQ(a.min(), 1u);
  EXPECT_EQ(a.max(), 200u);
  EXPECT_EQ(a.percentile(0.5), 100u);
  EXPECT_DOUBLE_EQ(a.mean(), 100.5);
}

TEST(Histogram, HugeValuesAreClamped) {
  histogram recorded;
  recorded.record(UINT64_MAX);
  EXPECT_EQ(recorded.max(), histogram::value_max);
  EXPECT_LT(histogram::index_of(histogram::value_max), histogram::bucket_count);
}

}  // namespace
}  // namespace mailwing::loadgen
