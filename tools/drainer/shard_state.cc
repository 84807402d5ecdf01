#include "drainer/shard_state.hh"

#include <unistd.h>

#include <cinttypes>
#include <cstdio>

#include "drainer/pop3_client.hh"
#include "loadgen/runner.hh"

namespace mailwing::drainer {

shard_state::shard_state(reactor::shard& owner, run_context& run, uint32_t index, std::vector<size_t> accounts,
                         uint32_t sessions, std::vector<int> fds)
    : owner_(owner),
      run_(run),
      index_(index),
      carry_pool_(8192, 16),
      reply_timeouts_(uint64_t(run.opts->timeout_s * 1000.0 + 0.5)),
      scratch_(64 * 1024),
      accounts_(std::move(accounts)),
      sessions_max_(sessions) {
  owner_.add_timer_list(reply_timeouts_);
  owner_.add_loop_hook(*this);
  owner_.set_drained_check([this] { return clients_.empty(); });
  owner_.add_stop_hook([this](bool force) {
    if (!force) return;
    std::vector<pop3_client*> open = clients_;
    for (pop3_client* client : open) client->abort();
  });
  for (int fd : fds) {
    if (next_account_ < accounts_.size()) {
      start_session(fd);
    } else {
      ::close(fd);
    }
  }
  open_sessions();
}

shard_state::~shard_state() = default;

void shard_state::start_session(int fd) {
  uint64_t now = loadgen::now_ns();
  first_start_ns = std::min(first_start_ns, now);
  auto* client = new pop3_client(*this, fd, accounts_[next_account_++], now);
  clients_.push_back(client);
  progress.connections.store(clients_.size(), std::memory_order_relaxed);
  client->start();
}

void shard_state::open_sessions() {
  // The reactor has no asynchronous connect; a blocking one to a local server takes
  // microseconds, and it happens once per mailbox, not per message.
  while (clients_.size() < sessions_max_ && next_account_ < accounts_.size() &&
         !run_.stop.load(std::memory_order_relaxed)) {
    std::string error;
    int fd = loadgen::connect_tcp(run_.opts->target, 10000, error);
    if (fd < 0) {
      record_error("connect", run_.opts->accounts[accounts_[next_account_]].user + ": " + error);
      ++next_account_;
      continue;
    }
    start_session(fd);
  }
  if (clients_.empty() && (next_account_ >= accounts_.size() || run_.stop.load(std::memory_order_relaxed))) {
    finished_.store(true, std::memory_order_release);
  }
}

void shard_state::before_wait() {
  if (!finished()) open_sessions();
}

void shard_state::session_gone(pop3_client& client) {
  std::erase(clients_, &client);
  last_done_ns = loadgen::now_ns();
  progress.connections.store(clients_.size(), std::memory_order_relaxed);
}

void shard_state::record_retr(uint64_t latency, uint64_t message_bytes, uint64_t now) {
  ++messages;
  bytes += message_bytes;
  retr_ns.record(latency);
  last_done_ns = now;
  progress.messages.store(messages, std::memory_order_relaxed);
  progress.bytes.store(bytes, std::memory_order_relaxed);
}

void shard_state::record_integrity_failure(integrity_failure failure) {
  ++integrity_failures;
  char sizes[96] = "";
  if (failure.expected_bytes != failure.body_bytes && failure.expected_bytes != UINT64_MAX) {
    std::snprintf(sizes, sizeof(sizes), " (%" PRIu64 " body bytes, the header says %" PRIu64 ")",
                  failure.body_bytes, failure.expected_bytes);
  }
  // One line per failure, at once: a long run shows them as they happen.
  // On a terminal the progress line is erased first so the failure reads cleanly.
  static const bool tty = ::isatty(STDERR_FILENO) == 1;
  std::fprintf(stderr,
               "%smailwing-drainer: integrity failure: %s message %" PRIu64
               ": body sha256 %s, X-Mailwing-Hash says %s%s\n",
               tty ? "\r\033[K" : "", failure.user.c_str(), failure.message, failure.actual_hex.c_str(),
               failure.expected_hex.c_str(), sizes);
  progress.errors.fetch_add(1, std::memory_order_relaxed);
  if (failures.size() < failures_kept) failures.push_back(std::move(failure));
}

void shard_state::record_error(const std::string& kind, const std::string& detail) {
  errors.add(kind, detail);
  progress.errors.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace mailwing::drainer
