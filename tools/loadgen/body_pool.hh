#pragma once
// Pre-generated message bodies for the SMTP blaster, so that producing content is never
// what limits a run.
//
// A body is the part of a message after its header block: lines of printable ASCII,
// CRLF line ends, and some lines that start with "." (a few are just ".") so that every
// run exercises dot-stuffing on the way in and on the way out. Each body is kept twice:
// as is (hashed, sent by BDAT, stored by the server) and dot-stuffed (sent after DATA).
// Its SHA-256 goes into the message's hash header (see body_hash.hh), which lets the
// POP3 drainer verify end to end what the server stored.
//
// Bodies up to in_memory_bytes_max live in strings and are copied into the connection's
// output; larger ones live in a memfd (raw at [0, size), stuffed after it) and go out by
// sendfile without passing through user space again, so a 100 MB message costs no
// 100 MB of output buffers per connection.
//
// Built once on the main thread before the shards start; read-only afterwards, shared by
// all shards.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/rng.hh"
#include "loadgen/size_dist.hh"

namespace mailwing::loadgen {

struct body {
  uint64_t size_bytes = 0;     // as stored: what is hashed and what BDAT sends
  uint64_t stuffed_bytes = 0;  // after dot-stuffing: what DATA sends (without ".\r\n")
  std::string hash_hex;        // SHA-256 of the raw body, lower-case hex
  std::string raw;             // in memory: both forms here; otherwise empty
  std::string stuffed;
  int fd = -1;                 // >= 0: both forms in this memfd
  uint64_t stuffed_offset() const { return size_bytes; }
};

// Calls `line` with each line of a generated body (its CRLF included); the lines add up
// to exactly size_bytes (1 is rounded up to 2: a body ends with CRLF). Some lines start
// with ".".
void generate_body_lines(rng& random, uint64_t size_bytes,
                         const std::function<void(std::string_view line)>& line);

// The DATA form of a raw body (RFC 5321 §4.5.2): a "." is added to every line that
// starts with ".". The end-of-data line is not added.
std::string dot_stuff(std::string_view raw);

class body_pool {
 public:
  static constexpr uint64_t in_memory_bytes_max = 256 * 1024;

  // count bodies with sizes drawn from `sizes` (fewer when the total would exceed
  // memory_bytes_max, but at least one). Throws std::system_error when a memfd fails.
  static std::unique_ptr<body_pool> generate(const size_dist& sizes, size_t count, uint64_t seed,
                                             uint64_t memory_bytes_max = 256ull << 20);
  ~body_pool();

  size_t size() const { return bodies_.size(); }
  const body& at(size_t index) const { return bodies_[index]; }

 private:
  std::vector<body> bodies_;
};

}  // namespace mailwing::loadgen
