#pragma once
// The server's configuration: JSON (parsed with simdjson), an embedded default, and
// command-line overrides. Loaded once at startup on the main thread, then shared
// read-only by every shard.
//
// JSON keys (the external contract, DESIGN.md §3; every key is optional):
//   hostname             string   name in the banner and Received: headers
//   data_dir             string   where logs, journals and the spool live
//   shards               integer  reactor threads; 0 or absent = one per online core
//   durability           "fsync" | "none"
//   io_backend           "auto" | "io_uring" | "epoll"
//   log_level            "debug" | "info" | "warn" | "error"
//   smtp.listen          array of "host:port" ("[::1]:25" for IPv6)
//   smtp.max_message_bytes, smtp.max_recipients, smtp.max_connections
//   smtp.command_timeout_ms, smtp.data_timeout_ms, smtp.line_bytes_max
//   smtp.send_timeout_ms, smtp.max_connections_per_ip, smtp.auth_failures_max
//   smtp.tls_listen      addresses that speak TLS from the first byte (RFC 8314, "465")
//   smtp.auth_requires_tls  bool: AUTH only over TLS (default: true when "tls" is set)
//   pop3.listen, pop3.max_connections, pop3.autologout_timeout_ms
//   pop3.send_timeout_ms, pop3.max_connections_per_ip, pop3.auth_failures_max
//   pop3.tls_listen, pop3.auth_requires_tls   as for SMTP ("995"; USER/PASS, APOP, AUTH)
//   tls.certificate, tls.private_key   PEM files (both or neither: with neither, a
//                        self-signed pair under data_dir/tls/, made on first start)
//   tls.min_version      "1.2" | "1.3"
//   domains              array of local domain names
//   users                array of { "address": "user@domain", "password": "..." };
//                        a password is plain text or an "$argon2id$" PHC string
//   postmaster           address of a user whose mailbox gets postmaster mail
//                        (default: the first user)
//   catch_all            object { "domain": "user@domain" }: unknown local parts of that
//                        domain go to that user's mailbox instead of 550
//   store.journal_segment_bytes, store.checkpoint_interval_ms
// Unknown keys are errors (a typo must not silently fall back to a default).

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mailwing::config {

// A bad config: the message names the key and the problem, e.g.
// "smtp.max_recipients: must be an integer between 1 and 100000".
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class durability_mode : uint8_t { fsync, none };
enum class io_backend_kind : uint8_t { auto_select, io_uring, epoll };
enum class log_level : uint8_t { debug, info, warn, error };

struct listen_address {
  std::string host;  // numeric IPv4 or IPv6 ("::1"), as written without brackets
  uint16_t port = 0; // 0 = any free port (the log says which one was bound)
  bool operator==(const listen_address&) const = default;
};

struct user {
  std::string address;   // lower-cased "local@domain"; also the mailbox name
  std::string password;  // plain text, or an "$argon2id$..." PHC string
  bool password_is_hash() const { return password.starts_with("$argon2id$"); }
};

struct smtp_config {
  std::vector<listen_address> listen;
  uint64_t message_bytes_max = 52428800;   // JSON: max_message_bytes
  uint32_t recipients_max = 100;           // JSON: max_recipients (RFC 5321 §4.5.3.1.8)
  uint32_t connections_max = 20000;        // JSON: max_connections (SMTP, all shards)
  // RFC 5321 §4.5.3.2.7: a server waits at least 5 minutes for the next command.
  uint32_t command_timeout_ms = 300000;
  // RFC 5321 §4.5.3.2.5: 3 minutes between data blocks.
  uint32_t data_timeout_ms = 180000;
  // RFC 5321 §4.5.3.1.4 says 512 octets per command line; AUTH lines can be longer.
  uint32_t line_bytes_max = 4096;
  // A peer that takes none of our output for this long is disconnected, whatever the
  // session is doing (a client that pipelines and never reads must not pin memory).
  uint32_t send_timeout_ms = 60000;
  // Connections from one client address, over all shards; past it 421 4.7.0. An MX sees
  // a few parallel connections per sending host; 50 leaves room for large senders.
  uint32_t connections_per_ip_max = 50;    // JSON: max_connections_per_ip
  // Failed AUTH attempts after which the session ends (421 4.7.0). Whatever this is,
  // checks from one client address are spaced by its recent failures (per session and
  // across sessions, protocols and shards: auth/failure_table.hh).
  uint32_t auth_failures_max = 5;
  std::vector<listen_address> tls_listen;
  // AUTH only once the connection is encrypted: passwords never cross the network in
  // clear text. Unset in the file: true when "tls" is set (validate() fills it in).
  std::optional<bool> auth_requires_tls;
};

struct pop3_config {
  std::vector<listen_address> listen;
  uint32_t connections_max = 20000;        // JSON: max_connections
  // RFC 1939 §3: the autologout timer is at least 10 minutes.
  uint32_t autologout_timeout_ms = 600000;
  uint32_t send_timeout_ms = 60000;        // as smtp_config
  uint32_t connections_per_ip_max = 50;    // JSON: max_connections_per_ip
  uint32_t auth_failures_max = 5;          // failed logins that end the session (-ERR [AUTH])
  std::vector<listen_address> tls_listen;
  std::optional<bool> auth_requires_tls;   // as smtp_config
};

struct tls_config {
  bool enabled = false;      // the "tls" key is there
  // Both empty: the self-signed pair under data_dir/tls/ (development; the log says so).
  std::string certificate;
  std::string private_key;
  uint16_t min_version = 0x0303;  // TLS1_2_VERSION; "1.3" is 0x0304
};

struct store_config {
  // The journal is cut into segments of about this size; a full segment triggers a
  // checkpoint after which it is deleted.
  uint64_t journal_segment_bytes = 64ull << 20;
  // A checkpoint also runs this often when anything was written.
  uint32_t checkpoint_interval_ms = 30000;
};

struct config {
  std::string hostname = "mx.example.test";
  std::string data_dir = "./var/mailwing";
  uint32_t shards = 0;  // 0 = one per online core (resolved by the server)
  durability_mode durability = durability_mode::fsync;
  io_backend_kind io_backend = io_backend_kind::auto_select;
  log_level level = log_level::info;  // JSON: log_level
  smtp_config smtp;
  pop3_config pop3;
  store_config store;
  tls_config tls;
  std::vector<std::string> domains;    // lower-cased
  std::vector<user> users;
  std::string postmaster;              // address of a user; filled with users[0] if absent
  std::map<std::string, std::string> catch_all;  // domain -> user address, lower-cased
};

// The embedded default: data in ./var/mailwing, SMTP 127.0.0.1:2525, POP3 127.0.0.1:1100,
// domain example.test, one demo user (demo@example.test / demo).
std::string_view embedded_default_json();

// Parses and validates. Throws config_error.
config parse_config(std::string_view json);
config load_config_file(const std::string& path);  // also throws on unreadable files

// Checks cross-key rules (users in local domains, postmaster and catch_all targets are
// users, at least one listener...). parse_config calls it; the CLI calls it again after
// applying overrides. Throws config_error.
void validate(config& cfg);

// "127.0.0.1:2525", "[::1]:2525", "0.0.0.0:0". Throws config_error naming `key`.
listen_address parse_listen_address(std::string_view text, std::string_view key);

std::string_view to_string(durability_mode mode);
std::string_view to_string(io_backend_kind kind);

}  // namespace mailwing::config
