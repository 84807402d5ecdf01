#include "drainer/users.hh"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "loadgen/args.hh"

namespace mailwing::drainer {

std::vector<account> parse_accounts(std::string_view text, std::string_view origin) {
  std::vector<account> accounts;
  size_t line_number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    line.remove_prefix(first);
    size_t split = line.find(':');
    size_t skip = 1;
    if (split == std::string_view::npos) {
      split = line.find_first_of(" \t");
      if (split != std::string_view::npos) {
        size_t next = line.find_first_not_of(" \t", split);
        skip = next == std::string_view::npos ? line.size() - split : next - split;
      }
    }
    if (split == std::string_view::npos || split == 0 || split + skip >= line.size()) {
      throw loadgen::usage_error(std::string(origin) + ":" + std::to_string(line_number) +
                                 ": expected USER:PASSWORD");
    }
    accounts.push_back({std::string(line.substr(0, split)), std::string(line.substr(split + skip))});
  }
  return accounts;
}

std::vector<account> load_accounts(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw loadgen::usage_error("--users: cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  std::vector<account> accounts = parse_accounts(text.str(), path);
  if (accounts.empty()) throw loadgen::usage_error("--users: no users in " + path);
  return accounts;
}

}  // namespace mailwing::drainer
