#include "mailwing/pop3/session.hh"

#include <fcntl.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>

#include "mailwing/auth/sasl.hh"
#include "mailwing/pop3/service.hh"
#include "mailwing/store/record.hh"
#include "mailwing/util/ascii.hh"
#include "mailwing/util/log.hh"
#include "mailwing/util/task.hh"

namespace mailwing::pop3 {
namespace {

// A streamed RETR/TOP adds at most this much output before waiting for the socket.
constexpr size_t stream_step_bytes = 256 * 1024;
// Below this, copying from the read window into the output beats sendfile: pipelined
// RETRs of small messages then cost one pread per window and leave in one send, where
// sendfile needs a send, a sendfile and another send per message (bench/compare measures
// both paths). At most log_window::capacity_bytes().
constexpr uint64_t sendfile_bytes_min = 64 * 1024;
// A RETR by sendfile queues this much at a time (no memory involved: larger steps).
constexpr uint64_t file_step_bytes = 1 << 20;

std::string number_text(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof(text), "%" PRIu64, value);
  return text;
}

}  // namespace

session::session(service& owner_service, const net::accepted_socket& socket)
    : net::connection(owner_service.owner(), socket, owner_service.cfg().pop3.send_timeout_ms),
      service_(owner_service),
      window_(owner_service.read_pool()),
      scanner_(service::line_bytes_max, owner_service.carry_pool()),
      login_(*owner_service.shared().auth, owner_service.login_waits(), owner_service.owner(), "pop3") {
  service_.sessions().add(*this);
}

session::~session() {
  assert(!locked_);
  if (log_fd_ >= 0) ::close(log_fd_);
  service_.sessions().remove(*this);
}

void session::reply(std::string_view text) {
  write(text);
  write("\r\n");
}

void session::arm_autologout() { arm_deadline(service_.autologout_timeouts()); }

void session::on_start() {
  timestamp_ = service_.next_timestamp();
  reply("+OK " + service_.cfg().hostname + " POP3 server ready " + timestamp_);
  arm_autologout();
}

void session::on_deadline() {
  // RFC 1939 §3: the autologout timer closes the session without an UPDATE and
  // without a response.
  unlock_maildrop();
  close_now();
}

// The autologout timer runs from the end of the previous command (or the greeting, or the
// last output a long RETR got rid of): only a complete line restarts it, so a client that
// drips a command a byte at a time is logged out like an idle one.
size_t session::on_input(std::string_view input) {
  std::string_view rest = input;
  // The loop runs until the scanner reports need_more even when `rest` is empty: that
  // last call is what hands a carry block back to the pool.
  while (!closing()) {
    if (phase_ != phase::authorization && phase_ != phase::sasl_response &&
        phase_ != phase::transaction) {
      // Paused even with nothing left, so that the end of input (a client that sent QUIT
      // and half-closed) waits for the answer instead of cutting it off.
      pause_input();
      break;
    }
    // Congested output resumes once the client reads its responses; a TLS handshake that
    // STLS began takes over the connection, and the rest of this input is dropped.
    if (input_suspended()) break;
    wire::line_scanner::event event = scanner_.next(rest);
    if (event.kind == wire::line_scanner::status::need_more) break;
    if (event.kind == wire::line_scanner::status::too_long) {
      // Answered at once, before the line ends (it may never); the rest of it is dropped.
      if (phase_ == phase::sasl_response) phase_ = phase::authorization;
      error("-ERR line too long");
    } else {
      handle_line(event.line);
    }
    // Phases that wait for our own work (a check, the lock, a commit) have no timer, nor
    // has a closing connection (its timer is the connection's linger).
    if (closing()) break;
    if (phase_ == phase::authorization || phase_ == phase::sasl_response || phase_ == phase::transaction ||
        phase_ == phase::streaming || phase_ == phase::sending) {
      arm_autologout();
    }
  }
  // Until the client's next command, no read memory is held.
  window_.release();
  if (closing()) return input.size();
  return input.size() - rest.size();
}

void session::on_input_end() {
  scanner_.reset();
  // A session that ends without QUIT deletes nothing (RFC 1939 §6).
  if (phase_ != phase::updating && phase_ != phase::locking) unlock_maildrop();
  close_after_output();
}

