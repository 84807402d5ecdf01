#pragma once
// One group commit: the writes a shard's store hands to its commit thread in one go.
//
// The store shard fills it on its own thread (every byte it points to stays untouched
// until the batch comes back), the commit thread performs it, and the store shard reads
// the outcome. The vectors keep their capacity between uses, so a busy shard reuses two
// batches without allocating.

#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mailwing::store {

struct delivery_part;
struct deletion_request;

struct log_write {
  int fd;
  uint64_t offset;
  size_t iov_begin;  // into batch::log_iov
  size_t iov_count;
};

// A spooled (large) body copied from its spool file into a log with copy_file_range.
struct spool_copy {
  int log_fd;
  uint64_t log_offset;
  int spool_fd;
  uint64_t bytes;
};

struct batch {
  // Shard side, input.
  std::vector<char> scratch;         // journal prefixes and record headers; sized before use
  std::vector<iovec> journal_iov;    // entries for the journal, in order
  std::vector<char*> journal_prefixes;  // one per entry, for the committer's segment tag
  uint64_t journal_bytes = 0;
  std::vector<iovec> log_iov;
  std::vector<log_write> log_writes;
  std::vector<spool_copy> spool_copies;  // each needs its log synced (not journaled)
  bool sync = true;                  // durability "fsync"
  bool checkpoint = false;           // start a new journal segment after this batch

  // Commit thread, output.
  int error = 0;                     // errno of the first failure; 0 = all durable
  const char* failed_step = nullptr;
  std::string retired_segment;       // a journal segment to delete once a checkpoint synced

  // Shard side, bookkeeping for completion.
  std::vector<delivery_part*> parts;
  std::vector<deletion_request*> deletions;
  struct placed {
    uint32_t mailbox;  // mailbox_id
    uint64_t uid;
    uint64_t offset;
    uint64_t payload_bytes;
    uint8_t flags;
    uint32_t header_crc;
    const deletion_request* deletion;  // a tombstone for this request; nullptr: a message
  };
  std::vector<placed> placements;

  bool empty() const {
    return journal_iov.empty() && log_writes.empty() && spool_copies.empty() && !checkpoint;
  }
  void clear() {
    scratch.clear();
    journal_iov.clear();
    journal_prefixes.clear();
    journal_bytes = 0;
    log_iov.clear();
    log_writes.clear();
    spool_copies.clear();
    checkpoint = false;
    error = 0;
    failed_step = nullptr;
    retired_segment.clear();
    parts.clear();
    deletions.clear();
    placements.clear();
  }
};

}  // namespace mailwing::store
