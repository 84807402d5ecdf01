#pragma once
// Reclaims the space of deleted messages: rewrites a mailbox log without them.
//
// The copy runs on the shard's blocking worker while ingestion goes on into the old log:
//  1. snapshot the live messages (shard thread);
//  2. copy their records into <log>.compact with copy_file_range, then any records that
//     arrived meanwhile, and sync it (worker);
//  3. switch (shard thread, while the commit thread is idle): copy the last few records
//     that arrived since step 2 (bounded: when more than catch_up_bytes_max arrived, step
//     2's catch-up runs again instead), sync, rename over the log, sync the directory,
//     and move the index to the new offsets. Only this step pauses the mailbox, and it
//     touches at most catch_up_bytes_max.
// Crash safety: the old log stays complete until the rename; the new one is complete
// and synced before it. A crash leaves the old log or the new one, never neither, and
// recovery removes a stray <log>.compact. Uids never change, so the journal replays the
// same way against either.
//
// Owned by a store_shard; its methods run on that shard's thread.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/worker.hh"
#include "mailwing/store/mailbox.hh"

namespace mailwing::store {

struct compaction_job;

class compactor {
 public:
  compactor(reactor::shard& owner, reactor::worker& worker);
  ~compactor();

  // Worth compacting: deleted messages take at least half the log and 64 KiB.
  static bool worthwhile(const mailbox& box);

  bool running() const { return job_ != nullptr; }
  bool compacting(const mailbox& box) const;
  // Starts compacting `box` (which must outlive the compaction).
  void start(mailbox& box);
  // Call once per loop iteration: switches to the new log when the copy is done and the
  // commit thread is idle (no batch holds offsets into the old log). When the shard is
  // stopping, a compaction is abandoned instead as soon as its copy step returns.
  void poll(bool committer_idle, bool stopping);

  static constexpr uint64_t catch_up_bytes_max = 4u << 20;

 private:
  void copy_on_worker();
  void switch_logs();
  void abandon(const char* what, int error);

  reactor::shard& owner_;
  reactor::worker& worker_;
  std::unique_ptr<compaction_job> job_;
};

}  // namespace mailwing::store