void session::handle_line(std::string_view line) {
  if (line.find('\0') != std::string_view::npos) {
    // Also ends a SASL exchange: after -ERR the client starts over (RFC 5034 §4).
    if (phase_ == phase::sasl_response) phase_ = phase::authorization;
    error("-ERR NUL byte in command");
    return;
  }
  if (phase_ == phase::sasl_response) {
    phase_ = phase::authorization;
    sasl_plain(line);
    return;
  }
  command parsed = parse_command(line);
  if (parsed.name == verb::capa) {
    capa();
    return;
  }
  if (phase_ == phase::authorization) {
    authorization_command(parsed);
  } else {
    transaction_command(parsed);
  }
}

void session::error(std::string_view text) {
  if (errors_.count()) {
    // One response per command, so this one says why the connection ends.
    reply("-ERR too many errors, closing connection");
    unlock_maildrop();
    close_after_output();
    return;
  }
  reply(text);
}

void session::capa() {
  // Where logins need TLS, none is offered before it (RFC 2595 §4).
  bool logins = login_allowed();
  reply("+OK Capability list follows");
  write(logins ? "TOP\r\nUSER\r\n" : "TOP\r\n");
  write("UIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n");
  if (logins) write("SASL PLAIN\r\n");
  if (phase_ == phase::authorization && stls_offered()) write("STLS\r\n");
  write("EXPIRE NEVER\r\nIMPLEMENTATION mailwing\r\n.\r\n");
}

bool session::stls_offered() const { return service_.shared().tls != nullptr && !tls_started(); }

bool session::login_allowed() const { return !*service_.cfg().pop3.auth_requires_tls || tls_active(); }

// RFC 2595 §4: only in the AUTHORIZATION state; the +OK goes out in clear text, then the
// handshake, and whatever the client sent behind STLS in clear text is dropped.
void session::command_stls(const command& parsed) {
  if (!stls_offered()) {
    error(tls_started() ? "-ERR TLS already active" : "-ERR STLS not supported");
    return;
  }
  if (parsed.argument_count != 0) {
    error("-ERR usage: STLS");
    return;
  }
  std::shared_ptr<net::tls_context> context = service_.shared().tls->current();
  reply("+OK Begin TLS negotiation");
  user_.clear();
  scanner_.reset();
  start_tls(*context, service_.cfg().pop3.autologout_timeout_ms);
}

void session::on_tls_established() { arm_autologout(); }

bool session::refuse_login_without_tls() {
  if (login_allowed()) return false;
  error("-ERR [AUTH] plain text logins are not allowed here: use STLS first");
  return true;
}

void session::authorization_command(const command& parsed) {
  switch (parsed.name) {
    case verb::user:
      if (refuse_login_without_tls()) return;
      if (parsed.argument_count != 1) {
        error("-ERR usage: USER name");
        return;
      }
      // Always +OK: whether the user exists is only decided, silently, at PASS.
      user_ = std::string(parsed.arguments[0]);
      reply("+OK");
      return;
    case verb::pass: {
      if (refuse_login_without_tls()) return;
      if (user_.empty()) {
        error("-ERR USER first");
        return;
      }
      if (parsed.rest.empty()) {
        error("-ERR usage: PASS password");
        return;
      }
      check_password({std::exchange(user_, {}), std::string(parsed.rest), {}});
      return;
    }
    case verb::apop:
      if (refuse_login_without_tls()) return;
      if (parsed.argument_count != 2 || parsed.too_many_arguments) {
        error("-ERR usage: APOP name digest");
        return;
      }
      check_password({std::string(parsed.arguments[0]), std::string(parsed.arguments[1]), timestamp_});
      return;
    case verb::auth: {
      if (refuse_login_without_tls()) return;
      if (parsed.argument_count == 0) {
        // The RFC 1734 form some clients use to list mechanisms.
        reply("+OK\r\nPLAIN\r\n.");
        return;
      }
      if (!util::equals_lower(parsed.arguments[0], "plain")) {
        // Not [AUTH]: RFC 3206 keeps that for bad credentials.
        error("-ERR unsupported mechanism");
        return;
      }
      if (parsed.argument_count == 2) {
        sasl_plain(parsed.arguments[1]);
        return;
      }
      phase_ = phase::sasl_response;
      reply("+ ");
      return;
    }
    case verb::quit:
      reply("+OK " + service_.cfg().hostname + " POP3 server signing off");
      close_after_output();
      return;
    case verb::stls:
      command_stls(parsed);
      return;
    case verb::unknown:
      error("-ERR unknown command");
      return;
    default:
      // A TRANSACTION command (RFC 1939 §5): there is no maildrop before a login.
      error("-ERR not logged in: use USER and PASS, APOP or AUTH first");
      return;
  }
}

