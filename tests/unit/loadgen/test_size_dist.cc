#include "loadgen/size_dist.hh"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "loadgen/args.hh"

namespace mailwing::loadgen {
namespace {

TEST(SizeDist, Fixed) {
  size_dist dist = size_dist::parse("--size", "1k");
  rng random(1);
  EXPECT_TRUE(dist.is_fixed());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(dist.draw(random), 1024u);
  EXPECT_EQ(dist.max_bytes(), 1024u);
}

TEST(SizeDist, UniformStaysInRangeAndCoversIt) {
  size_dist dist = size_dist::parse("--size", "uniform:100-200");
  rng random(2);
  uint64_t low = UINT64_MAX, high = 0;
  for (int i = 0; i < 10000; ++i) {
    uint64_t size = dist.draw(random);
    low = std::min(low, size);
    high = std::max(high, size);
  }
  EXPECT_EQ(low, 100u);
  EXPECT_EQ(high, 200u);
  EXPECT_DOUBLE_EQ(dist.mean_bytes(), 150.0);
}

TEST(SizeDist, ChoiceFollowsWeights) {
  size_dist dist = size_dist::parse("--size", "choice:1k=3,10k=1");
  rng random(3);
  std::map<uint64_t, int> seen;
  for (int i = 0; i < 40000; ++i) ++seen[dist.draw(random)];
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NEAR(double(seen[1024]) / 40000, 0.75, 0.02);
  EXPECT_EQ(dist.max_bytes(), 10240u);
}

TEST(SizeDist, LognormalHasItsMedianAndRespectsTheMaximum) {
  size_dist dist = size_dist::parse("--size", "lognormal:4k,1.0,64k");
  rng random(4);
  int below_median = 0;
  for (int i = 0; i < 20000; ++i) {
    uint64_t size = dist.draw(random);
    EXPECT_LE(size, 65536u);
    if (size < 4096) ++below_median;
  }
  EXPECT_NEAR(below_median / 20000.0, 0.5, 0.02);
}

TEST(SizeDist, BadSpecsSayWhatIsWrong) {
  for (const char* bad : {"uniform:5", "uniform:9-1", "choice:1k", "choice:1k=0", "choice:1k=x",
                          "lognormal:4k", "lognormal:4k,-1", "zipf:3", "big"}) {
    EXPECT_THROW(size_dist::parse("--size", bad), usage_error) << bad;
  }
}

}  // namespace
}  // namespace mailwing::loadgen
