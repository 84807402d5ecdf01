#include "mailwing/smtp/recipients.hh"

#include <cassert>

#include "mailwing/auth/address.hh"

namespace mailwing::smtp {

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
  // Addresses are at most a few hundred bytes (the line limit), so these small strings
  // are built per RCPT, never per byte of mail.
  auth::canonical_address canonical = auth::canonicalize(address.local_part, address.domain);
  const std::string& domain = canonical.domain;
  std::string& local = canonical.local_part;

  if (domain.empty()) {
    // Only <postmaster> parses without a domain.
    return {recipient_status::local, postmaster_};
  }
  if (!local_domains_.contains(domain)) return {recipient_status::not_local, 0};
  if (local == "postmaster") return {recipient_status::local, postmaster_};
  if (size_t plus = local.find('+'); plus != std::string::npos && plus > 0) local.resize(plus);
  if (auto id = mailboxes_.find(canonical.text())) return {recipient_status::local, *id};
  if (auto found = catch_all_.find(domain); found != catch_all_.end()) {
    return {recipient_status::local, found->second};
  }
  return {recipient_status::unknown_user, 0};
}

}  // namespace mailwing::smtp
