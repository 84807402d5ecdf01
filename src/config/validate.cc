#include <sodium.h>

#include <algorithm>
#include <map>
#include <string>

#include "bounds.hh"
#include "mailwing/config/config.hh"
#include "mailwing/util/ascii.hh"
#include "names.hh"

namespace mailwing::config {
namespace {

// The mailbox file is "<address>.log" and a file name has at most 255 octets (NAME_MAX).
constexpr size_t address_bytes_max = 255 - 4;

// Address -> index in config::users.
using user_index = std::map<std::string, size_t, std::less<>>;

[[noreturn]] void fail(const std::string& path, std::string_view problem) {
  throw config_error(path + ": " + std::string(problem));
}

std::string indexed(std::string_view name, size_t index) {
  return std::string(name) + "[" + std::to_string(index) + "]";
}

void validate_integers(const config& cfg) {
  check_bounds(cfg.shards, bounds::shards);
  check_bounds(cfg.smtp.message_bytes_max, bounds::smtp_message_bytes_max);
  check_bounds(cfg.smtp.recipients_max, bounds::smtp_recipients_max);
  check_bounds(cfg.smtp.connections_max, bounds::smtp_connections_max);
  check_bounds(cfg.smtp.command_timeout_ms, bounds::smtp_command_timeout_ms);
  check_bounds(cfg.smtp.data_timeout_ms, bounds::smtp_data_timeout_ms);
  check_bounds(cfg.smtp.line_bytes_max, bounds::smtp_line_bytes_max);
  check_bounds(cfg.smtp.send_timeout_ms, bounds::smtp_send_timeout_ms);
  check_bounds(cfg.smtp.connections_per_ip_max, bounds::smtp_connections_per_ip_max);
  check_bounds(cfg.smtp.auth_failures_max, bounds::smtp_auth_failures_max);
  check_bounds(cfg.pop3.connections_max, bounds::pop3_connections_max);
  check_bounds(cfg.pop3.send_timeout_ms, bounds::pop3_send_timeout_ms);
  check_bounds(cfg.pop3.connections_per_ip_max, bounds::pop3_connections_per_ip_max);
  check_bounds(cfg.pop3.auth_failures_max, bounds::pop3_auth_failures_max);
  check_bounds(cfg.pop3.autologout_timeout_ms, bounds::pop3_autologout_timeout_ms);
  check_bounds(cfg.store.journal_segment_bytes, bounds::store_journal_segment_bytes);
  check_bounds(cfg.store.checkpoint_interval_ms, bounds::store_checkpoint_interval_ms);
}

void validate_domains(std::vector<std::string>& domains) {
  if (domains.empty()) fail("domains", "must list at least one domain");
  for (size_t i = 0; i < domains.size(); ++i) {
    std::string& domain = domains[i];
    util::lower_in_place(domain);
    if (!is_dns_name(domain)) fail(indexed("domains", i), in_quotes(domain) + " is not a DNS name");
    auto first = std::find(domains.begin(), domains.begin() + static_cast<ptrdiff_t>(i), domain);
    if (first != domains.begin() + static_cast<ptrdiff_t>(i)) {
      fail(indexed("domains", i),
           in_quotes(domain) + " is already " + indexed("domains", first - domains.begin()));
    }
  }
}

void validate_user_address(std::string_view address, const std::string& path,
                           const std::vector<std::string>& domains) {
  size_t at = address.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size() ||
      address.find('@', at + 1) != std::string_view::npos) {
    fail(path, in_quotes(address) + " is not an address (local@domain)");
  }
  std::string_view domain = address.substr(at + 1);
  if (std::find(domains.begin(), domains.end(), domain) == domains.end()) {
    fail(path, in_quotes(address) + " is not in one of the domains listed in \"domains\"");
  }
  std::string_view problem = local_part_problem(address.substr(0, at));
  if (!problem.empty()) fail(path, in_quotes(address) + " " + std::string(problem));
  if (address.size() > address_bytes_max) {
    fail(path, in_quotes(address) + " is longer than " + std::to_string(address_bytes_max) +
                   " octets, too long for the mailbox file name");
  }
}

// A password that looks like an argon2 hash must be a valid $argon2id$ PHC string: read as
// plain text it would make the user's password the hash itself, and a malformed one would
// make the user unable to ever log in, with nothing said at startup.
void validate_password_hash(const user& entry, const std::string& path) {
  if (!entry.password.starts_with("$argon2")) return;
  // libsodium parses the whole string (parameters, salt and hash lengths, base64) and says
  // -1 for anything it could not verify against; it reads a fixed-size buffer.
  char phc[crypto_pwhash_STRBYTES] = {};
  bool fits = entry.password.size() < sizeof(phc) && entry.password.find('\0') == std::string::npos;
  if (fits) entry.password.copy(phc, entry.password.size());
  if (!fits || !entry.password.starts_with("$argon2id$") ||
      crypto_pwhash_str_needs_rehash(phc, crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE) ==
          -1) {
    fail(path, "the password of " + in_quotes(entry.address) +
                   " is not a valid $argon2id$ string (make one with: mailwing hash-password)");
  }
}

user_index validate_users(std::vector<user>& users, const std::vector<std::string>& domains) {
  if (users.empty()) fail("users", "must list at least one user");
  user_index index;
  for (size_t i = 0; i < users.size(); ++i) {
    user& entry = users[i];
    std::string path = indexed("users", i);
    util::lower_in_place(entry.address);
    validate_user_address(entry.address, path + ".address", domains);
    if (entry.password.empty()) fail(path + ".password", "must not be empty");
    validate_password_hash(entry, path + ".password");
    auto [first, inserted] = index.emplace(entry.address, i);
    if (!inserted) {
      fail(path + ".address",
           in_quotes(entry.address) + " is already " + indexed("users", first->second));
    }
  }
  return index;
}

void validate_postmaster(config& cfg, const user_index& users) {
  if (cfg.postmaster.empty()) cfg.postmaster = cfg.users.front().address;
  util::lower_in_place(cfg.postmaster);
  if (!users.contains(cfg.postmaster)) {
    fail("postmaster", in_quotes(cfg.postmaster) + " is not the address of a user");
  }
}

void validate_catch_all(config& cfg, const user_index& users) {
  std::map<std::string, std::string> lowered;
  for (const auto& [key, value] : cfg.catch_all) {
    std::string path = "catch_all." + escaped(key);
    std::string domain = key;
    std::string target = value;
    util::lower_in_place(domain);
    util::lower_in_place(target);
    if (std::find(cfg.domains.begin(), cfg.domains.end(), domain) == cfg.domains.end()) {
      fail(path, in_quotes(domain) + " is not one of the domains listed in \"domains\"");
    }
    if (!users.contains(target)) fail(path, in_quotes(target) + " is not the address of a user");
    if (!lowered.emplace(domain, target).second) {
      fail(path, "another key names the same domain in a different case");
    }
  }
  cfg.catch_all = std::move(lowered);
}

}  // namespace

