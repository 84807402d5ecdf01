#pragma once
// Helpers for tests that run a real reactor::shard: running code on the shard's thread
// from the test thread, the backend parameter, and blocking client sockets.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mailwing/reactor/shard.hh"

namespace mailwing::reactor::testing {

// Runs functions on a shard's thread, queued from any thread. It is a loop_hook: the
// shard runs it once per iteration; shard::wake() (callable from any thread) makes a
// sleeping shard iterate. Uses only the shard's public interface, so the shard's own
// producer slots stay with their owners. Install it from the shard's setup callback.
class shard_inbox final : public loop_hook {
 public:
  explicit shard_inbox(shard& owner) : owner_(owner) {}

  // Any thread.
  void post(std::function<void()> work) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(work));
    }
    owner_.wake();
  }

  // Any thread but the shard's: runs `work` there and waits for it (rethrows).
  template <class F>
  auto call(F work) -> decltype(work()) {
    using result_type = decltype(work());
    auto done = std::make_shared<std::promise<result_type>>();
    std::future<result_type> result = done->get_future();
    post([done, work = std::move(work)]() mutable {
      try {
        if constexpr (std::is_void_v<result_type>) {
          work();
          done->set_value();
        } else {
          done->set_value(work());
        }
      } catch (...) {
        done->set_exception(std::current_exception());
      }
    });
    if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      ADD_FAILURE() << "the shard did not run a posted call within 20 s";
      std::abort();  // the call still refers to this frame
    }
    return result.get();
  }

  void before_wait() override {
    std::vector<std::function<void()>> work;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      work.swap(queue_);
    }
    for (auto& item : work) item();
    // Go round once more before sleeping: the work may have produced something for a
    // hook that already ran this turn (a delivery for the store's before_wait), just as
    // work arriving from tasks or sockets would be seen by the hooks of the next turn.
    if (!work.empty()) owner_.wake();
  }

 private:
  shard& owner_;
  std::mutex mutex_;
  std::vector<std::function<void()>> queue_;
};

inline const char* backend_name(backend_choice choice) {
  return choice == backend_choice::epoll ? "epoll" : "io_uring";
}

// For INSTANTIATE_TEST_SUITE_P(..., ::testing::Values(epoll, io_uring), backend_param_name).
inline std::string backend_param_name(const ::testing::TestParamInfo<backend_choice>& info) {
  return backend_name(info.param);
}

// Whether io_uring works here, probed once. The probe runs on a thread of its own: a
// ring torn down on the calling thread leaves io_uring task work behind for that thread,
// which interrupts its next blocking socket call (EINTR when SO_RCVTIMEO is set).
inline bool io_uring_available() {
  static const bool available = [] {
    bool result = false;
    std::thread probe([&result] {
      result = resolve_backend(backend_choice::auto_select) == backend_choice::io_uring;
    });
    probe.join();
    return result;
  }();
  return available;
}

// Skips the test when the backend cannot run here (io_uring missing or blocked).
#define MW_SKIP_IF_BACKEND_UNAVAILABLE(choice)                                              \
  do {                                                                                      \
    if ((choice) == ::mailwing::reactor::backend_choice::io_uring &&                        \
        !::mailwing::reactor::testing::io_uring_available()) {                              \
      GTEST_SKIP() << "io_uring is not available on this machine";                          \
    }                                                                                       \
  } while (0)

// Polls `condition` (on the calling thread) until it holds or `seconds` pass. Only a
// guard against hangs: tests never depend on how fast something happens.
inline bool eventually(const std::function<bool()>& condition, double seconds = 20) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// ---- Blocking client sockets -------------------------------------------------------

inline void set_timeouts(int fd, int seconds) {
  timeval timeout{};
  timeout.tv_sec = seconds;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
}

// A blocking client connected to 127.0.0.1:port, with 20 s send/receive timeouts so a
// broken server fails the test instead of hanging it.
inline int connect_client(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int result = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  if (result != 0 && errno == EINTR) {
    // The connection goes on in the background: wait for it and fetch its outcome.
    pollfd watch{fd, POLLOUT, 0};
    while (::poll(&watch, 1, 20000) < 0 && errno == EINTR) {
    }
    int error = 0;
    socklen_t size = sizeof(error);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
    errno = error;
    result = error == 0 ? 0 : -1;
  }
  if (result != 0) {
    ADD_FAILURE() << "connect: " << std::strerror(errno);
    ::close(fd);
    return -1;
  }
  set_timeouts(fd, 20);
  return fd;
}

inline bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) {
      ADD_FAILURE() << "send: " << std::strerror(errno);
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(sent));
  }
  return true;
}

