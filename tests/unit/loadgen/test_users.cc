#include "drainer/users.hh"

#include <gtest/gtest.h>

#include "loadgen/args.hh"

namespace mailwing::drainer {
namespace {

TEST(Users, ParsesColonAndWhitespaceForms) {
  std::vector<account> accounts = parse_accounts(
      "# comment\n"
      "alice@example.test:secret\r\n"
      "\n"
      "  bob@example.test:pa:ss\n"
      "carol@example.test \t hunter2\n",
      "users.txt");
  ASSERT_EQ(accounts.size(), 3u);
  EXPECT_EQ(accounts[0].user, "alice@example.test");
  EXPECT_EQ(accounts[0].password, "secret");
  EXPECT_EQ(accounts[1].user, "bob@example.test");
  EXPECT_EQ(accounts[1].password, "pa:ss");
  EXPECT_EQ(accounts[2].user, "carol@example.test");
  EXPECT_EQ(accounts[2].password, "hunter2");
}

TEST(Users, MalformedLinesNameFileAndLine) {
  try {
    parse_accounts("alice:secret\njustauser\n", "users.txt");
    FAIL();
  } catch (const loadgen::usage_error& error) {
    EXPECT_STREQ(error.what(), "users.txt:2: expected USER:PASSWORD");
  }
  EXPECT_THROW(parse_accounts("alice:\n", "u"), loadgen::usage_error);
  EXPECT_THROW(parse_accounts(":secret\n", "u"), loadgen::usage_error);
}

TEST(Users, MissingFileIsAUsageError) {
  EXPECT_THROW(load_accounts("/nonexistent/users.txt"), loadgen::usage_error);
}

}  // namespace
}  // namespace mailwing::drainer
