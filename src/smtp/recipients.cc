#include "mailwing/smtp/recipients.hh"

#include <cassert>

namespace mailwing::smtp {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

void append_lower(std::string& out, std::string_view text) {
  for (char c : text) out.push_back(lower(c));
}

// A Quoted-string local part without its quotes and backslash escapes.
void append_local_part(std::string& out, std::string_view local_part) {
  if (local_part.size() >= 2 && local_part.front() == '"' && local_part.back() == '"') {
    local_part = local_part.substr(1, local_part.size() - 2);
    for (size_t i = 0; i < local_part.size(); ++i) {
      if (local_part[i] == '\\' && i + 1 < local_part.size()) ++i;
      out.push_back(lower(local_part[i]));
    }
    return;
  }
  append_lower(out, local_part);
}

}  // namespace

recipient_resolver::recipient_resolver(const config::config& cfg, const store::directory& mailboxes)
    : mailboxes_(mailboxes) {
  for (const std::string& domain : cfg.domains) local_domains_.insert(domain);
  for (const auto& [domain, address] : cfg.catch_all) {
    auto id = mailboxes.find(address);
    assert(id && "config validation: catch_all targets are users");
    catch_all_.emplace(domain, *id);
  }
  auto postmaster = mailboxes.find(cfg.postmaster);
  assert(postmaster && "config validation: postmaster is a user");
  postmaster_ = *postmaster;
}

recipient recipient_resolver::resolve(const mailbox& address) const {
  // Addresses are at most a few hundred bytes (the line limit), so this small string
  // is built per RCPT, never per byte of mail.
  std::string domain;
  append_lower(domain, address.domain);
  if (!domain.empty() && domain.back() == '.') domain.pop_back();
  std::string local;
  append_local_part(local, address.local_part);

  if (domain.empty()) {
    // Only <postmaster> parses without a domain.
    return {recipient_status::local, postmaster_};
  }
  if (!local_domains_.contains(domain)) return {recipient_status::not_local, 0};
  if (local == "postmaster") return {recipient_status::local, postmaster_};
  if (size_t plus = local.find('+'); plus != std::string::npos && plus > 0) local.resize(plus);
  std::string full = local + "@" + domain;
  if (auto id = mailboxes_.find(full)) return {recipient_status::local, *id};
  if (auto found = catch_all_.find(domain); found != catch_all_.end()) {
    return {recipient_status::local, found->second};
  }
  return {recipient_status::unknown_user, 0};
}

}  // namespace mailwing::smtp
