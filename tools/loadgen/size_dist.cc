#include "loadgen/size_dist.hh"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "loadgen/args.hh"

namespace mailwing::loadgen {
namespace {

[[noreturn]] void bad(std::string_view option, std::string_view spec, const char* why) {
  std::string message(option);
  message += ": ";
  message += why;
  message += " in '";
  message += spec;
  message += "' (forms: 1k, uniform:1k-64k, choice:1k=70,10k=30, lognormal:4k,1.0[,MAX])";
  throw usage_error(message);
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

// A standard normal draw (Box-Muller).
double normal(rng& random) {
  double u1 = random.unit();
  double u2 = random.unit();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace

size_dist size_dist::fixed(uint64_t bytes) {
  size_dist dist;
  dist.kind_ = kind::fixed;
  dist.a_ = bytes;
  dist.spec_ = std::to_string(bytes);
  return dist;
}

size_dist size_dist::parse(std::string_view option, std::string_view spec) {
  size_dist dist;
  dist.spec_ = std::string(spec);
  size_t colon = spec.find(':');
  if (colon == std::string_view::npos) {
    dist.kind_ = kind::fixed;
    dist.a_ = parse_bytes(option, spec, 0, size_bytes_max);
    return dist;
  }
  std::string_view name = spec.substr(0, colon);
  std::string_view rest = spec.substr(colon + 1);
  if (name == "uniform") {
    size_t dash = rest.find('-');
    if (dash == std::string_view::npos) bad(option, spec, "uniform needs MIN-MAX");
    dist.kind_ = kind::uniform;
    dist.a_ = parse_bytes(option, rest.substr(0, dash), 0, size_bytes_max);
    dist.b_ = parse_bytes(option, rest.substr(dash + 1), 0, size_bytes_max);
    if (dist.a_ > dist.b_) bad(option, spec, "uniform's minimum is above its maximum");
    return dist;
  }
  if (name == "choice") {
    dist.kind_ = kind::choice;
    double total = 0;
    for (std::string_view item : split(rest, ',')) {
      size_t equals = item.find('=');
      if (equals == std::string_view::npos) bad(option, spec, "choice needs SIZE=WEIGHT items");
      uint64_t size = parse_bytes(option, item.substr(0, equals), 0, size_bytes_max);
      std::string weight_text(item.substr(equals + 1));
      char* end = nullptr;
      double weight = std::strtod(weight_text.c_str(), &end);
      if (weight_text.empty() || *end != '\0' || !(weight > 0) || !std::isfinite(weight)) {
        bad(option, spec, "a weight must be a number greater than zero");
      }
      total += weight;
      dist.sizes_.push_back(size);
      dist.cumulative_.push_back(total);
    }
    return dist;
  }
  if (name == "lognormal") {
    std::vector<std::string_view> parts = split(rest, ',');
    if (parts.size() < 2 || parts.size() > 3) bad(option, spec, "lognormal needs MEDIAN,SIGMA[,MAX]");
    dist.kind_ = kind::lognormal;
    dist.a_ = parse_bytes(option, parts[0], 1, size_bytes_max);
    std::string sigma_text(parts[1]);
    char* end = nullptr;
    dist.sigma_ = std::strtod(sigma_text.c_str(), &end);
    if (sigma_text.empty() || *end != '\0' || !(dist.sigma_ >= 0) || dist.sigma_ > 10) {
      bad(option, spec, "sigma must be a number between 0 and 10");
    }
    dist.b_ = parts.size() == 3 ? parse_bytes(option, parts[2], 1, size_bytes_max) : 64u << 20;
    return dist;
  }
  bad(option, spec, "unknown distribution");
}

uint64_t size_dist::draw(rng& random) const {
  switch (kind_) {
    case kind::fixed:
      return a_;
    case kind::uniform:
      return a_ + random.below(b_ - a_ + 1);
    case kind::choice: {
      double pick = random.unit() * cumulative_.back();
      auto at = std::upper_bound(cumulative_.begin(), cumulative_.end(), pick);
      size_t index = std::min<size_t>(size_t(at - cumulative_.begin()), sizes_.size() - 1);
      return sizes_[index];
    }
    case kind::lognormal: {
      double value = double(a_) * std::exp(sigma_ * normal(random));
      return std::min<uint64_t>(b_, uint64_t(std::llround(std::max(0.0, value))));
    }
  }
  return a_;
}

uint64_t size_dist::max_bytes() const {
  switch (kind_) {
    case kind::fixed: return a_;
    case kind::uniform:
    case kind::lognormal: return b_;
    case kind::choice: return *std::max_element(sizes_.begin(), sizes_.end());
  }
  return a_;
}

double size_dist::mean_bytes() const {
  switch (kind_) {
    case kind::fixed: return double(a_);
    case kind::uniform: return (double(a_) + double(b_)) / 2;
    case kind::lognormal:
      return std::min(double(b_), double(a_) * std::exp(sigma_ * sigma_ / 2));
    case kind::choice: {
      double sum = 0, previous = 0;
      for (size_t i = 0; i < sizes_.size(); ++i) {
        sum += double(sizes_[i]) * (cumulative_[i] - previous);
        previous = cumulative_[i];
      }
      return sum / cumulative_.back();
    }
  }
  return double(a_);
}

}  // namespace mailwing::loadgen
