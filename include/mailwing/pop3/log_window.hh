#pragma once
// A read-ahead window over one maildrop log, so that pipelined RETRs of small messages
// cost one pread per window instead of one per message.
//
// The records a POP3 snapshot names are committed and never rewritten in place (the log
// is append-only; compaction writes a new file), so bytes once read stay true for the
// session's life. A miss refills the window from the asked offset on; sequential misses
// (a client walking the mailbox) double the read size up to the pool's block size, a
// jump starts small again, so a lone RETR does not drag 64 KiB through memory.
//
// The block comes from a pool and is given back with release(), which the session does
// whenever it has no command in hand: an idle session holds no read memory.
//
// Owned by one POP3 session, on that session's shard.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mailwing/util/block_pool.hh"

namespace mailwing::pop3 {

class log_window {
 public:
  explicit log_window(util::block_pool& pool) : pool_(pool) {}
  ~log_window() { release(); }
  log_window(const log_window&) = delete;
  log_window& operator=(const log_window&) = delete;

  // The largest range view() can return at once.
  size_t capacity_bytes() const { return pool_.block_bytes(); }

  // Points `out` at the log's bytes [offset, offset + bytes); bytes <= capacity_bytes().
  // Returns 0, errno, or EIO when the file ends first.
  int view(int fd, uint64_t offset, size_t bytes, std::string_view& out);

  void release();

 private:
  static constexpr size_t readahead_bytes_min = 16 * 1024;

  util::block_pool& pool_;
  char* block_ = nullptr;
  // The last window read (kept after release(), to tell a walk from a jump).
  int fd_ = -1;
  uint64_t start_ = 0;       // file offset of its first byte
  size_t filled_bytes_ = 0;
  size_t readahead_bytes_ = readahead_bytes_min;
};

}  // namespace mailwing::pop3
