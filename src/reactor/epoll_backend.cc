// The epoll backend: the fallback when io_uring is unavailable (see backend.hh).
//
// Level-triggered, so a socket that still has data after one read is simply reported
// again and no read has to loop until EAGAIN. A receive buffer is taken from the pool
// only when the kernel says data is ready, so idle connections hold none. Sends are tried
// at once; only a full socket buffer makes the backend wait for EPOLLOUT. Completions that
// happen inside a call (a send that went through at once, a close) are delivered from
// run_once, like io_uring completions, so callers never see re-entrant callbacks.

#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

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

enum class kind : uint64_t { target = 0, listener = 1, wake = 2 };
constexpr uint64_t kind_mask = 7;

struct listener_entry {
  int fd;
  accept_handler* handler;
  uint64_t paused_until_ms;  // 0: accepting; else back in the epoll set at this time
};

struct wake_entry {
  int fd;
  wake_handler* handler;
};

// A completion produced synchronously, delivered from run_once.
struct deferred {
  io_target* target;
  enum class what : uint8_t { send } event;
  int result;
};

class epoll_backend final : public backend {
 public:
  explicit epoll_backend(const backend_options& options);
  ~epoll_backend() override;

  const char* name() const override { return "epoll"; }
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
  void update_interest(io_target& target);
  void on_readable(io_target& target);
  void try_send(io_target& target);
  void accept_ready(listener_entry& listener);
  void resume_starved();
  void watch_listener(listener_entry& listener);
  // Puts listeners whose pause is over back; returns the wait limit the next pause end
  // imposes on run_once (-1: none).
  int resume_paused_listeners(int timeout_ms);

  int epoll_fd_;
  char* buffers_ = nullptr;
  size_t buffers_bytes_;
  uint32_t buffer_bytes_;
  std::vector<uint16_t> free_buffers_;
  std::vector<listener_entry*> listeners_;
  std::vector<listener_entry*> paused_;
  wake_entry* wake_ = nullptr;
  std::vector<io_target*> starved_;
  std::vector<deferred> deferred_;
  std::vector<io_target*> closed_;
  std::vector<epoll_event> events_;
};

[[noreturn]] void fail(int error, const char* what) {
  throw std::system_error(error, std::system_category(), what);
}

uint64_t tag(const void* pointer, kind what) {
  auto bits = reinterpret_cast<uint64_t>(pointer);
  assert((bits & kind_mask) == 0);
  return bits | static_cast<uint64_t>(what);
}

epoll_backend::epoll_backend(const backend_options& options)
    : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
      buffers_bytes_(static_cast<size_t>(options.recv_buffer_bytes) * options.recv_buffer_count),
      buffer_bytes_(options.recv_buffer_bytes),
      events_(256) {
  if (epoll_fd_ < 0) fail(errno, "epoll_create1");
  assert(options.recv_buffer_count <= 65536);
  void* memory = mmap(nullptr, buffers_bytes_, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (memory == MAP_FAILED) fail(errno, "mmap receive buffers");
  buffers_ = static_cast<char*>(memory);
  free_buffers_.reserve(options.recv_buffer_count);
  for (uint32_t id = options.recv_buffer_count; id-- > 0;) {
    free_buffers_.push_back(static_cast<uint16_t>(id));
  }
}

epoll_backend::~epoll_backend() {
  ::close(epoll_fd_);
  munmap(buffers_, buffers_bytes_);
  for (listener_entry* listener : listeners_) delete listener;
  delete wake_;
}

void epoll_backend::add_listener(int listen_fd, accept_handler& handler) {
  auto* listener = new listener_entry{listen_fd, &handler, 0};
  listeners_.push_back(listener);
  watch_listener(*listener);
}

void epoll_backend::watch_listener(listener_entry& listener) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = tag(&listener, kind::listener);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listener.fd, &event) < 0) fail(errno, "epoll_ctl listener");
}

int epoll_backend::resume_paused_listeners(int timeout_ms) {
  if (paused_.empty()) return timeout_ms;
  uint64_t now = util::monotonic_ms();
  uint64_t next = UINT64_MAX;
  std::erase_if(paused_, [&](listener_entry* listener) {
    if (listener->paused_until_ms > now) {
      next = std::min(next, listener->paused_until_ms);
      return false;
    }
    listener->paused_until_ms = 0;
    watch_listener(*listener);
    return true;
  });
  if (next == UINT64_MAX) return timeout_ms;
  int until_next = static_cast<int>(next - now);
  return timeout_ms < 0 ? until_next : std::min(timeout_ms, until_next);
}