// Reads exactly `size` bytes (less when the peer closes or the timeout passes).
inline std::string read_exactly(int fd, size_t size) {
  std::string out(size, '\0');
  size_t filled = 0;
  while (filled < size) {
    ssize_t got = ::recv(fd, out.data() + filled, size - filled, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    filled += static_cast<size_t>(got);
  }
  out.resize(filled);
  return out;
}

struct read_all_result {
  std::string bytes;
  bool eof = false;  // the peer closed (orderly) — not a timeout or a reset
  int error = 0;
};

// Reads until the peer closes.
inline read_all_result read_to_eof(int fd) {
  read_all_result out;
  char buffer[65536];
  for (;;) {
    ssize_t got = ::recv(fd, buffer, sizeof(buffer), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got == 0) {
      out.eof = true;
      break;
    }
    if (got < 0) {
      out.error = errno;
      break;
    }
    out.bytes.append(buffer, static_cast<size_t>(got));
  }
  return out;
}

// Reads up to and including "\n".
inline std::string read_line(int fd) {
  std::string line;
  char c;
  for (;;) {
    ssize_t got = ::recv(fd, &c, 1, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got != 1) break;
    line.push_back(c);
    if (c == '\n') break;
  }
  return line;
}

// True when nothing arrives within `ms` (and the connection is still open).
inline bool silent_for(int fd, int ms) {
  pollfd watch{fd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&watch, 1, ms);  // (a retry after EINTR waits a little longer: fine)
  } while (ready < 0 && errno == EINTR);
  return ready == 0;
}

// Drives many client sockets at once from one thread: each sends its `out` bytes and
// reads until it has `expect_bytes` (or EOF). Non-blocking with poll, so no client can
// deadlock another by not reading.
struct pumped_client {
  int fd = -1;
  std::string out;
  size_t expect_bytes = 0;
  bool shutdown_after_send = false;
  size_t sent = 0;
  std::string in;
  bool eof = false;
};

inline bool pump_clients(std::vector<pumped_client>& clients, double seconds = 30) {
  for (pumped_client& client : clients) {
    int flags = ::fcntl(client.fd, F_GETFL);
    ::fcntl(client.fd, F_SETFL, flags | O_NONBLOCK);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<pollfd> watch;
  std::vector<size_t> index;
  char buffer[65536];
  for (;;) {
    watch.clear();
    index.clear();
    for (size_t i = 0; i < clients.size(); ++i) {
      pumped_client& client = clients[i];
      short events = 0;
      if (client.sent < client.out.size()) events |= POLLOUT;
      if (!client.eof && client.in.size() < client.expect_bytes) events |= POLLIN;
      if (events == 0) continue;
      watch.push_back({client.fd, events, 0});
      index.push_back(i);
    }
    if (watch.empty()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "pump_clients: " << watch.size() << " clients not finished";
      return false;
    }
    int ready = ::poll(watch.data(), watch.size(), 100);
    if (ready < 0 && errno != EINTR) return false;
    for (size_t w = 0; w < watch.size(); ++w) {
      pumped_client& client = clients[index[w]];
      if (watch[w].revents & POLLOUT) {
        size_t chunk = std::min<size_t>(client.out.size() - client.sent, 256 * 1024);
        ssize_t sent = ::send(client.fd, client.out.data() + client.sent, chunk, MSG_NOSIGNAL);
        if (sent > 0) client.sent += static_cast<size_t>(sent);
        if (sent < 0 && errno != EAGAIN && errno != EINTR) {
          ADD_FAILURE() << "pump_clients send: " << std::strerror(errno);
          return false;
        }
        if (client.sent == client.out.size() && client.shutdown_after_send) ::shutdown(client.fd, SHUT_WR);
      }
      if (watch[w].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t got = ::recv(client.fd, buffer, sizeof(buffer), 0);
        if (got > 0) client.in.append(buffer, static_cast<size_t>(got));
        if (got == 0) client.eof = true;
        if (got < 0 && errno != EAGAIN && errno != EINTR) {
          ADD_FAILURE() << "pump_clients recv: " << std::strerror(errno);
          return false;
        }
      }
    }
  }
  for (pumped_client& client : clients) {
    int flags = ::fcntl(client.fd, F_GETFL);
    ::fcntl(client.fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  return true;
}

// Deterministic bytes that make reordering, loss and duplication visible.
inline std::string pattern_bytes(size_t size, uint32_t seed) {
  std::string out(size, '\0');
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    out[i] = static_cast<char>(state >> 56);
  }
  return out;
}

}  // namespace mailwing::reactor::testing
