#pragma once
// Startup: bring the data directory to a consistent state before any shard runs.
//
//  1. Lock <data_dir>/lock so two servers never share one store.
//  2. Open (or create) every mailbox log and read it from the start (log_scan.hh); a torn
//     or garbage tail is cut off at the last good record, with a log line saying how many
//     bytes were dropped and why.
//  3. Replay every journal segment left by a crash: entries whose uid the log lacks are
//     appended (journal.hh's rule). This restores every acknowledged message whose log
//     write had not reached the disk.
//  4. Sync what changed, then delete the replayed segments.
//
// Runs on the main thread only.

#include <memory>
#include <string>
#include <vector>

#include "mailwing/store/directory.hh"
#include "mailwing/store/mailbox.hh"

namespace mailwing::store {

struct recovered_store {
  std::vector<std::unique_ptr<mailbox>> mailboxes;  // indexed by mailbox_id
  int lock_fd = -1;  // held for the life of the process
};

// Throws std::runtime_error with a one-line reason when the store cannot be used.
recovered_store recover(const std::string& data_dir, const directory& mailboxes);

}  // namespace mailwing::store
