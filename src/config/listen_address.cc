#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "mailwing/config/config.hh"
#include "names.hh"

namespace mailwing::config {
namespace {

[[noreturn]] void fail(std::string_view key, std::string_view text, std::string_view problem) {
  throw config_error(std::string(key) + ": " + in_quotes(text) + " " + std::string(problem));
}

// Decimal digits only: std::stoul would also take "+25", " 25" and "25abc".
bool parse_port(std::string_view digits, uint16_t& port) {
  if (digits.empty() || digits.size() > 5) return false;
  uint32_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

listen_address parse_listen_address(std::string_view text, std::string_view key) {
  constexpr std::string_view shape =
      "is not host:port (an IPv4 address, or an IPv6 address in brackets)";
  std::string_view host;
  std::string_view port;
  int family = AF_INET;
  if (text.starts_with('[')) {
    size_t close = text.find("]:");
    if (close == std::string_view::npos) fail(key, text, shape);
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    family = AF_INET6;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) fail(key, text, shape);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    // An unbracketed IPv6 address is ambiguous: "::1:25" could be ::1 port 25 or ::1:25.
    if (host.find(':') != std::string_view::npos) fail(key, text, shape);
  }
  // Only literals: resolving a name would make startup depend on DNS. A NUL would end
  // the C string early and let trailing junk through.
  std::string host_text(host);
  unsigned char binary[sizeof(in6_addr)];
  if (host.find('\0') != std::string_view::npos ||
      inet_pton(family, host_text.c_str(), binary) != 1) {
    fail(key, text, shape);
  }
  listen_address address;
  address.host = std::move(host_text);
  if (!parse_port(port, address.port)) fail(key, text, "needs a port number from 0 to 65535");
  return address;
}

}  // namespace mailwing::config
