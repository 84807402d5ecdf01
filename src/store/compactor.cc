#include "mailwing/store/compactor.hh"

#include <fcntl.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cinttypes>
#include <cstring>

#include "mailwing/store/index_file.hh"
#include "mailwing/store/record.hh"
#include "mailwing/util/clock.hh"
#include "mailwing/util/log.hh"
#include "mailwing/util/task.hh"

namespace mailwing::store {

struct compaction_job {
  mailbox* box = nullptr;
  std::string new_path;
  int new_fd = -1;
  int old_fd = -1;                    // read by the worker; the shard keeps it open
  std::vector<index_entry> live;      // the snapshot, with offsets in the old log
  std::vector<uint64_t> new_offsets;  // of `live`, in the new log
  uint64_t snapshot_end = 0;          // old log bytes the snapshot covers
  uint64_t copied_until = 0;          // old log bytes reflected in the new log
  uint64_t tail_start = 0;            // where old offset snapshot_end lands in the new log
  uint64_t new_size = 0;
  uint64_t catch_up_target = 0;       // the worker copies old bytes up to here
  bool worker_busy = false;
  int error = 0;
  const char* failed_step = nullptr;
};

namespace {

// Copies [from, from + bytes) of `in` to `out` at `to`, in the kernel. Returns 0 or errno.
int copy_range(int in, uint64_t from, int out, uint64_t to, uint64_t bytes) {
  auto in_offset = static_cast<loff_t>(from);
  auto out_offset = static_cast<loff_t>(to);
  while (bytes > 0) {
    ssize_t moved = ::copy_file_range(in, &in_offset, out, &out_offset, static_cast<size_t>(bytes), 0);
    if (moved < 0 && errno == EINTR) continue;
    if (moved < 0) return errno;
    if (moved == 0) return EIO;  // the source is shorter than its index says
    bytes -= static_cast<uint64_t>(moved);
  }
  return 0;
}

int fsync_directory_of(const std::string& path) {
  std::string directory = path.substr(0, path.rfind('/'));
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int result = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return result;
}

}  // namespace

compactor::compactor(reactor::shard& owner, reactor::worker& worker) : owner_(owner), worker_(worker) {}

compactor::~compactor() {
  assert(job_ == nullptr || !job_->worker_busy);
  if (job_ != nullptr && job_->new_fd >= 0) {
    ::close(job_->new_fd);
    ::unlink(job_->new_path.c_str());
  }
}

bool compactor::compacting(const mailbox& box) const { return job_ != nullptr && job_->box == &box; }

bool compactor::worthwhile(const mailbox& box) {
  return box.dead_bytes >= (64u << 10) && box.dead_bytes * 2 >= box.committed_bytes;
}

void compactor::start(mailbox& box) {
  assert(job_ == nullptr);
  auto job = std::make_unique<compaction_job>();
  job->box = &box;
  job->old_fd = box.log_fd;
  job->new_path = box.log_path + ".compact";
  job->new_fd = ::open(job->new_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (job->new_fd < 0) {
    MW_LOG_ERROR("compaction of %s: cannot create %s: %s", box.address.c_str(), job->new_path.c_str(),
                 std::strerror(errno));
    return;
  }
  for (const index_entry& entry : box.messages) {
    if (!entry.deleted) job->live.push_back(entry);
  }
  job->snapshot_end = box.committed_bytes;
  job->copied_until = box.committed_bytes;
  job->catch_up_target = box.committed_bytes;
  job_ = std::move(job);
  copy_on_worker();
}

// Runs the copy on the worker; the job is not touched by the shard until it is back.
void compactor::copy_on_worker() {
  compaction_job* job = job_.get();
  job->worker_busy = true;
  worker_.run(util::make_task([this, job] {
    if (job->new_offsets.empty() && !job->live.empty()) {
      for (const index_entry& entry : job->live) {
        uint64_t bytes = record_header_bytes + entry.payload_bytes;
        if (int error = copy_range(job->old_fd, entry.offset, job->new_fd, job->new_size, bytes)) {
          job->error = error;
          job->failed_step = "copy";
          break;
        }
        job->new_offsets.push_back(job->new_size);
        job->new_size += bytes;
      }
    }
    if (job->tail_start == 0) job->tail_start = job->new_size;
    if (job->error == 0 && job->catch_up_target > job->copied_until) {
      uint64_t bytes = job->catch_up_target - job->copied_until;
      if (int error = copy_range(job->old_fd, job->copied_until, job->new_fd, job->new_size, bytes)) {
        job->error = error;
        job->failed_step = "catch-up copy";
      } else {
        job->new_size += bytes;
        job->copied_until = job->catch_up_target;
      }
    }
    if (job->error == 0 && ::fdatasync(job->new_fd) != 0) {
      job->error = errno;
      job->failed_step = "fdatasync";
    }
    owner_.post(owner_.worker_slot(), util::make_task([job] { job->worker_busy = false; }));
  }));
}

void compactor::poll(bool committer_idle, bool stopping) {
  if (job_ == nullptr || job_->worker_busy) return;
  if (job_->error != 0) {
    abandon(job_->failed_step, job_->error);
    return;
  }
  if (stopping) {
    abandon("shutdown", ECANCELED);
    return;
  }
  // A batch in flight holds offsets into the old log: switch only between batches.
  if (!committer_idle) return;
  mailbox& box = *job_->box;
  assert(box.reserved_bytes == box.committed_bytes);
  if (box.committed_bytes - job_->copied_until > catch_up_bytes_max) {
    job_->catch_up_target = box.committed_bytes;
    copy_on_worker();
    return;
  }
  switch_logs();
}

void compactor::switch_logs() {
  compaction_job& job = *job_;
  mailbox& box = *job.box;
  // The pause: at most catch_up_bytes_max of records that arrived during the copy.
  uint64_t tail_bytes = box.committed_bytes - job.copied_until;
  if (int error = copy_range(box.log_fd, job.copied_until, job.new_fd, job.new_size, tail_bytes)) {
    abandon("final copy", error);
    return;
  }
  job.new_size += tail_bytes;
  job.copied_until = box.committed_bytes;

  // Uids are never reused: if the highest one belonged to a record that is dropped now,
  // an empty tombstone keeps it in the log so recovery still starts above it. Records
  // after snapshot_end (the copied tail) carry the highest uids, and so does the last
  // live message when it was the last record.
  uint64_t highest_uid = box.next_uid - 1;
  bool highest_kept = job.snapshot_end < box.committed_bytes ||
                      (!job.live.empty() && job.live.back().uid == highest_uid);
  bool floor_written = !highest_kept && highest_uid > 0;
  if (floor_written) {
    record_header floor;
    floor.type = record_type::tombstone;
    floor.uid = highest_uid;
    floor.arrival_ms = util::unix_ms();
    char bytes[record_header_bytes];
    encode_record_header(floor, std::span<char, record_header_bytes>(bytes, record_header_bytes));
    if (::pwrite(job.new_fd, bytes, sizeof(bytes), static_cast<off_t>(job.new_size)) !=
        static_cast<ssize_t>(sizeof(bytes))) {
      abandon("uid floor write", errno);
      return;
    }
    job.new_size += record_header_bytes;
  }
  if (::fdatasync(job.new_fd) != 0) {
    abandon("fdatasync", errno);
    return;
  }
  // The old index file describes the old offsets: it goes first (a crash in between just
  // means a rebuild from the log at startup).
  std::string index_path = index_path_for(box.log_path);
  if (::unlink(index_path.c_str()) != 0 && errno != ENOENT) {
    abandon("index removal", errno);
    return;
  }
  box.index_dirty = true;
  if (::rename(job.new_path.c_str(), box.log_path.c_str()) != 0) {
    abandon("rename", errno);
    return;
  }
  if (int error = fsync_directory_of(box.log_path)) {
    // The rename happened; whichever name survives a crash holds a complete log.
    MW_LOG_WARN("compaction of %s: fsync of the directory failed: %s", box.address.c_str(),
                std::strerror(error));
  }

  std::vector<index_entry> messages;
  messages.reserve(job.live.size());
  uint64_t live_bytes = 0;
  for (size_t i = 0; i < job.live.size(); ++i) {
    index_entry entry = job.live[i];
    const index_entry* current = box.find(entry.uid);
    entry.deleted = current != nullptr && current->deleted;  // a tombstone in the tail
    entry.offset = job.new_offsets[i];
    messages.push_back(entry);
  }
  for (const index_entry& entry : box.messages) {
    if (entry.offset < job.snapshot_end) continue;
    index_entry moved = entry;
    moved.offset = entry.offset - job.snapshot_end + job.tail_start;
    messages.push_back(moved);
  }
  for (const index_entry& entry : messages) {
    if (!entry.deleted) live_bytes += record_header_bytes + entry.payload_bytes;
  }
  uint64_t old_size = box.committed_bytes;
  ::close(box.log_fd);  // POP3 sessions read through descriptors of their own
  box.log_fd = job.new_fd;
  job.new_fd = -1;
  box.messages = std::move(messages);
  box.committed_bytes = box.reserved_bytes = job.new_size;
  // The uid floor is not reclaimable: it is not counted as dead space.
  box.dead_bytes = job.new_size - live_bytes - (floor_written ? record_header_bytes : 0);
  MW_LOG_INFO("compacted %s: %" PRIu64 " -> %" PRIu64 " bytes", box.address.c_str(), old_size, job.new_size);
  job_.reset();
}

void compactor::abandon(const char* what, int error) {
  MW_LOG_WARN("compaction of %s failed at %s: %s; the log is unchanged", job_->box->address.c_str(),
               what, std::strerror(error));
  ::close(job_->new_fd);
  ::unlink(job_->new_path.c_str());
  job_.reset();
}

}  // namespace mailwing::store
