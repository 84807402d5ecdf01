#pragma once
// One SMTP connection: the RFC 5321 state machine with the extensions the server
// announces (PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, AUTH PLAIN LOGIN).
//
// Input is processed as it arrives, whatever the grouping: command lines come from the
// line scanner as views into the receive buffers; after "354" the same bytes go through
// the dot-unstuffer straight into the message builder, so a client may send its body in
// the same packet as DATA. The session waits — keeping the rest of the input — only for
// a group commit ("250 ... queued as") and for a password check (its turn under the login
// throttle, then the check pool; see auth::login_guard); both run off the shard's loop.
// Replies produced from one batch of input go out in one send.
//
// Deadlines: a command line must be complete within command_timeout_ms of the moment the
// session started waiting for it (partial input does not restart the clock); DATA must
// keep a minimum average rate (session.cc says which) or it ends after data_timeout_ms.
//
// Owned by the shard that accepted it (via its smtp::service); only that thread calls it.

#include <string>
#include <string_view>
#include <vector>

#include "mailwing/auth/login_guard.hh"
#include "mailwing/net/connection.hh"
#include "mailwing/smtp/command.hh"
#include "mailwing/smtp/message_builder.hh"
#include "mailwing/store/delivery.hh"
#include "mailwing/wire/dot_unstuffer.hh"
#include "mailwing/wire/error_cap.hh"
#include "mailwing/wire/line_scanner.hh"

namespace mailwing::smtp {

class service;

class session final : public net::connection, private store::delivery_listener {
 public:
  session(service& owner_service, const net::accepted_socket& socket);

  // Shutdown: 421 now if idle, else right after the current transaction; force closes
  // at once (a commit in flight still completes in the store).
  void drain(bool force);

  size_t registry_index = 0;  // position in service's session list

 private:
  ~session() override;

  enum class phase : uint8_t {
    command,        // reading command lines
    auth_response,  // reading a SASL response line after "334"
    auth_checking,  // a password check waits for its turn or runs (auth::login_guard)
    data,           // reading the message after "354"
    committing,     // the message is being made durable
  };
  enum class sasl : uint8_t { none, plain, login_user, login_password };

  // net::connection
  void on_start() override;
  size_t on_input(std::string_view input) override;
  void on_input_end() override;
  void on_deadline() override;
  // store::delivery_listener
  void on_delivery_done(bool ok) override;

  void reply(std::string_view text);
  void handle_line(std::string_view line);
  void handle_command(std::string_view line);
  size_t handle_data(std::string_view input);
  void finish_data();

  void command_helo(std::string_view argument, bool extended);
  void command_mail(std::string_view argument);
  void command_rcpt(std::string_view argument);
  void command_data(std::string_view argument);
  void command_auth(std::string_view argument);
  void command_starttls(std::string_view argument);
  bool starttls_offered() const;
  bool auth_offered() const;
  void on_tls_established() override;
  void sasl_response(std::string_view line);
  void check_password(auth::credentials offered);
  void password_checked(const auth::login_result& result);
  void count_error();
  void reset_transaction();
  void arm_deadline_for_phase();
  void close_with(std::string_view reply_text);
  std::string build_trace(const std::string& queue_id);

  service& service_;
  wire::line_scanner scanner_;
  wire::dot_unstuffer unstuffer_;
  message_builder builder_;
  store::delivery delivery_;
  auth::login_guard login_;
  phase phase_ = phase::command;
  sasl sasl_ = sasl::none;
  bool greeted_ = false;
  bool extended_ = false;       // EHLO (not HELO)
  bool authenticated_ = false;
  bool in_transaction_ = false; // MAIL FROM accepted
  bool smtputf8_ = false;
  bool draining_ = false;
  wire::error_cap errors_;
  std::string helo_name_;
  std::string sender_;          // reverse-path without brackets; empty for <>
  std::string first_recipient_; // forward-path of the first accepted RCPT
  std::string login_name_;      // AUTH LOGIN: the user name between the two 334s
  std::string queue_id_;
  uint64_t data_started_ms_ = 0;       // when 354 was sent
  uint64_t data_received_bytes_ = 0;   // DATA bytes since then
  std::vector<store::mailbox_id> recipients_;  // accepted, without duplicates
  uint32_t recipients_accepted_ = 0;           // with duplicates: the RCPT limit counts these
};

}  // namespace mailwing::smtp
