#include "mailwing/store/committer.hh"

#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>

#include "mailwing/store/journal.hh"
#include "mailwing/store/write_ring.hh"
#include "mailwing/util/log.hh"
#include "mailwing/util/task.hh"

namespace mailwing::store {
namespace {

// Copies a spooled body into a log inside the kernel; falls back to read/write where
// copy_file_range cannot be used. Returns 0 or errno.
//
// With `start_writeback` (the log is synced afterwards) each copied step is handed to the
// disk at once (sync_file_range WRITE starts writeback, it does not wait), so the disk
// writes the front of a large message while the rest is still being copied and the
// fdatasync behind waits for the tail only.
int copy_spool(const spool_copy& copy, bool start_writeback) {
  constexpr uint64_t step_bytes = 8 << 20;
  loff_t in = 0;
  auto out = static_cast<loff_t>(copy.log_offset);
  uint64_t left = copy.bytes;
  auto kick = [&](loff_t from, loff_t to) {
    // Only a hint: the fdatasync behind is what makes the bytes durable.
    if (start_writeback && to > from) ::sync_file_range(copy.log_fd, from, to - from, SYNC_FILE_RANGE_WRITE);
  };
  while (left > 0) {
    loff_t step_start = out;
    ssize_t moved = ::copy_file_range(copy.spool_fd, &in, copy.log_fd, &out,
                                      static_cast<size_t>(std::min<uint64_t>(left, step_bytes)), 0);
    if (moved > 0) {
      left -= static_cast<uint64_t>(moved);
      kick(step_start, out);
      continue;
    }
    if (moved < 0 && errno == EINTR) continue;
    if (moved == 0) return EIO;  // the spool file is shorter than the message
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) return errno;
    auto buffer = std::make_unique<char[]>(1 << 20);
    while (left > 0) {
      ssize_t got = ::pread(copy.spool_fd, buffer.get(),
                            static_cast<size_t>(std::min<uint64_t>(left, 1 << 20)), in);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return got < 0 ? errno : EIO;
      iovec piece{buffer.get(), static_cast<size_t>(got)};
      if (int error = pwritev_all(copy.log_fd, &piece, 1, static_cast<uint64_t>(out))) return error;
      kick(out, out + got);
      in += got;
      out += got;
      left -= static_cast<uint64_t>(got);
    }
  }
  return 0;
}

// Writes zeros over [0, bytes) and syncs, so that later overwrites need no allocation
// (journal.hh says why). Returns 0 or errno.
int preallocate(int fd, uint64_t bytes) {
  auto zeros = std::make_unique<char[]>(1 << 20);
  std::memset(zeros.get(), 0, 1 << 20);
  for (uint64_t offset = 0; offset < bytes; offset += 1 << 20) {
    iovec piece{zeros.get(), static_cast<size_t>(std::min<uint64_t>(bytes - offset, 1 << 20))};
    if (int error = pwritev_all(fd, &piece, 1, offset)) return error;
  }
  return ::fdatasync(fd) == 0 ? 0 : errno;
}

}  // namespace

committer::committer(reactor::shard& owner, std::string journal_dir, uint64_t journal_segment_bytes,
                     bool journaling, std::function<void(batch*)> on_done)
    : owner_(owner),
      journal_dir_(std::move(journal_dir)),
      journal_segment_bytes_(journal_segment_bytes),
      journaling_(journaling),
      on_done_(std::move(on_done)) {}

committer::~committer() {
  stop();
  if (journal_fd_ >= 0) ::close(journal_fd_);
  if (journal_dir_fd_ >= 0) ::close(journal_dir_fd_);
}

void committer::start() {
  if (journaling_) {
    journal_dir_fd_ = ::open(journal_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (journal_dir_fd_ < 0) {
      throw std::system_error(errno, std::system_category(), "open " + journal_dir_);
    }
    open_segment();
  }
  thread_ = std::thread([this] { thread_main(); });
}

void committer::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_release);
  signal_.fetch_add(1, std::memory_order_release);
  signal_.notify_one();
  thread_.join();
}

void committer::submit(batch* work) {
  assert(!in_flight_);
  in_flight_ = true;
  pending_.store(work, std::memory_order_release);
  signal_.fetch_add(1, std::memory_order_release);
  signal_.notify_one();
}

