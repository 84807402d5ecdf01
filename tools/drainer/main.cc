// mailwing-drainer: the POP3 drainer. See options.cc for what it does and pop3_client.hh
// for the session it runs; this file wires a run together and reports it.

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "drainer/options.hh"
#include "drainer/shard_state.hh"
#include "loadgen/json_writer.hh"
#include "loadgen/progress.hh"
#include "loadgen/report.hh"
#include "loadgen/runner.hh"

namespace mailwing::drainer {
namespace {

struct totals {
  uint64_t messages = 0, bytes = 0, verified = 0, unverified = 0, deleted = 0, logins = 0;
  uint64_t mailboxes = 0, stat_messages = 0, stat_octets = 0, ok_replies = 0, err_replies = 0;
  uint64_t integrity_failures = 0;
  std::vector<integrity_failure> failures;
  uint64_t first_start_ns = UINT64_MAX, last_done_ns = 0;
  double elapsed_s = 0;
  loadgen::histogram login_ns, retr_ns, quit_ns;
  loadgen::error_log errors;
};

void print_table(const options& opts, const totals& sum, const char* backend) {
  using loadgen::with_commas;
  double rate = sum.elapsed_s > 0 ? double(sum.messages) / sum.elapsed_s : 0;
  double mb_rate = sum.elapsed_s > 0 ? double(sum.bytes) / sum.elapsed_s / 1e6 : 0;
  std::printf("mailwing-drainer <- %s:%u  %u session%s on %u shard%s (%s)  window %u%s%s\n",
              opts.target.host.c_str(), opts.target.port, opts.sessions, opts.sessions == 1 ? "" : "s",
              opts.shards, opts.shards == 1 ? "" : "s", backend, opts.window, opts.dele ? ", DELE" : "",
              opts.apop ? ", APOP" : "");
  std::printf("  mailboxes     %s drained of %s (STAT: %s messages, %s octets)\n",
              with_commas(sum.mailboxes).c_str(), with_commas(opts.accounts.size()).c_str(),
              with_commas(sum.stat_messages).c_str(), with_commas(sum.stat_octets).c_str());
  std::printf("  messages      %s retrieved, %s verified, %s without hash header, %s deleted\n",
              with_commas(sum.messages).c_str(), with_commas(sum.verified).c_str(),
              with_commas(sum.unverified).c_str(), with_commas(sum.deleted).c_str());
  std::printf("  integrity     %s\n", sum.integrity_failures == 0
                                          ? (opts.verify ? "no failures" : "not checked (--no-verify)")
                                          : (with_commas(sum.integrity_failures) + " FAILURES").c_str());
  std::printf("  elapsed       %.3f s\n", sum.elapsed_s);
  std::printf("  throughput    %s msgs/s   %.1f MB/s\n", with_commas(uint64_t(std::llround(rate))).c_str(), mb_rate);
  std::printf("  login         %s\n", loadgen::latency_summary(sum.login_ns).c_str());
  std::printf("  RETR          %s\n", loadgen::latency_summary(sum.retr_ns).c_str());
  std::printf("  QUIT          %s\n", loadgen::latency_summary(sum.quit_ns).c_str());
  std::printf("  replies       +OK x%s  -ERR x%s\n", with_commas(sum.ok_replies).c_str(),
              with_commas(sum.err_replies).c_str());
  std::printf("  errors        %s\n", sum.errors.summary().c_str());
  size_t shown = 0;
  for (const std::string& sample : sum.errors.samples()) {
    if (++shown > 5) break;
    std::printf("    %s\n", sample.c_str());
  }
  std::fflush(stdout);
}

std::string json_report(const options& opts, const totals& sum, const char* backend) {
  loadgen::json_writer json;
  json.begin_object();
  json.field("tool", "mailwing-drainer");
  json.field("target", opts.target.host + ":" + std::to_string(opts.target.port));
  json.key("config");
  json.begin_object();
  json.field("accounts", uint64_t(opts.accounts.size()));
  json.field("sessions", opts.sessions);
  json.field("shards", opts.shards);
  json.field("io_backend", backend);
  json.field("window", opts.window);
  json.field("dele", opts.dele);
  json.field("apop", opts.apop);
  if (opts.max_messages != UINT64_MAX) json.field("max_messages", opts.max_messages);
  json.field("verify", opts.verify);
  json.end_object();
  json.field("elapsed_s", sum.elapsed_s);
  json.key("mailboxes");
  json.begin_object();
  json.field("drained", sum.mailboxes);
  json.field("stat_messages", sum.stat_messages);
  json.field("stat_octets", sum.stat_octets);
  json.end_object();
  json.key("messages");
  json.begin_object();
  json.field("retrieved", sum.messages);
  json.field("verified", sum.verified);
  json.field("unverified", sum.unverified);
  json.field("integrity_failures", sum.integrity_failures);
  json.field("deleted", sum.deleted);
  json.end_object();
  json.key("throughput");
  json.begin_object();
  json.field("msgs_per_s", sum.elapsed_s > 0 ? double(sum.messages) / sum.elapsed_s : 0.0);
  json.field("mb_per_s", sum.elapsed_s > 0 ? double(sum.bytes) / sum.elapsed_s / 1e6 : 0.0);
  json.field("bytes", sum.bytes);
  json.end_object();
  json.key("login_us");
  loadgen::write_latency_us(json, sum.login_ns);
  json.key("latency_us");
  loadgen::write_latency_us(json, sum.retr_ns);
  json.key("quit_us");
  loadgen::write_latency_us(json, sum.quit_ns);
  json.key("reply_codes");
  json.begin_object();
  json.field("+OK", sum.ok_replies);
  json.field("-ERR", sum.err_replies);
  json.end_object();
  json.key("integrity_failures");
  json.begin_array();
  for (const integrity_failure& failure : sum.failures) {
    json.begin_object();
    json.field("user", failure.user);
    json.field("message", failure.message);
    json.field("kind", failure.kind);
    json.field("expected_sha256", failure.expected_hex);
    json.field("actual_sha256", failure.actual_hex);
    if (failure.expected_bytes != UINT64_MAX) json.field("expected_bytes", failure.expected_bytes);
    json.field("body_bytes", failure.body_bytes);
    json.end_object();
  }
  json.end_array();
  json.key("errors");
  sum.errors.write_json(json);
  json.end_object();
  return json.text();
}

int run(options& opts) {
  loadgen::install_stop_signals();
  uint64_t fd_limit = loadgen::raise_fd_limit();
  if (opts.sessions + 64 > fd_limit) {
    std::fprintf(stderr, "mailwing-drainer: %u sessions need more file descriptors than the limit %" PRIu64 "\n",
                 opts.sessions, fd_limit);
    return 2;
  }
  // Accounts and sessions go round-robin to the shards.
  std::vector<std::vector<size_t>> accounts(opts.shards);
  for (size_t i = 0; i < opts.accounts.size(); ++i) accounts[i % opts.shards].push_back(i);
  std::vector<std::vector<int>> fds(opts.shards);
  std::string error;
  for (uint32_t i = 0; i < opts.sessions; ++i) {
    int fd = loadgen::connect_tcp(opts.target, 10000, error);
    if (fd < 0) {
      std::fprintf(stderr, "mailwing-drainer: %s\n", error.c_str());
      for (auto& list : fds) {
        for (int open_fd : list) ::close(open_fd);
      }
      return 1;
    }
    fds[i % opts.shards].push_back(fd);
  }

  run_context run;
  run.opts = &opts;
  reactor::backend_options io;
  io.recv_buffer_bytes = 65536;
  io.recv_buffer_count = 256;
  loadgen::shard_group group(opts.shards, opts.backend, opts.pin, io);
  std::vector<std::unique_ptr<shard_state>> states(opts.shards);
  uint64_t start_ns = loadgen::now_ns();
  try {
    group.start([&](reactor::shard& shard, uint32_t index) {
      uint32_t sessions = opts.sessions / opts.shards + (index < opts.sessions % opts.shards ? 1 : 0);
      states[index] = std::make_unique<shard_state>(shard, run, index, accounts[index], sessions, fds[index]);
    });
  } catch (const std::exception& failure) {
    std::fprintf(stderr, "mailwing-drainer: starting the reactor: %s\n", failure.what());
    return 1;
  }

  loadgen::progress_line progress(opts.progress && loadgen::progress_line::stderr_is_tty(), "msgs");
  auto next_progress = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  for (;;) {
    bool all_finished = true;
    for (const auto& state : states) all_finished = all_finished && state->finished();
    if (all_finished) break;
    if (loadgen::stop_signalled()) run.stop.store(true, std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (progress.enabled() && std::chrono::steady_clock::now() >= next_progress) {
      next_progress += std::chrono::milliseconds(500);
      loadgen::progress_sample sample;
      sample.elapsed_s = double(loadgen::now_ns() - start_ns) / 1e9;
      for (const auto& state : states) {
        sample.messages += state->progress.messages.load(std::memory_order_relaxed);
        sample.bytes += state->progress.bytes.load(std::memory_order_relaxed);
        sample.errors += state->progress.errors.load(std::memory_order_relaxed);
        sample.connections += state->progress.connections.load(std::memory_order_relaxed);
      }
      progress.update(sample);
    }
  }
  progress.finish();
  group.stop();
  uint64_t end_ns = loadgen::now_ns();

  totals sum;
  for (const auto& state : states) {
    sum.messages += state->messages;
    sum.bytes += state->bytes;
    sum.verified += state->verified;
    sum.unverified += state->unverified;
    sum.deleted += state->deleted;
    sum.logins += state->logins;
    sum.mailboxes += state->mailboxes;
    sum.stat_messages += state->stat_messages;
    sum.stat_octets += state->stat_octets;
    sum.ok_replies += state->ok_replies;
    sum.err_replies += state->err_replies;
    sum.integrity_failures += state->integrity_failures;
    for (const integrity_failure& failure : state->failures) sum.failures.push_back(failure);
    sum.first_start_ns = std::min(sum.first_start_ns, state->first_start_ns);
    sum.last_done_ns = std::max(sum.last_done_ns, state->last_done_ns);
    sum.login_ns.merge(state->login_ns);
    sum.retr_ns.merge(state->retr_ns);
    sum.quit_ns.merge(state->quit_ns);
    sum.errors.merge(state->errors);
  }
  // From the first connection to the last QUIT: logins and commits are part of a drain.
  if (sum.first_start_ns != UINT64_MAX && sum.last_done_ns > sum.first_start_ns) {
    sum.elapsed_s = double(sum.last_done_ns - sum.first_start_ns) / 1e9;
  } else {
    sum.elapsed_s = double(end_ns - start_ns) / 1e9;
  }
  const char* backend = loadgen::backend_name(group.backend());
  print_table(opts, sum, backend);
  if (!opts.json_path.empty() && !loadgen::write_file(opts.json_path, json_report(opts, sum, backend))) {
    std::fprintf(stderr, "mailwing-drainer: cannot write %s: %s\n", opts.json_path.c_str(), std::strerror(errno));
    return 1;
  }
  return sum.integrity_failures == 0 && sum.errors.total() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace mailwing::drainer

int main(int argc, char** argv) {
  mailwing::drainer::options opts;
  try {
    if (!mailwing::drainer::parse_options(argc, argv, opts)) return 0;
  } catch (const mailwing::loadgen::usage_error& error) {
    std::fprintf(stderr, "mailwing-drainer: %s (see --help)\n", error.what());
    return 2;
  }
  return mailwing::drainer::run(opts);
}
