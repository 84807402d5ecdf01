#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "mailwing/auth/password.hh"

namespace mailwing::auth {
namespace {

using namespace std::string_literals;

TEST(Password, HashIsArgon2idPhcString) {
  std::string hash = hash_password("secret");
  EXPECT_TRUE(hash.starts_with("$argon2id$")) << hash;
}

TEST(Password, HashVerifiesOnlyItsPassword) {
  std::string hash = hash_password("correct horse");
  EXPECT_TRUE(verify_password(hash, "correct horse"));
  EXPECT_FALSE(verify_password(hash, "correct horsE"));
  EXPECT_FALSE(verify_password(hash, "correct hors"));
  EXPECT_FALSE(verify_password(hash, ""));
}

TEST(Password, HashesAreSalted) {
  std::string first = hash_password("same");
  std::string second = hash_password("same");
  EXPECT_NE(first, second);
  EXPECT_TRUE(verify_password(first, "same"));
  EXPECT_TRUE(verify_password(second, "same"));
}

TEST(Password, EmptyPasswordHashes) {
  std::string hash = hash_password("");
  EXPECT_TRUE(verify_password(hash, ""));
  EXPECT_FALSE(verify_password(hash, "x"));
}

TEST(Password, MalformedHashNeverVerifies) {
  EXPECT_FALSE(verify_password("$argon2id$", ""));
  EXPECT_FALSE(verify_password("$argon2id$v=19$m=65536,t=2,p=1$garbage", "garbage"));
  std::string hash = hash_password("pw");
  EXPECT_FALSE(verify_password(hash.substr(0, hash.size() - 1), "pw"));
  EXPECT_FALSE(verify_password(hash + "\0"s + "junk", "pw"));
}

TEST(Password, PlainComparesWholeStrings) {
  EXPECT_TRUE(verify_password("demo", "demo"));
  EXPECT_FALSE(verify_password("demo", "Demo"));
  EXPECT_FALSE(verify_password("demo", "dem"));
  EXPECT_FALSE(verify_password("demo", "demo "));
  EXPECT_FALSE(verify_password("demo", ""));
  EXPECT_FALSE(verify_password("", "demo"));
  EXPECT_TRUE(verify_password("a\0b"s, "a\0b"s));
  EXPECT_FALSE(verify_password("a\0b"s, "a\0c"s));
  std::string long_password(1000, 'p');
  EXPECT_TRUE(verify_password(long_password, long_password));
  EXPECT_FALSE(verify_password(long_password, long_password + "p"));
}

TEST(Password, OtherArgon2VariantIsPlainText) {
  // Only "$argon2id$" marks a hash (config::user::password_is_hash agrees).
  EXPECT_TRUE(verify_password("$argon2i$not-a-hash", "$argon2i$not-a-hash"));
}

TEST(Password, InitCryptoFromManyThreads) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([] {
      init_crypto();
      EXPECT_TRUE(verify_password("x", "x"));
    });
  }
  for (std::thread& thread : threads) thread.join();
  init_crypto();
}

}  // namespace
}  // namespace mailwing::auth
