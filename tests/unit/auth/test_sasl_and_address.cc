#include <gtest/gtest.h>

#include <string>

#include "mailwing/auth/address.hh"
#include "mailwing/auth/sasl.hh"
#include "mailwing/util/base64.hh"

namespace mailwing::auth {
namespace {

using namespace std::string_literals;

std::string encoded(const std::string& bytes) { return util::base64_encode(bytes); }

TEST(Sasl, ResponseLines) {
  EXPECT_EQ(decode_response("="), "");
  EXPECT_EQ(decode_response("YWJj"), "abc");
  EXPECT_FALSE(decode_response("*"));
  EXPECT_FALSE(decode_response("YW=j"));
}

TEST(Sasl, PlainMessages) {
  credentials offered;
  EXPECT_EQ(decode_plain(encoded("\0alice@example.test\0secret"s), offered), plain_status::ok);
  EXPECT_EQ(offered.login, "alice@example.test");
  EXPECT_EQ(offered.secret, "secret");
  EXPECT_EQ(offered.apop_timestamp, "");

  EXPECT_EQ(decode_plain(encoded("alice@example.test\0alice@example.test\0pw with\0nul"s), offered),
            plain_status::ok);
  EXPECT_EQ(offered.login, "alice@example.test");
  EXPECT_EQ(offered.secret, "pw with\0nul"s);
  // The same user, written differently, is the same identity.
  EXPECT_EQ(decode_plain(encoded("Alice@Example.Test\0alice@example.test\0pw"s), offered), plain_status::ok);
  EXPECT_EQ(offered.login, "alice@example.test");
  // Acting as someone else: a login that cannot succeed.
  EXPECT_EQ(decode_plain(encoded("bob@example.test\0alice@example.test\0pw"s), offered), plain_status::ok);
  EXPECT_EQ(offered.login, "");
  EXPECT_EQ(decode_plain(encoded("bob\0alice\0pw"s), offered), plain_status::ok);
  EXPECT_EQ(offered.login, "");

  EXPECT_EQ(decode_plain("not base64!", offered), plain_status::cannot_decode);
  EXPECT_EQ(decode_plain("=", offered), plain_status::malformed);
  EXPECT_EQ(decode_plain(encoded("alice\0secret"s), offered), plain_status::malformed);
  EXPECT_EQ(decode_plain(encoded("no nul at all"), offered), plain_status::malformed);
}

TEST(Address, DeliveryAndLoginAgree) {
  canonical_address a = canonicalize("\"Al\\ice\"", "Example.TEST.");
  EXPECT_EQ(a.local_part, "alice");
  EXPECT_EQ(a.domain, "example.test");
  EXPECT_EQ(a.text(), "alice@example.test");
  EXPECT_EQ(canonical_login("\"Al\\ice\"@Example.TEST."), "alice@example.test");
  EXPECT_EQ(canonical_login("ALICE@example.test"), "alice@example.test");
  EXPECT_EQ(canonical_login("a@b@example.test"), "a@b@example.test");  // split at the last @
  EXPECT_FALSE(canonical_login("alice"));
  EXPECT_FALSE(canonical_login("@example.test"));
  EXPECT_FALSE(canonical_login("alice@"));
  // Non-ASCII bytes (SMTPUTF8) are left as they are.
  EXPECT_EQ(canonical_login("J\xc3\x96RG@Example.test"), "j\xc3\x96rg@example.test");
}

}  // namespace
}  // namespace mailwing::auth
