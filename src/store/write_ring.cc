#include "mailwing/store/write_ring.hh"

#include <limits.h>
#include <unistd.h>

#include <liburing.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <vector>

namespace mailwing::store {

int pwritev_all(int fd, const iovec* iov, size_t count, uint64_t offset) {
  iovec chunk[IOV_MAX];
  size_t index = 0;
  size_t skip = 0;  // bytes of iov[index] already written
  while (index < count && iov[index].iov_len == 0) ++index;
  while (index < count) {
    size_t used = 0;
    for (size_t i = index; i < count && used < IOV_MAX; ++i) {
      chunk[used] = iov[i];
      if (i == index) {
        chunk[used].iov_base = static_cast<char*>(iov[i].iov_base) + skip;
        chunk[used].iov_len -= skip;
      }
      ++used;
    }
    ssize_t written = ::pwritev(fd, chunk, static_cast<int>(used), static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    offset += static_cast<uint64_t>(written);
    auto left = static_cast<size_t>(written);
    while (left > 0 && index < count) {
      size_t rest = iov[index].iov_len - skip;
      if (left >= rest) {
        left -= rest;
        ++index;
        skip = 0;
      } else {
        skip += left;
        left = 0;
      }
    }
    while (index < count && iov[index].iov_len == 0) ++index;
  }
  return 0;
}

namespace {

uint64_t total_bytes(const file_write& write) {
  uint64_t bytes = 0;
  for (size_t i = 0; i < write.iov_count; ++i) bytes += write.iov[i].iov_len;
  return bytes;
}

// Finishes a write the ring left short: the iovecs past `done` bytes, synchronously.
int finish_write(const file_write& write, uint64_t done) {
  std::vector<iovec> rest;
  uint64_t skip = done;
  for (size_t i = 0; i < write.iov_count; ++i) {
    iovec piece = write.iov[i];
    if (skip >= piece.iov_len) {
      skip -= piece.iov_len;
      continue;
    }
    piece.iov_base = static_cast<char*>(piece.iov_base) + skip;
    piece.iov_len -= skip;
    skip = 0;
    rest.push_back(piece);
  }
  return pwritev_all(write.fd, rest.data(), rest.size(), write.offset + done);
}

constexpr unsigned ring_entries = 256;

// Callers only ask when the ring has room (the chain fits an empty ring; logs check
// io_uring_sq_space_left), so a missing entry is a broken invariant.
io_uring_sqe* take_sqe(io_uring& uring) {
  io_uring_sqe* sqe = io_uring_get_sqe(&uring);
  if (sqe == nullptr) std::abort();
  return sqe;
}
constexpr uint64_t journal_chunk_tag = uint64_t{1} << 63;  // | chunk index
constexpr uint64_t journal_sync_tag = UINT64_MAX;

// The journal write cut into pieces of at most IOV_MAX iovecs, each at its own offset.
std::vector<file_write> journal_chunks(const file_write& journal) {
  std::vector<file_write> chunks;
  uint64_t offset = journal.offset;
  for (size_t begin = 0; begin < journal.iov_count; begin += IOV_MAX) {
    file_write chunk{journal.fd, journal.iov + begin, std::min<size_t>(IOV_MAX, journal.iov_count - begin), offset};
    offset += total_bytes(chunk);
    chunks.push_back(chunk);
  }
  return chunks;
}

}  // namespace

struct write_ring::ring {
  io_uring uring{};
};

write_ring::write_ring() {
  auto candidate = std::make_unique<ring>();
  // A plain ring: the commit thread submits and waits itself. Where io_uring is
  // unavailable (disabled, seccomp) the plain syscalls below do the same work.
  if (io_uring_queue_init(ring_entries, &candidate->uring, 0) == 0) ring_ = std::move(candidate);
}

write_ring::~write_ring() {
  if (ring_) io_uring_queue_exit(&ring_->uring);
}

write_outcome write_ring::run(const file_write* journal, bool sync, std::span<const file_write> logs) {
  write_outcome outcome;
  auto fail = [&outcome](int error, const char* step) {
    if (outcome.error == 0) {
      outcome.error = error;
      outcome.failed_step = step;
    }
  };
  if (!ring_) {
    if (journal != nullptr) {
      if (int error = pwritev_all(journal->fd, journal->iov, journal->iov_count, journal->offset)) {
        fail(error, "journal write");
        return outcome;
      }
    }
    for (const file_write& write : logs) {
      if (int error = pwritev_all(write.fd, write.iov, write.iov_count, write.offset)) {
        fail(error, "log write");
        return outcome;
      }
    }
    if (journal != nullptr && sync && ::fdatasync(journal->fd) != 0) {
      fail(errno, "journal fdatasync");
      outcome.sync_failed = true;
    }
    return outcome;
  }

  io_uring& uring = ring_->uring;
  // The journal and its sync go first, as one linked chain; logs fill the rest of the
  // ring, as many rounds as they need. Any trouble with the chain (a short write, a
  // cancelled link) redoes the journal with plain calls afterwards: same bytes, same
  // offsets, so that is safe.
  std::vector<file_write> chunks = journal != nullptr ? journal_chunks(*journal) : std::vector<file_write>();
  bool journal_redo = chunks.size() + 1 > ring_entries;
  if (!journal_redo) {
    for (size_t i = 0; i < chunks.size(); ++i) {
      io_uring_sqe* sqe = take_sqe(uring);
      io_uring_prep_writev(sqe, chunks[i].fd, chunks[i].iov, static_cast<unsigned>(chunks[i].iov_count),
                           chunks[i].offset);
      io_uring_sqe_set_data64(sqe, journal_chunk_tag | i);
      if (i + 1 < chunks.size() || sync) sqe->flags |= IOSQE_IO_LINK;
    }
    if (!chunks.empty() && sync) {
      io_uring_sqe* sqe = take_sqe(uring);
      io_uring_prep_fsync(sqe, journal->fd, IORING_FSYNC_DATASYNC);
      io_uring_sqe_set_data64(sqe, journal_sync_tag);
    }
  }
  unsigned in_flight = journal_redo ? 0 : static_cast<unsigned>(chunks.size() + (chunks.empty() || !sync ? 0 : 1));
  size_t next_log = 0;
  while (next_log < logs.size() || in_flight > 0) {
    while (next_log < logs.size() && io_uring_sq_space_left(&uring) > 0) {
      const file_write& write = logs[next_log];
      if (write.iov_count > IOV_MAX) {
        if (int error = pwritev_all(write.fd, write.iov, write.iov_count, write.offset)) fail(error, "log write");
        ++next_log;
        continue;
      }
      io_uring_sqe* sqe = take_sqe(uring);
      io_uring_prep_writev(sqe, write.fd, write.iov, static_cast<unsigned>(write.iov_count), write.offset);
      io_uring_sqe_set_data64(sqe, next_log);
      ++next_log;
      ++in_flight;
    }
    if (in_flight == 0) break;
    // One wake-up for the whole round: the log writes mostly run on io-wq workers and
    // finish one by one, and waking for each would cost a context switch per mailbox.
    int submitted = io_uring_submit_and_wait(&uring, in_flight);
    if (submitted < 0 && submitted != -EINTR) {
      // Nothing is known about what ran: redo all of it with plain calls.
      for (const file_write& write : logs) {
        if (int error = pwritev_all(write.fd, write.iov, write.iov_count, write.offset)) fail(error, "log write");
      }
      journal_redo = true;
      break;
    }
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&uring, head, cqe) {
      ++seen;
      --in_flight;
      uint64_t tag = cqe->user_data;
      int result = cqe->res;
      if (tag == journal_sync_tag) {
        if (result == -ECANCELED) {
          journal_redo = true;  // a write before it fell short
        } else if (result < 0) {
          fail(-result, "journal fdatasync");
          outcome.sync_failed = true;
        }
      } else if (tag & journal_chunk_tag) {
        const file_write& chunk = chunks[tag & ~journal_chunk_tag];
        if (result == -ECANCELED || (result >= 0 && static_cast<uint64_t>(result) < total_bytes(chunk))) {
          journal_redo = true;
        } else if (result < 0) {
          fail(-result, "journal write");
        }
      } else {
        const file_write& write = logs[tag];
        if (result < 0) {
          fail(-result, "log write");
        } else if (static_cast<uint64_t>(result) < total_bytes(write)) {
          if (int error = finish_write(write, static_cast<uint64_t>(result))) fail(error, "log write");
        }
      }
    }
    io_uring_cq_advance(&uring, seen);
  }
  if (outcome.error == 0 && journal != nullptr && journal_redo) {
    if (int error = pwritev_all(journal->fd, journal->iov, journal->iov_count, journal->offset)) {
      fail(error, "journal write");
    } else if (sync && ::fdatasync(journal->fd) != 0) {
      fail(errno, "journal fdatasync");
      outcome.sync_failed = true;
    }
  }
  return outcome;
}

}  // namespace mailwing::store
