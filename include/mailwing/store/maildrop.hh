#pragma once
// What a POP3 session gets from the shard that owns its mailbox: an exclusive lock, a
// snapshot of the messages at login, and durable deletion at QUIT (RFC 1939 §6, UPDATE).
//
// The session's shard and the owner may differ; requests travel as tasks. A
// deletion_request lives on the session's shard, goes to the owner, and the owner posts
// the answer back to the listener on the origin shard.

#include <cstdint>
#include <string>
#include <vector>

#include "mailwing/reactor/shard.hh"
#include "mailwing/store/directory.hh"
#include "mailwing/store/mailbox.hh"

namespace mailwing::store {

struct maildrop_snapshot {
  std::string log_path;
  // Opened by the owning shard together with the snapshot, so the offsets and the file
  // always match, even if a compaction replaces the log right after. The session owns
  // and closes it. -1 when the log could not be opened.
  int log_fd = -1;
  std::vector<index_entry> messages;  // not deleted when the lock was taken, uid order
};

class deletion_listener {
 public:
  // Origin shard: the tombstone is durable (ok) or the commit failed; the lock is released.
  virtual void on_deletions_done(bool ok) = 0;

 protected:
  ~deletion_listener() = default;
};

struct deletion_request {
  mailbox_id mailbox = 0;
  std::vector<uint64_t> uids;  // not empty
  reactor::shard* origin = nullptr;
  deletion_listener* listener = nullptr;
  bool ok = false;
};

}  // namespace mailwing::store
