#include "blaster/options.hh"

#include "loadgen/runner.hh"

namespace mailwing::blaster {
namespace {

constexpr char usage[] =
    "usage: mailwing-blaster [options] HOST:PORT\n"
    "\n"
    "Sends generated mail to an SMTP server as fast as it accepts it (closed loop) or at a\n"
    "fixed offered rate (--rate, open loop), and reports throughput, latency percentiles\n"
    "and reply codes. Works against any SMTP server. Every message carries\n"
    "  X-Mailwing-Hash: sha256=<hex>; bytes=<n>\n"
    "of its body, which mailwing-drainer verifies after POP3 retrieval.\n"
    "Latency is from the first command of a transaction (MAIL) to the reply to its end of\n"
    "data; in open loop it is measured from when the message was due, so a server that\n"
    "falls behind shows it (no coordinated omission).";

tristate parse_tristate(std::string_view option, std::string_view text) {
  if (text == "on" || text == "yes") return tristate::on;
  if (text == "off" || text == "no") return tristate::off;
  if (text == "auto") return tristate::auto_select;
  throw loadgen::usage_error(std::string(option) + ": expected on, off or auto, got '" +
                             std::string(text) + "'");
}

}  // namespace

bool parse_options(int argc, const char* const* argv, options& out) {
  using namespace loadgen;
  arg_parser parser("mailwing-blaster", usage);
  bool target_given = false;
  auto set_target = [&](std::string_view text) {
    if (target_given) throw usage_error("more than one target given");
    out.target = parse_endpoint("target", text);
    target_given = true;
  };
  parser.positional("HOST:PORT", set_target);
  parser.option("--server", "HOST:PORT", "the SMTP server (or give it as the argument)", set_target);
  parser.option("--connections", "N", "concurrent SMTP sessions (default 10)", [&](std::string_view v) {
    out.connections = uint32_t(parse_count("--connections", v, 1, 1000000));
  });
  parser.option("--shards", "N", "reactor threads the connections are spread over (default 1)",
                [&](std::string_view v) { out.shards = uint32_t(parse_count("--shards", v, 1, 256)); });
  parser.flag("--pin", "pin shard i to the i-th usable CPU", [&] { out.pin = true; });
  parser.option("--io-backend", "auto|io_uring|epoll", "reactor backend (default auto)",
                [&](std::string_view v) { out.backend = parse_backend("--io-backend", v); });
  parser.option("--messages", "N", "messages to send in total (default 1000)", [&](std::string_view v) {
    out.messages = parse_count("--messages", v, 0, uint64_t(1) << 48);
    out.messages_given = true;
  });
  parser.option("--duration", "TIME", "stop starting messages after this long (e.g. 30s)",
                [&](std::string_view v) { out.duration_s = parse_duration_s("--duration", v); });
  parser.option("--rate", "MSGS/S", "open loop: offer this many messages per second in total",
                [&](std::string_view v) { out.rate = parse_rate("--rate", v); });
  parser.option("--size", "SPEC",
                "body size (after the headers, like smtp-source -l): 1k, uniform:1k-64k,\n"
                "choice:1k=70,100k=30, lognormal:4k,1.0[,MAX] (default 1k)",
                [&](std::string_view v) { out.sizes = size_dist::parse("--size", v); });
  parser.option("--pool", "N", "distinct bodies to pre-generate (default: 16 for a fixed size, else 1024)",
                [&](std::string_view v) { out.pool_bodies = uint32_t(parse_count("--pool", v, 1, 1000000)); });
  parser.option("--from", "ADDRESS", "envelope sender (default blaster@example.test)",
                [&](std::string_view v) { out.from = std::string(v); });
  parser.option("--to", "PATTERN", "recipient pattern; {n} is the mailbox number (default user{n}@example.test)",
                [&](std::string_view v) { out.to = std::string(v); });
  parser.option("--rcpts", "N", "recipients per message (default 1)", [&](std::string_view v) {
    out.recipients = uint32_t(parse_count("--rcpts", v, 1, 1000));
  });
  parser.option("--mailboxes", "N", "distinct mailboxes the recipients spread over (default 1)",
                [&](std::string_view v) { out.mailboxes = parse_count("--mailboxes", v, 1, uint64_t(1) << 32); });
  parser.option("--mailbox-base", "N", "the first mailbox number (default 0)", [&](std::string_view v) {
    out.mailbox_base = parse_count("--mailbox-base", v, 0, uint64_t(1) << 32);
  });
  parser.option("--pipelining", "on|off|auto",
                "send MAIL, RCPTs and DATA in one write, and the end of data with the next\n"
                "envelope (RFC 2920); auto: when the server announces PIPELINING (default)",
                [&](std::string_view v) { out.pipelining = parse_tristate("--pipelining", v); });
  parser.option("--bdat", "on|off|auto",
                "send bodies with BDAT (RFC 3030) instead of DATA; auto: when the server\n"
                "announces CHUNKING (default)",
                [&](std::string_view v) { out.bdat = parse_tristate("--bdat", v); });
  parser.option("--helo", "NAME", "EHLO argument", [&](std::string_view v) { out.helo = std::string(v); });
  parser.option("--auth", "plain|login", "authenticate every session (needs --user and --password)",
                [&](std::string_view v) {
                  if (v == "plain") {
                    out.auth = auth_mechanism::plain;
                  } else if (v == "login") {
                    out.auth = auth_mechanism::login;
                  } else {
                    throw usage_error("--auth: expected plain or login, got '" + std::string(v) + "'");
                  }
                });
  parser.option("--user", "NAME", "AUTH user name", [&](std::string_view v) { out.auth_user = std::string(v); });
  parser.option("--password", "TEXT", "AUTH password",
                [&](std::string_view v) { out.auth_password = std::string(v); });
  parser.option("--timeout", "TIME", "longest wait for a reply (default 60s)",
                [&](std::string_view v) { out.timeout_s = parse_duration_s("--timeout", v); });
  parser.option("--seed", "N", "seed for sizes and content (default 1)",
                [&](std::string_view v) { out.seed = parse_count("--seed", v, 0, UINT64_MAX >> 12); });
  parser.option("--json", "FILE", "write the results as JSON", [&](std::string_view v) {
    if (v.empty()) throw usage_error("--json: missing FILE");
    out.json_path = std::string(v);
  });
  parser.flag("--no-progress", "no live progress line", [&] { out.progress = false; });

  if (!parser.parse(argc, argv)) return false;

  if (!target_given) throw usage_error("no target: give HOST:PORT");
  if (out.duration_s > 0 && !out.messages_given) out.messages = uint64_t(1) << 48;
  if (out.to.find("{n}") == std::string::npos && out.mailboxes > 1) {
    throw usage_error("--mailboxes " + std::to_string(out.mailboxes) + " needs {n} in --to");
  }
  if (out.recipients > out.mailboxes) {
    throw usage_error("--rcpts " + std::to_string(out.recipients) + " is more than --mailboxes " +
                      std::to_string(out.mailboxes) + " (recipients of a message must differ)");
  }
  if (out.auth != auth_mechanism::none && (out.auth_user.empty() || out.auth_password.empty())) {
    throw usage_error("--auth needs --user and --password");
  }
  if (out.shards > out.connections) out.shards = out.connections;
  return true;
}

}  // namespace mailwing::blaster
