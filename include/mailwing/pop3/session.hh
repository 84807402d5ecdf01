#pragma once
// One POP3 connection (RFC 1939, with CAPA/RESP-CODES/PIPELINING from RFC 2449 and
// AUTH PLAIN from RFC 5034).
//
// AUTHORIZATION: USER/PASS, APOP, AUTH PLAIN, all checked through auth::login_guard (the
// throttle per client address and per session, then the check pool). On success the
// owning shard of the mailbox is asked for its lock and a snapshot of its messages; a
// second session gets "-ERR [IN-USE]" whichever shard it is on. Failed logins say nothing
// about whether the user exists; pop3.auth_failures_max of them end the session.
//
// Every session: the autologout timer restarts only on a complete command (or on output
// progress of a long RETR), and wire::error_cap errors end the session.
//
// TRANSACTION: message numbers index the snapshot and never shift. RETR of a message
// without dot lines goes from the log file to the socket by sendfile; others (and TOP)
// are read in bounded chunks, dot-stuffed and written as the socket drains. Both go a
// step at a time, so that the autologout timer only ends sessions that stopped reading.
//
// UPDATE: QUIT with deletions sends one tombstone to the owning shard and answers only
// once it is durable. A connection that ends any other way deletes nothing.
//
// Owned by the shard that accepted it (via its pop3::service); only that thread calls it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mailwing/auth/login_guard.hh"
#include "mailwing/net/connection.hh"
#include "mailwing/pop3/command.hh"
#include "mailwing/pop3/log_window.hh"
#include "mailwing/pop3/message_stream.hh"
#include "mailwing/store/maildrop.hh"
#include "mailwing/wire/error_cap.hh"
#include "mailwing/wire/line_scanner.hh"

namespace mailwing::pop3 {

class service;

class session final : public net::connection, private store::deletion_listener {
 public:
  session(service& owner_service, const net::accepted_socket& socket);

  // Shutdown: close now (nothing deleted), unless a QUIT is being committed; force
  // closes that one too (its commit still completes in the store).
  void drain(bool force);

  size_t registry_index = 0;  // position in service's session list

 private:
  ~session() override;

  enum class phase : uint8_t {
    authorization,
    sasl_response,  // after "+ " for AUTH PLAIN
    checking,       // a login waits for its turn or is checked (auth::login_guard)
    locking,        // waiting for the owning shard's lock and snapshot
    transaction,
    streaming,      // a RETR/TOP response is being produced as the socket drains
    sending,        // a RETR response goes by sendfile, a step each time the socket drains
    updating,       // QUIT: the tombstone is being committed
  };

  // net::connection
  void on_start() override;
  size_t on_input(std::string_view input) override;
  void on_input_end() override;
  void on_deadline() override;
  void on_output_drained() override;
  // store::deletion_listener
  void on_deletions_done(bool ok) override;

  void reply(std::string_view text);
  // A -ERR that is the client's fault: counted, and past the cap the session ends.
  void error(std::string_view text);
  void handle_line(std::string_view line);
  void authorization_command(const command& parsed);
  void transaction_command(const command& parsed);
  void capa();
  bool stls_offered() const;
  bool login_allowed() const;
  void command_stls(const command& parsed);
  // Answers -ERR [AUTH] and returns true when logins need TLS and this is clear text.
  bool refuse_login_without_tls();
  void on_tls_established() override;
  void sasl_plain(std::string_view response);
  void check_password(auth::credentials offered);
  void login_checked(const auth::login_result& result);
  void lock_maildrop(store::mailbox_id mailbox);
  void maildrop_locked(bool ok, store::maildrop_snapshot snapshot);
  void unlock_maildrop();
  void quit();
  // The message `argument` names, if it exists and is not deleted.
  const store::index_entry* message(std::string_view argument, uint32_t& number);
  void start_message(const store::index_entry& entry, std::optional<uint64_t> top_lines);
  void pump_message();
  void read_failed(int error);
  void send_message_step();
  void arm_autologout();

  service& service_;
  log_window window_;            // the log's bytes for RETR/TOP, between commands released
  wire::line_scanner scanner_;
  auth::login_guard login_;
  wire::error_cap errors_;
  phase phase_ = phase::authorization;
  bool locked_ = false;          // this session holds the maildrop lock
  std::string timestamp_;        // APOP banner timestamp
  std::string user_;             // from USER
  store::mailbox_id mailbox_ = 0;
  int log_fd_ = -1;
  store::maildrop_snapshot snapshot_;
  std::vector<uint8_t> deleted_;  // per snapshot message: DELE in this session
  uint64_t live_messages_ = 0;
  uint64_t live_bytes_ = 0;
  // The message being streamed or sent.
  message_stream stream_;
  uint64_t stream_offset_ = 0;
  uint64_t stream_left_ = 0;
  std::string stream_output_;
  store::deletion_request deletion_;
};

}  // namespace mailwing::pop3
