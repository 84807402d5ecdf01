#pragma once
// One TCP connection's plumbing between the reactor backend and a protocol session
// (SMTP or POP3, or a load generator's client): the receive side with its back-pressure,
// the output queue, the deadlines, the close sequence, and lifetime across asynchronous
// work.
//
// A session derives from connection and implements the protocol hooks. Owned by the
// shard that accepted (or connected) it; only that shard's thread may call it. It deletes
// itself once the socket is closed and no asynchronous work holds it (hold()/release_hold()).
//
// Two explicit states, each changed in one place (connection.cc says where):
//  - lifecycle: open → flushing (close_after_output: the output still goes out, input is
//    ignored) → lingering (all sent, our side shut down, the peer's input read and
//    dropped until its FIN) → closing (the backend closes the socket) → closed (deleted
//    once no hold remains). close_now jumps to closing from anywhere.
//  - input_phase: open → peer_finished (FIN or error seen; what is stashed is still
//    delivered) → end_delivered (on_input_end called, exactly once).
//
// Input and back-pressure: received bytes go to on_input() at once. When the session
// does not take them all — it paused for asynchronous work (a commit, a password check),
// or its output is congested because the peer does not read — the rest is copied into
// this connection's input stash and the pooled receive buffer goes back to the shard at
// once. Once the stash holds input_stash_low_water_bytes the connection stops receiving
// and TCP pushes the client back. So a connection never pins a pooled receive buffer
// while its session waits: a few hundred clients that pipeline without reading cannot
// starve the others.
//
// Stopping is not immediate everywhere: io_uring's multishot recv may already have
// received up to 32 more buffers of a flooding client in the same batch of completions
// (half a megabyte). Those are stashed too, up to input_stash_max_bytes; a client that
// sent that much beyond what its session took — replies unread, or while its session
// waits — is not speaking the protocol (a pipelining client waits for the replies to
// its last group; a message body is taken as it arrives), and is cut off (close_now).
// That bounds what a non-reading client costs to its stash plus its output queue.
//
// Output: a peer that takes none of the queued output for send_timeout_ms is cut off
// (close_now), whatever the session is doing — a pending send included — so a client
// that never reads holds a connection for a bounded time.
//
// TLS (tls_channel), when on, sits between the socket and the session, inside this
// connection: received ciphertext goes into the channel and the receive buffer back to
// the pool; plaintext is decrypted into the stash block and offered from there; what the
// session writes waits as plaintext (plain_) and is encrypted into the output queue as
// the socket drains, at most output_high_water_bytes ahead. The session sees plaintext
// only. Three ways in: implicit TLS (the acceptor says so: the handshake, then
// on_start), STARTTLS/STLS (the session calls start_tls: what the peer sent after the
// command is discarded, never executed — the CVE-2011-0411 class), and a client
// (start_tls_client, the load generators). A handshake must finish within its timeout
// (a stalled one costs a connection, never a shard); a failed one closes the connection
// and is logged at debug level with its reason.

#include <cstdint>
#include <string_view>
#include <vector>

#include <memory>
#include <string>

#include "mailwing/net/acceptor.hh"
#include "mailwing/net/peer_address.hh"
#include "mailwing/net/tls_channel.hh"
#include "mailwing/net/tls_context.hh"
#include "mailwing/reactor/backend.hh"
#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/timer_list.hh"

namespace mailwing::net {

class connection : public reactor::io_target, public reactor::timer_entry, private tls_channel::cipher_sink {
 public:
  // A server connection: takes the socket and its place in the connection limits (given
  // back when the connection is destroyed). send_timeout_ms 0: no send timeout.
  connection(reactor::shard& owner, const accepted_socket& socket, uint64_t send_timeout_ms);
  // A client connection (the load generators): a connected socket, no limits.
  connection(reactor::shard& owner, int connected_fd, uint64_t send_timeout_ms);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Calls on_start (the greeting; with implicit TLS after the handshake) and starts
  // receiving.
  void start();

  // Appends bytes to the output. Sending starts at flush() or when on_input returns.
  void write(std::string_view bytes);
  // Appends a range of a file to the output, sent by the kernel (backend::send_file)
  // after everything written before it. The fd must stay open until the output drains.
  void write_file(int file_fd, uint64_t offset, uint64_t bytes);
  void flush();
  size_t output_queued_bytes() const { return output_queued_bytes_ + plain_queued_bytes_; }
  // The session should stop producing replies past this (see on_input).
  bool output_congested() const { return output_queued_bytes() >= output_high_water_bytes; }

