#pragma once
// A latency histogram with log-linear buckets (the HdrHistogram layout, fixed precision).
//
// Values (nanoseconds, or any unit) below 256 each have their own bucket; above that,
// every power-of-two range [2^e, 2^(e+1)) is split into 128 equal buckets, so a bucket is
// at most 1/128 (0.8 %) of its values wide. Recording is an index computation and an
// increment; percentiles walk the ~4,700 counters once. Memory is fixed (~37 KB) however
// many samples are recorded, which is the point: a run of 10^8 messages must not keep
// 10^8 samples to report its p99.9.
//
// A percentile is reported as the highest value its bucket holds (never above the exact
// maximum), as HdrHistogram does, so it never understates a latency.
//
// Not thread-safe: each shard records into its own and the results are merged at the end.

#include <array>
#include <cstddef>
#include <cstdint>

namespace mailwing::loadgen {

class histogram {
 public:
  static constexpr unsigned sub_bucket_bits = 7;  // 128 buckets per power of two
  static constexpr unsigned value_bits_max = 42;  // values are clamped below 2^42
  static constexpr uint64_t value_max = (uint64_t{1} << value_bits_max) - 1;
  static constexpr size_t bucket_count =
      ((value_bits_max - sub_bucket_bits) << sub_bucket_bits) + (uint64_t{2} << sub_bucket_bits);

  void record(uint64_t value) {
    if (value > value_max) value = value_max;
    ++counts_[index_of(value)];
    ++count_;
    sum_ += value;
    if (value > max_) max_ = value;
    if (value < min_) min_ = value;
  }

  void merge(const histogram& other);
  void reset() { *this = histogram(); }

  uint64_t count() const { return count_; }
  uint64_t max() const { return count_ == 0 ? 0 : max_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  double mean() const { return count_ == 0 ? 0.0 : double(sum_) / double(count_); }

  // The smallest recorded value v (at bucket precision) such that at least `fraction`
  // of all samples are <= v. fraction in [0, 1]; 0 when the histogram is empty.
  uint64_t percentile(double fraction) const;

  static size_t index_of(uint64_t value) {
    unsigned top = 63u - unsigned(__builtin_clzll(value | 1));  // floor(log2(value))
    unsigned shift = top > sub_bucket_bits ? top - sub_bucket_bits : 0;
    return (size_t(shift) << sub_bucket_bits) + size_t(value >> shift);
  }
  // The highest value that falls into bucket `index`.
  static uint64_t highest_in_bucket(size_t index);

 private:
  std::array<uint64_t, bucket_count> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

}  // namespace mailwing::loadgen
