#include "mailwing/net/acceptor.hh"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace mailwing::net {

connection_limit::connection_limit(uint32_t connections_max, uint32_t per_address_max)
    : connections_max_(connections_max), per_address_max_(per_address_max) {}

size_t connection_limit::key_hash::operator()(const peer_address::key_type& key) const {
  uint64_t high;
  uint64_t low;
  std::memcpy(&high, key.data(), 8);
  std::memcpy(&low, key.data() + 8, 8);
  // Fibonacci hashing of the mixed halves: addresses differ in few bits.
  return static_cast<size_t>((high ^ (low * 0x9E3779B97F4A7C15ull)) * 0x9E3779B97F4A7C15ull >> 7);
}

connection_limit::stripe& connection_limit::stripe_for(const peer_address& peer) {
  return stripes_[key_hash{}(peer.key) % stripe_count];
}

connection_limit::admission connection_limit::try_acquire(const peer_address& peer) {
  if (count_.fetch_add(1, std::memory_order_relaxed) >= connections_max_) {
    count_.fetch_sub(1, std::memory_order_relaxed);
    return admission::server_full;
  }
  stripe& place = stripe_for(peer);
  std::lock_guard<std::mutex> lock(place.mutex);
  uint32_t& open = place.counts[peer.key];
  if (open >= per_address_max_) {
    if (open == 0) place.counts.erase(peer.key);
    count_.fetch_sub(1, std::memory_order_relaxed);
    return admission::address_full;
  }
  ++open;
  return admission::admitted;
}

void connection_limit::release(const peer_address& peer) {
  {
    stripe& place = stripe_for(peer);
    std::lock_guard<std::mutex> lock(place.mutex);
    auto found = place.counts.find(peer.key);
    assert(found != place.counts.end() && found->second > 0);
    if (--found->second == 0) place.counts.erase(found);
  }
  uint32_t before = count_.fetch_sub(1, std::memory_order_relaxed);
  assert(before > 0);
  (void)before;
}

uint32_t connection_limit::count_for(const peer_address& peer) {
  stripe& place = stripe_for(peer);
  std::lock_guard<std::mutex> lock(place.mutex);
  auto found = place.counts.find(peer.key);
  return found == place.counts.end() ? 0 : found->second;
}

void acceptor::on_accept(int fd) {
  accepted_socket socket;
  socket.fd = fd;
  if (!read_peer_address(fd, socket.peer)) {
    ::close(fd);  // reset before we got to it: nobody to serve
    return;
  }
  connection_limit::admission admitted = limit_.try_acquire(socket.peer);
  if (admitted != connection_limit::admission::admitted) {
    const std::string& line =
        admitted == connection_limit::admission::server_full ? server_full_line_ : address_full_line_;
    // Best effort and non-blocking: the socket buffer of a fresh connection is empty.
    ssize_t ignored = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
    ::close(fd);
    return;
  }
  socket.limit = &limit_;
  if (implicit_tls_ != nullptr) {
    socket.tls = implicit_tls_->current();
    socket.tls_handshake_timeout_ms = tls_handshake_timeout_ms_;
    if (!socket.tls) {  // no usable certificate: nothing to speak on this port
      limit_.release(socket.peer);
      ::close(fd);
      return;
    }
  }
  int one = 1;
  // Replies are small and pipelined clients wait for them: never let Nagle hold one back.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  start_session_(socket);
}

listener_set::listener_set(reactor::backend& io, connection_limit& limit, std::string server_full_line,
                           std::string address_full_line, std::function<void(accepted_socket)> start_session)
    : io_(io),
      plain_acceptor_(limit, server_full_line, address_full_line, start_session),
      tls_acceptor_(limit, std::move(server_full_line), std::move(address_full_line), std::move(start_session)) {}

listener_set::~listener_set() {
  for (int fd : listen_fds_) ::close(fd);
}

void listener_set::listen(int listen_fd, bool implicit_tls) {
  listen_fds_.push_back(listen_fd);
  io_.add_listener(listen_fd, implicit_tls ? tls_acceptor_ : plain_acceptor_);
}

void listener_set::close_all() {
  for (int fd : listen_fds_) {
    io_.remove_listener(fd);
    ::close(fd);
  }
  listen_fds_.clear();
}

namespace {

// A non-blocking TCP socket bound to host:port; `reuse_port` adds SO_REUSEPORT.
int bound_socket(const std::string& host, uint16_t port, bool reuse_port) {
  sockaddr_storage address{};
  socklen_t address_bytes = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    address_bytes = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    address_bytes = sizeof(sockaddr_in6);
  } else {
    throw std::system_error(EINVAL, std::system_category(), "listen address " + host);
  }
  std::string name = host + ":" + std::to_string(port);
  int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "socket for " + name);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (address.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), address_bytes) != 0) {
    int error = errno;
    ::close(fd);
    throw std::system_error(error, std::system_category(), "bind " + name);
  }
  return fd;
}

}  // namespace

void check_port_free(const std::string& host, uint16_t port) {
  if (port == 0) return;  // a fresh ephemeral port is never shared
  ::close(bound_socket(host, port, false));
}

int listen_socket(const std::string& host, uint16_t port) {
  int fd = bound_socket(host, port, true);
  if (::listen(fd, 4096) != 0) {
    int error = errno;
    ::close(fd);
    throw std::system_error(error, std::system_category(), "listen " + host + ":" + std::to_string(port));
  }
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_storage address{};
  socklen_t address_bytes = sizeof(address);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_bytes) != 0) return 0;
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
}

}  // namespace mailwing::net