void epoll_backend::remove_listener(int listen_fd) {
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if ((*it)->fd != listen_fd) continue;
    if ((*it)->paused_until_ms != 0) {
      std::erase(paused_, *it);  // already out of the epoll set
    } else {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd, nullptr);
    }
    // Events already fetched in this iteration may still name it: keep the entry
    // alive until the backend goes away, just mark it inert.
    (*it)->handler = nullptr;
  }
}

void epoll_backend::add_wake_fd(int event_fd, wake_handler& handler) {
  assert(wake_ == nullptr);
  wake_ = new wake_entry{event_fd, &handler};
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = tag(wake_, kind::wake);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd, &event) < 0) fail(errno, "epoll_ctl eventfd");
}

void epoll_backend::attach(io_target& target, int fd) {
  target.io = io_slot{};
  target.io.fd = fd;
}

// Registers exactly the interest the target has now. A socket with no interest is
// removed from the set: epoll reports HUP/ERR even when nothing was asked for, and
// level-triggered reporting of those would spin.
void epoll_backend::update_interest(io_target& target) {
  uint32_t wanted = 0;
  if (target.io.recv_wanted && !target.io.starved) wanted |= EPOLLIN | EPOLLRDHUP;
  if (target.io.send_pending && !target.io.send_done) wanted |= EPOLLOUT;
  if (target.io.closing) wanted = 0;
  if (wanted == target.io.epoll_events) return;
  epoll_event event{};
  event.events = wanted;
  event.data.u64 = tag(&target, kind::target);
  int operation = target.io.epoll_events == 0 ? EPOLL_CTL_ADD
                  : wanted == 0               ? EPOLL_CTL_DEL
                                              : EPOLL_CTL_MOD;
  if (epoll_ctl(epoll_fd_, operation, target.io.fd, &event) < 0) fail(errno, "epoll_ctl");
  target.io.epoll_events = wanted;
}

void epoll_backend::recv_start(io_target& target) {
  if (target.io.closing) return;
  target.io.recv_wanted = true;
  update_interest(target);
}

void epoll_backend::recv_stop(io_target& target) {
  target.io.recv_wanted = false;
  update_interest(target);
}

void epoll_backend::send(io_target& target, const iovec* iov, int iov_count) {
  assert(!target.io.send_pending && !target.io.closing && iov_count > 0);
  target.io.send_pending = true;
  target.io.send_iov = iov;
  target.io.send_iov_count = iov_count;
  try_send(target);
}

void epoll_backend::send_file(io_target& target, int file_fd, uint64_t offset, uint64_t bytes) {
  assert(!target.io.send_pending && !target.io.closing && bytes > 0);
  target.io.send_pending = true;
  target.io.send_file_fd = file_fd;
  target.io.send_file_offset = offset;
  target.io.send_file_bytes = bytes;
  try_send(target);
}

