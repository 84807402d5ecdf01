#pragma once
// Accepts connections on one shard's listening socket and hands each to a session
// factory, enforcing the server-wide connection limit.
//
// Every shard has its own listening socket on the same address (SO_REUSEPORT), so the
// kernel spreads connections over shards and no shard hands sockets to another. The limit
// is one atomic counter shared by all shards of a protocol: one fetch_add per accept.
// A connection over the limit gets `reject_line` and is closed at once; it never costs
// a session.
//
// Owned by its shard; on_accept runs on that shard's thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "mailwing/reactor/backend.hh"

namespace mailwing::net {

class connection_limit {
 public:
  explicit connection_limit(uint32_t connections_max) : connections_max_(connections_max) {}
  // Any thread.
  bool try_acquire() {
    if (count_.fetch_add(1, std::memory_order_relaxed) < connections_max_) return true;
    count_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  void release() { count_.fetch_sub(1, std::memory_order_relaxed); }
  uint32_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  uint32_t connections_max_;
  std::atomic<uint32_t> count_{0};
};

class acceptor final : public reactor::accept_handler {
 public:
  // `start_session` takes the socket; it must call limit.release() when the session ends.
  acceptor(connection_limit& limit, std::string reject_line, std::function<void(int fd)> start_session)
      : limit_(limit), reject_line_(std::move(reject_line)), start_session_(std::move(start_session)) {}

  void on_accept(int fd) override;

 private:
  connection_limit& limit_;
  std::string reject_line_;
  std::function<void(int fd)> start_session_;
};

// Creates a listening TCP socket bound to host:port with SO_REUSEPORT (and SO_REUSEADDR),
// non-blocking. Port 0 picks a free port; bound_port() tells which. Throws
// std::system_error naming the address.
int listen_socket(const std::string& host, uint16_t port);

// SO_REUSEPORT would let a second server on the same port silently take half of the
// connections; binding once without it first fails with EADDRINUSE instead when anyone
// listens there. Call before the first listen_socket for an address. Throws like it.
void check_port_free(const std::string& host, uint16_t port);
uint16_t bound_port(int fd);

}  // namespace mailwing::net
