#pragma once
// Who is on the other end of a connection: the text form for logs and Received: lines,
// and the key that per-address limits count by.

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string_view>

namespace mailwing::net {

struct peer_address {
  // The address as the limits count it. IPv4 as ::ffff:a.b.c.d. IPv6 cut to its /64: a
  // single site gets a whole /64 and can pick any address in it, so counting per /128
  // would let one host open the limit's worth of connections per address it picks.
  using key_type = std::array<uint8_t, 16>;

  char text_bytes[46] = {};  // "192.0.2.1", "2001:db8::1"; "" when unknown
  uint16_t port = 0;
  key_type key{};

  std::string_view text() const { return text_bytes; }
};

// From an address the kernel gave (accept, getpeername). Unknown families give "".
peer_address peer_address_from(const sockaddr_storage& address);
// getpeername of a connected socket; false when the peer is already gone.
bool read_peer_address(int fd, peer_address& out);

}  // namespace mailwing::net
