// The io_uring backend. See backend.hh for why there are two backends.
//
// Requests carry their target and kind in user_data: a target pointer (8-byte aligned)
// with the kind in the low bits. Requests whose completion nobody needs (cancels) carry 0.
// Completions are copied out of the CQ before any callback runs, so callbacks may queue
// new requests freely.

#include <sys/eventfd.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <liburing.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "mailwing/reactor/backend.hh"
#include "mailwing/util/clock.hh"
#include "mailwing/util/log.hh"

namespace mailwing::reactor {
namespace {

enum class op : uint64_t { none = 0, accept = 1, recv = 2, send = 3, wake = 4, send_file_ready = 5 };
constexpr uint64_t op_mask = 7;
constexpr uint16_t buffer_group = 0;

uint64_t tag(const void* pointer, op kind) {
  auto bits = reinterpret_cast<uint64_t>(pointer);
  assert((bits & op_mask) == 0);
  return bits | static_cast<uint64_t>(kind);
}

struct completion {
  uint64_t user_data;
  int32_t result;
  uint32_t flags;
};

struct listener_entry {
  int fd;
  accept_handler* handler;
  bool removed;
  uint64_t paused_until_ms;  // 0: accepting; else re-armed at this time (accept_needs_pause)
};

struct wake_entry {
  int fd;
  wake_handler* handler;
  uint64_t value;
};

class io_uring_backend final : public backend {
 public:
  explicit io_uring_backend(const backend_options& options);
  ~io_uring_backend() override;

  const char* name() const override { return "io_uring"; }
  void add_listener(int listen_fd, accept_handler& handler) override;
  void remove_listener(int listen_fd) override;
  void add_wake_fd(int event_fd, wake_handler& handler) override;
  void attach(io_target& target, int fd) override;
  void recv_start(io_target& target) override;
  void recv_stop(io_target& target) override;
  void send(io_target& target, const iovec* iov, int iov_count) override;
  void send_file(io_target& target, int file_fd, uint64_t offset, uint64_t bytes) override;
  void close(io_target& target) override;
  void release(const recv_buffer& buffer) override;
  void run_once(int timeout_ms) override;

 private:
  io_uring_sqe* get_sqe();
  void arm_accept(listener_entry& listener);
  void arm_recv(io_target& target);
  void arm_wake();
  void dispatch(const completion& event);
  void on_recv_completion(io_target& target, const completion& event);
  void finish_close_if_idle(io_target& target);
  void rearm_starved();
  // Re-arms listeners whose pause is over; returns the wait limit the next pause end
  // imposes on run_once (-1: none).
  int resume_paused_listeners(int timeout_ms);

