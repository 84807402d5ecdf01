#include "loadgen/args.hh"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mailwing::loadgen {
namespace {

[[noreturn]] void fail(std::string_view option, std::string_view expected, std::string_view text) {
  std::string message;
  message.append(option).append(": expected ").append(expected).append(", got '");
  message.append(text).append("'");
  throw usage_error(message);
}

// Splits "12.5k" into 12.5 and "k". False when there is no leading number.
bool split_number(std::string_view text, double& number, std::string_view& suffix) {
  std::string copy(text);
  if (copy.empty() || copy[0] == '-' || copy[0] == '+' || std::isspace(static_cast<unsigned char>(copy[0]))) {
    return false;
  }
  char* end = nullptr;
  errno = 0;
  number = std::strtod(copy.c_str(), &end);
  if (end == copy.c_str() || errno == ERANGE || !std::isfinite(number)) return false;
  // strtod also takes "inf", "nan" and hex floats; only decimal digits are wanted.
  for (const char* p = copy.c_str(); p < end; ++p) {
    if (!(std::isdigit(static_cast<unsigned char>(*p)) || *p == '.')) return false;
  }
  suffix = text.substr(size_t(end - copy.c_str()));
  return true;
}

bool equals_lower(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

std::string range_text(const char* what, uint64_t min, uint64_t max) {
  char text[128];
  std::snprintf(text, sizeof(text), "%s between %llu and %llu", what,
                static_cast<unsigned long long>(min), static_cast<unsigned long long>(max));
  return text;
}

}  // namespace

uint64_t parse_count(std::string_view option, std::string_view text, uint64_t min, uint64_t max) {
  double number = 0;
  std::string_view suffix;
  std::string expected = range_text("an integer", min, max);
  if (!split_number(text, number, suffix)) fail(option, expected, text);
  if (suffix == "k" || suffix == "K") {
    number *= 1e3;
  } else if (suffix == "m" || suffix == "M") {
    number *= 1e6;
  } else if (!suffix.empty()) {
    fail(option, expected, text);
  }
  if (number != std::floor(number) || number < double(min) || number > double(max)) {
    fail(option, expected, text);
  }
  return uint64_t(number);
}

uint64_t parse_bytes(std::string_view option, std::string_view text, uint64_t min, uint64_t max) {
  double number = 0;
  std::string_view suffix;
  std::string expected = range_text("a size in bytes (k, m, g suffixes: 2^10, 2^20, 2^30)", min, max);
  if (!split_number(text, number, suffix)) fail(option, expected, text);
  double scale = 1;
  if (suffix.empty() || equals_lower(suffix, "b")) {
    scale = 1;
  } else if (equals_lower(suffix, "k") || equals_lower(suffix, "kb") || equals_lower(suffix, "kib")) {
    scale = 1024.0;
  } else if (equals_lower(suffix, "m") || equals_lower(suffix, "mb") || equals_lower(suffix, "mib")) {
    scale = 1024.0 * 1024;
  } else if (equals_lower(suffix, "g") || equals_lower(suffix, "gb") || equals_lower(suffix, "gib")) {
    scale = 1024.0 * 1024 * 1024;
  } else {
    fail(option, expected, text);
  }
  number = std::round(number * scale);
  if (number < double(min) || number > double(max)) fail(option, expected, text);
  return uint64_t(number);
}

double parse_duration_s(std::string_view option, std::string_view text) {
  double number = 0;
  std::string_view suffix;
  const char* expected = "a duration greater than zero (e.g. 10s, 500ms, 2m)";
  if (!split_number(text, number, suffix)) fail(option, expected, text);
  if (suffix.empty() || suffix == "s") {
  } else if (suffix == "ms") {
    number /= 1e3;
  } else if (suffix == "us") {
    number /= 1e6;
  } else if (suffix == "m" || suffix == "min") {
    number *= 60;
  } else if (suffix == "h") {
    number *= 3600;
  } else {
    fail(option, expected, text);
  }
  if (!(number > 0)) fail(option, expected, text);
  return number;
}

double parse_rate(std::string_view option, std::string_view text) {
  double number = 0;
  std::string_view suffix;
  const char* expected = "a rate per second greater than zero (e.g. 5000, 5k)";
  if (!split_number(text, number, suffix)) fail(option, expected, text);
  if (suffix == "k" || suffix == "K") {
    number *= 1e3;
  } else if (suffix == "m" || suffix == "M") {
    number *= 1e6;
  } else if (!suffix.empty() && suffix != "/s") {
    fail(option, expected, text);
  }
  if (!(number > 0)) fail(option, expected, text);
  return number;
}

endpoint parse_endpoint(std::string_view option, std::string_view text) {
  const char* expected = "HOST:PORT (e.g. 127.0.0.1:2525 or [::1]:25)";
  endpoint result;
  std::string_view port_text;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      fail(option, expected, text);
    }
    result.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) fail(option, expected, text);
    result.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  if (result.host.empty() || port_text.empty() || port_text.size() > 5) fail(option, expected, text);
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') fail(option, expected, text);
    port = port * 10 + uint32_t(c - '0');
  }
  if (port == 0 || port > 65535) fail(option, expected, text);
  result.port = uint16_t(port);
  return result;
}

