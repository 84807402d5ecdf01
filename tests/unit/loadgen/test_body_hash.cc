#include "loadgen/body_hash.hh"

#include <gtest/gtest.h>

#include <string>

namespace mailwing::loadgen {
namespace {

std::string message_with(std::string_view body, std::string_view header_hash, uint64_t header_bytes) {
  std::string message = "Received: from x by y; today\r\n\tcontinued\r\nFrom: <a@b>\r\n";
  message += hash_header_line(header_hash, header_bytes);
  message += "Subject: s\r\n\r\n";
  message += body;
  return message;
}

body_verifier::result verify(std::string_view message, size_t piece) {
  body_verifier verifier;
  for (size_t at = 0; at < message.size(); at += piece) verifier.feed(message.substr(at, piece));
  return verifier.finish();
}

TEST(BodyHash, Sha256KnownAnswer) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(BodyHash, HeaderLine) {
  EXPECT_EQ(hash_header_line("ab", 5), "X-Mailwing-Hash: sha256=ab; bytes=5\r\n");
}

TEST(BodyHash, MatchingBodyVerifiesWhateverTheSplit) {
  std::string body = "line one\r\n.dot line\r\n\r\nlast\r\n";
  std::string message = message_with(body, sha256_hex(body), body.size());
  for (size_t piece : {size_t(1), size_t(2), size_t(3), size_t(7), message.size()}) {
    body_verifier::result result = verify(message, piece);
    EXPECT_EQ(result.outcome, body_verifier::verdict::ok) << piece;
    EXPECT_EQ(result.body_bytes, body.size());
    EXPECT_EQ(result.message_bytes, message.size());
  }
}

TEST(BodyHash, ChangedBodyIsAMismatch) {
  std::string body = "hello\r\n";
  std::string message = message_with("hellO\r\n", sha256_hex(body), body.size());
  body_verifier::result result = verify(message, 4);
  EXPECT_EQ(result.outcome, body_verifier::verdict::mismatch);
  EXPECT_EQ(result.expected_hex, sha256_hex(body));
  EXPECT_EQ(result.actual_hex, sha256_hex("hellO\r\n"));
}

TEST(BodyHash, TruncatedBodyIsAMismatch) {
  std::string body = "hello\r\nworld\r\n";
  std::string message = message_with("hello\r\n", sha256_hex(body), body.size());
  body_verifier::result result = verify(message, 100);
  EXPECT_EQ(result.outcome, body_verifier::verdict::mismatch);
  EXPECT_EQ(result.expected_bytes, body.size());
  EXPECT_EQ(result.body_bytes, 7u);
}

TEST(BodyHash, EmptyBody) {
  std::string message = message_with("", sha256_hex(""), 0);
  EXPECT_EQ(verify(message, 1).outcome, body_verifier::verdict::ok);
}

TEST(BodyHash, NoHeaderIsNotAFailure) {
  EXPECT_EQ(verify("From: a\r\n\r\nbody\r\n", 3).outcome, body_verifier::verdict::no_header);
  EXPECT_EQ(verify("\r\nbody only\r\n", 3).outcome, body_verifier::verdict::no_header);
  EXPECT_EQ(verify("", 3).outcome, body_verifier::verdict::no_header);
}

TEST(BodyHash, HashHeaderInTheBodyDoesNotCount) {
  std::string body = hash_header_line(sha256_hex("x"), 1);
  EXPECT_EQ(verify("From: a\r\n\r\n" + body, 5).outcome, body_verifier::verdict::no_header);
}

TEST(BodyHash, HeaderValueParsing) {
  std::string hash;
  uint64_t bytes = 0;
  std::string digest(64, 'a');
  EXPECT_TRUE(parse_hash_header_value(" sha256=" + digest + "; bytes=12", hash, bytes));
  EXPECT_EQ(hash, digest);
  EXPECT_EQ(bytes, 12u);
  EXPECT_TRUE(parse_hash_header_value("SHA256=" + std::string(64, 'A'), hash, bytes));
  EXPECT_EQ(hash, digest);
  EXPECT_EQ(bytes, UINT64_MAX);
  EXPECT_FALSE(parse_hash_header_value("md5=" + digest, hash, bytes));
  EXPECT_FALSE(parse_hash_header_value("sha256=" + std::string(63, 'a'), hash, bytes));
  EXPECT_FALSE(parse_hash_header_value("sha256=" + std::string(63, 'a') + "g", hash, bytes));
  EXPECT_FALSE(parse_hash_header_value("sha256=" + digest + "; bytes=x", hash, bytes));
  EXPECT_TRUE(find_hash_header("A: b\r\nx-mailwing-hash: sha256=" + digest + "\r\n", hash, bytes));
  EXPECT_FALSE(find_hash_header("X-Mailwing-Hashes: sha256=" + digest + "\r\n", hash, bytes));
}

TEST(BodyHash, OverlongHeaderBlockIsReported) {
  std::string message(body_verifier::header_bytes_max + 10, 'h');
  EXPECT_EQ(verify(message, 4096).outcome, body_verifier::verdict::headers_too_long);
}

}  // namespace
}  // namespace mailwing::loadgen