void epoll_backend::try_send(io_target& target) {
  ssize_t written;
  if (target.io.send_file_fd >= 0) {
    auto offset = static_cast<off_t>(target.io.send_file_offset);
    written = ::sendfile(target.io.fd, target.io.send_file_fd, &offset,
                         static_cast<size_t>(std::min<uint64_t>(target.io.send_file_bytes, 1u << 30)));
  } else {
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(target.io.send_iov);
    message.msg_iovlen = static_cast<size_t>(target.io.send_iov_count);
    written = ::sendmsg(target.io.fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  if (written < 0 && (errno == EAGAIN || errno == EINTR)) {
    update_interest(target);  // wait for EPOLLOUT
    return;
  }
  // send_pending stays set until on_send runs: until then the connection has not
  // released these bytes, and a send queued in between would send them again.
  target.io.send_done = true;
  target.io.send_file_fd = -1;
  update_interest(target);
  deferred_.push_back({&target, deferred::what::send,
                       written < 0 ? -errno : static_cast<int>(written)});
}

void epoll_backend::close(io_target& target) {
  if (target.io.closing) return;
  target.io.closing = true;
  target.io.recv_wanted = false;
  target.io.send_pending = false;
  if (target.io.starved) {
    std::erase(starved_, &target);
    target.io.starved = false;
  }
  // close() removes the socket from the epoll set; deferred events for it are skipped.
  ::close(target.io.fd);
  target.io.fd = -1;
  target.io.epoll_events = 0;
  closed_.push_back(&target);
}

void epoll_backend::release(const recv_buffer& buffer) {
  free_buffers_.push_back(buffer.id);
}

void epoll_backend::resume_starved() {
  if (starved_.empty() || free_buffers_.empty()) return;
  std::vector<io_target*> starved;
  starved.swap(starved_);
  for (io_target* target : starved) {
    target->io.starved = false;
    update_interest(*target);
  }
}

void epoll_backend::on_readable(io_target& target) {
  if (free_buffers_.empty()) {
    // Back-pressure: stop watching this socket until some buffer comes back.
    target.io.starved = true;
    starved_.push_back(&target);
    update_interest(target);
    return;
  }
  uint16_t id = free_buffers_.back();
  char* data = buffers_ + static_cast<size_t>(id) * buffer_bytes_;
  ssize_t received = ::recv(target.io.fd, data, buffer_bytes_, MSG_DONTWAIT);
  if (received > 0) {
    free_buffers_.pop_back();
    target.on_recv(recv_buffer{data, static_cast<uint32_t>(received), id});
    return;
  }
  if (received < 0 && (errno == EAGAIN || errno == EINTR)) return;
  target.io.recv_wanted = false;
  update_interest(target);
  target.on_recv_end(received == 0 ? 0 : -errno);
}

void epoll_backend::accept_ready(listener_entry& listener) {
  // Bounded so one busy listener cannot starve the connections already open.
  for (int accepted = 0; accepted < 64; ++accepted) {
    int fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int error = errno;
      if (error == EAGAIN || error == EINTR || error == ECONNABORTED) return;
      log_accept_failure(error);
      if (accept_needs_pause(error)) {
        // Level-triggered: the waiting connection would report the listener ready again
        // at once. Out of the set until the pause is over.
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listener.fd, nullptr);
        listener.paused_until_ms = util::monotonic_ms() + accept_pause_ms;
        paused_.push_back(&listener);
      }
      return;
    }
    listener.handler->on_accept(fd);
  }
}

void epoll_backend::run_once(int timeout_ms) {
  resume_starved();
  timeout_ms = resume_paused_listeners(timeout_ms);
  if (!deferred_.empty() || !closed_.empty()) timeout_ms = 0;
  int count = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
  if (count < 0 && errno != EINTR) fail(errno, "epoll_wait");
  for (int i = 0; i < count; ++i) {
    const epoll_event& event = events_[static_cast<size_t>(i)];
    auto what = static_cast<kind>(event.data.u64 & kind_mask);
    void* pointer = reinterpret_cast<void*>(event.data.u64 & ~kind_mask);
    if (what == kind::listener) {
      auto& listener = *static_cast<listener_entry*>(pointer);
      if (listener.handler != nullptr) accept_ready(listener);
      continue;
    }
    if (what == kind::wake) {
      uint64_t value;
      ssize_t ignored = ::read(wake_->fd, &value, sizeof(value));
      (void)ignored;
      wake_->handler->on_wake();
      continue;
    }
    auto& target = *static_cast<io_target*>(pointer);
    if (target.io.closing) continue;
    if ((event.events & EPOLLOUT) && target.io.send_pending && !target.io.send_done) try_send(target);
    if (target.io.closing) continue;
    if ((event.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && target.io.recv_wanted) {
      on_readable(target);
    }
  }
  // Deliver synchronous completions; a callback may add more, so loop until none.
  while (!deferred_.empty()) {
    std::vector<deferred> batch;
    batch.swap(deferred_);
    for (const deferred& item : batch) {
      if (item.target->io.closing) continue;
      if (item.event == deferred::what::send) {
        item.target->io.send_pending = false;
        item.target->io.send_done = false;
        item.target->on_send(item.result);
      }
    }
  }
  std::vector<io_target*> closed;
  closed.swap(closed_);
  for (io_target* target : closed) target->on_closed();
}

}  // namespace

std::unique_ptr<backend> make_epoll_backend(const backend_options& options) {
  return std::make_unique<epoll_backend>(options);
}

}  // namespace mailwing::reactor
