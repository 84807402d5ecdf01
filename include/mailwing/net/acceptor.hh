#pragma once
// Accepts connections on one shard's listening socket and hands each to a session
// factory, enforcing the connection limits: one for the whole server (per protocol) and
// one per client address.
//
// Every shard has its own listening socket on the same address (SO_REUSEPORT), so the
// kernel spreads connections over shards and no shard hands sockets to another. The
// limits are shared by all shards of a protocol (connection_limit). A connection over a
// limit gets the matching reject line and is closed at once; it never costs a session.
//
// Owned by its shard; on_accept runs on that shard's thread.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "mailwing/net/peer_address.hh"
#include "mailwing/net/tls_context.hh"
#include "mailwing/reactor/backend.hh"

namespace mailwing::net {

// The server-wide and per-address connection counts of one protocol. Shared by every
// shard: any thread may call it. Touched twice per connection (accept and close), never
// per message, so a striped mutex is cheap enough; the table holds only addresses with
// open connections, so its size is bounded by connections_max.
class connection_limit {
 public:
  connection_limit(uint32_t connections_max, uint32_t per_address_max);
  connection_limit(const connection_limit&) = delete;
  connection_limit& operator=(const connection_limit&) = delete;

  enum class admission : uint8_t { admitted, server_full, address_full };
  // On `admitted` the caller owns one place and gives it back with release(peer).
  admission try_acquire(const peer_address& peer);
  void release(const peer_address& peer);
  uint32_t count() const { return count_.load(std::memory_order_relaxed); }
  uint32_t count_for(const peer_address& peer);

 private:
  struct key_hash {
    size_t operator()(const peer_address::key_type& key) const;
  };
  struct stripe {
    std::mutex mutex;
    std::unordered_map<peer_address::key_type, uint32_t, key_hash> counts;
  };
  static constexpr size_t stripe_count = 16;
  stripe& stripe_for(const peer_address& peer);

  uint32_t connections_max_;
  uint32_t per_address_max_;
  std::atomic<uint32_t> count_{0};
  std::array<stripe, stripe_count> stripes_;
};

// What the acceptor hands to a new session: the socket, who is on the other end, and the
// place it holds in the limits, which net::connection gives back when it is destroyed.
struct accepted_socket {
  int fd = -1;
  peer_address peer;
  connection_limit* limit = nullptr;
  // Implicit TLS (RFC 8314: 465, 995): the handshake comes before the greeting, and must
  // finish within tls_handshake_timeout_ms.
  std::shared_ptr<tls_context> tls;
  uint64_t tls_handshake_timeout_ms = 0;
};

class acceptor final : public reactor::accept_handler {
 public:
  // `start_session` takes the socket and its place in `limit`.
  acceptor(connection_limit& limit, std::string server_full_line, std::string address_full_line,
           std::function<void(accepted_socket)> start_session)
      : limit_(limit),
        server_full_line_(std::move(server_full_line)),
        address_full_line_(std::move(address_full_line)),
        start_session_(std::move(start_session)) {}

  // Every connection from this acceptor speaks TLS from its first byte, with the context
  // `holder` has when it arrives (none: the connection is refused).
  void use_implicit_tls(const tls_context_holder& holder, uint64_t handshake_timeout_ms) {
    implicit_tls_ = &holder;
    tls_handshake_timeout_ms_ = handshake_timeout_ms;
  }

  void on_accept(int fd) override;

 private:
  connection_limit& limit_;
  const tls_context_holder* implicit_tls_ = nullptr;
  uint64_t tls_handshake_timeout_ms_ = 0;
  std::string server_full_line_;
  std::string address_full_line_;
  std::function<void(accepted_socket)> start_session_;
};

// The listening sockets of one protocol on one shard: plain ones and implicit-TLS ones,
// each kind with its acceptor, all sharing the protocol's limits. Owned by a service on its
// shard; only that shard's thread calls it.
class listener_set {
 public:
  listener_set(reactor::backend& io, connection_limit& limit, std::string server_full_line,
               std::string address_full_line, std::function<void(accepted_socket)> start_session);
  ~listener_set();
  listener_set(const listener_set&) = delete;
  listener_set& operator=(const listener_set&) = delete;

  // Before any listen(fd, true).
  void use_implicit_tls(const tls_context_holder& holder, uint64_t handshake_timeout_ms) {
    tls_acceptor_.use_implicit_tls(holder, handshake_timeout_ms);
  }
  // Starts accepting on `listen_fd` (a socket bound for this shard), which it now owns.
  void listen(int listen_fd, bool implicit_tls);
  // Stops accepting and closes every socket (a drain).
  void close_all();

 private:
  reactor::backend& io_;
  acceptor plain_acceptor_;
  acceptor tls_acceptor_;
  std::vector<int> listen_fds_;
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
