#pragma once
// The reactor backend: the one interface between a shard and the kernel's socket I/O.
//
// Two implementations, chosen at startup (config `io_backend`):
//  - io_uring (io_uring_backend.cc), the default: completion-based. Multishot accept,
//    multishot recv that picks its buffer from a provided buffer ring (so an idle
//    connection holds no receive buffer), sends and cancels as SQEs, and one submit per
//    loop iteration for everything queued during it.
//  - epoll (epoll_backend.cc), the fallback for kernels or containers where io_uring is
//    missing, disabled (/proc/sys/kernel/io_uring_disabled) or blocked by seccomp:
//    readiness-based, level-triggered, reads into the same kind of pooled buffers only
//    when data is ready.
// Both deliver the same events under the same rules, so everything above this interface
// (connections, sessions, timers, cross-shard queues) is written once and tested on both.
//
// A backend belongs to one shard; only that shard's thread may call it, and it calls
// back only from inside run_once(). Callbacks may call back into the backend.

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>

namespace mailwing::reactor {

// One pooled receive buffer holding `size_bytes` received bytes. The receiver must hand
// it back with backend::release() once it no longer needs the bytes.
struct recv_buffer {
  char* data = nullptr;
  uint32_t size_bytes = 0;
  uint16_t id = 0;
};

// Per-socket bookkeeping that belongs to the backend; lives inside the io_target so the
// backend needs no lookup table.
struct io_slot {
  int fd = -1;
  uint8_t ops_in_flight = 0;  // io_uring requests whose final completion is pending
  bool recv_wanted = false;   // between recv_start and recv_stop / end of input
  bool recv_armed = false;    // io_uring: a multishot recv is live
  bool send_pending = false;  // a send was requested and on_send has not been called
  bool send_done = false;     // epoll: the send finished; on_send is still deferred
  bool closing = false;
  bool starved = false;       // recv stopped for lack of pooled buffers; resumes on release
  bool peer_write_closed = false;  // a poll saw POLLRDHUP: the peer sent its FIN
  uint32_t epoll_events = 0;  // epoll: the interest set registered with the kernel
  // The pending send, kept here so it outlives the call that queued it: either iovecs
  // or (send_file_fd >= 0) a file range.
  const iovec* send_iov = nullptr;
  int send_iov_count = 0;
  int send_file_fd = -1;
  uint64_t send_file_offset = 0;
  uint64_t send_file_bytes = 0;
  msghdr send_msg{};  // io_uring: sendmsg reads it asynchronously
};

// Something that owns a socket: a connection. All calls happen on the owning shard.
class io_target {
 public:
  io_slot io;

  // Received bytes. Called only between recv_start and recv_stop, except that a few
  // buffers already received when recv_stop was called may still arrive.
  virtual void on_recv(recv_buffer buffer) = 0;
  // Input ended: 0 for an orderly close by the peer, -errno otherwise. No more on_recv.
  virtual void on_recv_end(int error) = 0;
  // The send finished: bytes written (possibly fewer than asked) or -errno.
  virtual void on_send(int result) = 0;
  // After close(): the socket is closed and no request refers to this target any more.
  virtual void on_closed() = 0;

 protected:
  ~io_target() = default;
};

class accept_handler {
 public:
  // A new connected, non-blocking, close-on-exec socket. The handler owns it.
  virtual void on_accept(int fd) = 0;

 protected:
  ~accept_handler() = default;
};

class wake_handler {
 public:
  // The shard's eventfd was signalled (and has been read).
  virtual void on_wake() = 0;

 protected:
  ~wake_handler() = default;
};

struct backend_options {
  uint32_t recv_buffer_bytes = 16384;
  uint32_t recv_buffer_count = 1024;  // a power of two (io_uring buffer rings need it)
  uint32_t queue_depth = 4096;        // io_uring submission queue entries
};

class backend {
 public:
  virtual ~backend() = default;

  virtual const char* name() const = 0;

  virtual void add_listener(int listen_fd, accept_handler& handler) = 0;
  // Stops accepting on the socket; the caller closes it afterwards. A connection the
  // kernel had already accepted may still be delivered.
  virtual void remove_listener(int listen_fd) = 0;
  virtual void add_wake_fd(int event_fd, wake_handler& handler) = 0;

  // The target takes the socket; the backend will close it in close().
  virtual void attach(io_target& target, int fd) = 0;
  virtual void recv_start(io_target& target) = 0;
  virtual void recv_stop(io_target& target) = 0;
  // At most one send per target at a time. The iovec array and the bytes must stay
  // valid until on_send.
  virtual void send(io_target& target, const iovec* iov, int iov_count) = 0;
  // Sends bytes [offset, offset + bytes) of a regular file, inside the kernel (sendfile,
  // which splices page-cache pages to the socket): the bytes never enter user space.
  // Completes like send(), possibly with fewer bytes, or with -EAGAIN when the peer has
  // half-closed (io_slot::peer_write_closed): then send the rest from memory.
  virtual void send_file(io_target& target, int file_fd, uint64_t offset, uint64_t bytes) = 0;
  // Cancels what is in flight, closes the socket, then calls on_closed (later, from
  // run_once, never from inside this call).
  virtual void close(io_target& target) = 0;
  virtual void release(const recv_buffer& buffer) = 0;

  // Submits what was queued, waits up to timeout_ms (-1: no limit, 0: don't wait) for
  // events and dispatches them.
  virtual void run_once(int timeout_ms) = 0;
};

// Accept failures that mean the process or the system is out of a resource (EMFILE,
// ENFILE, ENOBUFS, ENOMEM). Retrying at once would fail the same way, again and again
// (measured: 2.4 s of CPU per 3 s and a warning per try), so a backend that meets one
// stops accepting on that listener for accept_pause_ms and logs one rate-limited line.
// The connections wait in the kernel's backlog meanwhile.
bool accept_needs_pause(int error);
inline constexpr uint64_t accept_pause_ms = 100;
// Logs a failed accept (rate-limited: one line per 10 s from each backend).
void log_accept_failure(int error);

// Throws std::system_error when io_uring cannot be set up here (missing, disabled,
// blocked, or lacking a feature this backend needs).
std::unique_ptr<backend> make_io_uring_backend(const backend_options& options);
std::unique_ptr<backend> make_epoll_backend(const backend_options& options);

}  // namespace mailwing::reactor
