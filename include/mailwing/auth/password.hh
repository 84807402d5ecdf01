#pragma once
// Password checks for SMTP AUTH and POP3. Plain-text passwords are compared in constant
// time; "$argon2id$" PHC strings are verified with libsodium, which is slow on purpose
// (tens of milliseconds): callers on a shard run it on the hash_pool, never inline.

#include <string>
#include <string_view>

namespace mailwing::auth {

// Calls sodium_init() once; safe to call from any thread, any number of times.
void init_crypto();

// True when `attempt` is the password `stored` describes (plain text or $argon2id$).
bool verify_password(std::string_view stored, std::string_view attempt);

// An $argon2id$ PHC string for `password` (libsodium's interactive limits).
std::string hash_password(std::string_view password);

}  // namespace mailwing::auth
