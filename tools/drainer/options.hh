#pragma once
// mailwing-drainer's command line (`mailwing-drainer --help`).

#include <cstdint>
#include <string>
#include <vector>

#include "drainer/users.hh"
#include "loadgen/args.hh"
#include "mailwing/reactor/shard.hh"

namespace mailwing::drainer {

struct options {
  loadgen::endpoint target{"127.0.0.1", 1100};
  std::vector<account> accounts;
  uint32_t sessions = 0;        // 0: one per account, at most 10
  uint32_t shards = 1;
  bool pin = false;
  reactor::backend_choice backend = reactor::backend_choice::auto_select;
  uint32_t window = 32;         // RETRs in flight per session
  bool dele = false;
  bool apop = false;
  uint64_t max_messages = UINT64_MAX;  // per mailbox; 0: log in, STAT, QUIT
  bool verify = true;
  double timeout_s = 60;
  std::string json_path;
  bool progress = true;
};

// Throws loadgen::usage_error. Returns false when --help was printed.
bool parse_options(int argc, const char* const* argv, options& out);

}  // namespace mailwing::drainer