  io_uring ring_{};
  io_uring_buf_ring* buffer_ring_ = nullptr;
  size_t buffer_ring_bytes_ = 0;
  char* buffers_ = nullptr;
  size_t buffers_bytes_ = 0;
  uint32_t buffer_bytes_;
  uint32_t buffer_count_;
  int buffers_to_publish_ = 0;  // added to the ring, not yet made visible (advance)
  // A multishot recv ends after one buffer's worth of bytes (sqe->optlen) and takes at
  // most that much per wake-up (sqe->len), and is armed again while the connection wants
  // input. Without the limit, one wake-up of a flooded socket receives up to 32 buffers
  // in a row, all of which arrive even after the connection asked to stop receiving
  // (net::connection must then keep them). Kernels before about 6.15 refuse both fields
  // with EINVAL: then recvs are armed without them.
  bool recv_limited_ = true;
  std::vector<listener_entry*> listeners_;
  std::vector<listener_entry*> paused_;
  wake_entry* wake_ = nullptr;
  std::vector<io_target*> starved_;
  std::vector<io_target*> closed_;
  std::vector<completion> completions_;
};

[[noreturn]] void fail(int error, const char* what) {
  throw std::system_error(error, std::system_category(), what);
}

io_uring_backend::io_uring_backend(const backend_options& options)
    : buffer_bytes_(options.recv_buffer_bytes), buffer_count_(options.recv_buffer_count) {
  assert((buffer_count_ & (buffer_count_ - 1)) == 0 && buffer_count_ <= 32768);
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  // Multishot recv can post many completions per submission; a large CQ keeps bursts
  // from spilling into the kernel's (slower) overflow list.
  params.cq_entries = options.queue_depth * 4;
  int result = io_uring_queue_init_params(options.queue_depth, &ring_, &params);
  if (result == -EINVAL) {
    // Kernels before 6.1 lack DEFER_TASKRUN; the ring works without it, a bit slower.
    params = io_uring_params{};
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN;
    params.cq_entries = options.queue_depth * 4;
    result = io_uring_queue_init_params(options.queue_depth, &ring_, &params);
  }
  if (result < 0) fail(-result, "io_uring_queue_init");
  if (!(params.features & IORING_FEAT_NODROP) || !(params.features & IORING_FEAT_EXT_ARG)) {
    io_uring_queue_exit(&ring_);
    fail(ENOTSUP, "io_uring lacks NODROP or EXT_ARG");
  }

  // Debian 12's liburing 2.3 has no io_uring_setup_buf_ring: map the ring ourselves.
  buffer_ring_bytes_ = sizeof(io_uring_buf) * buffer_count_;
  void* ring_memory = mmap(nullptr, buffer_ring_bytes_, PROT_READ | PROT_WRITE,
                           MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring_memory == MAP_FAILED) fail(errno, "mmap buffer ring");
  buffer_ring_ = static_cast<io_uring_buf_ring*>(ring_memory);
  io_uring_buf_ring_init(buffer_ring_);
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<uint64_t>(ring_memory);
  registration.ring_entries = buffer_count_;
  registration.bgid = buffer_group;
  result = io_uring_register_buf_ring(&ring_, &registration, 0);
  if (result < 0) {
    munmap(ring_memory, buffer_ring_bytes_);
    io_uring_queue_exit(&ring_);
    fail(-result, "io_uring_register_buf_ring");
  }
  buffers_bytes_ = static_cast<size_t>(buffer_bytes_) * buffer_count_;
  void* memory = mmap(nullptr, buffers_bytes_, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (memory == MAP_FAILED) fail(errno, "mmap receive buffers");
  buffers_ = static_cast<char*>(memory);
  int mask = io_uring_buf_ring_mask(buffer_count_);
  for (uint32_t id = 0; id < buffer_count_; ++id) {
    io_uring_buf_ring_add(buffer_ring_, buffers_ + static_cast<size_t>(id) * buffer_bytes_,
                          buffer_bytes_, static_cast<unsigned short>(id), mask,
                          static_cast<int>(id));
  }
  io_uring_buf_ring_advance(buffer_ring_, static_cast<int>(buffer_count_));
}

io_uring_backend::~io_uring_backend() {
  io_uring_unregister_buf_ring(&ring_, buffer_group);
  io_uring_queue_exit(&ring_);
  munmap(buffer_ring_, buffer_ring_bytes_);
  munmap(buffers_, buffers_bytes_);
  for (listener_entry* listener : listeners_) delete listener;
  delete wake_;
}

io_uring_sqe* io_uring_backend::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // The submission queue is full: hand what is there to the kernel and retry.
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  if (sqe == nullptr) fail(EBUSY, "io_uring submission queue full");
  return sqe;
}

void io_uring_backend::add_listener(int listen_fd, accept_handler& handler) {
  auto* listener = new listener_entry{listen_fd, &handler, false, 0};
  listeners_.push_back(listener);
  arm_accept(*listener);
}

void io_uring_backend::remove_listener(int listen_fd) {
  for (listener_entry* listener : listeners_) {
    if (listener->fd != listen_fd || listener->removed) continue;
    listener->removed = true;
    if (listener->paused_until_ms != 0) {
      std::erase(paused_, listener);  // nothing in flight to cancel
      continue;
    }
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, tag(listener, op::accept), 0);
    io_uring_sqe_set_data64(sqe, 0);
  }
}

void io_uring_backend::arm_accept(listener_entry& listener) {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_multishot_accept(sqe, listener.fd, nullptr, nullptr,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, tag(&listener, op::accept));
}

void io_uring_backend::add_wake_fd(int event_fd, wake_handler& handler) {
  assert(wake_ == nullptr);
  wake_ = new wake_entry{event_fd, &handler, 0};
  arm_wake();
}

void io_uring_backend::arm_wake() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, wake_->fd, &wake_->value, sizeof(wake_->value), 0);
  io_uring_sqe_set_data64(sqe, tag(wake_, op::wake));
}