void session::sasl_plain(std::string_view response) {
  if (response == "*") {
    reply("-ERR authentication canceled");
    return;
  }
  auth::credentials offered;
  switch (auth::decode_plain(response, offered)) {
    case auth::plain_status::cannot_decode:
      error("-ERR cannot decode response");
      return;
    case auth::plain_status::malformed:
      error("-ERR malformed PLAIN response");
      return;
    case auth::plain_status::ok:
      check_password(std::move(offered));
      return;
  }
}

void session::check_password(auth::credentials offered) {
  phase_ = phase::checking;
  disarm_timer();
  hold();
  login_.check(peer(), std::move(offered), [this](const auth::login_result& result) {
    if (!closing()) {
      phase_ = phase::authorization;
      login_checked(result);
      if (phase_ == phase::authorization) {
        arm_autologout();
        resume_input();
      }
    }
    release_hold();  // may delete this
  });
}

void session::login_checked(const auth::login_result& result) {
  // (`cancelled` does not come here: only drain cancels, and it closes the session first.)
  if (result.outcome == auth::login_outcome::accepted) {
    lock_maildrop(*result.mailbox);
  } else if (result.outcome == auth::login_outcome::unavailable) {
    // Nothing was checked, nothing counted (RFC 3206 §4: SYS/TEMP, try again later).
    reply("-ERR [SYS/TEMP] authentication temporarily unavailable, try again later");
  } else if (login_.failures() >= service_.cfg().pop3.auth_failures_max) {
    reply("-ERR [AUTH] too many failed logins");
    close_after_output();
  } else {
    // The same answer whether or not the user exists.
    reply("-ERR [AUTH] invalid user name or password");
  }
}

void session::lock_maildrop(store::mailbox_id mailbox) {
  phase_ = phase::locking;
  mailbox_ = mailbox;
  disarm_timer();
  hold();
  reactor::shard* origin = &owner();
  store::store_shard* owner_store =
      service_.shared().stores[service_.shared().mailboxes->owner_shard(mailbox)];
  auto lock = [this, origin, owner_store, mailbox] {
    store::maildrop_snapshot snapshot;
    bool ok = owner_store->lock_maildrop(mailbox, snapshot);
    auto answer = [this, ok, snapshot = std::move(snapshot)]() mutable {
      maildrop_locked(ok, std::move(snapshot));
    };
    if (&owner_store->owner() == origin) {
      answer();
    } else {
      owner_store->owner().submit_to(*origin, util::make_task(std::move(answer)));
    }
  };
  if (&owner_store->owner() == origin) {
    lock();
  } else {
    origin->submit_to(owner_store->owner(), util::make_task(std::move(lock)));
  }
}

void session::maildrop_locked(bool ok, store::maildrop_snapshot snapshot) {
  locked_ = ok;
  log_fd_ = snapshot.log_fd;
  if (closing()) {
    // The client left while we asked; give the lock back at once.
    unlock_maildrop();
    release_hold();
    return;
  }
  phase_ = phase::authorization;
  if (!ok) {
    reply("-ERR [IN-USE] maildrop already locked");
  } else {
    if (log_fd_ < 0) {
      MW_LOG_ERROR_LIMITED(10000, "cannot open %s", snapshot.log_path.c_str());
      unlock_maildrop();
      reply("-ERR [SYS/TEMP] cannot open maildrop");
    } else {
      snapshot_ = std::move(snapshot);
      deleted_.assign(snapshot_.messages.size(), 0);
      live_messages_ = snapshot_.messages.size();
      live_bytes_ = 0;
      for (const store::index_entry& entry : snapshot_.messages) live_bytes_ += entry.payload_bytes;
      phase_ = phase::transaction;
      reply("+OK maildrop has " + number_text(live_messages_) + " messages (" + number_text(live_bytes_) +
            " octets)");
    }
  }
  arm_autologout();
  resume_input();
  release_hold();  // may delete this; nothing after it
}

void session::unlock_maildrop() {
  if (!locked_) return;
  locked_ = false;
  store::store_shard* owner_store =
      service_.shared().stores[service_.shared().mailboxes->owner_shard(mailbox_)];
  store::mailbox_id mailbox = mailbox_;
  if (&owner_store->owner() == &owner()) {
    owner_store->unlock_maildrop(mailbox);
    return;
  }
  owner().submit_to(owner_store->owner(),
                    util::make_task([owner_store, mailbox] { owner_store->unlock_maildrop(mailbox); }));
}

