#pragma once
// Command-line parsing for the load generators: a table of `--name value` options, and
// parsers for the value kinds they share (counts, byte sizes, durations, rates,
// host:port). Any problem throws usage_error with one line that names the option and
// what was wrong; the tools print it and exit with status 2.

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mailwing::loadgen {

class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "100000", "100k" (10^3), "2m" (10^6). Within [min, max].
uint64_t parse_count(std::string_view option, std::string_view text, uint64_t min, uint64_t max);
// "1024", "1k" / "1KB" / "1KiB" (2^10), "100m" / "100MB" (2^20), "1g" (2^30).
uint64_t parse_bytes(std::string_view option, std::string_view text, uint64_t min, uint64_t max);
// Seconds: "10", "10s", "500ms", "2m", "1h"; greater than zero.
double parse_duration_s(std::string_view option, std::string_view text);
// Per second: "5000", "5k", "2.5k"; greater than zero.
double parse_rate(std::string_view option, std::string_view text);

struct endpoint {
  std::string host;  // as given, without IPv6 brackets
  uint16_t port = 0;
};
// "127.0.0.1:2525", "[::1]:25", "localhost:25".
endpoint parse_endpoint(std::string_view option, std::string_view text);

class arg_parser {
 public:
  // usage: the text --help prints before the option list (first line: "usage: ...").
  arg_parser(std::string program, std::string usage);

  // --name (no value).
  void flag(std::string name, std::string help, std::function<void()> apply);
  // --name VALUE or --name=VALUE.
  void option(std::string name, std::string metavar, std::string help,
              std::function<void(std::string_view)> apply);
  // Bare arguments; without a handler they are an error.
  void positional(std::string metavar, std::function<void(std::string_view)> apply);

  // Applies every argument in order. Returns false when --help was given (the help has
  // been printed to stdout); throws usage_error otherwise.
  bool parse(int argc, const char* const* argv);

  std::string help_text() const;
  const std::string& program() const { return program_; }

 private:
  struct entry {
    std::string name;
    std::string metavar;  // empty: a flag
    std::string help;
    std::function<void()> apply_flag;
    std::function<void(std::string_view)> apply_value;
  };
  const entry* find(std::string_view name) const;

  std::string program_;
  std::string usage_;
  std::vector<entry> entries_;
  std::string positional_metavar_;
  std::function<void(std::string_view)> positional_;
};

}  // namespace mailwing::loadgen
