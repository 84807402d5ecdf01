#include "mailwing/pop3/command.hh"

#include <array>
#include <utility>

#include "mailwing/util/ascii.hh"

namespace mailwing::pop3 {
namespace {

constexpr std::array<std::pair<std::string_view, verb>, 15> keywords{{
    {"user", verb::user}, {"pass", verb::pass}, {"apop", verb::apop}, {"auth", verb::auth},
    {"capa", verb::capa}, {"stat", verb::stat}, {"list", verb::list}, {"uidl", verb::uidl},
    {"retr", verb::retr}, {"top", verb::top},   {"dele", verb::dele}, {"rset", verb::rset},
    {"noop", verb::noop}, {"quit", verb::quit}, {"stls", verb::stls},
}};

}  // namespace

command parse_command(std::string_view line) {
  command parsed{verb::unknown, {}, {}, 0, false};
  size_t space = line.find(' ');
  std::string_view keyword = line.substr(0, space);
  for (const auto& [name, value] : keywords) {
    if (util::equals_lower(keyword, name)) {
      parsed.name = value;
      break;
    }
  }
  if (space == std::string_view::npos) return parsed;
  parsed.rest = line.substr(space + 1);
  std::string_view rest = parsed.rest;
  while (!rest.empty()) {
    size_t begin = rest.find_first_not_of(' ');
    if (begin == std::string_view::npos) break;
    rest.remove_prefix(begin);
    size_t end = rest.find(' ');
    std::string_view argument = rest.substr(0, end);
    if (parsed.argument_count == 2) {
      parsed.too_many_arguments = true;
      break;
    }
    parsed.arguments[parsed.argument_count++] = argument;
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end);
  }
  return parsed;
}

std::optional<uint32_t> parse_number(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(value);
}

std::optional<uint64_t> parse_line_count(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    auto digit = static_cast<uint64_t>(c - '0');
    value = value > (UINT64_MAX - digit) / 10 ? UINT64_MAX : value * 10 + digit;
  }
  return value;
}

}  // namespace mailwing::pop3
