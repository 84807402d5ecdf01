#pragma once
// One blaster SMTP session: a client-side state machine on a net::connection.
//
//   greeting -> EHLO (HELO if refused) -> [AUTH PLAIN | AUTH LOGIN] -> transactions -> QUIT
//
// A transaction is MAIL, one RCPT per recipient, then DATA + dot-stuffed content + "."
// or (--bdat) one "BDAT <n> LAST" with the content as it is. With PIPELINING (announced
// by the server and not switched off) the envelope and DATA go out in one write, and the
// content and its "." go out together with the next transaction's envelope (RFC 2920
// allows the end of data in a group), so each message costs one round trip. Without
// PIPELINING every command waits for its reply.
//
// Replies are matched to commands through a queue of what was sent. A transaction that
// failed before its content was sent is followed by RSET. Every final reply's code is
// counted.
//
// Owned by its shard_state's shard; deletes itself when closed (net::connection).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "blaster/shard_state.hh"
#include "mailwing/net/connection.hh"
#include "mailwing/wire/line_scanner.hh"

namespace mailwing::blaster {

class smtp_client final : public net::connection {
 public:
  smtp_client(shard_state& state, int fd, uint32_t id);

  // Open loop: a message became due (or the run ended) while this session waited.
  void message_available();
  // Shard stop with force: give up now.
  void abort();

 protected:
  ~smtp_client() override;

 private:
  enum class phase : uint8_t {
    greeting, ehlo, helo, auth, auth_login_user, auth_login_password, ready, quit, closed
  };
  enum class expect : uint8_t { mail, rcpt, data, content, rset, quit };
  struct pending {
    expect kind;
    uint8_t tx;  // index into txs_
  };
  struct transaction {
    uint64_t start_ns = 0;
    uint64_t sequence = 0;
    uint64_t message_bytes = 0;
    uint32_t body = 0;
    uint32_t rcpts_sent = 0;
    uint32_t rcpts_ok = 0;
    bool failed = false;        // a reply refused part of it
    bool content_sent = false;
    std::string failure;        // first refusal, for the report
  };

  // net::connection
  void on_start() override;
  size_t on_input(std::string_view input) override;
  void on_input_end() override;
  void on_deadline() override;

  void on_line(std::string_view line);
  void on_reply(int code, std::string_view text);
  void on_session_reply(int code, std::string_view text);
  void on_transaction_reply(int code, std::string_view text);
  void session_ready();

  void send_command(std::string_view line);  // without CRLF
  void push(expect kind, uint8_t tx);
  void begin_transaction();
  bool start_transaction(bool early);
  void send_envelope_rest(transaction& tx);
  void send_rcpt(transaction& tx);
  void send_content(transaction& tx);
  size_t format_headers(const transaction& tx, char* out, size_t capacity);
  void finish_transaction(uint8_t index, bool success, int code, std::string_view text);
  void fail(transaction& tx, const char* command, int code, std::string_view text);
  void send_rset();
  void send_quit();
  void protocol_error(const std::string& detail);
  void arm();

  shard_state& state_;
  const options& opts_;
  uint32_t id_;
  wire::line_scanner scanner_;
  phase phase_ = phase::greeting;
  bool pipelining_ = false;
  bool bdat_ = false;
  bool server_pipelining_ = false;
  bool server_chunking_ = false;
  bool server_auth_ = false;
  bool waiting_ = false;        // registered with state_.wait_for_message
  bool counted_ready_ = false;
  std::string greeting_;
  std::vector<pending> pending_;  // a ring
  size_t pending_head_ = 0;
  size_t pending_count_ = 0;
  transaction txs_[2];
  uint8_t tx_first_ = 0;        // oldest transaction in flight
  uint8_t tx_count_ = 0;
  std::string out_;             // scratch for building commands
};

}  // namespace mailwing::blaster