const store::index_entry* session::message(std::string_view argument, uint32_t& number) {
  std::optional<uint32_t> parsed = parse_number(argument);
  if (!parsed || *parsed == 0 || *parsed > snapshot_.messages.size() || deleted_[*parsed - 1]) {
    return nullptr;
  }
  number = *parsed;
  return &snapshot_.messages[*parsed - 1];
}

void session::transaction_command(const command& parsed) {
  uint32_t number = 0;
  switch (parsed.name) {
    case verb::stat:
      reply("+OK " + number_text(live_messages_) + " " + number_text(live_bytes_));
      return;
    case verb::list:
    case verb::uidl: {
      bool list = parsed.name == verb::list;
      if (parsed.argument_count >= 1) {
        const store::index_entry* entry = message(parsed.arguments[0], number);
        if (entry == nullptr || parsed.argument_count > 1) {
          error("-ERR no such message");
          return;
        }
        reply("+OK " + number_text(number) + " " +
              number_text(list ? entry->payload_bytes : entry->uid));
        return;
      }
      reply(list ? "+OK " + number_text(live_messages_) + " messages (" + number_text(live_bytes_) + " octets)"
                 : std::string("+OK unique-id listing follows"));
      std::string lines;
      for (size_t i = 0; i < snapshot_.messages.size(); ++i) {
        if (deleted_[i]) continue;
        const store::index_entry& entry = snapshot_.messages[i];
        lines += number_text(i + 1);
        lines += ' ';
        lines += number_text(list ? entry.payload_bytes : entry.uid);
        lines += "\r\n";
        if (lines.size() >= 16384) {
          write(lines);
          lines.clear();
        }
      }
      lines += ".\r\n";
      write(lines);
      return;
    }
    case verb::retr:
    case verb::top: {
      bool top = parsed.name == verb::top;
      std::optional<uint64_t> lines;
      if (top) {
        if (parsed.argument_count != 2 || parsed.too_many_arguments) {
          error("-ERR usage: TOP msg n");
          return;
        }
        lines = parse_line_count(parsed.arguments[1]);
        if (!lines) {
          error("-ERR invalid line count");
          return;
        }
      } else if (parsed.argument_count != 1) {
        error("-ERR usage: RETR msg");
        return;
      }
      const store::index_entry* entry = message(parsed.arguments[0], number);
      if (entry == nullptr) {
        error("-ERR no such message");
        return;
      }
      start_message(*entry, lines);
      return;
    }
    case verb::dele: {
      if (parsed.argument_count != 1) {
        error("-ERR usage: DELE msg");
        return;
      }
      std::optional<uint32_t> parsed_number = parse_number(parsed.arguments[0]);
      if (!parsed_number || *parsed_number == 0 || *parsed_number > snapshot_.messages.size()) {
        error("-ERR no such message");
        return;
      }
      uint32_t index = *parsed_number - 1;
      if (deleted_[index]) {
        error("-ERR message " + number_text(*parsed_number) + " already deleted");
        return;
      }
      deleted_[index] = 1;
      --live_messages_;
      live_bytes_ -= snapshot_.messages[index].payload_bytes;
      reply("+OK message " + number_text(*parsed_number) + " deleted");
      return;
    }
    case verb::rset:
      std::fill(deleted_.begin(), deleted_.end(), 0);
      live_messages_ = snapshot_.messages.size();
      live_bytes_ = 0;
      for (const store::index_entry& entry : snapshot_.messages) live_bytes_ += entry.payload_bytes;
      reply("+OK maildrop has " + number_text(live_messages_) + " messages (" + number_text(live_bytes_) +
            " octets)");
      return;
    case verb::noop:
      reply("+OK");
      return;
    case verb::quit:
      quit();
      return;
    case verb::unknown:
      error("-ERR unknown command");
      return;
    default:
      // An AUTHORIZATION command (RFC 1939 §4): one login per session.
      error("-ERR already logged in");
      return;
  }
}

void session::start_message(const store::index_entry& entry, std::optional<uint64_t> top_lines) {
  reply("+OK " + number_text(entry.payload_bytes) + " octets");
  stream_offset_ = entry.offset + store::record_header_bytes;
  stream_left_ = entry.payload_bytes;
  if (!top_lines && !(entry.flags & store::record_flag_has_dot_line)) {
    if (entry.payload_bytes >= sendfile_bytes_min) {
      // Nothing to stuff: the kernel moves the bytes from the page cache to the socket.
      phase_ = phase::sending;
      send_message_step();
      return;
    }
    // Every stored payload ends with CRLF (the trace lines do, and so does any DATA
    // body), so ".\r\n" is all that follows.
    assert(stream_left_ <= window_.capacity_bytes());
    std::string_view bytes;
    if (int error = window_.view(log_fd_, stream_offset_, static_cast<size_t>(stream_left_), bytes)) {
      read_failed(error);
      return;
    }
    write(bytes);
    write(".\r\n");
    return;
  }
  stream_.start(top_lines);
  phase_ = phase::streaming;
  pump_message();
}

