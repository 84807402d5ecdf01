#include "drainer/options.hh"

#include <algorithm>

#include "loadgen/runner.hh"

namespace mailwing::drainer {
namespace {

constexpr char usage[] =
    "usage: mailwing-drainer [options] HOST:PORT\n"
    "\n"
    "Logs in to POP3 mailboxes, retrieves (RETR) every message with up to --window RETRs\n"
    "in flight, optionally deletes them (DELE, committed by QUIT), and verifies each\n"
    "message's X-Mailwing-Hash header (written by mailwing-blaster) against its body.\n"
    "Every integrity failure is reported on its own line; the exit status is 1 if there\n"
    "was any. Reports throughput, login/RETR latency percentiles and replies.";

}  // namespace

bool parse_options(int argc, const char* const* argv, options& out) {
  using namespace loadgen;
  arg_parser parser("mailwing-drainer", usage);
  bool target_given = false;
  std::string users_path, user, password;
  auto set_target = [&](std::string_view text) {
    if (target_given) throw usage_error("more than one target given");
    out.target = parse_endpoint("target", text);
    target_given = true;
  };
  parser.positional("HOST:PORT", set_target);
  parser.option("--server", "HOST:PORT", "the POP3 server (or give it as the argument)", set_target);
  parser.option("--users", "FILE", "mailboxes to drain: USER:PASSWORD per line",
                [&](std::string_view v) { users_path = std::string(v); });
  parser.option("--user", "NAME", "one mailbox to drain (with --password)",
                [&](std::string_view v) { user = std::string(v); });
  parser.option("--password", "TEXT", "its password", [&](std::string_view v) { password = std::string(v); });
  parser.option("--sessions", "N", "concurrent POP3 sessions (default: one per user, at most 10)",
                [&](std::string_view v) { out.sessions = uint32_t(parse_count("--sessions", v, 1, 100000)); });
  parser.option("--shards", "N", "reactor threads (default 1)",
                [&](std::string_view v) { out.shards = uint32_t(parse_count("--shards", v, 1, 256)); });
  parser.flag("--pin", "pin shard i to the i-th usable CPU", [&] { out.pin = true; });
  parser.option("--io-backend", "auto|io_uring|epoll", "reactor backend (default auto)",
                [&](std::string_view v) { out.backend = parse_backend("--io-backend", v); });
  parser.option("--window", "N", "RETR commands in flight per session (default 32; 1: one at a time)",
                [&](std::string_view v) { out.window = uint32_t(parse_count("--window", v, 1, 4096)); });
  parser.flag("--dele", "delete every retrieved message (QUIT commits)", [&] { out.dele = true; });
  parser.flag("--apop", "log in with APOP instead of USER/PASS", [&] { out.apop = true; });
  parser.option("--max-messages", "N",
                "retrieve at most N messages per mailbox; 0: log in, STAT, QUIT (login timing)",
                [&](std::string_view v) { out.max_messages = parse_count("--max-messages", v, 0, UINT64_MAX >> 12); });
  parser.flag("--no-verify", "do not check hash headers (count bytes only)", [&] { out.verify = false; });
  parser.option("--timeout", "TIME", "longest wait for a reply (default 60s)",
                [&](std::string_view v) { out.timeout_s = parse_duration_s("--timeout", v); });
  parser.option("--json", "FILE", "write the results as JSON", [&](std::string_view v) {
    if (v.empty()) throw usage_error("--json: missing FILE");
    out.json_path = std::string(v);
  });
  parser.flag("--no-progress", "no live progress line", [&] { out.progress = false; });

  if (!parser.parse(argc, argv)) return false;

  if (!target_given) throw usage_error("no target: give HOST:PORT");
  if (!users_path.empty() && !user.empty()) throw usage_error("give --users or --user, not both");
  if (!users_path.empty()) {
    out.accounts = load_accounts(users_path);
  } else if (!user.empty()) {
    if (password.empty()) throw usage_error("--user needs --password");
    out.accounts.push_back({user, password});
  } else {
    throw usage_error("no mailboxes: give --users FILE or --user NAME --password TEXT");
  }
  if (out.sessions == 0) out.sessions = uint32_t(std::min<size_t>(out.accounts.size(), 10));
  out.sessions = uint32_t(std::min<size_t>(out.sessions, out.accounts.size()));
  out.shards = std::min(out.shards, out.sessions);
  return true;
}

}  // namespace mailwing::drainer
