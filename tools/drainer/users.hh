#pragma once
// The drainer's list of mailboxes: a file of users and passwords, one per line,
//     alice@example.test:secret
// split at the first ':' (a password may contain ':'); a line without ':' splits at its
// first run of white space. Blank lines and lines starting with '#' are skipped.

#include <string>
#include <string_view>
#include <vector>

namespace mailwing::drainer {

struct account {
  std::string user;
  std::string password;
};

// Throws loadgen::usage_error naming the file and line on a malformed line or when the
// file cannot be read.
std::vector<account> load_accounts(const std::string& path);
// The same rules for text already in memory (`origin` names it in errors).
std::vector<account> parse_accounts(std::string_view text, std::string_view origin);

}  // namespace mailwing::drainer
