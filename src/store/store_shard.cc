#include "mailwing/store/store_shard.hh"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include "mailwing/reactor/backend.hh"
#include "mailwing/store/index_file.hh"
#include "mailwing/store/journal.hh"
#include "mailwing/store/record.hh"
#include "mailwing/util/clock.hh"
#include "mailwing/util/crc32c.hh"
#include "mailwing/util/log.hh"
#include "mailwing/util/task.hh"

namespace mailwing::store {

store_shard::store_shard(reactor::shard& owner, reactor::worker& worker,
                         const directory& mailboxes, std::vector<std::unique_ptr<mailbox>> owned,
                         const store_options& options)
    : owner_(owner),
      worker_(worker),
      directory_(mailboxes),
      options_(options),
      committer_(owner, options.data_dir + "/journal", options.journal_segment_bytes,
                 options.sync, [this](batch* work) { on_batch_done(work); }),
      compactor_(owner, worker) {
  mailboxes_.resize(mailboxes.size());
  for (auto& box : owned) {
    assert(directory_.owner_shard(box->id) == owner.id());
    mailbox_id id = box->id;
    mailboxes_[id] = std::move(box);
    queue_compaction(*mailboxes_[id], false);
  }
}

store_shard::~store_shard() {
  if (data_dir_fd_ >= 0) ::close(data_dir_fd_);
}

void store_shard::start() {
  data_dir_fd_ = ::open(options_.data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (data_dir_fd_ < 0) {
    throw std::system_error(errno, std::system_category(), "open " + options_.data_dir);
  }
  committer_.start();
  last_checkpoint_ms_ = owner_.now_ms();
  owner_.add_loop_hook(*this);
}

void store_shard::stop() {
  committer_.stop();
  // Everything this shard appended is in its logs; one syncfs makes the journal
  // unnecessary, so the next start has nothing to replay, and lets the index files
  // describe all of it.
  if (::syncfs(data_dir_fd_) != 0) {
    MW_LOG_ERROR("final checkpoint: syncfs failed: %s; the journal is kept for replay",
                 std::strerror(errno));
    return;
  }
  write_indexes(take_dirty_indexes());
  if (options_.sync) recycle_segment(committer_.segment_path());
}

// A retired segment becomes the shard's spare (journal.hh), unless there is one already.
void store_shard::recycle_segment(const std::string& segment) const {
  std::string spare = options_.data_dir + "/journal/" + journal_spare_name(owner_.id());
  if (::renameat2(AT_FDCWD, segment.c_str(), AT_FDCWD, spare.c_str(), RENAME_NOREPLACE) == 0) return;
  if (::unlink(segment.c_str()) != 0 && errno != ENOENT) {
    MW_LOG_WARN("could not delete %s: %s", segment.c_str(), std::strerror(errno));
  }
}

mailbox* store_shard::find(mailbox_id id) {
  return id < mailboxes_.size() ? mailboxes_[id].get() : nullptr;
}

void store_shard::deliver(delivery_part& part) {
  waiting_.push_back(&part);
}

bool store_shard::lock_maildrop(mailbox_id id, maildrop_snapshot& out) {
  mailbox* box = find(id);
  assert(box != nullptr && "locked on the owning shard only");
  if (box->locked) return false;
  box->locked = true;
  out.log_path = box->log_path;
  out.log_fd = ::open(box->log_path.c_str(), O_RDONLY | O_CLOEXEC);
  out.messages.clear();
  out.messages.reserve(box->messages.size());
  for (const index_entry& entry : box->messages) {
    if (!entry.deleted) out.messages.push_back(entry);
  }
  return true;
}

void store_shard::unlock_maildrop(mailbox_id id) {
  mailbox* box = find(id);
  assert(box != nullptr && box->locked);
  box->locked = false;
}

void store_shard::delete_messages(deletion_request& request) {
  assert(!request.uids.empty());
  waiting_deletions_.push_back(&request);
}

void store_shard::queue_compaction(mailbox& box, bool forced) {
  if (box.dead_bytes == 0 || !(forced || compactor::worthwhile(box))) return;
  if (std::find(compaction_queue_.begin(), compaction_queue_.end(), box.id) == compaction_queue_.end()) {
    compaction_queue_.push_back(box.id);
  }
}

void store_shard::compact_all() {
  for (auto& box : mailboxes_) {
    if (box) queue_compaction(*box, true);
  }
}

bool store_shard::busy() const {
  return !waiting_.empty() || !waiting_deletions_.empty() || !committer_.idle() ||
         checkpoints_running_ > 0 || compactor_.running();
}

uint64_t store_shard::next_wake_ms() const {
  if (!options_.sync || !written_since_checkpoint_) return UINT64_MAX;
  return last_checkpoint_ms_ + options_.checkpoint_interval_ms;
}

void store_shard::before_wait() {
  compactor_.poll(committer_.idle(), owner_.stop_requested());
  if (!compactor_.running() && !compaction_queue_.empty() && !owner_.stop_requested()) {
    mailbox& box = *mailboxes_[compaction_queue_.front()];
    compaction_queue_.erase(compaction_queue_.begin());
    // Asked twice while it ran: the first compaction already left nothing to reclaim.
    if (box.dead_bytes > 0) compactor_.start(box);
  }
  if (!committer_.idle()) return;
  bool checkpoint_due = options_.sync && written_since_checkpoint_ &&
                        owner_.now_ms() - last_checkpoint_ms_ >= options_.checkpoint_interval_ms;
  if (!waiting_.empty() || !waiting_deletions_.empty() || checkpoint_due) start_batch(checkpoint_due);
}

void store_shard::start_batch(bool checkpoint) {
  batch& work = *spare_;
  spare_ = spare_ == &batches_[0] ? &batches_[1] : &batches_[0];
  work.clear();
  work.sync = options_.sync;
  work.checkpoint = checkpoint;
  // The scratch area holds every header the iovecs will point into, so it is sized once
  // here and never reallocated while the batch is built.
  size_t records = waiting_deletions_.size();
  for (const delivery_part* part : waiting_) records += part->mailboxes.size();
  work.scratch.resize(records * (journal_prefix_bytes + record_header_bytes));
  for (delivery_part* part : waiting_) {
    const message& payload = part->parent->payload();
    for (mailbox_id id : part->mailboxes) {
      mailbox* box = find(id);
      assert(box != nullptr && "delivered to the owning shard only");
      add_record(work, *box, payload);
    }
    work.parts.push_back(part);
  }
  for (deletion_request* request : waiting_deletions_) {
    mailbox* box = find(request->mailbox);
    assert(box != nullptr && box->locked);
    add_tombstone(work, *box, *request);
    work.deletions.push_back(request);
  }
  waiting_.clear();
  waiting_deletions_.clear();
  if (!work.placements.empty()) written_since_checkpoint_ = true;
  if (checkpoint) {
    last_checkpoint_ms_ = owner_.now_ms();
    written_since_checkpoint_ = !work.placements.empty();
  }
  committer_.submit(&work);
}

void store_shard::add_record(batch& work, mailbox& box, const message& payload) {
  char* prefix = work.scratch.data() + work.placements.size() * (journal_prefix_bytes + record_header_bytes);
  char* header_bytes = prefix + journal_prefix_bytes;
  record_header header;
  header.type = record_type::message;
  header.flags = payload.has_dot_line ? record_flag_has_dot_line : 0;
  header.uid = box.next_uid++;
  header.arrival_ms = payload.arrival_ms;
  header.payload_bytes = payload.payload_bytes();
  header.payload_crc32c = payload.payload_crc32c;
  encode_record_header(header, std::span<char, record_header_bytes>(header_bytes, record_header_bytes));
  uint64_t offset = box.reserved_bytes;
  box.reserved_bytes += record_header_bytes + header.payload_bytes;
  uint32_t header_crc;
  std::memcpy(&header_crc, header_bytes + 36, sizeof(header_crc));
  work.placements.push_back({box.id, header.uid, offset, header.payload_bytes, header.flags, header_crc, nullptr});

  size_t iov_begin = work.log_iov.size();
  work.log_iov.push_back({header_bytes, record_header_bytes});
  work.log_iov.push_back({const_cast<char*>(payload.trace.data()), payload.trace.size()});
  if (payload.spooled()) {
    // A spooled body is copied in the kernel and synced in its log (committer.cc), so
    // it is neither in the iovecs nor written to the journal a second time.
    work.spool_copies.push_back({box.log_fd, offset + record_header_bytes + payload.trace.size(),
                                 payload.spool_fd, payload.body_bytes});
    work.log_writes.push_back({box.log_fd, offset, iov_begin, work.log_iov.size() - iov_begin});
    return;
  }
  for (const iovec& block : payload.body_blocks) work.log_iov.push_back(block);
  add_log_write(work, box, offset, iov_begin);
  add_journal_entry(work, box, prefix, iov_begin, record_header_bytes + header.payload_bytes);
}

void store_shard::add_tombstone(batch& work, mailbox& box, const deletion_request& request) {
  char* prefix = work.scratch.data() + work.placements.size() * (journal_prefix_bytes + record_header_bytes);
  char* header_bytes = prefix + journal_prefix_bytes;
  const char* uids = reinterpret_cast<const char*>(request.uids.data());
  size_t uids_bytes = request.uids.size() * sizeof(uint64_t);
  record_header header;
  header.type = record_type::tombstone;
  header.uid = box.next_uid++;
  header.arrival_ms = util::unix_ms();
  header.payload_bytes = uids_bytes;
  header.payload_crc32c = util::crc32c(uids, uids_bytes);
  encode_record_header(header, std::span<char, record_header_bytes>(header_bytes, record_header_bytes));
  uint64_t offset = box.reserved_bytes;
  box.reserved_bytes += record_header_bytes + uids_bytes;
  work.placements.push_back({box.id, header.uid, offset, uids_bytes, 0, 0, &request});
  size_t iov_begin = work.log_iov.size();
  work.log_iov.push_back({header_bytes, record_header_bytes});
  work.log_iov.push_back({const_cast<char*>(uids), uids_bytes});
  add_log_write(work, box, offset, iov_begin);
  add_journal_entry(work, box, prefix, iov_begin, record_header_bytes + uids_bytes);
}

// Records for one mailbox that land back to back share one pwritev.
void store_shard::add_log_write(batch& work, mailbox& box, uint64_t offset, size_t iov_begin) {
  size_t iov_count = work.log_iov.size() - iov_begin;
  if (!work.log_writes.empty()) {
    log_write& last = work.log_writes.back();
    uint64_t last_end = last.offset;
    for (size_t i = 0; i < last.iov_count; ++i) last_end += work.log_iov[last.iov_begin + i].iov_len;
    if (last.fd == box.log_fd && last_end == offset && last.iov_begin + last.iov_count == iov_begin) {
      last.iov_count += iov_count;
      return;
    }
  }
  work.log_writes.push_back({box.log_fd, offset, iov_begin, iov_count});
}

// The journal gets the same record, behind a prefix that names the mailbox.
void store_shard::add_journal_entry(batch& work, mailbox& box, char* prefix, size_t iov_begin,
                                    uint64_t record_bytes) {
  if (!options_.sync) return;
  encode_journal_prefix(box.address, std::span<char, journal_prefix_bytes>(prefix, journal_prefix_bytes));
  work.journal_iov.push_back({prefix, journal_prefix_bytes});
  work.journal_prefixes.push_back(prefix);
  work.journal_iov.push_back({const_cast<char*>(box.address.data()), box.address.size()});
  for (size_t i = iov_begin; i < work.log_iov.size(); ++i) work.journal_iov.push_back(work.log_iov[i]);
  work.journal_bytes += journal_prefix_bytes + box.address.size() + record_bytes;
}

void store_shard::on_batch_done(batch* work) {
  bool ok = work->error == 0;
  if (ok) {
    for (const batch::placed& placed : work->placements) {
      mailbox& box = *mailboxes_[placed.mailbox];
      box.committed_bytes = placed.offset + record_header_bytes + placed.payload_bytes;
      box.index_dirty = true;
      if (placed.deletion == nullptr) {
        box.messages.push_back({placed.uid, placed.offset, placed.payload_bytes, placed.flags, false});
        box.last_message_header_crc = placed.header_crc;
        continue;
      }
      box.dead_bytes += record_header_bytes + placed.payload_bytes;
      for (uint64_t uid : placed.deletion->uids) {
        index_entry* entry = box.find(uid);
        if (entry != nullptr && !entry->deleted) {
          entry->deleted = true;
          box.dead_bytes += record_header_bytes + entry->payload_bytes;
        }
      }
      queue_compaction(box, false);
    }
    failure_logged_ = false;
  } else {
    if (!failure_logged_) {
      MW_LOG_ERROR("commit failed at %s: %s; %zu deliveries refused", work->failed_step,
                   std::strerror(work->error), work->parts.size());
      failure_logged_ = true;
    }
    // Later appends overwrite whatever the failed batch left past the committed end.
    for (const batch::placed& placed : work->placements) {
      mailbox& box = *mailboxes_[placed.mailbox];
      box.reserved_bytes = box.committed_bytes;
    }
  }
  for (delivery_part* part : work->parts) {
    part->ok = ok;
    report(*part);
  }
  for (deletion_request* request : work->deletions) {
    // RFC 1939 §6: the UPDATE state ends by releasing the lock, whatever the outcome.
    unlock_maildrop(request->mailbox);
    request->ok = ok;
    report(*request);
  }
  if (!work->retired_segment.empty()) {
    ++checkpoints_running_;
    std::string segment = work->retired_segment;
    int data_dir_fd = data_dir_fd_;
    reactor::shard* owner = &owner_;
    // Index files for what changed, taken now: everything in them was written before the
    // syncfs below starts, so they describe durable data once it returns.
    auto indexes = std::make_shared<std::vector<std::pair<std::string, index_snapshot>>>(take_dirty_indexes());
    worker_.run(util::make_task([this, owner, segment, data_dir_fd, indexes] {
      // One syncfs makes every log write before it durable, whatever the number of
      // mailboxes; only then may the journal segment that also held them go.
      if (::syncfs(data_dir_fd) != 0) {
        MW_LOG_ERROR("checkpoint: syncfs failed: %s; keeping %s for replay", std::strerror(errno),
                     segment.c_str());
      } else {
        recycle_segment(segment);
        write_indexes(*indexes);
      }
      owner->post(owner->worker_slot(), util::make_task([this] { checkpoint_finished(); }));
    }));
  }
}

void store_shard::report(delivery_part& part) {
  if (part.origin == &owner_) {
    part.parent->part_done(part);
    return;
  }
  delivery_part* done = &part;
  owner_.submit_to(*part.origin, util::make_task([done] { done->parent->part_done(*done); }));
}

void store_shard::report(deletion_request& request) {
  if (request.origin == &owner_) {
    request.listener->on_deletions_done(request.ok);
    return;
  }
  deletion_request* done = &request;
  owner_.submit_to(*request.origin, util::make_task([done] { done->listener->on_deletions_done(done->ok); }));
}

std::vector<std::pair<std::string, index_snapshot>> store_shard::take_dirty_indexes() {
  std::vector<std::pair<std::string, index_snapshot>> indexes;
  for (auto& box : mailboxes_) {
    // A mailbox being compacted gets its index file at the checkpoint after the switch.
    if (!box || !box->index_dirty || compactor_.compacting(*box)) continue;
    box->index_dirty = false;
    indexes.emplace_back(index_path_for(box->log_path), snapshot_index(*box));
  }
  return indexes;
}

// Worker, or the main thread at stop: only copies are touched here.
void store_shard::write_indexes(const std::vector<std::pair<std::string, index_snapshot>>& indexes) {
  for (const auto& [path, index] : indexes) write_index_file(path, index);
}

void store_shard::checkpoint_finished() {
  assert(checkpoints_running_ > 0);
  --checkpoints_running_;
}

}  // namespace mailwing::store
