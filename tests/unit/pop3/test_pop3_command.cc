#include <gtest/gtest.h>

#include <string>

#include "mailwing/pop3/command.hh"

namespace mailwing::pop3 {
namespace {

TEST(Pop3Command, KeywordsAreCaseInsensitive) {
  EXPECT_EQ(parse_command("retr 1").name, verb::retr);
  EXPECT_EQ(parse_command("ReTr 1").name, verb::retr);
  EXPECT_EQ(parse_command("TOP 1 2").name, verb::top);
  EXPECT_EQ(parse_command("RETRX 1").name, verb::unknown);
  EXPECT_EQ(parse_command("").name, verb::unknown);
}

TEST(Pop3Command, Arguments) {
  command parsed = parse_command("TOP 3 10");
  ASSERT_EQ(parsed.argument_count, 2);
  EXPECT_EQ(parsed.arguments[0], "3");
  EXPECT_EQ(parsed.arguments[1], "10");
  EXPECT_FALSE(parsed.too_many_arguments);
  EXPECT_TRUE(parse_command("TOP 1 2 3").too_many_arguments);
  EXPECT_EQ(parse_command("STAT").argument_count, 0);
}

TEST(Pop3Command, PassKeepsSpaces) {
  command parsed = parse_command("PASS my secret  phrase");
  EXPECT_EQ(parsed.name, verb::pass);
  EXPECT_EQ(parsed.rest, "my secret  phrase");
}

TEST(Pop3Command, Numbers) {
  EXPECT_EQ(parse_number("1"), 1u);
  EXPECT_EQ(parse_number("4294967295"), 4294967295u);
  EXPECT_FALSE(parse_number("4294967296"));
  EXPECT_FALSE(parse_number(""));
  EXPECT_FALSE(parse_number("-1"));
  EXPECT_FALSE(parse_number("+1"));
  EXPECT_FALSE(parse_number("1a"));
  EXPECT_FALSE(parse_number("12345678901"));
}

TEST(Pop3Command, LineCounts) {
  EXPECT_EQ(parse_line_count("0"), 0u);
  EXPECT_EQ(parse_line_count("4294967296"), 4294967296u);
  EXPECT_EQ(parse_line_count("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parse_line_count("18446744073709551616"), UINT64_MAX);
  EXPECT_EQ(parse_line_count(std::string(500, '9')), UINT64_MAX);
  EXPECT_EQ(parse_line_count("000000000000000000000000007"), 7u);
  EXPECT_FALSE(parse_line_count(""));
  EXPECT_FALSE(parse_line_count("-1"));
  EXPECT_FALSE(parse_line_count("+1"));
  EXPECT_FALSE(parse_line_count("1a"));
}

}  // namespace
}  // namespace mailwing::pop3