arg_parser::arg_parser(std::string program, std::string usage)
    : program_(std::move(program)), usage_(std::move(usage)) {}

void arg_parser::flag(std::string name, std::string help, std::function<void()> apply) {
  entries_.push_back({std::move(name), {}, std::move(help), std::move(apply), {}});
}

void arg_parser::option(std::string name, std::string metavar, std::string help,
                        std::function<void(std::string_view)> apply) {
  entries_.push_back({std::move(name), std::move(metavar), std::move(help), {}, std::move(apply)});
}

void arg_parser::positional(std::string metavar, std::function<void(std::string_view)> apply) {
  positional_metavar_ = std::move(metavar);
  positional_ = std::move(apply);
}

const arg_parser::entry* arg_parser::find(std::string_view name) const {
  for (const entry& candidate : entries_) {
    if (candidate.name == name) return &candidate;
  }
  return nullptr;
}

bool arg_parser::parse(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help_text().c_str(), stdout);
      return false;
    }
    if (arg.size() > 2 && arg.substr(0, 2) == "--") {
      std::string_view name = arg;
      std::string_view inline_value;
      bool has_inline = false;
      if (size_t equals = arg.find('='); equals != std::string_view::npos) {
        name = arg.substr(0, equals);
        inline_value = arg.substr(equals + 1);
        has_inline = true;
      }
      const entry* found = find(name);
      if (found == nullptr) throw usage_error("unknown option " + std::string(name));
      if (found->metavar.empty()) {
        if (has_inline) throw usage_error(std::string(name) + " takes no value");
        found->apply_flag();
        continue;
      }
      std::string_view value = inline_value;
      if (!has_inline) {
        if (i + 1 >= argc) throw usage_error(std::string(name) + ": missing " + found->metavar);
        value = argv[++i];
      }
      found->apply_value(value);
      continue;
    }
    if (!positional_ || (arg.size() > 1 && arg[0] == '-')) {
      throw usage_error("unexpected argument '" + std::string(arg) + "'");
    }
    positional_(arg);
  }
  return true;
}

std::string arg_parser::help_text() const {
  std::string text = usage_;
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += "\noptions:\n";
  for (const entry& item : entries_) {
    std::string left = "  " + item.name;
    if (!item.metavar.empty()) left += " " + item.metavar;
    text += left;
    if (left.size() < 26) {
      text.append(26 - left.size(), ' ');
    } else {
      text += "\n" + std::string(26, ' ');
    }
    // Continuation lines of a help text stay aligned.
    for (char c : item.help) {
      text += c;
      if (c == '\n') text.append(26, ' ');
    }
    text += '\n';
  }
  text += "  --help                  this text\n";
  return text;
}

}  // namespace mailwing::loadgen
