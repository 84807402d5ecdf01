#pragma once
// The commit thread's writes for one batch, in as few system calls as possible.
//
// With io_uring (when the kernel allows it), one submission carries the journal append
// with its fdatasync linked behind it and every mailbox log write of the batch: the log
// writes go on while the sync waits for the disk, and a batch touching a thousand
// mailboxes costs one io_uring_enter instead of a thousand pwritev calls. Without
// io_uring the same writes are plain pwritev and fdatasync calls, in the same order.
//
// Owned by one committer; only its thread uses it.

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>

namespace mailwing::store {

struct file_write {
  int fd;
  const iovec* iov;
  size_t iov_count;
  uint64_t offset;
};

struct write_outcome {
  int error = 0;                    // errno of the first failure
  const char* failed_step = nullptr;
  bool sync_failed = false;         // the fdatasync itself failed (never to be retried)
};

class write_ring {
 public:
  write_ring();
  ~write_ring();
  write_ring(const write_ring&) = delete;
  write_ring& operator=(const write_ring&) = delete;

  bool uses_io_uring() const { return ring_ != nullptr; }

  // Writes `journal` (if not null) and fdatasyncs its file when `sync`, and writes every
  // log write. Returns when all of it is done or failed.
  write_outcome run(const file_write* journal, bool sync, std::span<const file_write> logs);

 private:
  struct ring;
  std::unique_ptr<ring> ring_;
};

// Writes every byte the iovecs describe at `offset`, across short writes and IOV_MAX.
// Returns 0 or errno.
int pwritev_all(int fd, const iovec* iov, size_t count, uint64_t offset);

}  // namespace mailwing::store
