#pragma once
// Message body sizes: fixed, or drawn from a distribution given on the command line.
//
//   1024 | 1k                      every body is that size
//   uniform:1k-64k                 uniform between the two sizes (inclusive)
//   choice:1k=70,10k=25,1m=5       one of the sizes, with the given relative weights
//   lognormal:4k,1.0[,10m]         log-normal with median 4k and sigma 1.0 (sizes of real
//                                  mail are roughly log-normal), clamped to the maximum
//                                  (default 64m)
//
// Sizes use parse_bytes' suffixes (k = 2^10). Parse errors throw usage_error.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/rng.hh"

namespace mailwing::loadgen {

class size_dist {
 public:
  static size_dist parse(std::string_view option, std::string_view spec);
  static size_dist fixed(uint64_t bytes);

  uint64_t draw(rng& random) const;
  bool is_fixed() const { return kind_ == kind::fixed; }
  uint64_t max_bytes() const;
  // Expected value, for choosing how many bodies to pre-generate.
  double mean_bytes() const;
  const std::string& spec() const { return spec_; }

  static constexpr uint64_t size_bytes_max = uint64_t{1} << 32;  // 4 GiB

 private:
  enum class kind : uint8_t { fixed, uniform, choice, lognormal };
  kind kind_ = kind::fixed;
  uint64_t a_ = 0, b_ = 0;   // fixed: a; uniform: [a, b]; lognormal: median a, max b
  double sigma_ = 0;
  std::vector<uint64_t> sizes_;
  std::vector<double> cumulative_;  // choice: running weight totals
  std::string spec_;
};

}  // namespace mailwing::loadgen
