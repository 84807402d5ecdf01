#pragma once
// The per-shard journal: the commit point that makes group commit cheap.
//
// A batch of messages for many mailboxes is appended to one journal file and made durable
// with one fdatasync, however many mailboxes it touched; the same records are written to
// the mailbox logs (readable at once) but those logs are only synced later, at a
// checkpoint. A checkpoint starts a new journal segment, syncs the data filesystem
// (syncfs: one call, whatever the number of mailboxes), and then retires the old segment.
// After a crash, recovery replays every remaining segment into the logs.
//
// Segments are preallocated (written full of zeros once) and recycled: a retired segment
// becomes the shard's spare, <data_dir>/journal/shard<K>-spare.journal, and the next
// rotation renames it into place. Appends then overwrite allocated blocks, so fdatasync
// has no file size or block map to update: on ext4 here that more than halves its time.
// A recycled segment still holds its old entries after the new ones; the segment tag
// tells them apart.
//
// Files: <data_dir>/journal/shard<K>-<SEQ>.journal, SEQ as 16 hex digits, increasing.
// Entries back to back, little-endian:
//
//   offset size  field
//   0      4     magic            "MWJ1" (bytes 4D 57 4A 31)
//   4      2     address_bytes    length of the mailbox address
//   6      2     reserved         0
//   8      4     address_crc32c   CRC-32C of the address bytes
//   12     4     segment_tag      random per use of a segment file; the same in all its
//                                 entries
//   16     n     address          the mailbox ("alice@example.test")
//   16+n   ...   record           a mailbox log record exactly as appended to the log:
//                                 40-byte header (record.hh) and payload
//
// Replay rule: entries are read in order and checked (magic, address CRC, the record's
// header and payload CRCs); the first bad one ends the segment (a torn tail: nothing
// after it was acknowledged). Zeros, or an entry whose segment_tag differs from the first
// entry's (left from the file's previous use), end it cleanly. An entry whose uid is not
// above the log's last uid is already there and skipped; the others are appended in order.
// (Old entries are harmless even if a tag collided: a segment is only recycled after a
// checkpoint made all its records durable in the logs, so their uids are all skipped.)

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "mailwing/store/record.hh"

namespace mailwing::store {

inline constexpr uint32_t journal_magic = 0x314A574D;  // "MWJ1" little-endian
inline constexpr size_t journal_prefix_bytes = 16;

// The tag is left 0: the committer stamps it (stamp_segment_tag) when it knows the
// segment the entry goes to.
void encode_journal_prefix(std::string_view address, std::span<char, journal_prefix_bytes> out);
void stamp_segment_tag(char* prefix, uint32_t segment_tag);

// "shard3-spare.journal": the shard's preallocated segment waiting to be used.
std::string journal_spare_name(uint32_t shard);

// "shard3-000000000000002a.journal"
std::string journal_segment_name(uint32_t shard, uint64_t sequence);
// Parses a segment file name; false when `name` is not one.
bool parse_journal_segment_name(std::string_view name, uint32_t& shard, uint64_t& sequence);

struct journal_entry {
  std::string_view address;
  record_header header;
  std::string_view payload;
};

struct journal_read_result {
  uint64_t valid_bytes = 0;
  uint64_t file_bytes = 0;
  uint64_t entries = 0;
  // Why reading stopped at a damaged entry; "" when the entries simply ended (end of the
  // file, preallocated zeros, or entries from the segment's previous use).
  std::string problem;
};

// Reads a whole segment file and calls `visit` for each good entry in order.
journal_read_result read_journal(const std::string& path,
                                 const std::function<void(const journal_entry&)>& visit);

}  // namespace mailwing::store
