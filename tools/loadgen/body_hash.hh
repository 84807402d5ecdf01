#pragma once
// The end-to-end integrity check shared by the blaster and the drainer.
//
// Every message the blaster sends carries one header
//     X-Mailwing-Hash: sha256=<64 hex digits>; bytes=<body size>
// where the hash and the size are those of the body: the bytes after the blank line that
// ends the header block, CRLF line ends, exactly as the message is stored (not
// dot-stuffed). A server may add trace headers above it (Received:, Return-Path:) and
// that is fine; any change to the body is a failure.
//
// body_verifier checks one message as it streams past (RETR output after unstuffing),
// without holding the body: the header block is kept (up to a bound) to find the hash
// header, the body only goes through SHA-256.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "loadgen/sha256.hh"

namespace mailwing::loadgen {

inline constexpr std::string_view hash_header_name = "X-Mailwing-Hash";

// Lower-case hex of bytes.
std::string hex(const unsigned char* bytes, size_t count);
std::string sha256_hex(std::string_view bytes);

// "X-Mailwing-Hash: sha256=...; bytes=N\r\n"
std::string hash_header_line(std::string_view hash_hex, uint64_t body_bytes);

class body_verifier {
 public:
  enum class verdict : uint8_t {
    ok,              // the header is there and the body matches it
    mismatch,        // the header is there and the body does not match it
    no_header,       // no (well-formed) hash header: not a blaster message
    headers_too_long,// no end of the header block within header_bytes_max
  };
  struct result {
    verdict outcome;
    std::string expected_hex;   // from the header (empty without one)
    std::string actual_hex;     // of the body as received (empty when not computed)
    uint64_t expected_bytes;    // from the header; UINT64_MAX when absent
    uint64_t body_bytes;        // received
    uint64_t message_bytes;     // received, headers included
  };

  static constexpr size_t header_bytes_max = 256 * 1024;

  body_verifier() { reset(); }
  void reset();
  // The message's bytes as stored (unstuffed), in any number of pieces.
  void feed(std::string_view bytes);
  result finish();

 private:
  void hash_body(std::string_view bytes);

  std::string headers_;
  bool in_body_ = false;
  bool overflow_ = false;
  uint64_t body_bytes_ = 0;
  uint64_t message_bytes_ = 0;
  sha256 hash_;
};

// Parses the value of a hash header ("sha256=<hex>; bytes=N"); false if malformed.
bool parse_hash_header_value(std::string_view value, std::string& hash_hex, uint64_t& bytes);

// Finds the hash header in a header block (CRLF lines); false without one.
bool find_hash_header(std::string_view headers, std::string& hash_hex, uint64_t& bytes);

}  // namespace mailwing::loadgen
