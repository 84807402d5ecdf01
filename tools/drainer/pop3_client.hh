#pragma once
// One drainer POP3 session (RFC 1939) for one mailbox:
//
//   greeting -> USER/PASS (or APOP) -> STAT -> RETR 1..n with up to --window in flight
//   [-> DELE i after RETR i completes] -> QUIT (which commits the deletions)
//
// Responses are matched to commands through a queue. A RETR's multi-line response goes
// through wire::dot_unstuffer (the same rules as SMTP DATA: dots removed at line starts,
// CRLF.CRLF ends it) and then through a body_verifier, so no message is ever held whole.
//
// Owned by its shard_state's shard; deletes itself when closed (net::connection).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "drainer/shard_state.hh"
#include "loadgen/body_hash.hh"
#include "mailwing/net/connection.hh"
#include "mailwing/wire/dot_unstuffer.hh"
#include "mailwing/wire/line_scanner.hh"

namespace mailwing::drainer {

class pop3_client final : public net::connection {
 public:
  pop3_client(shard_state& state, int fd, size_t account_index, uint64_t connect_ns);
  void abort();

 protected:
  ~pop3_client() override;

 private:
  enum class phase : uint8_t { greeting, user, pass, apop, stat, transaction, quit, closed };
  enum class expect : uint8_t { retr, dele };
  struct pending {
    expect kind;
    uint64_t message;
    uint64_t sent_ns;
  };

  // net::connection
  void on_start() override;
  size_t on_input(std::string_view input) override;
  void on_input_end() override;
  void on_deadline() override;

  void on_status(bool ok, std::string_view line);
  void on_transaction_status(bool ok, std::string_view line);
  void body_ended();
  void send(std::string_view command);
  void send_retr();
  void maybe_quit();
  void send_quit();
  void fail_session(const std::string& kind, const std::string& detail);
  void arm();

  shard_state& state_;
  const options& opts_;
  const account& account_;
  wire::line_scanner scanner_;
  wire::dot_unstuffer unstuffer_;
  loadgen::body_verifier verifier_;
  phase phase_ = phase::greeting;
  bool in_body_ = false;
  uint64_t body_message_ = 0;
  uint64_t body_bytes_ = 0;
  uint64_t login_start_ns_ = 0;
  uint64_t quit_start_ns_ = 0;
  uint64_t total_ = 0;        // messages to retrieve
  uint64_t next_retr_ = 1;    // next message number to RETR
  uint64_t retrieved_ = 0;    // RETR responses finished (ok or not)
  std::vector<pending> pending_;  // a ring
  size_t pending_head_ = 0;
  size_t pending_count_ = 0;
  std::string out_;
};

}  // namespace mailwing::drainer
