#pragma once
// The per-mailbox index file, <data_dir>/mailboxes/<address>.idx: the mailbox's index
// (mailbox.hh: uid, offset, size, flags, deleted) as of a prefix of its log that was
// durable when the file was written. Startup loads it and reads only the log after that
// prefix, so restart cost follows what changed, not the size of the store.
//
// It is a cache: it can always be rebuilt from the log, and is, whenever it is missing,
// damaged (CRC) or does not match the log (the record at its last entry differs).
//
//   offset size  field (little-endian)
//   0      4     magic             "MWX1" (4D 57 58 31)
//   4      4     version           1
//   8      8     log_bytes         the log prefix described
//   16     8     next_uid
//   24     8     dead_bytes
//   32     8     entry_count
//   40     4     last_record_crc   header_crc32c of the record at the last entry (0: none)
//   44     4     entries_crc32c    CRC-32C of all entries
//   48     4     header_crc32c     CRC-32C of bytes 0..47
//   52     4     reserved          0
//   56     32*n  entries: uid u64, offset u64, payload_bytes u64, flags u8, deleted u8, 6 zero
//
// Written to <path>.tmp and renamed over the old one; not synced (a torn or lost index
// file is detected and rebuilt, never trusted).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mailwing/store/mailbox.hh"

namespace mailwing::store {

struct index_snapshot {
  uint64_t log_bytes = 0;
  uint64_t next_uid = 1;
  uint64_t dead_bytes = 0;
  uint32_t last_record_crc = 0;  // header_crc32c of the record at messages.back()
  std::vector<index_entry> messages;
};

std::string index_path_for(const std::string& log_path);

// The mailbox's committed state as an index (call on the owning shard).
index_snapshot snapshot_index(const mailbox& box);

// Returns false (and logs why) when the file could not be written. Any thread.
bool write_index_file(const std::string& path, const index_snapshot& index);

// The index, if the file exists, is intact and matches the log behind `log_fd`.
std::optional<index_snapshot> read_index_file(const std::string& path, int log_fd);

}  // namespace mailwing::store