void io_uring_backend::attach(io_target& target, int fd) {
  target.io = io_slot{};
  target.io.fd = fd;
}

void io_uring_backend::recv_start(io_target& target) {
  if (target.io.closing) return;
  target.io.recv_wanted = true;
  if (!target.io.recv_armed && !target.io.starved) arm_recv(target);
}

void io_uring_backend::arm_recv(io_target& target) {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_recv_multishot(sqe, target.io.fd, nullptr, recv_limited_ ? buffer_bytes_ : 0, 0);
  // The uapi's sqe->optlen (the total a multishot recv may take before it ends) shares
  // its place with file_index; liburing 2.3's header predates the name.
  if (recv_limited_) sqe->file_index = buffer_bytes_;
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = buffer_group;
  io_uring_sqe_set_data64(sqe, tag(&target, op::recv));
  target.io.recv_armed = true;
  ++target.io.ops_in_flight;
}

void io_uring_backend::recv_stop(io_target& target) {
  target.io.recv_wanted = false;
  if (target.io.recv_armed) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, tag(&target, op::recv), 0);
    io_uring_sqe_set_data64(sqe, 0);
  }
}

void io_uring_backend::send(io_target& target, const iovec* iov, int iov_count) {
  assert(!target.io.send_pending && !target.io.closing && iov_count > 0);
  target.io.send_pending = true;
  target.io.send_iov = iov;
  target.io.send_iov_count = iov_count;
  ++target.io.ops_in_flight;
  io_uring_sqe* sqe = get_sqe();
  if (iov_count == 1) {
    io_uring_prep_send(sqe, target.io.fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
  } else {
    target.io.send_msg = msghdr{};
    target.io.send_msg.msg_iov = const_cast<iovec*>(iov);
    target.io.send_msg.msg_iovlen = static_cast<size_t>(iov_count);
    io_uring_prep_sendmsg(sqe, target.io.fd, &target.io.send_msg, MSG_NOSIGNAL);
  }
  io_uring_sqe_set_data64(sqe, tag(&target, op::send));
}

// io_uring has no sendfile opcode, and SPLICE needs a pipe per connection; waiting for
// the socket to be writable and then calling sendfile (non-blocking) moves the same pages
// with one poll request and no pipe.
void io_uring_backend::send_file(io_target& target, int file_fd, uint64_t offset, uint64_t bytes) {
  assert(!target.io.send_pending && !target.io.closing && bytes > 0);
  target.io.send_pending = true;
  target.io.send_file_fd = file_fd;
  target.io.send_file_offset = offset;
  target.io.send_file_bytes = bytes;
  ++target.io.ops_in_flight;
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_poll_add(sqe, target.io.fd, POLLOUT);
  io_uring_sqe_set_data64(sqe, tag(&target, op::send_file_ready));
}

void io_uring_backend::close(io_target& target) {
  if (target.io.closing) return;
  target.io.closing = true;
  target.io.recv_wanted = false;
  if (target.io.starved) {
    std::erase(starved_, &target);
    target.io.starved = false;
  }
  if (target.io.ops_in_flight > 0) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel_fd(sqe, target.io.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, 0);
  }
  finish_close_if_idle(target);
}

void io_uring_backend::finish_close_if_idle(io_target& target) {
  if (!target.io.closing || target.io.ops_in_flight > 0 || target.io.fd < 0) return;
  ::close(target.io.fd);
  target.io.fd = -1;
  closed_.push_back(&target);
}