  // STARTTLS (RFC 3207) / STLS (RFC 2595), from inside on_input, after the session wrote
  // its "go ahead" reply (it still goes out in plain text): the handshake follows, and
  // whatever the peer sent after the command is discarded. The session must stop reading
  // its input at once and return input.size(). on_tls_established tells when the
  // handshake is done; the connection closes if it fails or takes handshake_timeout_ms.
  void start_tls(const tls_context& context, uint64_t handshake_timeout_ms);
  // A client's handshake (the load generators), once the server agreed to it; `resume`
  // offers an earlier session (nullptr: none).
  void start_tls_client(const tls_context& context, SSL_SESSION* resume, uint64_t handshake_timeout_ms);
  // The handshake is done and the channel carries the session's bytes.
  bool tls_active() const { return tls_ != nullptr && tls_->state() == tls_channel::phase::established; }
  // Started, established or over: STARTTLS must not be offered again.
  bool tls_started() const { return tls_ != nullptr; }
  // "version=TLSv1.3 cipher=..." while TLS is active, "" otherwise.
  std::string tls_description() const { return tls_ != nullptr ? tls_->description() : std::string(); }
  const tls_channel* tls() const { return tls_.get(); }

  // True when the session must stop taking input now and return from on_input (it
  // paused, the output is congested, the connection is closing, or a TLS handshake it
  // started is under way — then the rest of its input must not be executed).
  bool input_suspended() const { return !taking_input(); }

  // Called by the session inside on_input before it returns early to wait for
  // asynchronous work; resume_input() continues delivery.
  void pause_input() { input_paused_ = true; }
  void resume_input();

  // Sends what is queued, then closes. Input is ignored from now on. The close lingers:
  // after the last byte, our side is shut down and the peer's remaining input is read and
  // dropped until it closes too (or linger_timeout_ms passes) — closing a socket with
  // unread input would make the kernel send RST and discard output still in flight.
  void close_after_output();
  // Closes at once, dropping queued output.
  void close_now();
  bool closing() const { return lifecycle_ != lifecycle::open; }

  // (Re)starts the deadline; on_deadline fires when it passes.
  void arm_deadline(reactor::timer_list& list) { list.arm(*this, owner_.now_ms()); }
  void disarm_deadline(reactor::timer_list& list) { list.disarm(*this); }

  // Keeps the object alive across asynchronous work whose completion refers to it.
  void hold() { ++holds_; }
  // Returns true when the connection was destroyed (the caller must not touch it).
  bool release_hold();

  reactor::shard& owner() { return owner_; }
  // "192.0.2.1" / "2001:db8::1"; filled at construction.
  std::string_view peer_address() const { return peer_.text(); }
  uint16_t peer_port() const { return peer_.port; }
  const net::peer_address& peer() const { return peer_; }

  static constexpr size_t output_high_water_bytes = 64 * 1024;
  // A session that stopped taking input may have this much stashed before the
  // connection stops receiving: a pipelined client's next few commands, not a flood.
  static constexpr size_t input_stash_low_water_bytes = 4 * 1024;
  // Past this the client is cut off (see above).
  static constexpr size_t input_stash_max_bytes = 64 * 1024;

  // For tests: input bytes kept for the session (never in pooled receive buffers).
  size_t input_stashed_bytes() const { return stash_end_ - stash_begin_; }

 protected:
  virtual ~connection();

  // The greeting. Called once by start().
  virtual void on_start() = 0;
  // New input. Returns how many bytes were consumed; fewer than input.size() only when
  // the session paused (pause_input), closed, or saw output_congested(): the rest is
  // offered again after resume_input() (or once the output drains).
  virtual size_t on_input(std::string_view input) = 0;
  // Called exactly once, when no more input will be delivered: the peer closed its side
  // or broke the connection (after all stashed input was delivered), or the connection
  // was closed. The session drops any unfinished transaction here.
  virtual void on_input_end() = 0;
  // The deadline passed.
  virtual void on_deadline() = 0;
  // The output queue became empty. For sessions that stream large replies.
  virtual void on_output_drained() {}
  // A handshake that start_tls (or start_tls_client) began is done; the session starts
  // over as RFC 3207 §4.2 says and re-arms its deadline.
  virtual void on_tls_established() {}