void committer::thread_main() {
  char name[16];
  std::snprintf(name, sizeof(name), "commit%u", owner_.id());
  util::set_thread_log_name(name);
  pthread_setname_np(pthread_self(), name);
  for (;;) {
    uint32_t seen = signal_.load(std::memory_order_acquire);
    batch* work = pending_.exchange(nullptr, std::memory_order_acq_rel);
    if (work != nullptr) {
      perform(*work);
      owner_.post(owner_.committer_slot(), util::make_task([this, work] {
        in_flight_ = false;
        on_done_(work);
      }));
      continue;
    }
    if (stopping_.load(std::memory_order_acquire)) break;
    signal_.wait(seen, std::memory_order_acquire);
  }
}

void committer::open_segment() {
  ++segment_sequence_;
  std::string path = journal_dir_ + "/" + journal_segment_name(owner_.id(), segment_sequence_);
  std::string spare = journal_dir_ + "/" + journal_spare_name(owner_.id());
  int fd = -1;
  if (::rename(spare.c_str(), path.c_str()) == 0) {
    fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    // Until the first new entry lands, the file must not begin with its old entries:
    // zeros at the start read as "no entries" (journal.hh).
    if (fd >= 0) {
      if (int error = preallocate(fd, 4096)) {
        ::close(fd);
        throw std::system_error(error, std::system_category(), "reset " + path);
      }
    }
  } else {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      if (int error = preallocate(fd, journal_segment_bytes_)) {
        ::close(fd);
        throw std::system_error(error, std::system_category(), "preallocate " + path);
      }
    }
  }
  if (fd < 0) throw std::system_error(errno, std::system_category(), "open " + path);
  // The segment's name must be durable before anything in it is acknowledged.
  if (::fsync(journal_dir_fd_) != 0) {
    int error = errno;
    ::close(fd);
    throw std::system_error(error, std::system_category(), "fsync " + journal_dir_);
  }
  if (getrandom(&segment_tag_, sizeof(segment_tag_), 0) != sizeof(segment_tag_)) {
    segment_tag_ = static_cast<uint32_t>(segment_sequence_ * 2654435761u);
  }
  journal_fd_ = fd;
  segment_path_ = std::move(path);
  journal_offset_ = 0;
}

std::string committer::rotate_segment() {
  std::string retired = segment_path_;
  int retired_fd = journal_fd_;
  open_segment();
  ::close(retired_fd);
  return retired;
}

void committer::perform(batch& work) {
  auto fail = [&work](int error, const char* step) {
    if (work.error == 0) {
      work.error = error;
      work.failed_step = step;
    }
  };
  if (poisoned_error_ != 0) {
    fail(poisoned_error_, "earlier fdatasync failure");
    return;
  }
  // Spooled bodies first: their logs are synced below, after every write into them.
  for (const spool_copy& copy : work.spool_copies) {
    if (int error = copy_spool(copy, work.sync)) {
      fail(error, "spool copy");
      return;
    }
  }
  bool journaled = journaling_ && !work.journal_iov.empty();
  if (journaled) {
    for (char* prefix : work.journal_prefixes) stamp_segment_tag(prefix, segment_tag_);
  }
  file_write journal{journal_fd_, work.journal_iov.data(), work.journal_iov.size(), journal_offset_};
  log_requests_.clear();
  for (const log_write& write : work.log_writes) {
    log_requests_.push_back({write.fd, &work.log_iov[write.iov_begin], write.iov_count, write.offset});
  }
  write_outcome written = writes_.run(journaled ? &journal : nullptr, work.sync, log_requests_);
  if (written.sync_failed) {
    poisoned_error_ = written.error;
    MW_LOG_ERROR("fdatasync of %s failed: %s; refusing all further mail", segment_path_.c_str(),
                 std::strerror(poisoned_error_));
  }
  if (written.error != 0) {
    fail(written.error, written.failed_step);
    return;
  }
  if (work.sync) {
    // A spooled message is synced in its own log instead of being copied to the journal
    // too; it is large, so this costs bandwidth-bound time, not a sync per small message.
    for (const spool_copy& copy : work.spool_copies) {
      if (::fdatasync(copy.log_fd) != 0) {
        poisoned_error_ = errno;
        fail(errno, "log fdatasync");
        MW_LOG_ERROR("fdatasync of a mailbox log failed: %s; refusing all further mail",
                     std::strerror(poisoned_error_));
        return;
      }
    }
  }
  if (journaled) journal_offset_ += work.journal_bytes;
  if (journaling_ && journal_offset_ > 0 &&
      (work.checkpoint || journal_offset_ >= journal_segment_bytes_)) {
    try {
      work.retired_segment = rotate_segment();
    } catch (const std::system_error& error) {
      // The batch itself is durable; only the next segment could not be made. Keep
      // appending to the current one and try again at the next checkpoint.
      MW_LOG_ERROR("journal rotation failed: %s", error.what());
    }
  }
}

}  // namespace mailwing::store
