#include "loadgen/body_pool.hh"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "loadgen/body_hash.hh"

namespace mailwing::loadgen {
namespace {

std::string generate(uint64_t size, uint64_t seed = 1) {
  rng random(seed);
  std::string out;
  generate_body_lines(random, size, [&](std::string_view line) {
    EXPECT_GE(line.size(), 2u);
    EXPECT_EQ(line.substr(line.size() - 2), "\r\n");
    EXPECT_EQ(line.find('\r'), line.size() - 2);
    EXPECT_LE(line.size(), 78u);
    out += line;
  });
  return out;
}

TEST(BodyPool, BodiesHaveExactlyTheRequestedSize) {
  for (uint64_t size : {0, 2, 3, 4, 5, 77, 78, 79, 80, 81, 82, 1000, 1024, 4096, 65537}) {
    std::string body = generate(size, size);
    EXPECT_EQ(body.size(), size) << size;
  }
  EXPECT_EQ(generate(1).size(), 2u);  // a body ends with CRLF
}

TEST(BodyPool, SomeLinesStartWithADot) {
  std::string body = generate(200000);
  EXPECT_NE(body.find("\r\n."), std::string::npos);
  EXPECT_NE(body.find("\r\n.\r\n"), std::string::npos);  // a lone dot line, the hard case
}

TEST(BodyPool, DotStuffing) {
  EXPECT_EQ(dot_stuff(""), "");
  EXPECT_EQ(dot_stuff(".\r\n"), "..\r\n");
  EXPECT_EQ(dot_stuff("a.b\r\n.c\r\n..d\r\n"), "a.b\r\n..c\r\n...d\r\n");
  EXPECT_EQ(dot_stuff("x\r\n.\r\n"), "x\r\n..\r\n");
}

TEST(BodyPool, InMemoryBodiesCarryTheirHash) {
  auto pool = body_pool::generate(size_dist::parse("--size", "uniform:0-8k"), 50, 9);
  ASSERT_EQ(pool->size(), 50u);
  for (size_t i = 0; i < pool->size(); ++i) {
    const body& item = pool->at(i);
    EXPECT_EQ(item.fd, -1);
    EXPECT_EQ(item.raw.size(), item.size_bytes);
    EXPECT_EQ(item.hash_hex, sha256_hex(item.raw));
    EXPECT_EQ(item.stuffed, dot_stuff(item.raw));
    EXPECT_EQ(item.stuffed_bytes, item.stuffed.size());
  }
}

TEST(BodyPool, LargeBodiesLiveInAMemfd) {
  const uint64_t size = body_pool::in_memory_bytes_max * 5 + 13;
  auto pool = body_pool::generate(size_dist::fixed(size), 1, 5);
  const body& item = pool->at(0);
  ASSERT_GE(item.fd, 0);
  EXPECT_TRUE(item.raw.empty());
  std::string raw(item.size_bytes, '\0');
  ASSERT_EQ(pread(item.fd, raw.data(), raw.size(), 0), ssize_t(raw.size()));
  std::string stuffed(item.stuffed_bytes, '\0');
  ASSERT_EQ(pread(item.fd, stuffed.data(), stuffed.size(), off_t(item.stuffed_offset())), ssize_t(stuffed.size()));
  EXPECT_EQ(raw.size(), size);
  EXPECT_EQ(sha256_hex(raw), item.hash_hex);
  EXPECT_EQ(stuffed, dot_stuff(raw));
}

TEST(BodyPool, MemoryBoundLimitsThePool) {
  auto pool = body_pool::generate(size_dist::fixed(1 << 20), 100, 1, 8u << 20);
  EXPECT_EQ(pool->size(), 4u);  // two copies of 1 MiB each, 8 MiB in all
}

}  // namespace
}  // namespace mailwing::loadgen