 private:
  enum class lifecycle : uint8_t { open, flushing, lingering, closing, closed };
  enum class input_phase : uint8_t { open, peer_finished, end_delivered };

  // The send timeout: a second timer, on the shard's list for send_timeout_ms.
  class send_watchdog final : public reactor::timer_entry {
   public:
    explicit send_watchdog(connection& owner) : owner_(owner) {}
    void on_timer() override { owner_.on_send_timeout(); }

   private:
    connection& owner_;
  };

  // reactor::io_target
  void on_recv(reactor::recv_buffer buffer) override;
  void on_recv_end(int error) override;
  void on_send(int result) override;
  void on_closed() override;
  // reactor::timer_entry
  void on_timer() override;
  // tls_channel::cipher_sink: ciphertext joins the output queue.
  void cipher_out(std::string_view bytes) override;

  bool taking_input() const {
    return lifecycle_ == lifecycle::open && !input_paused_ && !output_congested() &&
           (tls_ == nullptr || tls_->state() != tls_channel::phase::handshaking);
  }
  // Established, or the peer sent close_notify: we may still send (and say goodbye).
  bool tls_writable() const {
    return tls_ != nullptr && (tls_->state() == tls_channel::phase::established ||
                               tls_->state() == tls_channel::phase::finished);
  }
  // Input waiting for the session: stashed plaintext and undecrypted ciphertext.
  size_t input_waiting_bytes() const {
    return input_stashed_bytes() + (tls_ != nullptr ? tls_->cipher_in_pending() : 0);
  }
  void begin_tls(const tls_context& context, bool server, SSL_SESSION* resume, uint64_t handshake_timeout_ms);
  void advance_handshake();
  bool decrypt_into_stash();
  void encrypt_pending();
  void deliver_input();
  size_t offer(std::string_view input);
  void stash(std::string_view bytes);
  void drop_stash();
  void update_receiving();
  void send_more();
  void release_output(size_t bytes);
  void release_all_output();
  void close_when_sent();
  void start_closing();
  void on_send_timeout();
  void watch_send_progress(bool progressed);

  // One piece of output: bytes [begin, end) of an output_pool block, or a file range.
  struct output_segment {
    char* block;
    uint32_t begin;
    uint32_t end;
    int file_fd;  // >= 0: a file segment
    uint64_t file_offset;
    uint64_t file_bytes;
  };
  void append_bytes(std::vector<output_segment>& queue, size_t& queued_bytes, std::string_view bytes);
  void release_queue(std::vector<output_segment>& queue, size_t& queued_bytes);

  reactor::shard& owner_;
  connection_limit* limit_ = nullptr;  // the place held in the limits; null for a client
  net::peer_address peer_;
  reactor::timer_list* send_timeouts_ = nullptr;  // null: no send timeout
  send_watchdog watchdog_{*this};
  // Input the session has not taken: bytes [stash_begin_, stash_end_) of stash_. Normally
  // a stash_pool block; a larger heap block only when receives that were already under
  // way after recv_stop overflow it (io_uring's multishot recv can deliver a few).
  char* stash_ = nullptr;
  uint32_t stash_begin_ = 0;
  uint32_t stash_end_ = 0;
  uint32_t stash_capacity_ = 0;
  std::vector<output_segment> output_;  // what goes to the socket, oldest first
  size_t output_queued_bytes_ = 0;
  // With TLS: what the session wrote, not yet encrypted into output_.
  std::vector<output_segment> plain_;
  size_t plain_queued_bytes_ = 0;
  std::unique_ptr<tls_channel> tls_;
  // Implicit TLS: on_start comes after the handshake.
  bool start_after_handshake_ = false;
  // start_tls was called during the current on_input: the rest of the input is discarded.
  bool discard_input_ = false;
  iovec send_iov_[8];
  uint32_t holds_ = 0;
  lifecycle lifecycle_ = lifecycle::open;
  input_phase input_ = input_phase::open;
  bool input_paused_ = false;  // the session asked to wait
  bool receiving_ = false;     // recv_start is in effect (what we asked the backend)
  bool delivering_ = false;    // inside deliver_input (no re-entry)
};

}  // namespace mailwing::net
