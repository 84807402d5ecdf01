#include "loadgen/args.hh"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailwing::loadgen {
namespace {

TEST(Args, Counts) {
  EXPECT_EQ(parse_count("--n", "100", 0, 1000), 100u);
  EXPECT_EQ(parse_count("--n", "20k", 0, 100000), 20000u);
  EXPECT_EQ(parse_count("--n", "1.5k", 0, 100000), 1500u);
  EXPECT_EQ(parse_count("--n", "2m", 0, 10000000), 2000000u);
  EXPECT_THROW(parse_count("--n", "0", 1, 10), usage_error);
  EXPECT_THROW(parse_count("--n", "11", 1, 10), usage_error);
  EXPECT_THROW(parse_count("--n", "abc", 1, 10), usage_error);
  EXPECT_THROW(parse_count("--n", "-1", 0, 10), usage_error);
  EXPECT_THROW(parse_count("--n", "1.5", 0, 10), usage_error);
  EXPECT_THROW(parse_count("--n", "", 0, 10), usage_error);
  EXPECT_THROW(parse_count("--n", "inf", 0, 10), usage_error);
  EXPECT_THROW(parse_count("--n", "5x", 0, 10), usage_error);
}

TEST(Args, ErrorNamesTheOptionAndTheValue) {
  try {
    parse_count("--connections", "lots", 1, 100);
    FAIL();
  } catch (const usage_error& error) {
    std::string text = error.what();
    EXPECT_NE(text.find("--connections"), std::string::npos);
    EXPECT_NE(text.find("'lots'"), std::string::npos);
    EXPECT_EQ(text.find('\n'), std::string::npos);
  }
}

TEST(Args, Bytes) {
  EXPECT_EQ(parse_bytes("--size", "1024", 0, 1 << 30), 1024u);
  EXPECT_EQ(parse_bytes("--size", "1k", 0, 1 << 30), 1024u);
  EXPECT_EQ(parse_bytes("--size", "1KB", 0, 1 << 30), 1024u);
  EXPECT_EQ(parse_bytes("--size", "64KiB", 0, 1 << 30), 65536u);
  EXPECT_EQ(parse_bytes("--size", "100m", 0, 1 << 30), 100u << 20);
  EXPECT_EQ(parse_bytes("--size", "1g", 0, uint64_t(1) << 31), uint64_t(1) << 30);
  EXPECT_EQ(parse_bytes("--size", "0.5k", 0, 1 << 30), 512u);
  EXPECT_THROW(parse_bytes("--size", "1t", 0, 1 << 30), usage_error);
  EXPECT_THROW(parse_bytes("--size", "2g", 0, 1 << 30), usage_error);
}

TEST(Args, Durations) {
  EXPECT_DOUBLE_EQ(parse_duration_s("--d", "10"), 10.0);
  EXPECT_DOUBLE_EQ(parse_duration_s("--d", "10s"), 10.0);
  EXPECT_DOUBLE_EQ(parse_duration_s("--d", "500ms"), 0.5);
  EXPECT_DOUBLE_EQ(parse_duration_s("--d", "2m"), 120.0);
  EXPECT_DOUBLE_EQ(parse_duration_s("--d", "1h"), 3600.0);
  EXPECT_THROW(parse_duration_s("--d", "0"), usage_error);
  EXPECT_THROW(parse_duration_s("--d", "10 s"), usage_error);
  EXPECT_THROW(parse_duration_s("--d", "soon"), usage_error);
}

TEST(Args, Rates) {
  EXPECT_DOUBLE_EQ(parse_rate("--rate", "5000"), 5000.0);
  EXPECT_DOUBLE_EQ(parse_rate("--rate", "2.5k"), 2500.0);
  EXPECT_THROW(parse_rate("--rate", "0"), usage_error);
  EXPECT_THROW(parse_rate("--rate", "fast"), usage_error);
}

TEST(Args, Endpoints) {
  endpoint v4 = parse_endpoint("target", "127.0.0.1:2525");
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 2525);
  endpoint v6 = parse_endpoint("target", "[::1]:25");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 25);
  EXPECT_EQ(parse_endpoint("target", "localhost:110").host, "localhost");
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":25", "host:0", "host:65536", "host:2x", "::1:25",
                          "[::1]25", "[::1]:"}) {
    EXPECT_THROW(parse_endpoint("target", bad), usage_error) << bad;
  }
}

std::vector<const char*> argv_of(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"program"};
  argv.insert(argv.end(), args);
  return argv;
}

TEST(Args, ParserAppliesOptionsFlagsAndPositionals) {
  arg_parser parser("program", "usage: program");
  std::string value, target;
  bool flag = false;
  parser.option("--name", "VALUE", "a value", [&](std::string_view v) { value = std::string(v); });
  parser.flag("--flag", "a flag", [&] { flag = true; });
  parser.positional("TARGET", [&](std::string_view v) { target = std::string(v); });
  auto argv = argv_of({"--name", "x", "--flag", "host:1"});
  EXPECT_TRUE(parser.parse(int(argv.size()), argv.data()));
  EXPECT_EQ(value, "x");
  EXPECT_TRUE(flag);
  EXPECT_EQ(target, "host:1");
  auto inline_argv = argv_of({"--name=y"});
  EXPECT_TRUE(parser.parse(int(inline_argv.size()), inline_argv.data()));
  EXPECT_EQ(value, "y");
}

TEST(Args, ParserRejectsWhatItDoesNotKnow) {
  arg_parser parser("program", "usage: program");
  parser.option("--name", "VALUE", "a value", [](std::string_view) {});
  parser.flag("--flag", "a flag", [] {});
  for (auto args : {argv_of({"--nope"}), argv_of({"--name"}), argv_of({"--flag=1"}), argv_of({"stray"}),
                    argv_of({"-x"})}) {
    EXPECT_THROW(parser.parse(int(args.size()), args.data()), usage_error);
  }
}

TEST(Args, HelpListsEveryOption) {
  arg_parser parser("program", "usage: program");
  parser.option("--connections", "N", "how many", [](std::string_view) {});
  std::string help = parser.help_text();
  EXPECT_NE(help.find("usage: program"), std::string::npos);
  EXPECT_NE(help.find("--connections N"), std::string::npos);
  EXPECT_NE(help.find("how many"), std::string::npos);
}

}  // namespace
}  // namespace mailwing::loadgen
