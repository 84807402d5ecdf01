#include "mailwing/auth/password.hh"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>

namespace mailwing::auth {
namespace {

constexpr std::string_view hash_prefix = "$argon2id$";

bool verify_hash(std::string_view stored, std::string_view attempt) {
  // libsodium reads the PHC string up to its NUL, so an embedded one would cut it short.
  if (stored.find('\0') != std::string_view::npos) return false;
  std::string phc(stored);
  return crypto_pwhash_str_verify(phc.c_str(), attempt.data(), attempt.size()) == 0;
}

// Both sides are hashed to 32 bytes before the constant-time comparison, so its time does
// not depend on either length: comparing lengths first would tell a client how long the
// stored password is. BLAKE2b works in 128-byte blocks, so for passwords shorter than that
// the hashing takes the same time too.
bool verify_plain(std::string_view stored, std::string_view attempt) {
  unsigned char stored_digest[crypto_generichash_BYTES];
  unsigned char attempt_digest[crypto_generichash_BYTES];
  crypto_generichash(stored_digest, sizeof(stored_digest),
                     reinterpret_cast<const unsigned char*>(stored.data()), stored.size(), nullptr,
                     0);
  crypto_generichash(attempt_digest, sizeof(attempt_digest),
                     reinterpret_cast<const unsigned char*>(attempt.data()), attempt.size(),
                     nullptr, 0);
  return sodium_memcmp(stored_digest, attempt_digest, sizeof(stored_digest)) == 0;
}

}  // namespace

void init_crypto() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Without it the random salts and the CPU-specific code paths are not set up; there is
    // no safe way to run on.
    if (sodium_init() < 0) {
      std::fputs("mailwing: sodium_init() failed; cannot verify or hash passwords\n", stderr);
      std::abort();
    }
  });
}

bool verify_password(std::string_view stored, std::string_view attempt) {
  init_crypto();
  if (stored.starts_with(hash_prefix)) return verify_hash(stored, attempt);
  return verify_plain(stored, attempt);
}

std::string hash_password(std::string_view password) {
  init_crypto();
  char phc[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(phc, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    // The only documented failure: the 64 MiB work area could not be allocated.
    throw std::bad_alloc();
  }
  return phc;
}

}  // namespace mailwing::auth
