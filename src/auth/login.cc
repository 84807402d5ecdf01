#include "mailwing/auth/login.hh"

#include <algorithm>

#include "mailwing/auth/password.hh"
#include "mailwing/util/task.hh"

namespace mailwing::auth {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

}  // namespace

std::optional<std::string> normalize_login(std::string_view login) {
  size_t at = login.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == login.size()) return std::nullopt;
  std::string_view local = login.substr(0, at);
  std::string out;
  if (local.size() >= 2 && local.front() == '"' && local.back() == '"') {
    local = local.substr(1, local.size() - 2);
    for (size_t i = 0; i < local.size(); ++i) {
      if (local[i] == '\\' && i + 1 < local.size()) ++i;
      out.push_back(lower(local[i]));
    }
  } else {
    for (char c : local) out.push_back(lower(c));
  }
  out.push_back('@');
  for (char c : login.substr(at + 1)) out.push_back(lower(c));
  return out;
}

void check_login(const login_context& context, reactor::worker& worker, std::string_view login,
                 std::string password, std::function<void(std::optional<store::mailbox_id>)> done) {
  std::optional<store::mailbox_id> id;
  if (std::optional<std::string> address = normalize_login(login)) id = context.mailboxes->find(*address);
  std::string stored = id ? context.cfg->users[*id].password : std::string();
  std::string decoy = context.decoy_hash;
  reactor::shard* shard = &worker.owner();
  worker.run(util::make_task([shard, id, stored = std::move(stored), decoy = std::move(decoy),
                              password = std::move(password), done = std::move(done)]() mutable {
    bool hashed = stored.starts_with("$argon2id$");
    bool ok = id.has_value() && verify_password(stored, password);
    // Every login costs one argon2id check when any user has a hash (see the header).
    if (!hashed && !decoy.empty()) (void)verify_password(decoy, password);
    std::fill(password.begin(), password.end(), '\0');
    std::optional<store::mailbox_id> result = ok ? id : std::nullopt;
    shard->post(shard->worker_slot(), util::make_task([result, done = std::move(done)] { done(result); }));
  }));
}

}  // namespace mailwing::auth
