#pragma once
// A mailbox's live state: its open log and the index of the messages in it.
//
// Owned by the shard that owns the mailbox (directory::owner_shard); only that shard's
// thread reads or changes it. Its commit thread writes the log file at offsets the shard
// reserved for it and never touches this object.

#include <cstdint>
#include <string>
#include <vector>

#include "mailwing/store/directory.hh"

namespace mailwing::store {

struct index_entry {
  uint64_t uid;
  uint64_t offset;         // of the record header in the log
  uint64_t payload_bytes;  // the message size as POP3 reports it
  uint8_t flags;           // record flags (has_dot_line)
  bool deleted;            // a tombstone names it
};

struct mailbox {
  mailbox() = default;
  mailbox(const mailbox&) = delete;
  mailbox& operator=(const mailbox&) = delete;
  ~mailbox();

  mailbox_id id = 0;
  std::string address;
  std::string log_path;
  int log_fd = -1;  // owned: closed with the mailbox
  uint64_t committed_bytes = 0;  // log bytes that are written and acknowledged
  uint64_t reserved_bytes = 0;   // committed + handed to an in-flight batch
  uint64_t next_uid = 1;
  std::vector<index_entry> messages;  // committed messages in log order (uid order)
  uint64_t dead_bytes = 0;   // log bytes of deleted messages and tombstones
  bool locked = false;       // a POP3 session holds the maildrop (RFC 1939 §8)
  bool index_dirty = false;  // changed since its index file was last written
  uint32_t last_message_header_crc = 0;  // header_crc32c of the last message record

  // The entry for `uid`, or nullptr.
  index_entry* find(uint64_t uid);
};

}  // namespace mailwing::store