// In steps, as a stuffed message is: each step the client takes restarts the autologout
// timer (on_output_drained), so that a client still reading a large message is not
// logged out as idle in the middle of it.
void session::send_message_step() {
  uint64_t step = std::min<uint64_t>(stream_left_, file_step_bytes);
  write_file(log_fd_, stream_offset_, step);
  stream_offset_ += step;
  stream_left_ -= step;
  if (stream_left_ > 0) return;  // on_output_drained continues
  // Every stored payload ends with CRLF (the trace lines do, and so does any DATA body),
  // so ".\r\n" is all that follows.
  write(".\r\n");
  phase_ = phase::transaction;
  flush();
  resume_input();
}

void session::pump_message() {
  bool wanted = true;
  size_t produced = 0;
  while (stream_left_ > 0 && wanted && produced < stream_step_bytes) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(stream_left_, window_.capacity_bytes()));
    std::string_view chunk;
    if (int error = window_.view(log_fd_, stream_offset_, want, chunk)) {
      read_failed(error);
      return;
    }
    stream_offset_ += want;
    stream_left_ -= want;
    stream_output_.clear();
    wanted = stream_.feed(chunk, stream_output_);
    write(stream_output_);
    produced += stream_output_.size();
  }
  if (stream_left_ > 0 && wanted) {
    window_.release();  // a slow reader holds no read memory while it catches up
    return;             // on_output_drained continues
  }
  stream_output_.clear();
  stream_.finish(stream_output_);
  write(stream_output_);
  phase_ = phase::transaction;
  flush();
  resume_input();
}

// The log lost bytes under us: the response cannot be completed truthfully.
void session::read_failed(int error) {
  MW_LOG_ERROR_LIMITED(10000, "pop3: reading %s failed: %s", snapshot_.log_path.c_str(),
                       error == EIO ? "unexpected end of file or I/O error" : std::strerror(error));
  window_.release();
  unlock_maildrop();
  close_now();
}

void session::on_output_drained() {
  if ((phase_ == phase::streaming || phase_ == phase::sending) && !closing()) {
    arm_autologout();
    if (phase_ == phase::streaming) {
      pump_message();
    } else {
      send_message_step();
    }
    window_.release();
  }
}

void session::quit() {
  std::vector<uint64_t> uids;
  for (size_t i = 0; i < deleted_.size(); ++i) {
    if (deleted_[i]) uids.push_back(snapshot_.messages[i].uid);
  }
  if (uids.empty()) {
    unlock_maildrop();
    reply("+OK " + service_.cfg().hostname + " POP3 server signing off");
    close_after_output();
    return;
  }
  // UPDATE (RFC 1939 §6): the deletions are durable before the +OK; the owning shard
  // releases the lock when it commits them.
  phase_ = phase::updating;
  disarm_timer();
  hold();
  deletion_.mailbox = mailbox_;
  deletion_.uids = std::move(uids);
  deletion_.origin = &owner();
  deletion_.listener = this;
  locked_ = false;
  store::store_shard* owner_store =
      service_.shared().stores[service_.shared().mailboxes->owner_shard(mailbox_)];
  if (&owner_store->owner() == &owner()) {
    owner_store->delete_messages(deletion_);
  } else {
    store::deletion_request* request = &deletion_;
    owner().submit_to(owner_store->owner(),
                      util::make_task([owner_store, request] { owner_store->delete_messages(*request); }));
  }
}

void session::on_deletions_done(bool ok) {
  if (!closing()) {
    if (ok) {
      reply("+OK " + service_.cfg().hostname + " POP3 server signing off (" +
            number_text(deletion_.uids.size()) + " messages deleted)");
    } else {
      reply("-ERR [SYS/TEMP] some deleted messages not removed");
    }
    close_after_output();
  }
  release_hold();  // may delete this; nothing after it
}

void session::drain(bool force) {
  if (phase_ == phase::updating && !force) return;
  if (phase_ != phase::updating && phase_ != phase::locking) unlock_maildrop();
  close_now();
  login_.cancel();  // may delete this
}

}  // namespace mailwing::pop3
