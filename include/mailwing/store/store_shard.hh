#pragma once
// A shard's part of the store: the mailboxes it owns, the group commit that appends to
// them, and the checkpoints that retire journal segments.
//
// Owned by its shard. deliver() and everything else run on that shard's thread; the
// other shards reach it with shard::submit_to. start()/stop() run on the main thread.
//
// Batching: deliveries that arrive while a batch is being committed wait in `waiting_`;
// when the commit thread is free (checked once per loop iteration, in before_wait) they
// all go into the next batch. So under load a batch holds everything that arrived during
// one fdatasync, and with no load a message is committed alone at once.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/worker.hh"
#include "mailwing/store/batch.hh"
#include "mailwing/store/committer.hh"
#include "mailwing/store/compactor.hh"
#include "mailwing/store/delivery.hh"
#include "mailwing/store/directory.hh"
#include "mailwing/store/index_file.hh"
#include "mailwing/store/mailbox.hh"
#include "mailwing/store/maildrop.hh"

namespace mailwing::store {

struct store_options {
  std::string data_dir;
  bool sync = true;        // durability "fsync"
  uint64_t journal_segment_bytes = 64ull << 20;
  uint32_t checkpoint_interval_ms = 30000;
};

class store_shard final : public reactor::loop_hook {
 public:
  // `owned` holds this shard's mailboxes (recovered, logs open), indexed by nothing in
  // particular; `stores` (indexed by shard id) is filled before any delivery starts.
  store_shard(reactor::shard& owner, reactor::worker& worker, const directory& mailboxes,
              std::vector<std::unique_ptr<mailbox>> owned, const store_options& options);
  ~store_shard();

  // Main thread.
  void start();
  // Main thread, after the shard's loop ended: stops the commit thread, syncs the logs
  // and deletes this shard's journal.
  void stop();

  reactor::shard& owner() { return owner_; }

  // Shard thread.
  void deliver(delivery_part& part);
  mailbox* find(mailbox_id id);

  // POP3. Takes the mailbox's exclusive lock and copies its live messages into `out`;
  // false when another session holds the lock.
  bool lock_maildrop(mailbox_id id, maildrop_snapshot& out);
  void unlock_maildrop(mailbox_id id);
  // Appends a tombstone for request.uids in the next group commit; when it is durable
  // the messages are marked deleted, the lock is released and the listener is told.
  void delete_messages(deletion_request& request);
  // Compacts every mailbox of this shard that has deleted messages (the on-demand
  // trigger; normally compaction starts by itself past compactor::worthwhile).
  void compact_all();
  void before_wait() override;
  bool busy() const override;
  // A shard that went quiet still checkpoints: the journal does not linger for the next
  // burst of mail.
  uint64_t next_wake_ms() const override;

 private:
  void start_batch(bool checkpoint);
  void add_record(batch& work, mailbox& box, const message& payload);
  void add_tombstone(batch& work, mailbox& box, const deletion_request& request);
  void add_log_write(batch& work, mailbox& box, uint64_t offset, size_t iov_begin);
  void add_journal_entry(batch& work, mailbox& box, char* prefix, size_t iov_begin, uint64_t record_bytes);
  void on_batch_done(batch* work);
  void report(delivery_part& part);
  void report(deletion_request& request);
  void checkpoint_finished();
  void recycle_segment(const std::string& segment) const;
  std::vector<std::pair<std::string, index_snapshot>> take_dirty_indexes();
  static void write_indexes(const std::vector<std::pair<std::string, index_snapshot>>& indexes);
  void queue_compaction(mailbox& box, bool forced);

  reactor::shard& owner_;
  reactor::worker& worker_;
  const directory& directory_;
  store_options options_;
  std::vector<std::unique_ptr<mailbox>> mailboxes_;  // indexed by mailbox_id; null if not ours
  std::vector<delivery_part*> waiting_;
  std::vector<deletion_request*> waiting_deletions_;
  std::vector<mailbox_id> compaction_queue_;
  batch batches_[2];
  batch* spare_ = &batches_[0];
  committer committer_;
  compactor compactor_;
  int data_dir_fd_ = -1;
  uint64_t last_checkpoint_ms_ = 0;
  bool written_since_checkpoint_ = false;
  uint32_t checkpoints_running_ = 0;
  bool failure_logged_ = false;
};

}  // namespace mailwing::store