void io_uring_backend::release(const recv_buffer& buffer) {
  assert(buffer.id < buffer_count_);
  io_uring_buf_ring_add(buffer_ring_, buffers_ + static_cast<size_t>(buffer.id) * buffer_bytes_,
                        buffer_bytes_, buffer.id, io_uring_buf_ring_mask(buffer_count_),
                        buffers_to_publish_);
  ++buffers_to_publish_;
}

void io_uring_backend::rearm_starved() {
  if (starved_.empty() || buffers_to_publish_ == 0) return;
  for (io_target* target : starved_) {
    target->io.starved = false;
    if (target->io.recv_wanted && !target->io.recv_armed && !target->io.closing) {
      arm_recv(*target);
    }
  }
  starved_.clear();
}

int io_uring_backend::resume_paused_listeners(int timeout_ms) {
  if (paused_.empty()) return timeout_ms;
  uint64_t now = util::monotonic_ms();
  uint64_t next = UINT64_MAX;
  std::erase_if(paused_, [&](listener_entry* listener) {
    if (listener->paused_until_ms > now) {
      next = std::min(next, listener->paused_until_ms);
      return false;
    }
    listener->paused_until_ms = 0;
    arm_accept(*listener);
    return true;
  });
  if (next == UINT64_MAX) return timeout_ms;
  int until_next = static_cast<int>(next - now);
  return timeout_ms < 0 ? until_next : std::min(timeout_ms, until_next);
}

void io_uring_backend::run_once(int timeout_ms) {
  rearm_starved();
  timeout_ms = resume_paused_listeners(timeout_ms);
  if (buffers_to_publish_ > 0) {
    io_uring_buf_ring_advance(buffer_ring_, buffers_to_publish_);
    buffers_to_publish_ = 0;
  }
  io_uring_cqe* cqe = nullptr;
  if (timeout_ms == 0) {
    io_uring_submit_and_get_events(&ring_);
  } else {
    __kernel_timespec timeout{};
    timeout.tv_sec = timeout_ms / 1000;
    timeout.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
    int result = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1,
                                                  timeout_ms < 0 ? nullptr : &timeout, nullptr);
    if (result < 0 && result != -ETIME && result != -EINTR && result != -EBUSY) {
      fail(-result, "io_uring_submit_and_wait_timeout");
    }
  }
  completions_.clear();
  unsigned head;
  unsigned count = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    completions_.push_back({cqe->user_data, cqe->res, cqe->flags});
    ++count;
  }
  io_uring_cq_advance(&ring_, count);
  for (const completion& event : completions_) dispatch(event);
  // on_closed may free the target: only now, when no completion refers to it.
  std::vector<io_target*> closed;
  closed.swap(closed_);
  for (io_target* target : closed) target->on_closed();
}

