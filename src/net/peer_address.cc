#include "mailwing/net/peer_address.hh"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace mailwing::net {

peer_address peer_address_from(const sockaddr_storage& address) {
  peer_address peer;
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    inet_ntop(AF_INET, &v4.sin_addr, peer.text_bytes, sizeof(peer.text_bytes));
    peer.port = ntohs(v4.sin_port);
    peer.key[10] = 0xff;
    peer.key[11] = 0xff;
    std::memcpy(peer.key.data() + 12, &v4.sin_addr, 4);
  } else if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    inet_ntop(AF_INET6, &v6.sin6_addr, peer.text_bytes, sizeof(peer.text_bytes));
    peer.port = ntohs(v6.sin6_port);
    std::memcpy(peer.key.data(), &v6.sin6_addr, 16);
    // A v4-mapped address is one IPv4 host: keep all of it. Otherwise the /64 only.
    if (!IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) std::memset(peer.key.data() + 8, 0, 8);
  }
  return peer;
}

bool read_peer_address(int fd, peer_address& out) {
  sockaddr_storage address{};
  socklen_t address_bytes = sizeof(address);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &address_bytes) != 0) return false;
  out = peer_address_from(address);
  return true;
}

}  // namespace mailwing::net
