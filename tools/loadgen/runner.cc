#include "loadgen/runner.hh"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace mailwing::loadgen {
namespace {

std::atomic<bool> stop_flag{false};

void on_stop_signal(int signal_number) {
  stop_flag.store(true, std::memory_order_relaxed);
  // The next one terminates as usual.
  ::signal(signal_number, SIG_DFL);
}

std::vector<int> usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  return cpus;
}

}  // namespace

uint64_t now_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec) * 1000000000u + uint64_t(now.tv_nsec);
}

int connect_tcp(const endpoint& target, int timeout_ms, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(target.port);
  int status = getaddrinfo(target.host.c_str(), port.c_str(), &hints, &found);
  if (status != 0) {
    error = "cannot resolve " + target.host + ": " + gai_strerror(status);
    return -1;
  }
  int fd = -1;
  error.clear();
  for (addrinfo* at = found; at != nullptr; at = at->ai_next) {
    fd = ::socket(at->ai_family, at->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, at->ai_protocol);
    if (fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int result = ::connect(fd, at->ai_addr, at->ai_addrlen);
    if (result != 0 && errno == EINPROGRESS) {
      pollfd wait{fd, POLLOUT, 0};
      int ready;
      do {
        ready = ::poll(&wait, 1, timeout_ms);
      } while (ready < 0 && errno == EINTR);
      if (ready == 0) {
        errno = ETIMEDOUT;
      } else {
        int socket_error = 0;
        socklen_t length = sizeof(socket_error);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &socket_error, &length);
        errno = socket_error;
        result = socket_error == 0 ? 0 : -1;
      }
    }
    if (result == 0) break;
    error = "connect to " + target.host + ":" + port + ": " + std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(found);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

uint64_t raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return uint64_t(limit.rlim_cur);
}

reactor::backend_choice parse_backend(std::string_view option, std::string_view text) {
  if (text == "auto") return reactor::backend_choice::auto_select;
  if (text == "io_uring") return reactor::backend_choice::io_uring;
  if (text == "epoll") return reactor::backend_choice::epoll;
  throw usage_error(std::string(option) + ": expected auto, io_uring or epoll, got '" +
                    std::string(text) + "'");
}

const char* backend_name(reactor::backend_choice choice) {
  switch (choice) {
    case reactor::backend_choice::io_uring: return "io_uring";
    case reactor::backend_choice::epoll: return "epoll";
    case reactor::backend_choice::auto_select: return "auto";
  }
  return "auto";
}

void install_stop_signals() {
  struct sigaction action{};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A server that resets a connection mid-write must not kill the client.
  ::signal(SIGPIPE, SIG_IGN);
}

bool stop_signalled() { return stop_flag.load(std::memory_order_relaxed); }

shard_group::shard_group(uint32_t count, reactor::backend_choice backend, bool pin,
                         const reactor::backend_options& io)
    : backend_(reactor::resolve_backend(backend)) {
  std::vector<int> cpus = pin ? usable_cpus() : std::vector<int>();
  for (uint32_t i = 0; i < count; ++i) {
    reactor::shard_options options;
    options.backend = backend_;
    options.io = io;
    options.cpu = cpus.empty() ? -1 : cpus[i % cpus.size()];
    shards_.push_back(std::make_unique<reactor::shard>(i, count, options));
  }
}

shard_group::~shard_group() { stop(); }

void shard_group::start(const std::function<void(reactor::shard&, uint32_t index)>& setup) {
  started_ = true;
  for (uint32_t i = 0; i < shards_.size(); ++i) {
    try {
      reactor::shard& target = *shards_[i];
      target.start([&setup, i](reactor::shard& self) { setup(self, i); });
    } catch (...) {
      // shard::start joined the failed one; stop the others.
      shards_.resize(i);
      stop();
      throw;
    }
  }
}

void shard_group::stop() {
  if (!started_) return;
  for (auto& shard : shards_) shard->request_stop();
  for (auto& shard : shards_) shard->join();
  started_ = false;
}

}  // namespace mailwing::loadgen
