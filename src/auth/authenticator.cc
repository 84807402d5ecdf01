#include "mailwing/auth/authenticator.hh"

#include <sodium.h>

#include <memory>
#include <string_view>

#include "mailwing/auth/address.hh"
#include "mailwing/auth/password.hh"
#include "mailwing/util/ascii.hh"
#include "mailwing/util/md5.hh"

namespace mailwing::auth {

authenticator::authenticator(const config::config& cfg, const store::directory& mailboxes,
                             uint32_t shard_count)
    : cfg_(cfg), mailboxes_(mailboxes), pool_(check_pool::threads_for(shard_count), shard_count) {
  for (const config::user& user : cfg.users) {
    if (user.password_is_hash()) {
      unsigned char secret[32];
      randombytes_buf(secret, sizeof(secret));
      decoy_hash_ = hash_password(std::string_view(reinterpret_cast<char*>(secret), sizeof(secret)));
      break;
    }
  }
}

authenticator::prepared_check authenticator::prepare(credentials offered) const {
  prepared_check out;
  if (std::optional<std::string> address = canonical_login(offered.login)) {
    out.mailbox = mailboxes_.find(*address);
  }
  // std::function needs a copyable target; the credentials travel in a shared_ptr.
  auto held = std::make_shared<credentials>(std::move(offered));
  out.verify = [this, mailbox = out.mailbox, held] { return verify(mailbox, *held); };
  return out;
}

bool authenticator::verify(std::optional<store::mailbox_id> mailbox, credentials& offered) const {
  const std::string no_password;
  const std::string& stored = mailbox ? cfg_.users[*mailbox].password : no_password;
  bool hashed = mailbox && cfg_.users[*mailbox].password_is_hash();
  // The same work whether or not the user exists (an unknown user's stored password is
  // empty, so that the comparison still runs), and ok only for a user.
  bool ok = false;
  bool argon2id_ran = false;
  if (!offered.apop_timestamp.empty()) {
    // APOP needs the password itself; a user stored as an argon2id hash cannot use it.
    std::string expected = util::md5_hex(offered.apop_timestamp + stored);
    std::string given = offered.secret;
    util::lower_in_place(given);
    bool matched =
        expected.size() == given.size() && sodium_memcmp(expected.data(), given.data(), expected.size()) == 0;
    ok = matched && mailbox && !hashed;
  } else {
    bool matched = verify_password(stored, offered.secret);
    ok = matched && mailbox;
    argon2id_ran = hashed;
  }
  if (!argon2id_ran && !decoy_hash_.empty()) (void)verify_password(decoy_hash_, offered.secret);
  sodium_memzero(offered.secret.data(), offered.secret.size());
  return ok;
}

}  // namespace mailwing::auth
