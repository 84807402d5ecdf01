#include "mailwing/pop3/log_window.hh"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>

namespace mailwing::pop3 {

int log_window::view(int fd, uint64_t offset, size_t bytes, std::string_view& out) {
  assert(bytes <= capacity_bytes());
  if (block_ != nullptr && fd == fd_ && offset >= start_ && offset + bytes <= start_ + filled_bytes_) {
    out = std::string_view(block_ + (offset - start_), bytes);
    return 0;
  }
  // Forward from the last window (also one already released): the client is walking the
  // mailbox.
  bool sequential = fd == fd_ && offset >= start_ && offset <= start_ + filled_bytes_;
  readahead_bytes_ = sequential ? std::min(readahead_bytes_ * 2, capacity_bytes()) : readahead_bytes_min;
  if (block_ == nullptr) block_ = pool_.acquire();
  fd_ = fd;
  start_ = offset;
  filled_bytes_ = 0;
  size_t want = std::min(std::max(bytes, readahead_bytes_), capacity_bytes());
  // Short reads are normal near the end of the log; only the asked bytes must be there.
  while (filled_bytes_ < bytes) {
    ssize_t got = ::pread(fd, block_ + filled_bytes_, want - filled_bytes_,
                          static_cast<off_t>(offset + filled_bytes_));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      int error = got < 0 ? errno : EIO;
      filled_bytes_ = 0;
      return error;
    }
    filled_bytes_ += static_cast<size_t>(got);
  }
  out = std::string_view(block_, bytes);
  return 0;
}

void log_window::release() {
  if (block_ == nullptr) return;
  pool_.release(block_);
  block_ = nullptr;  // where it was stays known, for the next miss's read size
}

}  // namespace mailwing::pop3
