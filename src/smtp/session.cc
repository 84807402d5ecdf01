#include "mailwing/smtp/session.hh"

#include <cassert>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "mailwing/auth/login.hh"
#include "mailwing/smtp/service.hh"
#include "mailwing/util/base64.hh"
#include "mailwing/util/clock.hh"
#include "mailwing/util/log.hh"
#include "mailwing/util/task.hh"

namespace mailwing::smtp {
namespace {

// Like Postfix's smtpd_hard_error_limit: a client that keeps sending nonsense (or
// another protocol) is cut off instead of being answered forever.
constexpr uint8_t errors_max = 20;
constexpr uint8_t auth_failures_max = 3;
// Messages above this go to a spool file instead of memory.
constexpr uint64_t spool_threshold_bytes = 1 << 20;
// The HELO name is kept for the Received: header only; more would be abuse.
constexpr size_t helo_name_bytes_max = 255;

// Printable ASCII for the Received: header: a client's HELO name must not be able to
// inject header lines.
std::string printable(std::string_view text, size_t size_max) {
  std::string out;
  out.reserve(std::min(text.size(), size_max));
  for (char c : text.substr(0, size_max)) {
    out.push_back((c >= 0x21 && c <= 0x7e) ? c : '?');
  }
  return out;
}

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
               owner_service.shared().spool_dir, spool_threshold_bytes) {
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

size_t session::on_input(std::string_view input) {
  std::string_view rest = input;
  if (phase_ == phase::command || phase_ == phase::auth_response || phase_ == phase::data) {
    arm_deadline_for_phase();
  }
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
    if (output_congested()) break;  // resumes once the client reads its replies
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
      continue;
    }
    handle_line(event.line);
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
  if (++errors_ >= errors_max) close_with("421 4.7.0 " + service_.cfg().hostname + " Error: too many errors");
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
  helo_name_ = printable(argument, helo_name_bytes_max);
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
  write("250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n");
  reply("250 AUTH PLAIN LOGIN");
}

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
    case recipient_status::not_local:
      reply("550 5.7.1 Relay access denied");
      return;
    case recipient_status::unknown_user:
      reply("550 5.1.1 No such user here");
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
  if (authenticated_) protocol += "A";
  std::string trace;
  trace.reserve(256);
  trace += "Return-Path: <" + sender_ + ">\r\n";
  trace += "Received: from " + helo_name_ + " ([" + std::string(peer_address()) + "])\r\n";
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
      break;
    }
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
    MW_LOG_WARN("spool write failed: %s", std::strerror(builder_.spool_error()));
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
  if (in_transaction_) {
    reply("503 5.5.1 Error: MAIL transaction in progress");
    return;
  }
  std::string_view mechanism = argument.substr(0, argument.find(' '));
  std::string_view initial;
  if (mechanism.size() < argument.size()) initial = argument.substr(mechanism.size() + 1);
  auto equals = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
    }
    return true;
  };
  if (equals(mechanism, "PLAIN")) {
    sasl_ = sasl::plain;
    if (initial.empty()) {
      phase_ = phase::auth_response;
      reply("334 ");
      return;
    }
    sasl_response(initial);
    return;
  }
  if (equals(mechanism, "LOGIN")) {
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
  if (line == "*") {
    sasl_ = sasl::none;
    reply("501 5.7.0 Authentication canceled");
    return;
  }
  // RFC 4954 §4: "=" is an empty initial response.
  std::optional<std::string> decoded = line == "=" ? std::string() : util::base64_decode(line);
  if (!decoded) {
    sasl_ = sasl::none;
    reply("501 5.5.2 Error: cannot decode response");
    return;
  }
  switch (sasl_) {
    case sasl::plain: {
      sasl_ = sasl::none;
      // RFC 4616: authzid NUL authcid NUL passwd.
      std::string_view text = *decoded;
      size_t first = text.find('\0');
      size_t second = first == std::string_view::npos ? first : text.find('\0', first + 1);
      if (second == std::string_view::npos) {
        reply("501 5.5.2 Error: malformed PLAIN response");
        return;
      }
      std::string_view authzid = text.substr(0, first);
      std::string_view authcid = text.substr(first + 1, second - first - 1);
      std::string_view password = text.substr(second + 1);
      if (!authzid.empty() && authzid != authcid) {
        // Acting as another user is not something this server offers.
        check_password(std::string(), std::string());
        return;
      }
      check_password(std::string(authcid), std::string(password));
      return;
    }
    case sasl::login_user:
      login_ = std::move(*decoded);
      sasl_ = sasl::login_password;
      phase_ = phase::auth_response;
      reply("334 UGFzc3dvcmQ6");  // "Password:"
      return;
    case sasl::login_password: {
      sasl_ = sasl::none;
      std::string login = std::move(login_);
      login_.clear();
      check_password(std::move(login), std::move(*decoded));
      return;
    }
    case sasl::none:
      assert(false);
      return;
  }
}

void session::check_password(std::string login, std::string password) {
  phase_ = phase::auth_checking;
  arm_deadline_for_phase();
  hold();
  std::string who = login;
  auth::check_login(service_.shared().login, service_.worker(), login, std::move(password),
                    [this, who](std::optional<store::mailbox_id> mailbox) {
                      if (!closing()) {
                        phase_ = phase::command;
                        password_checked(mailbox.has_value(), who);
                        arm_deadline_for_phase();
                        resume_input();
                      }
                      release_hold();  // may delete this
                    });
}

void session::password_checked(bool ok, const std::string& login) {
  if (ok) {
    authenticated_ = true;
    reply("235 2.7.0 Authentication successful");
    return;
  }
  MW_LOG_INFO("smtp auth failed for \"%s\" from %s", login.c_str(), std::string(peer_address()).c_str());
  if (++auth_failures_ >= auth_failures_max) {
    close_with("421 4.7.0 " + service_.cfg().hostname + " Error: too many failed authentications");
    return;
  }
  reply("535 5.7.8 Authentication credentials invalid");
}

void session::drain(bool force) {
  draining_ = true;
  if (force) {
    close_now();
    return;
  }
  if (phase_ == phase::committing || phase_ == phase::data || phase_ == phase::auth_checking) return;
  close_with("421 4.3.2 " + service_.cfg().hostname + " Service shutting down");
}

}  // namespace mailwing::smtp