void validate_tls(config& cfg) {
  if (cfg.tls.certificate.empty() != cfg.tls.private_key.empty()) {
    fail(cfg.tls.certificate.empty() ? "tls.certificate" : "tls.private_key",
         "is missing (give both tls.certificate and tls.private_key, or neither for a self-signed pair)");
  }
  if (!cfg.tls.enabled) {
    if (!cfg.smtp.tls_listen.empty()) fail("smtp.tls_listen", "needs a \"tls\" section");
    if (!cfg.pop3.tls_listen.empty()) fail("pop3.tls_listen", "needs a \"tls\" section");
    if (cfg.smtp.auth_requires_tls.value_or(false)) fail("smtp.auth_requires_tls", "needs a \"tls\" section");
    if (cfg.pop3.auth_requires_tls.value_or(false)) fail("pop3.auth_requires_tls", "needs a \"tls\" section");
  }
  if (!cfg.smtp.auth_requires_tls) cfg.smtp.auth_requires_tls = cfg.tls.enabled;
  if (!cfg.pop3.auth_requires_tls) cfg.pop3.auth_requires_tls = cfg.tls.enabled;
}

void validate(config& cfg) {
  if (!is_dns_name(cfg.hostname)) fail("hostname", in_quotes(cfg.hostname) + " is not a DNS name");
  if (cfg.data_dir.empty()) fail("data_dir", "must not be empty");
  validate_integers(cfg);
  if (cfg.smtp.listen.empty()) fail("smtp.listen", "must list at least one \"host:port\"");
  validate_domains(cfg.domains);
  user_index users = validate_users(cfg.users, cfg.domains);
  validate_postmaster(cfg, users);
  validate_catch_all(cfg, users);
  validate_tls(cfg);
}

}  // namespace mailwing::config
