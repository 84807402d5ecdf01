#include "drainer/pop3_client.hh"

#include <cassert>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "mailwing/util/md5.hh"
#include "loadgen/report.hh"
#include "loadgen/runner.hh"

namespace mailwing::drainer {
namespace {

constexpr size_t status_line_bytes_max = 8000;

const char* phase_name(int phase) {
  static const char* const names[] = {"greeting", "USER", "PASS", "APOP", "STAT", "transaction", "QUIT",
                                      "closed"};
  return names[phase];
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.substr(0, prefix.size()) == prefix;
}

// "+OK 17 20480" -> 17, 20480
bool parse_stat(std::string_view line, uint64_t& messages, uint64_t& octets) {
  unsigned long long count = 0, size = 0;
  std::string copy(line.substr(0, 120));
  if (std::sscanf(copy.c_str(), "+OK %llu %llu", &count, &size) != 2) return false;
  messages = count;
  octets = size;
  return true;
}

}  // namespace

pop3_client::pop3_client(shard_state& state, int fd, size_t account_index, uint64_t connect_ns)
    : net::connection(state.owner(), fd, 0),  // no send timeout: the run's own limits end a stuck server
      state_(state),
      opts_(state.opts()),
      account_(opts_.accounts[account_index]),
      scanner_(status_line_bytes_max, state.carry_pool()),
      pending_(size_t(opts_.window) * 2 + 4) {
  (void)connect_ns;
}

pop3_client::~pop3_client() { state_.session_gone(*this); }

void pop3_client::arm() { arm_deadline(state_.reply_timeouts()); }

void pop3_client::on_start() { arm(); }

void pop3_client::send(std::string_view command) {
  out_.assign(command);
  out_ += "\r\n";
  write(out_);
  arm();
}

size_t pop3_client::on_input(std::string_view input) {
  size_t size = input.size();
  while (!input.empty() && phase_ != phase::closed && !closing()) {
    if (in_body_) {
      wire::dot_unstuffer::result fed = unstuffer_.feed(input, state_.scratch(), state_.scratch_bytes());
      input.remove_prefix(fed.consumed_bytes);
      if (fed.produced_bytes > 0) {
        body_bytes_ += fed.produced_bytes;
        if (opts_.verify) verifier_.feed(std::string_view(state_.scratch(), fed.produced_bytes));
      }
      if (fed.finished) body_ended();
      continue;
    }
    wire::line_scanner::event event = scanner_.next(input);
    if (event.kind == wire::line_scanner::status::need_more) break;
    if (event.kind == wire::line_scanner::status::too_long) {
      fail_session("protocol", "status line longer than 8000 bytes");
      break;
    }
    bool ok = starts_with(event.line, "+OK");
    if (!ok && !starts_with(event.line, "-ERR")) {
      fail_session("protocol", "not a status line: '" + loadgen::printable(event.line, 80) + "'");
      break;
    }
    state_.count_reply(ok);
    on_status(ok, event.line);
  }
  return size;
}

void pop3_client::on_status(bool ok, std::string_view line) {
  uint64_t now = loadgen::now_ns();
  switch (phase_) {
    case phase::greeting: {
      if (!ok) {
        fail_session("greeting", loadgen::printable(line));
        return;
      }
      login_start_ns_ = now;
      if (opts_.apop) {
        size_t open = line.find('<');
        size_t close = open == std::string_view::npos ? open : line.find('>', open);
        if (close == std::string_view::npos) {
          fail_session("login", "APOP: the greeting has no <timestamp>");
          return;
        }
        std::string digest = util::md5_hex(std::string(line.substr(open, close - open + 1)) + account_.password);
        send("APOP " + account_.user + " " + digest);
        phase_ = phase::apop;
      } else {
        send("USER " + account_.user);
        phase_ = phase::user;
      }
      return;
    }
    case phase::user:
      if (!ok) {
        fail_session("login", account_.user + ": USER: " + loadgen::printable(line));
        return;
      }
      send("PASS " + account_.password);
      phase_ = phase::pass;
      return;
    case phase::pass:
    case phase::apop:
      if (!ok) {
        fail_session("login", account_.user + ": " + phase_name(int(phase_)) + ": " + loadgen::printable(line));
        return;
      }
      state_.record_login(now - login_start_ns_);
      send("STAT");
      phase_ = phase::stat;
      return;
    case phase::stat: {
      uint64_t messages = 0, octets = 0;
      if (!ok || !parse_stat(line, messages, octets)) {
        fail_session("stat", account_.user + ": STAT: " + loadgen::printable(line));
        return;
      }
      state_.note_mailbox(messages, octets);
      total_ = std::min(messages, opts_.max_messages);
      phase_ = phase::transaction;
      if (total_ == 0) {
        send_quit();
      } else {
        send_retr();
      }
      return;
    }
    case phase::transaction:
      on_transaction_status(ok, line);
      return;
    case phase::quit:
      state_.record_quit(now - quit_start_ns_);
      if (!ok) state_.record_error("quit", account_.user + ": QUIT: " + loadgen::printable(line));
      phase_ = phase::closed;
      close_after_output();
      return;
    case phase::closed:
      return;
  }
}

void pop3_client::send_retr() {
  out_.clear();
  uint64_t now = loadgen::now_ns();
  size_t retr_in_flight = 0;
  for (size_t i = 0; i < pending_count_; ++i) {
    if (pending_[(pending_head_ + i) % pending_.size()].kind == expect::retr) ++retr_in_flight;
  }
  while (retr_in_flight < opts_.window && next_retr_ <= total_ && !state_.run().stop.load(std::memory_order_relaxed)) {
    assert(pending_count_ < pending_.size());
    pending_[(pending_head_ + pending_count_) % pending_.size()] = {expect::retr, next_retr_, now};
    ++pending_count_;
    ++retr_in_flight;
    char command[40];
    std::snprintf(command, sizeof(command), "RETR %" PRIu64 "\r\n", next_retr_);
    out_ += command;
    ++next_retr_;
  }
  if (!out_.empty()) {
    write(out_);
    arm();
  }
}

void pop3_client::on_transaction_status(bool ok, std::string_view line) {
  if (pending_count_ == 0) {
    fail_session("protocol", "unexpected response '" + loadgen::printable(line, 80) + "'");
    return;
  }
  pending& front = pending_[pending_head_];
  if (front.kind == expect::retr && ok) {
    // The message follows; the entry stays queued until its end.
    in_body_ = true;
    body_message_ = front.message;
    body_bytes_ = 0;
    unstuffer_.reset();
    verifier_.reset();
    return;
  }
  pending done = front;
  pending_head_ = (pending_head_ + 1) % pending_.size();
  --pending_count_;
  if (done.kind == expect::retr) {
    ++retrieved_;
    char detail[64];
    std::snprintf(detail, sizeof(detail), ": RETR %" PRIu64 ": ", done.message);
    state_.record_error("retr", account_.user + detail + loadgen::printable(line));
    send_retr();
  } else if (ok) {
    state_.record_deleted();
  } else {
    char detail[64];
    std::snprintf(detail, sizeof(detail), ": DELE %" PRIu64 ": ", done.message);
    state_.record_error("dele", account_.user + detail + loadgen::printable(line));
  }
  maybe_quit();
}

void pop3_client::body_ended() {
  in_body_ = false;
  assert(pending_count_ > 0 && pending_[pending_head_].kind == expect::retr);
  pending done = pending_[pending_head_];
  pending_head_ = (pending_head_ + 1) % pending_.size();
  --pending_count_;
  ++retrieved_;
  uint64_t now = loadgen::now_ns();
  state_.record_retr(now - done.sent_ns, body_bytes_, now);
  if (opts_.verify) {
    loadgen::body_verifier::result checked = verifier_.finish();
    switch (checked.outcome) {
      case loadgen::body_verifier::verdict::ok:
        state_.record_verified();
        break;
      case loadgen::body_verifier::verdict::mismatch: {
        integrity_failure failure;
        failure.user = account_.user;
        failure.message = done.message;
        failure.kind = "mismatch";
        failure.expected_hex = checked.expected_hex;
        failure.actual_hex = checked.actual_hex;
        failure.expected_bytes = checked.expected_bytes;
        failure.body_bytes = checked.body_bytes;
        state_.record_integrity_failure(std::move(failure));
        break;
      }
      case loadgen::body_verifier::verdict::no_header:
      case loadgen::body_verifier::verdict::headers_too_long:
        state_.record_unverified();
        break;
    }
  }
  if (opts_.dele) {
    assert(pending_count_ < pending_.size());
    pending_[(pending_head_ + pending_count_) % pending_.size()] = {expect::dele, done.message, now};
    ++pending_count_;
    char command[40];
    std::snprintf(command, sizeof(command), "DELE %" PRIu64, done.message);
    send(command);
  }
  send_retr();
  maybe_quit();
}

void pop3_client::maybe_quit() {
  bool stopping = state_.run().stop.load(std::memory_order_relaxed);
  if (pending_count_ == 0 && (next_retr_ > total_ || stopping)) send_quit();
}

void pop3_client::send_quit() {
  quit_start_ns_ = loadgen::now_ns();
  send("QUIT");
  phase_ = phase::quit;
}

void pop3_client::fail_session(const std::string& kind, const std::string& detail) {
  state_.record_error(kind, detail);
  if (kind == "protocol" || pending_count_ > 0 || in_body_) {
    phase_ = phase::closed;
    close_now();
    return;
  }
  send_quit();
}

void pop3_client::on_deadline() {
  char detail[160];
  std::snprintf(detail, sizeof(detail), "%s: no reply within %.0f s (%s)", account_.user.c_str(),
                opts_.timeout_s, phase_name(int(phase_)));
  state_.record_error("timeout", detail);
  phase_ = phase::closed;
  close_now();
}

void pop3_client::abort() {
  if (phase_ != phase::closed) state_.record_error("aborted", account_.user + ": still open when the run was stopped");
  phase_ = phase::closed;
  close_now();
}

void pop3_client::on_input_end() {
  if (phase_ != phase::quit && phase_ != phase::closed) {
    state_.record_error("closed", account_.user + ": server closed the connection (" +
                                      phase_name(int(phase_)) + ")");
  }
  phase_ = phase::closed;
  scanner_.reset();
  // The peer's side is done (or the connection broke): nothing more to say.
  close_now();
}

}  // namespace mailwing::drainer