void io_uring_backend::dispatch(const completion& event) {
  if (event.user_data == 0) return;  // a cancel request
  auto kind = static_cast<op>(event.user_data & op_mask);
  void* pointer = reinterpret_cast<void*>(event.user_data & ~op_mask);
  switch (kind) {
    case op::accept: {
      auto& listener = *static_cast<listener_entry*>(pointer);
      bool more = (event.flags & IORING_CQE_F_MORE) != 0;
      if (event.result >= 0) {
        listener.handler->on_accept(event.result);
      } else if (event.result != -EAGAIN && event.result != -ECANCELED) {
        log_accept_failure(-event.result);
        if (accept_needs_pause(-event.result) && !listener.removed) {
          if (more) {
            io_uring_sqe* sqe = get_sqe();
            io_uring_prep_cancel64(sqe, tag(&listener, op::accept), 0);
            io_uring_sqe_set_data64(sqe, 0);
          }
          if (listener.paused_until_ms == 0) paused_.push_back(&listener);
          listener.paused_until_ms = util::monotonic_ms() + accept_pause_ms;
          return;
        }
      }
      if (!more && !listener.removed && listener.paused_until_ms == 0) arm_accept(listener);
      return;
    }
    case op::recv:
      on_recv_completion(*static_cast<io_target*>(pointer), event);
      return;
    case op::send: {
      auto& target = *static_cast<io_target*>(pointer);
      --target.io.ops_in_flight;
      if (event.result == -EAGAIN && !target.io.closing) {
        // A wake-up that was not writability (the peer's FIN) can end a send with EAGAIN
        // instead of re-polling; the socket is fine: send again, which waits properly.
        target.io.send_pending = false;
        send(target, target.io.send_iov, target.io.send_iov_count);
        return;
      }
      target.io.send_pending = false;
      if (!target.io.closing) target.on_send(event.result);
      finish_close_if_idle(target);
      return;
    }
    case op::send_file_ready: {
      auto& target = *static_cast<io_target*>(pointer);
      --target.io.ops_in_flight;
      int result = event.result;
      if (result >= 0 && !(result & POLLOUT) && (result & POLLRDHUP)) {
        // The peer half-closed and the socket is not writable: this poll would report
        // the FIN again at once, forever. Give the send back (EAGAIN); the connection
        // sends the rest from memory, with a send that waits properly.
        target.io.peer_write_closed = true;
        result = -EAGAIN;
      } else if (result >= 0 && !target.io.closing) {
        auto offset = static_cast<off_t>(target.io.send_file_offset);
        ssize_t sent = ::sendfile(target.io.fd, target.io.send_file_fd, &offset,
                                  static_cast<size_t>(std::min<uint64_t>(target.io.send_file_bytes, 1u << 30)));
        if (sent < 0 && (errno == EAGAIN || errno == EINTR)) {
          // Writable, but not by enough for sendfile's first page: poll again.
          ++target.io.ops_in_flight;
          io_uring_sqe* sqe = get_sqe();
          io_uring_prep_poll_add(sqe, target.io.fd, POLLOUT);
          io_uring_sqe_set_data64(sqe, tag(&target, op::send_file_ready));
          return;
        }
        result = sent < 0 ? -errno : static_cast<int>(sent);
      }
      target.io.send_pending = false;
      target.io.send_file_fd = -1;
      if (!target.io.closing) target.on_send(result);
      finish_close_if_idle(target);
      return;
    }
    case op::wake:
      arm_wake();
      wake_->handler->on_wake();
      return;
    case op::none:
      return;
  }
}

void io_uring_backend::on_recv_completion(io_target& target, const completion& event) {
  bool more = (event.flags & IORING_CQE_F_MORE) != 0;
  if (!more) {
    target.io.recv_armed = false;
    --target.io.ops_in_flight;
  }
  if (event.result > 0) {
    assert(event.flags & IORING_CQE_F_BUFFER);
    auto id = static_cast<uint16_t>(event.flags >> IORING_CQE_BUFFER_SHIFT);
    recv_buffer buffer{buffers_ + static_cast<size_t>(id) * buffer_bytes_,
                       static_cast<uint32_t>(event.result), id};
    if (target.io.closing) {
      release(buffer);
    } else {
      target.on_recv(buffer);
    }
    if (!target.io.recv_armed && target.io.recv_wanted && !target.io.closing) arm_recv(target);
  } else if (event.result == -ENOBUFS) {
    // Back-pressure: every buffer is held by someone. Resume when one comes back.
    if (target.io.recv_wanted && !target.io.closing && !target.io.starved) {
      target.io.starved = true;
      starved_.push_back(&target);
    }
  } else if (event.result == -ECANCELED) {
    // recv_stop or close asked for it.
    if (target.io.recv_wanted && !target.io.closing && !target.io.recv_armed) arm_recv(target);
  } else if (event.result == -EINVAL && recv_limited_) {
    // This kernel takes no limits for a multishot recv (see recv_limited_).
    MW_LOG_DEBUG("io_uring: multishot recv takes no byte limit here; receiving without one");
    recv_limited_ = false;
    if (target.io.recv_wanted && !target.io.closing && !target.io.recv_armed) arm_recv(target);
  } else {
    target.io.recv_wanted = false;
    if (!target.io.closing) target.on_recv_end(event.result);
  }
  finish_close_if_idle(target);
}

}  // namespace

std::unique_ptr<backend> make_io_uring_backend(const backend_options& options) {
  return std::make_unique<io_uring_backend>(options);
}

}  // namespace mailwing::reactor
