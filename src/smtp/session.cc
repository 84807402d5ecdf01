#include "mailwing/smtp/session.hh"

#include <cassert>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>

#include "mailwing/auth/sasl.hh"
#include "mailwing/smtp/service.hh"
#include "mailwing/util/ascii.hh"
#include "mailwing/util/clock.hh"
#include "mailwing/util/log.hh"
#include "mailwing/util/task.hh"

namespace mailwing::smtp {
namespace {

// DATA must arrive at this average rate, counted from the 354, or the data timeout runs
// out: otherwise a client dripping a byte now and then holds a session (and a body
// block) for ever, since each byte would restart the timeout. Postfix's
// smtpd_min_data_rate is 500 bytes/s; 1 KiB/s is as far below any real link (a 56k modem
// does 7 KiB/s) and still ends a drip at a few bytes per second within data_timeout_ms.
// A constant, not a key: no operator needs to admit slower senders.
constexpr uint64_t data_rate_bytes_per_s_min = 1024;
// Messages above this go to a spool file instead of memory.
constexpr uint64_t spool_threshold_bytes = 1 << 20;
// The HELO name is kept for the Received: header only; more would be abuse.
constexpr size_t helo_name_bytes_max = 255;

std::string mailbox_text(const mailbox& address) {
  std::string text(address.local_part);
  if (!address.domain.empty()) {
    text.push_back('@');
    text.append(address.domain);
  }
  return text;
}

}  // namespace

session::session(service& owner_service, const net::accepted_socket& socket)
    : net::connection(owner_service.owner(), socket, owner_service.cfg().smtp.send_timeout_ms),
      service_(owner_service),
      scanner_(owner_service.cfg().smtp.line_bytes_max, owner_service.carry_pool()),
      builder_(owner_service.owner().body_pool(), owner_service.budget(),
               owner_service.shared().spool_dir, spool_threshold_bytes),
      login_(*owner_service.shared().auth, owner_service.login_waits(), owner_service.owner(), "smtp") {
  service_.sessions().add(*this);
}

session::~session() {
  service_.sessions().remove(*this);
}

void session::reply(std::string_view text) {
  write(text);
  write("\r\n");
}

void session::close_with(std::string_view reply_text) {
  reply(reply_text);
  close_after_output();
}

void session::on_start() {
  std::string banner = "220 " + service_.cfg().hostname + " ESMTP Service ready";
  reply(banner);
  arm_deadline_for_phase();
}

void session::arm_deadline_for_phase() {
  // A closing connection's timer belongs to the connection (its linger); once closed the
  // object may go away, so it must not be put back on a list.
  if (closing()) return;
  switch (phase_) {
    case phase::command:
    case phase::auth_response:
      arm_deadline(service_.command_timeouts());
      return;
    case phase::data:
      arm_deadline(service_.data_timeouts());
      return;
    case phase::auth_checking:
    case phase::committing:
      // Waiting for our own work, not for the client.
      disarm_timer();
      return;
  }
}

void session::on_deadline() {
  // RFC 5321 §4.5.3.2: the server may close after its timeout, with a 421.
  close_with("421 4.4.2 " + service_.cfg().hostname + " Error: timeout exceeded");
}

// The command timeout is armed when the session starts waiting for a line (greeting sent,
// previous line handled) and only a complete line re-arms it: a client dripping a line a
// byte at a time must finish it within command_timeout_ms, whatever it sends meanwhile.
size_t session::on_input(std::string_view input) {
  std::string_view rest = input;
  // The loop runs until the scanner reports need_more even when `rest` is empty: that
  // last call is what hands a carry block back to the pool.
  while (!closing()) {
    if (phase_ == phase::data) {
      if (rest.empty()) break;
      rest.remove_prefix(handle_data(rest));
      continue;
    }
    if (phase_ == phase::committing || phase_ == phase::auth_checking) {
      // Paused even with nothing left, so that the end of input (a client that sent its
      // last command and half-closed) waits for the answer instead of cutting it off.
      pause_input();
      break;
    }
    // Congested output resumes once the client reads its replies; a TLS handshake that
    // STARTTLS began takes over the connection, and the rest of this input is dropped.
    if (input_suspended()) break;
    wire::line_scanner::event event = scanner_.next(rest);
    if (event.kind == wire::line_scanner::status::need_more) break;
    if (event.kind == wire::line_scanner::status::too_long) {
      if (phase_ == phase::auth_response) {
        // RFC 4954 §6 has its own code for this; the exchange is over.
        phase_ = phase::command;
        sasl_ = sasl::none;
        reply("500 5.5.6 Authentication Exchange line is too long");
      } else {
        reply("500 5.5.2 Error: line too long");
      }
      count_error();
      arm_deadline_for_phase();
      continue;
    }
    handle_line(event.line);
    arm_deadline_for_phase();
  }
  if (closing()) return input.size();
  return input.size() - rest.size();
}

void session::on_input_end() {
  if (phase_ == phase::data) {
    // The client vanished mid-message: nothing of it was acknowledged, nothing is kept.
    builder_.reset();
    phase_ = phase::command;
  }
  scanner_.reset();
  close_after_output();
}

void session::count_error() {
  if (errors_.count()) close_with("421 4.7.0 " + service_.cfg().hostname + " Error: too many errors");
}

void session::handle_line(std::string_view line) {
  if (phase_ == phase::auth_response) {
    sasl_response(line);
    return;
  }
  handle_command(line);
}

void session::handle_command(std::string_view line) {
  if (line.find('\0') != std::string_view::npos) {
    reply("500 5.5.2 Error: NUL byte in command");
    count_error();
    return;
  }
  command parsed = parse_command(line);
  switch (parsed.name) {
    case verb::helo: command_helo(parsed.argument, false); return;
    case verb::ehlo: command_helo(parsed.argument, true); return;
    case verb::mail: command_mail(parsed.argument); return;
    case verb::rcpt: command_rcpt(parsed.argument); return;
    case verb::data: command_data(parsed.argument); return;
    case verb::auth: command_auth(parsed.argument); return;
    case verb::rset:
      if (!parsed.argument.empty()) {
        reply("501 5.5.4 Syntax: RSET");
        return;
      }
      reset_transaction();
      reply("250 2.0.0 OK");
      return;
    case verb::noop:
      reply("250 2.0.0 OK");
      return;
    case verb::vrfy:
      if (parsed.argument.empty()) {
        reply("501 5.5.4 Syntax: VRFY address");
        return;
      }
      // RFC 5321 §3.5.3: neither confirm nor deny; accept mail and see.
      reply("252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
      return;
    case verb::expn:
      reply("502 5.5.1 Error: EXPN not supported");
      return;
    case verb::help:
      reply("214 2.0.0 Commands: HELO EHLO AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
      return;
    case verb::quit:
      close_with("221 2.0.0 Bye");
      return;
    case verb::starttls:
      command_starttls(parsed.argument);
      return;
    case verb::bdat:
      // Not announced in EHLO, so not implemented (RFC 5321 §4.2.4).
      reply("502 5.5.1 Error: command not implemented");
      count_error();
      return;
    case verb::unknown:
      reply(line.empty() ? "500 5.5.2 Error: bad syntax" : "500 5.5.1 Error: command not recognized");
      count_error();
      return;
  }
}

void session::command_helo(std::string_view argument, bool extended) {
  if (argument.empty()) {
    reply(extended ? "501 5.5.4 Syntax: EHLO hostname" : "501 5.5.4 Syntax: HELO hostname");
    return;
  }
  // RFC 5321 §4.1.4: EHLO/HELO also resets any transaction in progress.
  reset_transaction();
  greeted_ = true;
  extended_ = extended;
  // A client's HELO name must not be able to inject header lines into Received:.
  helo_name_ = util::printable_ascii(argument, helo_name_bytes_max);
  const std::string& host = service_.cfg().hostname;
  if (!extended) {
    reply("250 " + host);
    return;
  }
  char size_line[48];
  std::snprintf(size_line, sizeof(size_line), "250-SIZE %" PRIu64, service_.cfg().smtp.message_bytes_max);
  write("250-" + host + " Hello " + helo_name_ + "\r\n");
  write("250-PIPELINING\r\n");
  reply(size_line);
  write("250-8BITMIME\r\n250-SMTPUTF8\r\n");
  if (starttls_offered()) write("250-STARTTLS\r\n");
  // Without TLS where it is required, AUTH is not offered at all (RFC 4954 §4).
  if (auth_offered()) {
    write("250-ENHANCEDSTATUSCODES\r\n");
    reply("250 AUTH PLAIN LOGIN");
  } else {
    reply("250 ENHANCEDSTATUSCODES");
  }
}

bool session::starttls_offered() const { return service_.shared().tls != nullptr && !tls_started(); }

bool session::auth_offered() const { return !*service_.cfg().smtp.auth_requires_tls || tls_active(); }

// RFC 3207. The 220 goes out in clear text; then the handshake, and whatever the client
// sent behind the command in clear text is dropped by the connection, never executed.
void session::command_starttls(std::string_view argument) {
  if (!starttls_offered()) {
    if (tls_started()) {
      reply("503 5.5.1 Error: TLS already active");
    } else {
      // Not announced in EHLO, so not implemented (RFC 5321 §4.2.4).
      reply("502 5.5.1 Error: command not implemented");
    }
    count_error();
    return;
  }
  if (!argument.empty()) {
    reply("501 5.5.4 Syntax: STARTTLS");
    count_error();
    return;
  }
  std::shared_ptr<net::tls_context> context = service_.shared().tls->current();
  reply("220 2.0.0 Ready to start TLS");
  // RFC 3207 §4.2: everything learnt in clear text is forgotten; the client starts over
  // with EHLO.
  reset_transaction();
  greeted_ = false;
  extended_ = false;
  authenticated_ = false;
  helo_name_.clear();
  sasl_ = sasl::none;
  scanner_.reset();
  start_tls(*context, service_.cfg().smtp.command_timeout_ms);
}

void session::on_tls_established() { arm_deadline_for_phase(); }

void session::reset_transaction() {
  in_transaction_ = false;
  smtputf8_ = false;
  sender_.clear();
  first_recipient_.clear();
  recipients_.clear();
  recipients_accepted_ = 0;
}

void session::command_mail(std::string_view argument) {
  if (!greeted_) {
    reply("503 5.5.1 Error: send HELO/EHLO first");
    return;
  }
  if (in_transaction_) {
    reply("503 5.5.1 Error: nested MAIL command");
    return;
  }
  mail_from parsed = parse_mail_from(argument);
  switch (parsed.error) {
    case path_error::none: break;
    case path_error::syntax:
      reply("501 5.5.4 Syntax: MAIL FROM:<address>");
      count_error();
      return;
    case path_error::bad_address:
      reply("501 5.1.7 Bad sender address syntax");
      count_error();
      return;
    case path_error::unknown_parameter:
      reply("555 5.5.4 Unsupported MAIL FROM parameter");
      return;
    case path_error::bad_parameter:
      reply("501 5.5.4 Bad MAIL FROM parameter value");
      return;
  }
  // RFC 1870: a declared size over the limit is refused before any data is sent.
  if (parsed.size_bytes && *parsed.size_bytes > service_.cfg().smtp.message_bytes_max) {
    reply("552 5.3.4 Message size exceeds fixed maximum message size");
    return;
  }
  in_transaction_ = true;
  smtputf8_ = parsed.smtputf8;
  sender_ = parsed.null_sender ? std::string() : mailbox_text(parsed.sender);
  reply("250 2.1.0 OK");
}

void session::command_rcpt(std::string_view argument) {
  if (!in_transaction_) {
    reply("503 5.5.1 Error: need MAIL command");
    return;
  }
  rcpt_to parsed = parse_rcpt_to(argument, smtputf8_);
  switch (parsed.error) {
    case path_error::none: break;
    case path_error::syntax:
      reply("501 5.5.4 Syntax: RCPT TO:<address>");
      count_error();
      return;
    case path_error::bad_address:
      reply("501 5.1.3 Bad recipient address syntax");
      count_error();
      return;
    case path_error::unknown_parameter:
      reply("555 5.5.4 Unsupported RCPT TO parameter");
      return;
    case path_error::bad_parameter:
      reply("501 5.5.4 Bad RCPT TO parameter value");
      return;
  }
  if (recipients_accepted_ >= service_.cfg().smtp.recipients_max) {
    // RFC 5321 §4.5.3.1.10: a temporary failure, so the client sends the rest later.
    reply("452 4.5.3 Error: too many recipients");
    return;
  }
  recipient resolved = service_.shared().recipients->resolve(parsed.recipient);
  switch (resolved.status) {
    // Refused recipients count as errors, so that one session cannot enumerate users
    // (nor probe for a relay) beyond the error cap, as Postfix's smtpd_hard_error_limit
    // counts them. The cap is the same 20: a legitimate message rarely names 20 dead
    // addresses, and one that does still gets through: the sending MTA bounces the
    // recipients we refused, and retries only the others after the 421.
    case recipient_status::not_local:
      reply("550 5.7.1 Relay access denied");
      count_error();
      return;
    case recipient_status::unknown_user:
      reply("550 5.1.1 No such user here");
      count_error();
      return;
    case recipient_status::local:
      break;
  }
  ++recipients_accepted_;
  if (first_recipient_.empty()) first_recipient_ = mailbox_text(parsed.recipient);
  // Two addresses of one mailbox (user+a@, user+b@) store the message once.
  bool known = false;
  for (store::mailbox_id id : recipients_) known = known || id == resolved.mailbox;
  if (!known) recipients_.push_back(resolved.mailbox);
  reply("250 2.1.5 OK");
}

std::string session::build_trace(const std::string& queue_id) {
  // RFC 5321 §4.4: Return-Path at delivery, and our Received: line at the top.
  // RFC 3848 names the protocol; RFC 6531 §4.3 the UTF8 variants.
  std::string protocol = smtputf8_ ? "UTF8SMTP" : extended_ ? "ESMTP" : "SMTP";
  if (extended_ && tls_active()) protocol += "S";
  if (authenticated_) protocol += "A";
  std::string trace;
  trace.reserve(256);
  trace += "Return-Path: <" + sender_ + ">\r\n";
  trace += "Received: from " + helo_name_ + " ([" + std::string(peer_address()) + "])\r\n";
  if (tls_active()) trace += "\t(" + tls_description() + ")\r\n";
  trace += "\tby " + service_.cfg().hostname + " (mailwing) with " + protocol + " id " + queue_id;
  // Naming the recipient is only safe when there is one (RFC 5321 §7.2).
  if (recipients_accepted_ == 1) {
    trace += "\r\n\tfor <" + first_recipient_ + ">";
  }
  trace += "; ";
  trace += service_.date_now();
  trace += "\r\n";
  return trace;
}

void session::command_data(std::string_view argument) {
  if (!argument.empty()) {
    reply("501 5.5.4 Syntax: DATA");
    return;
  }
  if (!in_transaction_) {
    reply("503 5.5.1 Error: need MAIL command");
    return;
  }
  if (recipients_.empty()) {
    reply("554 5.5.1 Error: no valid recipients");
    return;
  }
  queue_id_ = service_.next_queue_id();
  builder_.begin(build_trace(queue_id_), service_.cfg().smtp.message_bytes_max, util::unix_ms());
  unstuffer_.reset();
  data_started_ms_ = owner().now_ms();
  data_received_bytes_ = 0;
  phase_ = phase::data;
  arm_deadline_for_phase();
  reply("354 Start mail input; end with <CRLF>.<CRLF>");
}

size_t session::handle_data(std::string_view input) {
  size_t consumed = 0;
  while (consumed < input.size()) {
    std::span<char> room = builder_.writable();
    wire::dot_unstuffer::result fed =
        unstuffer_.feed(input.substr(consumed), room.data(), room.size());
    builder_.commit(fed.produced_bytes);
    consumed += fed.consumed_bytes;
    if (fed.finished) {
      finish_data();
      return consumed;
    }
  }
  // Only a client on pace earns a new data deadline; one that fell behind keeps the
  // deadline it has, so it is cut off within data_timeout_ms unless it catches up.
  data_received_bytes_ += consumed;
  uint64_t elapsed_ms = owner().now_ms() - data_started_ms_;
  if (data_received_bytes_ * 1000 >= elapsed_ms * data_rate_bytes_per_s_min) {
    arm_deadline(service_.data_timeouts());
  }
  return consumed;
}

void session::finish_data() {
  if (builder_.too_big()) {
    builder_.reset();
    reset_transaction();
    phase_ = phase::command;
    arm_deadline_for_phase();
    reply("552 5.3.4 Message size exceeds fixed maximum message size");
    return;
  }
  store::message& payload = builder_.finish(unstuffer_.has_dot_line());
  if (builder_.spool_error() != 0) {
    MW_LOG_WARN_LIMITED(10000, "spool write failed: %s", std::strerror(builder_.spool_error()));
    builder_.reset();
    reset_transaction();
    phase_ = phase::command;
    arm_deadline_for_phase();
    reply("452 4.3.1 Insufficient system storage");
    return;
  }
  phase_ = phase::committing;
  arm_deadline_for_phase();
  hold();
  delivery_.start(owner(), service_.shared().stores, payload, recipients_, *service_.shared().mailboxes,
                  *this);
}

void session::on_delivery_done(bool ok) {
  builder_.reset();
  reset_transaction();
  phase_ = phase::command;
  if (!closing()) {
    if (ok) {
      reply("250 2.0.0 OK: queued as " + queue_id_);
    } else {
      reply("451 4.3.0 Error: queue file write error");
    }
    if (draining_) {
      close_with("421 4.3.2 " + service_.cfg().hostname + " Service shutting down");
    } else {
      arm_deadline_for_phase();
      resume_input();
    }
  }
  release_hold();  // may delete this
}

void session::command_auth(std::string_view argument) {
  if (!extended_) {
    reply("503 5.5.1 Error: send EHLO first");
    return;
  }
  if (authenticated_) {
    reply("503 5.5.1 Error: already authenticated");
    return;
  }
  if (!auth_offered()) {
    reply("538 5.7.11 Encryption required for requested authentication mechanism");
    count_error();
    return;
  }
  if (in_transaction_) {
    reply("503 5.5.1 Error: MAIL transaction in progress");
    return;
  }
  std::string_view mechanism = argument.substr(0, argument.find(' '));
  std::string_view initial;
  if (mechanism.size() < argument.size()) initial = argument.substr(mechanism.size() + 1);
  if (util::equals_lower(mechanism, "plain")) {
    sasl_ = sasl::plain;
    if (initial.empty()) {
      phase_ = phase::auth_response;
      reply("334 ");
      return;
    }
    sasl_response(initial);
    return;
  }
  if (util::equals_lower(mechanism, "login")) {
    if (initial.empty()) {
      sasl_ = sasl::login_user;
      phase_ = phase::auth_response;
      reply("334 VXNlcm5hbWU6");  // "Username:"
      return;
    }
    sasl_ = sasl::login_user;
    sasl_response(initial);
    return;
  }
  reply(mechanism.empty() ? "501 5.5.4 Syntax: AUTH mechanism" : "504 5.5.4 Unrecognized authentication type");
}

void session::sasl_response(std::string_view line) {
  phase_ = phase::command;
  sasl mechanism = std::exchange(sasl_, sasl::none);
  if (line == "*") {
    reply("501 5.7.0 Authentication canceled");
    return;
  }
  if (mechanism == sasl::plain) {
    auth::credentials offered;
    switch (auth::decode_plain(line, offered)) {
      case auth::plain_status::cannot_decode:
        reply("501 5.5.2 Error: cannot decode response");
        return;
      case auth::plain_status::malformed:
        reply("501 5.5.2 Error: malformed PLAIN response");
        return;
      case auth::plain_status::ok:
        check_password(std::move(offered));
        return;
    }
  }
  std::optional<std::string> decoded = auth::decode_response(line);
  if (!decoded) {
    reply("501 5.5.2 Error: cannot decode response");
    return;
  }
  switch (mechanism) {
    case sasl::login_user:
      login_name_ = std::move(*decoded);
      sasl_ = sasl::login_password;
      phase_ = phase::auth_response;
      reply("334 UGFzc3dvcmQ6");  // "Password:"
      return;
    case sasl::login_password:
      check_password({std::exchange(login_name_, {}), std::move(*decoded), {}});
      return;
    case sasl::plain:
    case sasl::none:
      assert(false);
      return;
  }
}

void session::check_password(auth::credentials offered) {
  phase_ = phase::auth_checking;
  arm_deadline_for_phase();
  hold();
  login_.check(peer(), std::move(offered), [this](const auth::login_result& result) {
    if (!closing()) {
      phase_ = phase::command;
      password_checked(result);
      if (draining_ && !closing()) {
        close_with("421 4.3.2 " + service_.cfg().hostname + " Service shutting down");
      } else if (!closing()) {
        arm_deadline_for_phase();
        resume_input();
      }
    }
    release_hold();  // may delete this
  });
}

void session::password_checked(const auth::login_result& result) {
  // (`cancelled` does not come here: only drain cancels, and it closes the session first.)
  if (result.outcome == auth::login_outcome::accepted) {
    authenticated_ = true;
    reply("235 2.7.0 Authentication successful");
  } else if (result.outcome == auth::login_outcome::unavailable) {
    // RFC 4954 §6: a temporary failure; nothing was checked, nothing counted.
    reply("454 4.7.0 Temporary authentication failure");
  } else if (login_.failures() >= service_.cfg().smtp.auth_failures_max) {
    close_with("421 4.7.0 " + service_.cfg().hostname + " Error: too many failed authentications");
  } else {
    reply("535 5.7.8 Authentication credentials invalid");
  }
}

void session::drain(bool force) {
  draining_ = true;
  if (force) {
    close_now();
    login_.cancel();  // may delete this
    return;
  }
  // A transaction, or a password check already running, is finished first.
  if (phase_ == phase::committing || phase_ == phase::data || login_.running()) return;
  close_with("421 4.3.2 " + service_.cfg().hostname + " Service shutting down");
  login_.cancel();  // a login still waiting for its turn is dropped unchecked; may delete this
}

}  // namespace mailwing::smtp
