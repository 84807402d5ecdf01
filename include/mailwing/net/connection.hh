#pragma once
// One TCP connection's plumbing between the reactor backend and a protocol session
// (SMTP or POP3): the receive side with its pause/resume, the output queue, the
// deadline, the close sequence, and lifetime across asynchronous work.
//
// A session derives from connection and implements the four protocol hooks. Owned by the
// shard that accepted it; only that shard's thread may call it. It deletes itself once
// the socket is closed and no asynchronous work holds it (hold()/release_hold()).
//
// Input: received buffers go to on_input() at once. A session that must wait (a password
// hash, a group commit) returns fewer bytes than it got and later calls resume_input();
// meanwhile further buffers are queued, and past a small bound the connection stops
// receiving, so a client that floods a paused session is pushed back by TCP instead of
// using memory. The same happens while too much output is queued (a client that
// pipelines without reading replies).

#include <cstdint>
#include <string_view>
#include <vector>

#include "mailwing/reactor/backend.hh"
#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/timer_list.hh"

namespace mailwing::net {

class connection : public reactor::io_target, public reactor::timer_entry {
 public:
  connection(reactor::shard& owner, int fd);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Calls on_start (the greeting) and starts receiving.
  void start();

  // Appends bytes to the output. Sending starts at flush() or when on_input returns.
  void write(std::string_view bytes);
  // Appends a range of a file to the output, sent by the kernel (backend::send_file)
  // after everything written before it. The fd must stay open until the output drains.
  void write_file(int file_fd, uint64_t offset, uint64_t bytes);
  void flush();
  size_t output_queued_bytes() const { return output_queued_bytes_; }
  // The session should stop producing replies past this (see on_input).
  bool output_congested() const { return output_queued_bytes_ >= output_high_water_bytes; }

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
  bool closing() const { return close_requested_; }

  // (Re)starts the deadline; on_deadline fires when it passes.
  void arm_deadline(reactor::timer_list& list) { list.arm(*this, owner_.now_ms()); }
  void disarm_deadline(reactor::timer_list& list) { list.disarm(*this); }

  // Keeps the object alive across asynchronous work whose completion refers to it.
  void hold() { ++holds_; }
  // Returns true when the connection was destroyed (the caller must not touch it).
  bool release_hold();

  reactor::shard& owner() { return owner_; }
  // "192.0.2.1" / "2001:db8::1"; filled at construction.
  std::string_view peer_address() const { return peer_address_; }
  uint16_t peer_port() const { return peer_port_; }

  static constexpr size_t output_high_water_bytes = 64 * 1024;
  static constexpr size_t queued_input_buffers_max = 4;

 protected:
  virtual ~connection();

  // The greeting. Called once by start().
  virtual void on_start() = 0;
  // New input. Returns how many bytes were consumed; fewer than input.size() pauses
  // delivery: the rest is offered again after resume_input() (or, when the session
  // stopped because output_congested(), once the output drains).
  virtual size_t on_input(std::string_view input) = 0;
  // Called exactly once, when no more input will be delivered: the peer closed its side
  // or broke the connection (after all queued input was delivered), or the connection
  // was closed. The session drops any unfinished transaction here.
  virtual void on_input_end() = 0;
  // The deadline passed.
  virtual void on_deadline() = 0;
  // The output queue became empty. For sessions that stream large replies.
  virtual void on_output_drained() {}

 private:
  // reactor::io_target
  void on_recv(reactor::recv_buffer buffer) override;
  void on_recv_end(int error) override;
  void on_send(int result) override;
  void on_closed() override;
  // reactor::timer_entry
  void on_timer() override;

  void deliver_input();
  void update_receiving();
  void drop_input();
  void send_more();
  void release_output(size_t bytes);
  void release_all_output();
  void destroy_if_unused();
  void close_when_sent();

  struct queued_buffer {
    reactor::recv_buffer buffer;
    uint32_t offset;  // bytes already consumed
  };
  // One piece of output: bytes [begin, end) of an output_pool block, or a file range.
  struct output_segment {
    char* block;
    uint32_t begin;
    uint32_t end;
    int file_fd;  // >= 0: a file segment
    uint64_t file_offset;
    uint64_t file_bytes;
  };

  reactor::shard& owner_;
  std::vector<queued_buffer> input_queue_;
  std::vector<output_segment> output_;  // oldest first
  size_t output_queued_bytes_ = 0;
  iovec send_iov_[8];
  uint32_t holds_ = 0;
  bool input_paused_ = false;      // the session asked to wait
  bool input_ended_ = false;       // on_recv_end seen
  bool input_end_delivered_ = false;
  bool receiving_ = false;         // recv_start is in effect
  bool close_requested_ = false;
  bool closed_ = false;            // backend finished closing
  bool lingering_ = false;         // output done, our side shut down, draining input
  bool delivering_ = false;        // inside deliver_input (no re-entry)
  uint16_t peer_port_ = 0;
  char peer_address_text_[46] = {};
  std::string_view peer_address_;
};

}  // namespace mailwing::net
