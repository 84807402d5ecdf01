#include "loadgen/histogram.hh"

#include <algorithm>
#include <cmath>

namespace mailwing::loadgen {

void histogram::merge(const histogram& other) {
  for (size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
  min_ = std::min(min_, other.min_);
}

uint64_t histogram::highest_in_bucket(size_t index) {
  size_t shift = index >> sub_bucket_bits;
  if (shift > 0) --shift;  // buckets [256, 384) have shift 1, mantissa 128..255, ...
  // index = (shift << bits) + mantissa with mantissa in [128, 256) for shift > 0.
  uint64_t mantissa = index - (shift << sub_bucket_bits);
  return ((mantissa + 1) << shift) - 1;
}

uint64_t histogram::percentile(double fraction) const {
  if (count_ == 0) return 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  // The rank of the sample that answers: at least fraction * count samples at or below.
  auto rank = uint64_t(std::ceil(fraction * double(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_in_bucket(i), max_);
  }
  return max_;
}

}  // namespace mailwing::loadgen
