#include "blaster/smtp_client.hh"

#include <cassert>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "loadgen/report.hh"
#include "loadgen/runner.hh"
#include "mailwing/util/base64.hh"

namespace mailwing::blaster {
namespace {

// Reply lines longer than this are a protocol error (RFC 5321 allows 512).
constexpr size_t reply_line_bytes_max = 8000;

bool is_positive(int code) { return code >= 200 && code < 300; }

const char* phase_name(int phase) {
  static const char* const names[] = {"greeting", "EHLO", "HELO", "AUTH", "AUTH LOGIN user",
                                      "AUTH LOGIN password", "transaction", "QUIT", "closed"};
  return names[phase];
}

bool keyword_is(std::string_view text, std::string_view keyword) {
  if (text.size() < keyword.size()) return false;
  for (size_t i = 0; i < keyword.size(); ++i) {
    char c = text[i];
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
    if (c != keyword[i]) return false;
  }
  return text.size() == keyword.size() || text[keyword.size()] == ' ';
}

std::string reply_text(const char* command, int code, std::string_view text) {
  char head[64];
  std::snprintf(head, sizeof(head), "%s: %d ", command, code);
  std::string out(head);
  out += loadgen::printable(text, 160);
  return out;
}

}  // namespace

smtp_client::smtp_client(shard_state& state, int fd, uint32_t id)
    : net::connection(state.owner(), fd, 0),  // no send timeout: the run's own limits end a stuck server
      state_(state),
      opts_(state.opts()),
      id_(id),
      scanner_(reply_line_bytes_max, state.carry_pool()),
      pending_(2 * (size_t(opts_.recipients) + 4) + 8) {}

smtp_client::~smtp_client() { state_.client_gone(*this); }

void smtp_client::arm() { arm_deadline(state_.reply_timeouts()); }

void smtp_client::on_start() { arm(); }

void smtp_client::send_command(std::string_view line) {
  out_.assign(line);
  out_ += "\r\n";
  write(out_);
}

void smtp_client::push(expect kind, uint8_t tx) {
  assert(pending_count_ < pending_.size());
  pending_[(pending_head_ + pending_count_) % pending_.size()] = {kind, tx};
  ++pending_count_;
}

size_t smtp_client::on_input(std::string_view input) {
  size_t size = input.size();
  while (phase_ != phase::closed && !closing()) {
    wire::line_scanner::event event = scanner_.next(input);
    if (event.kind == wire::line_scanner::status::need_more) break;
    if (event.kind == wire::line_scanner::status::too_long) {
      protocol_error("reply line longer than 8000 bytes");
      break;
    }
    on_line(event.line);
  }
  return size;
}

void smtp_client::on_line(std::string_view line) {
  if (line.size() < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
      line[2] < '0' || line[2] > '9' || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
    protocol_error("malformed reply line '" + loadgen::printable(line, 80) + "'");
    return;
  }
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  bool last = line.size() == 3 || line[3] == ' ';
  std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
  if (phase_ == phase::ehlo && is_positive(code)) {
    if (keyword_is(text, "PIPELINING")) server_pipelining_ = true;
    if (keyword_is(text, "CHUNKING")) server_chunking_ = true;
    if (keyword_is(text, "AUTH") || text.substr(0, 5) == "AUTH=") server_auth_ = true;
  }
  if (!last) return;
  state_.count_reply(code);
  on_reply(code, text);
}

void smtp_client::on_reply(int code, std::string_view text) {
  if (phase_ == phase::ready) {
    on_transaction_reply(code, text);
  } else {
    on_session_reply(code, text);
  }
  if (phase_ != phase::closed && !closing()) {
    if (pending_count_ > 0 || phase_ != phase::ready) {
      arm();
    } else {
      disarm_deadline(state_.reply_timeouts());
    }
  }
}

void smtp_client::on_session_reply(int code, std::string_view text) {
  switch (phase_) {
    case phase::greeting:
      if (code != 220) {
        state_.record_error("greeting", reply_text("greeting", code, text));
        send_quit();
        return;
      }
      greeting_ = loadgen::printable(text, 160);
      send_command("EHLO " + opts_.helo);
      phase_ = phase::ehlo;
      return;
    case phase::ehlo:
    case phase::helo: {
      if (!is_positive(code)) {
        if (phase_ == phase::ehlo) {
          server_pipelining_ = server_chunking_ = server_auth_ = false;
          send_command("HELO " + opts_.helo);
          phase_ = phase::helo;
          return;
        }
        state_.record_error("helo", reply_text("HELO", code, text));
        send_quit();
        return;
      }
      pipelining_ = opts_.pipelining == tristate::on ||
                    (opts_.pipelining == tristate::auto_select && server_pipelining_);
      bdat_ = opts_.bdat == tristate::on || (opts_.bdat == tristate::auto_select && server_chunking_);
      if (opts_.auth == auth_mechanism::plain) {
        std::string token;
        token += '\0';
        token += opts_.auth_user;
        token += '\0';
        token += opts_.auth_password;
        send_command("AUTH PLAIN " + util::base64_encode(token));
        phase_ = phase::auth;
        return;
      }
      if (opts_.auth == auth_mechanism::login) {
        send_command("AUTH LOGIN");
        phase_ = phase::auth_login_user;
        return;
      }
      session_ready();
      return;
    }
    case phase::auth_login_user:
    case phase::auth_login_password:
      if (code != 334) {
        state_.record_error("auth", reply_text("AUTH LOGIN", code, text));
        send_quit();
        return;
      }
      if (phase_ == phase::auth_login_user) {
        send_command(util::base64_encode(opts_.auth_user));
        phase_ = phase::auth_login_password;
      } else {
        send_command(util::base64_encode(opts_.auth_password));
        phase_ = phase::auth;
      }
      return;
    case phase::auth:
      if (code != 235) {
        state_.record_error("auth", reply_text("AUTH", code, text));
        send_quit();
        return;
      }
      session_ready();
      return;
    case phase::quit:
      phase_ = phase::closed;
      close_after_output();
      return;
    case phase::ready:
    case phase::closed:
      return;
  }
}

void smtp_client::session_ready() {
  phase_ = phase::ready;
  server_info info;
  info.known = true;
  info.greeting = greeting_;
  info.pipelining = server_pipelining_;
  info.chunking = server_chunking_;
  info.auth = server_auth_;
  info.used_pipelining = pipelining_;
  info.used_bdat = bdat_;
  state_.note_server(info);
  counted_ready_ = true;
  state_.client_ready();
  begin_transaction();
}

void smtp_client::begin_transaction() { start_transaction(false); }

bool smtp_client::start_transaction(bool early) {
  assert(phase_ == phase::ready && tx_count_ < 2);
  uint64_t now = loadgen::now_ns();
  uint64_t due_ns = 0, sequence = 0;
  shard_state::take outcome = state_.take_message(now, due_ns, sequence);
  if (outcome != shard_state::take::message) {
    if (early) return false;
    if (outcome == shard_state::take::wait) {
      waiting_ = true;
      state_.wait_for_message(*this);
    } else {
      send_quit();
    }
    return false;
  }
  auto index = uint8_t((tx_first_ + tx_count_) % 2);
  ++tx_count_;
  transaction& tx = txs_[index];
  tx = transaction();
  tx.start_ns = due_ns;
  tx.sequence = sequence;
  tx.body = uint32_t(sequence % state_.run().pool->size());
  out_.assign("MAIL FROM:<");
  out_ += opts_.from;
  out_ += ">\r\n";
  write(out_);
  push(expect::mail, index);
  if (pipelining_) send_envelope_rest(tx);
  return true;
}

void smtp_client::send_rcpt(transaction& tx) {
  const run_context& run = state_.run();
  uint64_t mailbox = opts_.mailbox_base + (tx.sequence * opts_.recipients + tx.rcpts_sent) % opts_.mailboxes;
  char number[24];
  std::snprintf(number, sizeof(number), "%" PRIu64, mailbox);
  out_.assign("RCPT TO:<");
  out_ += run.to_prefix;
  if (run.to_has_number) out_ += number;
  out_ += run.to_suffix;
  out_ += ">\r\n";
  write(out_);
  ++tx.rcpts_sent;
  push(expect::rcpt, uint8_t(&tx - txs_));
}

// The rest of the envelope after MAIL (pipelined: all of it at once).
void smtp_client::send_envelope_rest(transaction& tx) {
  while (tx.rcpts_sent < opts_.recipients) send_rcpt(tx);
  if (bdat_) {
    send_content(tx);
  } else {
    write("DATA\r\n");
    push(expect::data, uint8_t(&tx - txs_));
  }
}

size_t smtp_client::format_headers(const transaction& tx, char* out, size_t capacity) {
  const run_context& run = state_.run();
  uint64_t mailbox = opts_.mailbox_base + (tx.sequence * opts_.recipients) % opts_.mailboxes;
  char number[24] = "";
  if (run.to_has_number) std::snprintf(number, sizeof(number), "%" PRIu64, mailbox);
  int length = std::snprintf(
      out, capacity,
      "From: <%s>\r\nTo: <%s%s%s>\r\nSubject: mailwing-blaster message %" PRIu64
      "\r\nMessage-ID: <%016" PRIx64 ".%" PRIu64 "@mailwing-blaster>\r\n%s%s\r\n",
      opts_.from.c_str(), run.to_prefix.c_str(), number, run.to_suffix.c_str(), tx.sequence,
      run.run_id, tx.sequence, run.date_header.c_str(),
      run.hash_headers[tx.body].c_str());
  assert(length > 0 && size_t(length) < capacity);
  return size_t(length);
}

void smtp_client::send_content(transaction& tx) {
  const loadgen::body& body = state_.run().pool->at(tx.body);
  char headers[2048];
  size_t header_bytes = format_headers(tx, headers, sizeof(headers));
  tx.message_bytes = header_bytes + body.size_bytes;
  tx.content_sent = true;
  if (bdat_) {
    char command[64];
    std::snprintf(command, sizeof(command), "BDAT %" PRIu64 " LAST\r\n", tx.message_bytes);
    write(command);
    write(std::string_view(headers, header_bytes));
    if (body.fd >= 0) {
      write_file(body.fd, 0, body.size_bytes);
    } else {
      write(body.raw);
    }
  } else {
    write(std::string_view(headers, header_bytes));
    if (body.fd >= 0) {
      write_file(body.fd, body.stuffed_offset(), body.stuffed_bytes);
    } else {
      write(body.stuffed);
    }
    write(".\r\n");
  }
  push(expect::content, uint8_t(&tx - txs_));
}

void smtp_client::fail(transaction& tx, const char* command, int code, std::string_view text) {
  if (tx.failed) return;
  tx.failed = true;
  tx.failure = reply_text(command, code, text);
}

void smtp_client::finish_transaction(uint8_t index, bool success, int code, std::string_view text) {
  (void)code;
  (void)text;
  assert(tx_count_ > 0 && index == tx_first_);
  transaction& tx = txs_[index];
  uint64_t now = loadgen::now_ns();
  if (success) {
    state_.record_success(now > tx.start_ns ? now - tx.start_ns : 0, tx.message_bytes, now);
  } else {
    state_.record_failure("rejected", tx.failure);
  }
  tx_first_ = uint8_t((tx_first_ + 1) % 2);
  --tx_count_;
}

void smtp_client::send_rset() {
  write("RSET\r\n");
  push(expect::rset, tx_first_);
}

void smtp_client::on_transaction_reply(int code, std::string_view text) {
  if (pending_count_ == 0) {
    protocol_error(reply_text("unexpected reply", code, text));
    return;
  }
  pending next = pending_[pending_head_];
  pending_head_ = (pending_head_ + 1) % pending_.size();
  --pending_count_;
  transaction& tx = txs_[next.tx];
  switch (next.kind) {
    case expect::mail:
      if (!is_positive(code)) fail(tx, "MAIL", code, text);
      if (pipelining_) return;
      if (tx.failed) {
        finish_transaction(next.tx, false, code, text);
        send_rset();
        return;
      }
      send_rcpt(tx);
      return;
    case expect::rcpt:
      if (is_positive(code)) {
        ++tx.rcpts_ok;
      } else {
        fail(tx, "RCPT", code, text);
      }
      if (pipelining_) return;
      if (tx.rcpts_sent < opts_.recipients) {
        send_rcpt(tx);
      } else if (tx.rcpts_ok == 0) {
        finish_transaction(next.tx, false, code, text);
        send_rset();
      } else {
        send_envelope_rest(tx);
      }
      return;
    case expect::data:
      if (code == 354) {
        send_content(tx);
        // The next envelope rides along with this end of data.
        if (pipelining_ && tx_count_ < 2) start_transaction(true);
        return;
      }
      // Refused: the envelope is still open on the server; RSET before the next one.
      fail(tx, "DATA", code, text);
      finish_transaction(next.tx, false, code, text);
      send_rset();
      return;
    case expect::content: {
      bool accepted = is_positive(code);
      if (!accepted) fail(tx, bdat_ ? "BDAT" : "end of data", code, text);
      finish_transaction(next.tx, accepted && !tx.failed, code, text);
      if (!accepted && bdat_) {
        send_rset();
        return;
      }
      // With an early next transaction in flight, its replies come next.
      if (tx_count_ == 0) begin_transaction();
      return;
    }
    case expect::rset:
      // RSET always waits for its reply, so nothing else is in flight here.
      assert(tx_count_ == 0 && pending_count_ == 0);
      begin_transaction();
      return;
    case expect::quit:
      return;
  }
}

void smtp_client::message_available() {
  waiting_ = false;
  if (phase_ != phase::ready || closing()) return;
  begin_transaction();
  if (pending_count_ > 0 || phase_ != phase::ready) arm();
  flush();
}

void smtp_client::send_quit() {
  assert(pending_count_ == 0);
  write("QUIT\r\n");
  phase_ = phase::quit;
  arm();
}

void smtp_client::protocol_error(const std::string& detail) {
  state_.record_error("protocol", detail);
  phase_ = phase::closed;
  close_now();
}

void smtp_client::on_deadline() {
  char detail[128];
  std::snprintf(detail, sizeof(detail), "no reply within %.0f s (%s)", opts_.timeout_s,
                phase_name(int(phase_)));
  state_.record_error("timeout", detail);
  phase_ = phase::closed;
  close_now();
}

void smtp_client::abort() {
  if (phase_ != phase::closed) state_.record_error("aborted", "still open when the run was stopped");
  phase_ = phase::closed;
  close_now();
}

void smtp_client::on_input_end() {
  if (phase_ != phase::quit && phase_ != phase::closed) {
    state_.record_error("closed", std::string("server closed the connection (") +
                                      phase_name(int(phase_)) + ")");
  }
  // Whatever was in flight did not make it.
  while (tx_count_ > 0) {
    transaction& tx = txs_[tx_first_];
    state_.record_failure("unfinished", "transaction " + std::to_string(tx.sequence) +
                                            " cut off by the end of its session");
    tx_first_ = uint8_t((tx_first_ + 1) % 2);
    --tx_count_;
  }
  pending_count_ = 0;
  phase_ = phase::closed;
  if (waiting_) {
    state_.cancel_wait(*this);
    waiting_ = false;
  }
  if (!counted_ready_) {
    counted_ready_ = true;
    state_.client_ready();
  }
  scanner_.reset();
  // The peer's side is done (or the connection broke): nothing more to say.
  close_now();
}

}  // namespace mailwing::blaster
