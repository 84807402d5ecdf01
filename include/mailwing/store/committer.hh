#pragma once
// A shard's commit thread: performs batches (batch.hh) — the journal append, the mailbox
// log writes, one fdatasync — so the shard's loop never blocks on the disk.
//
// One batch is in flight at a time; while it runs the shard collects the next one, so
// the batch size grows with the load by itself (group commit). The thread also owns the
// journal segment it appends to: at a checkpoint it starts the next segment and hands the
// old one back in the batch (batch::retired_segment) for the shard to sync and delete.
// A failed fdatasync poisons the committer: every later batch fails too, because the
// journal can no longer be trusted (and an fsync is never retried as if it had worked).
//
// Owned by its shard: start/stop on the main thread; submit() and idle() on the shard's
// thread; the completion comes back as a task in the shard's committer slot.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/worker.hh"
#include "mailwing/store/batch.hh"
#include "mailwing/store/write_ring.hh"

namespace mailwing::store {

class committer {
 public:
  // `on_done` runs on the shard's thread for each finished batch.
  committer(reactor::shard& owner, std::string journal_dir, uint64_t journal_segment_bytes,
            bool journaling, std::function<void(batch*)> on_done);
  ~committer();
  committer(const committer&) = delete;
  committer& operator=(const committer&) = delete;

  // Main thread. Creates the first segment (throws std::system_error on failure).
  void start();
  // Main thread, after the shard's loop ended: ends the thread. The journal stays; the
  // caller checkpoints and deletes it.
  void stop();

  // Shard thread.
  bool idle() const { return !in_flight_; }
  void submit(batch* work);
  // The segment being appended to (for the final checkpoint at shutdown).
  const std::string& segment_path() const { return segment_path_; }

 private:
  void thread_main();
  void perform(batch& work);
  void open_segment();
  std::string rotate_segment();

  reactor::shard& owner_;
  std::string journal_dir_;
  uint64_t journal_segment_bytes_;
  bool journaling_;
  std::function<void(batch*)> on_done_;

  // Commit thread state.
  int journal_fd_ = -1;
  int journal_dir_fd_ = -1;
  int poisoned_error_ = 0;  // errno of a failed fdatasync; sticky
  uint64_t journal_offset_ = 0;
  uint32_t segment_tag_ = 0;
  uint64_t segment_sequence_ = 0;
  std::string segment_path_;
  write_ring writes_;
  std::vector<file_write> log_requests_;  // reused between batches

  bool in_flight_ = false;  // shard thread only
  std::atomic<batch*> pending_{nullptr};
  std::atomic<uint32_t> signal_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace mailwing::store
