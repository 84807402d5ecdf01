#include "blaster/shard_state.hh"

#include <algorithm>

#include "blaster/smtp_client.hh"
#include "loadgen/runner.hh"

namespace mailwing::blaster {

shard_state::shard_state(reactor::shard& owner, run_context& run, uint32_t index, uint32_t shard_count,
                         uint64_t message_budget, const std::vector<int>& fds)
    : owner_(owner),
      run_(run),
      index_(index),
      shard_count_(shard_count),
      carry_pool_(8192, 16),
      reply_timeouts_(uint64_t(run.opts->timeout_s * 1000.0 + 0.5)),
      budget_(message_budget),
      reply_codes_(1000, 0) {
  owner_.add_timer_list(reply_timeouts_);
  owner_.add_timer_list(ticks_);
  if (open_loop()) interval_ns_ = 1e9 * double(shard_count) / run.opts->rate;
  owner_.set_drained_check([this] { return clients_.empty(); });
  owner_.add_stop_hook([this](bool force) {
    if (!force) return;
    std::vector<smtp_client*> open = clients_;
    for (smtp_client* client : open) client->abort();
  });
  clients_total_ = uint32_t(fds.size());
  progress.connections.store(fds.size(), std::memory_order_relaxed);
  for (size_t i = 0; i < fds.size(); ++i) {
    clients_.push_back(new smtp_client(*this, fds[i], uint32_t(i * shard_count + index)));
  }
  if (clients_.empty()) finished_.store(true, std::memory_order_release);
  std::vector<smtp_client*> starting = clients_;
  for (smtp_client* client : starting) client->start();
}

shard_state::~shard_state() = default;

bool shard_state::out_of_messages(uint64_t now) const {
  if (run_.stop_sending.load(std::memory_order_relaxed)) return true;
  if (run_.deadline_ns != 0 && now >= run_.deadline_ns) return true;
  return open_loop() ? scheduled_ >= budget_ : budget_ == 0;
}

shard_state::take shard_state::take_message(uint64_t now, uint64_t& due_ns, uint64_t& sequence) {
  if (run_.stop_sending.load(std::memory_order_relaxed) ||
      (run_.deadline_ns != 0 && now >= run_.deadline_ns)) {
    return take::done;
  }
  if (open_loop()) {
    if (due_.empty()) return out_of_messages(now) ? take::done : take::wait;
    due_ns = due_.front();
    due_.pop_front();
  } else {
    if (budget_ == 0) return take::done;
    --budget_;
    due_ns = now;
  }
  sequence = sequence_++ * shard_count_ + index_;
  ++started;
  first_start_ns = std::min(first_start_ns, due_ns);
  return take::message;
}

void shard_state::wait_for_message(smtp_client& client) { waiting_.push_back(&client); }

void shard_state::cancel_wait(smtp_client& client) { std::erase(waiting_, &client); }

void shard_state::client_ready() {
  ++clients_ready_;
  if (open_loop() && !pacing_ && clients_ready_ == clients_total_) {
    // The schedule starts once every session of this shard can send, so handshakes do
    // not count as server latency.
    pacing_ = true;
    schedule_start_ns_ = loadgen::now_ns();
    ticks_.arm(*this, owner_.now_ms());
  }
}

void shard_state::schedule_due(uint64_t now) {
  if (!pacing_) return;
  uint64_t limit = run_.deadline_ns != 0 ? std::min(now, run_.deadline_ns) : now;
  while (scheduled_ < budget_ && !run_.stop_sending.load(std::memory_order_relaxed)) {
    auto due = schedule_start_ns_ + uint64_t(double(scheduled_) * interval_ns_);
    if (due > limit) break;
    due_.push_back(due);
    ++scheduled_;
  }
}

void shard_state::wake_waiters() {
  uint64_t now = loadgen::now_ns();
  // One waiter per due message; once none will ever come, every waiter (to QUIT). The
  // second condition can become true during the loop, when the last due message goes.
  while (!waiting_.empty() && (!due_.empty() || out_of_messages(now))) {
    smtp_client* client = waiting_.back();
    waiting_.pop_back();
    client->message_available();
  }
}

void shard_state::on_timer() {
  uint64_t now = loadgen::now_ns();
  schedule_due(now);
  wake_waiters();
  if (!clients_.empty() && !(due_.empty() && out_of_messages(loadgen::now_ns()))) {
    ticks_.arm(*this, owner_.now_ms());
  }
}

void shard_state::client_gone(smtp_client& client) {
  std::erase(clients_, &client);
  std::erase(waiting_, &client);
  progress.connections.store(clients_.size(), std::memory_order_relaxed);
  if (clients_.empty()) {
    due_not_started = due_.size();
    disarm_timer();
    finished_.store(true, std::memory_order_release);
  }
}

void shard_state::record_success(uint64_t latency, uint64_t message_bytes, uint64_t now) {
  ++accepted;
  bytes += message_bytes;
  latency_ns.record(latency);
  last_done_ns = now;
  progress.accepted.store(accepted, std::memory_order_relaxed);
  progress.bytes.store(bytes, std::memory_order_relaxed);
}

void shard_state::record_failure(const std::string& kind, const std::string& detail) {
  ++failed;
  last_done_ns = loadgen::now_ns();
  errors.add(kind, detail);
  progress.errors.store(errors.total(), std::memory_order_relaxed);
}

void shard_state::record_error(const std::string& kind, const std::string& detail) {
  errors.add(kind, detail);
  progress.errors.store(errors.total(), std::memory_order_relaxed);
}

void shard_state::note_server(const server_info& info) {
  if (!server.known) server = info;
}

}  // namespace mailwing::blaster
