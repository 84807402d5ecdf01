#pragma once
// mailwing-blaster's command line and what it means (`mailwing-blaster --help`).

#include <cstdint>
#include <string>

#include "loadgen/args.hh"
#include "loadgen/size_dist.hh"
#include "mailwing/reactor/shard.hh"

namespace mailwing::blaster {

enum class tristate : uint8_t { off, on, auto_select };
enum class auth_mechanism : uint8_t { none, plain, login };

struct options {
  loadgen::endpoint target{"127.0.0.1", 2525};
  uint32_t connections = 10;
  uint32_t shards = 1;
  bool pin = false;
  reactor::backend_choice backend = reactor::backend_choice::auto_select;

  // Stop after this many messages (all connections together) or after duration_s,
  // whichever comes first. Without either: 1000 messages.
  uint64_t messages = 1000;
  bool messages_given = false;
  double duration_s = 0;      // 0: no time limit
  double rate = 0;            // open loop at this many messages/s in total; 0: closed loop

  loadgen::size_dist sizes = loadgen::size_dist::fixed(1024);
  uint32_t pool_bodies = 0;   // 0: chosen from the size distribution

  std::string from = "blaster@example.test";
  std::string to = "user{n}@example.test";  // {n}: the mailbox number
  uint32_t recipients = 1;    // per message
  uint64_t mailboxes = 1;     // distinct {n} values the recipients spread over
  uint64_t mailbox_base = 0;  // first {n}

  tristate pipelining = tristate::auto_select;  // auto: when the server announces it
  tristate bdat = tristate::auto_select;        // auto: BDAT when the server has CHUNKING
  std::string helo = "mailwing-blaster.example.test";
  auth_mechanism auth = auth_mechanism::none;
  std::string auth_user;
  std::string auth_password;

  double timeout_s = 60;      // a reply that takes longer is an error
  uint64_t seed = 1;
  std::string json_path;
  bool progress = true;       // still only when stderr is a terminal
};

// Throws loadgen::usage_error. Returns false when --help was printed.
bool parse_options(int argc, const char* const* argv, options& out);

}  // namespace mailwing::blaster
