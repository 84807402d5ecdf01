// The POP3 multi-line encoder: dot-stuffing, TOP limits and the terminator, for every
// split of the input into chunks.

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>

#include "mailwing/pop3/message_stream.hh"

namespace mailwing::pop3 {
namespace {

std::string encode(std::string_view message, std::optional<uint64_t> lines, size_t chunk_bytes) {
  message_stream stream;
  stream.start(lines);
  std::string out;
  for (size_t at = 0; at < message.size(); at += chunk_bytes) {
    if (!stream.feed(message.substr(at, chunk_bytes), out)) break;
  }
  stream.finish(out);
  return out;
}

// Every chunk size gives the same bytes as one call.
std::string encode_all_splits(std::string_view message, std::optional<uint64_t> lines) {
  std::string whole = encode(message, lines, message.size() + 1);
  for (size_t chunk = 1; chunk <= message.size(); ++chunk) {
    EXPECT_EQ(encode(message, lines, chunk), whole) << "chunk size " << chunk;
  }
  return whole;
}

TEST(MessageStream, PlainMessageGetsTerminator) {
  EXPECT_EQ(encode_all_splits("Subject: a\r\n\r\nbody\r\n", std::nullopt), "Subject: a\r\n\r\nbody\r\n.\r\n");
}

TEST(MessageStream, LeadingDotsAreDoubled) {
  EXPECT_EQ(encode_all_splits(".x\r\n\r\n.\r\n..y\r\nz.\r\n", std::nullopt),
            "..x\r\n\r\n..\r\n...y\r\nz.\r\n.\r\n");
}

TEST(MessageStream, MissingFinalCrlfIsAdded) {
  EXPECT_EQ(encode_all_splits("a\r\nb", std::nullopt), "a\r\nb\r\n.\r\n");
  EXPECT_EQ(encode_all_splits("", std::nullopt), ".\r\n");
}

TEST(MessageStream, TopZeroSendsHeadersAndBlankLine) {
  EXPECT_EQ(encode_all_splits("A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n", 0), "A: 1\r\nB: 2\r\n\r\n.\r\n");
}

TEST(MessageStream, TopCountsBodyLines) {
  std::string message = "A: 1\r\n\r\nl1\r\n.l2\r\nl3\r\nl4\r\n";
  EXPECT_EQ(encode_all_splits(message, 2), "A: 1\r\n\r\nl1\r\n..l2\r\n.\r\n");
  EXPECT_EQ(encode_all_splits(message, 10), "A: 1\r\n\r\nl1\r\n..l2\r\nl3\r\nl4\r\n.\r\n");
}

TEST(MessageStream, TopWithoutBlankLineSendsEverything) {
  EXPECT_EQ(encode_all_splits("A: 1\r\nB: 2\r\n", 0), "A: 1\r\nB: 2\r\n.\r\n");
}

// RFC 1939 §3 written as plainly as possible, to check the fast path against.
std::string reference_stuffing(std::string_view message) {
  std::string out;
  bool line_start = true;
  for (char c : message) {
    if (line_start && c == '.') out.push_back('.');
    out.push_back(c);
    line_start = c == '\n';
  }
  if (!(out.size() >= 2 && out[out.size() - 2] == '\r' && out.back() == '\n') && !out.empty()) out += "\r\n";
  return out + ".\r\n";
}

TEST(MessageStream, RandomMessagesMatchTheReference) {
  std::mt19937 random(7);
  const char alphabet[] = {'.', '.', '\r', '\n', 'a', 'b', ' '};
  for (int round = 0; round < 300; ++round) {
    std::string message;
    size_t size = random() % 64;
    for (size_t i = 0; i < size; ++i) message.push_back(alphabet[random() % sizeof(alphabet)]);
    EXPECT_EQ(encode_all_splits(message, std::nullopt), reference_stuffing(message)) << message;
  }
}

TEST(MessageStream, FeedSaysWhenTopIsDone) {
  message_stream stream;
  stream.start(uint64_t{1});
  std::string out;
  EXPECT_TRUE(stream.feed("A: 1\r\n\r\n", out));
  EXPECT_FALSE(stream.feed("l1\r\nl2\r\n", out));
  EXPECT_EQ(out, "A: 1\r\n\r\nl1\r\n");
}

}  // namespace
}  // namespace mailwing::pop3
