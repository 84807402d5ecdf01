// mailwing-blaster: the SMTP load generator. See options.cc for what it does and
// smtp_client.hh for the session it runs; this file wires a run together and reports it.

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <thread>
#include <vector>

#include "blaster/options.hh"
#include "blaster/shard_state.hh"
#include "loadgen/body_hash.hh"
#include "loadgen/body_pool.hh"
#include "loadgen/json_writer.hh"
#include "loadgen/progress.hh"
#include "loadgen/report.hh"
#include "loadgen/runner.hh"

namespace mailwing::blaster {
namespace {

struct totals {
  uint64_t accepted = 0, failed = 0, bytes = 0, started = 0, due_not_started = 0;
  uint64_t first_start_ns = UINT64_MAX, last_done_ns = 0;
  double elapsed_s = 0;
  loadgen::histogram latency_ns;
  loadgen::error_log errors;
  std::vector<uint64_t> reply_codes = std::vector<uint64_t>(1000, 0);
  server_info server;
};

std::string rfc5322_date() {
  time_t now = time(nullptr);
  tm utc{};
  gmtime_r(&now, &utc);
  char text[64];
  strftime(text, sizeof(text), "Date: %a, %d %b %Y %H:%M:%S +0000\r\n", &utc);
  return text;
}

size_t default_pool(const options& opts) {
  if (opts.pool_bodies > 0) return opts.pool_bodies;
  return opts.sizes.is_fixed() ? 16 : 1024;
}

void print_table(const options& opts, const totals& sum, const char* backend, uint32_t connected) {
  using loadgen::with_commas;
  double rate = sum.elapsed_s > 0 ? double(sum.accepted) / sum.elapsed_s : 0;
  double mb_rate = sum.elapsed_s > 0 ? double(sum.bytes) / sum.elapsed_s / 1e6 : 0;
  std::printf("mailwing-blaster -> %s:%u  %u connections on %u shard%s (%s)  %s  %s%s\n",
              opts.target.host.c_str(), opts.target.port, connected, opts.shards,
              opts.shards == 1 ? "" : "s", backend,
              opts.rate > 0 ? "open loop" : "closed loop",
              sum.server.used_pipelining ? "pipelined" : "not pipelined",
              sum.server.used_bdat ? ", BDAT" : ", DATA");
  if (opts.rate > 0) std::printf("  offered       %s msgs/s\n", with_commas(uint64_t(opts.rate)).c_str());
  std::printf("  messages      %s accepted, %s failed, %s sent  (size %s, %u rcpt%s over %s mailbox%s)\n",
              with_commas(sum.accepted).c_str(), with_commas(sum.failed).c_str(),
              with_commas(sum.started).c_str(), opts.sizes.spec().c_str(), opts.recipients,
              opts.recipients == 1 ? "" : "s", with_commas(opts.mailboxes).c_str(),
              opts.mailboxes == 1 ? "" : "es");
  std::printf("  elapsed       %.3f s\n", sum.elapsed_s);
  std::printf("  throughput    %s msgs/s   %.1f MB/s\n", with_commas(uint64_t(std::llround(rate))).c_str(),
              mb_rate);
  std::printf("  latency       %s\n", loadgen::latency_summary(sum.latency_ns).c_str());
  std::string codes;
  for (size_t code = 0; code < sum.reply_codes.size(); ++code) {
    if (sum.reply_codes[code] == 0) continue;
    char item[48];
    std::snprintf(item, sizeof(item), "%s%zu x%s", codes.empty() ? "" : "  ", code,
                  with_commas(sum.reply_codes[code]).c_str());
    codes += item;
  }
  std::printf("  replies       %s\n", codes.empty() ? "none" : codes.c_str());
  std::printf("  errors        %s\n", sum.errors.summary().c_str());
  for (const std::string& sample : sum.errors.samples()) std::printf("    %s\n", sample.c_str());
  if (sum.due_not_started > 0) {
    std::printf("  behind        %s messages were due but never started\n",
                with_commas(sum.due_not_started).c_str());
  }
  std::fflush(stdout);
}

std::string json_report(const options& opts, const totals& sum, const char* backend, uint32_t connected) {
  loadgen::json_writer json;
  double rate = sum.elapsed_s > 0 ? double(sum.accepted) / sum.elapsed_s : 0;
  json.begin_object();
  json.field("tool", "mailwing-blaster");
  json.field("target", opts.target.host + ":" + std::to_string(opts.target.port));
  json.key("config");
  json.begin_object();
  json.field("connections", opts.connections);
  json.field("connected", connected);
  json.field("shards", opts.shards);
  json.field("io_backend", backend);
  json.field("mode", opts.rate > 0 ? "open" : "closed");
  if (opts.rate > 0) json.field("rate", opts.rate);
  json.field("messages", opts.messages_given || opts.duration_s == 0 ? opts.messages : uint64_t(0));
  json.field("duration_s", opts.duration_s);
  json.field("size", opts.sizes.spec());
  json.field("recipients", opts.recipients);
  json.field("mailboxes", opts.mailboxes);
  json.field("pipelining", sum.server.used_pipelining);
  json.field("bdat", sum.server.used_bdat);
  json.field("auth", opts.auth == auth_mechanism::plain   ? "plain"
                     : opts.auth == auth_mechanism::login ? "login"
                                                          : "none");
  json.end_object();
  json.key("server");
  json.begin_object();
  json.field("greeting", sum.server.greeting);
  json.field("pipelining", sum.server.pipelining);
  json.field("chunking", sum.server.chunking);
  json.field("auth", sum.server.auth);
  json.end_object();
  json.field("elapsed_s", sum.elapsed_s);
  json.key("messages");
  json.begin_object();
  json.field("sent", sum.started);
  json.field("accepted", sum.accepted);
  json.field("failed", sum.failed);
  json.field("due_not_started", sum.due_not_started);
  json.end_object();
  json.key("throughput");
  json.begin_object();
  json.field("msgs_per_s", rate);
  json.field("mb_per_s", sum.elapsed_s > 0 ? double(sum.bytes) / sum.elapsed_s / 1e6 : 0.0);
  json.field("bytes", sum.bytes);
  json.end_object();
  json.key("latency_us");
  loadgen::write_latency_us(json, sum.latency_ns);
  json.key("reply_codes");
  json.begin_object();
  for (size_t code = 0; code < sum.reply_codes.size(); ++code) {
    if (sum.reply_codes[code] != 0) json.field(std::to_string(code), sum.reply_codes[code]);
  }
  json.end_object();
  json.key("errors");
  sum.errors.write_json(json);
  json.end_object();
  return json.text();
}

int run(const options& opts) {
  loadgen::install_stop_signals();
  uint64_t fd_limit = loadgen::raise_fd_limit();
  if (opts.connections + 64 > fd_limit) {
    std::fprintf(stderr, "mailwing-blaster: %u connections need more file descriptors than the limit %" PRIu64 "\n",
                 opts.connections, fd_limit);
    return 2;
  }

  std::unique_ptr<loadgen::body_pool> pool;
  try {
    pool = loadgen::body_pool::generate(opts.sizes, default_pool(opts), opts.seed);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mailwing-blaster: generating bodies: %s\n", error.what());
    return 1;
  }

  run_context run;
  run.opts = &opts;
  run.pool = pool.get();
  run.date_header = rfc5322_date();
  for (size_t i = 0; i < pool->size(); ++i) {
    run.hash_headers.push_back(loadgen::hash_header_line(pool->at(i).hash_hex, pool->at(i).size_bytes));
  }
  size_t at = opts.to.find("{n}");
  run.to_has_number = at != std::string::npos;
  run.to_prefix = run.to_has_number ? opts.to.substr(0, at) : opts.to;
  run.to_suffix = run.to_has_number ? opts.to.substr(at + 3) : std::string();
  run.run_id = (uint64_t(time(nullptr)) << 20) ^ uint64_t(getpid());

  // Connect everything up front (blocking), then hand the sockets to the shards.
  std::vector<std::vector<int>> fds(opts.shards);
  std::string error;
  for (uint32_t i = 0; i < opts.connections; ++i) {
    int fd = loadgen::connect_tcp(opts.target, 10000, error);
    if (fd < 0) {
      std::fprintf(stderr, "mailwing-blaster: %s\n", error.c_str());
      for (auto& list : fds) {
        for (int open_fd : list) ::close(open_fd);
      }
      return 1;
    }
    fds[i % opts.shards].push_back(fd);
  }

  reactor::backend_options io;
  io.recv_buffer_bytes = 16384;
  io.recv_buffer_count = 1024;
  loadgen::shard_group group(opts.shards, opts.backend, opts.pin, io);
  std::vector<std::unique_ptr<shard_state>> states(opts.shards);
  uint64_t start_ns = loadgen::now_ns();
  if (opts.duration_s > 0) run.deadline_ns = start_ns + uint64_t(opts.duration_s * 1e9);
  try {
    group.start([&](reactor::shard& shard, uint32_t index) {
      uint64_t budget = opts.messages / opts.shards + (index < opts.messages % opts.shards ? 1 : 0);
      states[index] = std::make_unique<shard_state>(shard, run, index, opts.shards, budget, fds[index]);
    });
  } catch (const std::exception& failure) {
    std::fprintf(stderr, "mailwing-blaster: starting the reactor: %s\n", failure.what());
    return 1;
  }

  loadgen::progress_line progress(opts.progress && loadgen::progress_line::stderr_is_tty(), "msgs");
  auto next_progress = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  for (;;) {
    bool all_finished = true;
    for (const auto& state : states) all_finished = all_finished && state->finished();
    if (all_finished) break;
    if (loadgen::stop_signalled()) run.stop_sending.store(true, std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (progress.enabled() && std::chrono::steady_clock::now() >= next_progress) {
      next_progress += std::chrono::milliseconds(500);
      loadgen::progress_sample sample;
      sample.elapsed_s = double(loadgen::now_ns() - start_ns) / 1e9;
      for (const auto& state : states) {
        sample.messages += state->progress.accepted.load(std::memory_order_relaxed);
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
    sum.accepted += state->accepted;
    sum.failed += state->failed;
    sum.bytes += state->bytes;
    sum.started += state->started;
    sum.due_not_started += state->due_not_started;
    sum.first_start_ns = std::min(sum.first_start_ns, state->first_start_ns);
    sum.last_done_ns = std::max(sum.last_done_ns, state->last_done_ns);
    sum.latency_ns.merge(state->latency_ns);
    sum.errors.merge(state->errors);
    for (size_t code = 0; code < sum.reply_codes.size(); ++code) sum.reply_codes[code] += state->reply_codes()[code];
    if (!sum.server.known) sum.server = state->server;
  }
  // Throughput counts from the first message started to the last one finished, so
  // connection setup and QUIT are not part of it.
  if (sum.first_start_ns != UINT64_MAX && sum.last_done_ns > sum.first_start_ns) {
    sum.elapsed_s = double(sum.last_done_ns - sum.first_start_ns) / 1e9;
  } else {
    sum.elapsed_s = double(end_ns - start_ns) / 1e9;
  }

  const char* backend = loadgen::backend_name(group.backend());
  print_table(opts, sum, backend, opts.connections);
  if (!opts.json_path.empty() &&
      !loadgen::write_file(opts.json_path, json_report(opts, sum, backend, opts.connections))) {
    std::fprintf(stderr, "mailwing-blaster: cannot write %s: %s\n", opts.json_path.c_str(), std::strerror(errno));
    return 1;
  }
  bool complete = opts.duration_s > 0 || loadgen::stop_signalled() || sum.accepted == opts.messages;
  return sum.failed == 0 && sum.errors.total() == 0 && complete ? 0 : 1;
}

}  // namespace
}  // namespace mailwing::blaster

int main(int argc, char** argv) {
  mailwing::blaster::options opts;
  try {
    if (!mailwing::blaster::parse_options(argc, argv, opts)) return 0;
  } catch (const mailwing::loadgen::usage_error& error) {
    std::fprintf(stderr, "mailwing-blaster: %s (see --help)\n", error.what());
    return 2;
  }
  return mailwing::blaster::run(opts);
}
