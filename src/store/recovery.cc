#include "mailwing/store/recovery.hh"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <unordered_map>

#include "mailwing/store/index_file.hh"
#include "mailwing/store/journal.hh"
#include "mailwing/store/log_scan.hh"
#include "mailwing/store/record.hh"
#include "mailwing/util/log.hh"

namespace mailwing::store {
namespace {

[[noreturn]] void fail(const std::string& what, int error) {
  throw std::runtime_error(what + ": " + std::strerror(error));
}

void make_directory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) fail("cannot create " + path, errno);
}

// mkdir -p for data_dir itself, which may be nested (./var/mailwing).
void make_directories(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    std::string prefix = path.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) fail("cannot create " + prefix, errno);
  }
  make_directory(path);
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open " + path, errno);
  int result = ::fsync(fd);
  int error = errno;
  ::close(fd);
  if (result != 0) fail("fsync " + path, error);
}

void apply_tombstone(mailbox& box, std::string_view payload) {
  for (size_t at = 0; at + 8 <= payload.size(); at += 8) {
    uint64_t uid;
    std::memcpy(&uid, payload.data() + at, 8);
    index_entry* entry = box.find(uid);
    if (entry != nullptr && !entry->deleted) {
      entry->deleted = true;
      box.dead_bytes += record_header_bytes + entry->payload_bytes;
    }
  }
}

void note_record(mailbox& box, const record_header& header, uint64_t offset, std::string_view tombstone) {
  if (header.type == record_type::message) {
    box.messages.push_back({header.uid, offset, header.payload_bytes, header.flags, false});
    box.last_message_header_crc = record_header_crc(header);
  } else {
    apply_tombstone(box, tombstone);
    box.dead_bytes += record_header_bytes + header.payload_bytes;
  }
  box.next_uid = std::max(box.next_uid, header.uid + 1);
  box.committed_bytes = offset + record_header_bytes + header.payload_bytes;
}

std::unique_ptr<mailbox> open_mailbox(const std::string& data_dir, mailbox_id id,
                                      const std::string& address) {
  auto box = std::make_unique<mailbox>();
  box->id = id;
  box->address = address;
  box->log_path = data_dir + "/mailboxes/" + address + ".log";
  box->log_fd = ::open(box->log_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (box->log_fd < 0) fail("cannot open " + box->log_path, errno);
  // With a matching index file only the log after it is read; otherwise all of it.
  uint64_t start = 0;
  if (std::optional<index_snapshot> index = read_index_file(index_path_for(box->log_path), box->log_fd)) {
    box->messages = std::move(index->messages);
    box->next_uid = index->next_uid;
    box->dead_bytes = index->dead_bytes;
    box->last_message_header_crc = index->last_record_crc;
    start = index->log_bytes;
  }
  scan_result scanned = scan_log(
      box->log_fd,
      [&box](const scanned_record& record, std::string_view tombstone) {
        note_record(*box, record.header, record.offset, tombstone);
      },
      start);
  box->index_dirty = start == 0 || scanned.records > 0 || scanned.valid_bytes < scanned.file_bytes;
  if (scanned.error != 0) fail("cannot read " + box->log_path, scanned.error);
  if (scanned.valid_bytes < scanned.file_bytes) {
    MW_LOG_WARN("mailbox %s: torn tail: dropped %" PRIu64 " bytes at offset %" PRIu64
                " (%s); %zu messages kept",
                address.c_str(), scanned.file_bytes - scanned.valid_bytes, scanned.valid_bytes,
                scanned.problem.c_str(), box->messages.size());
    if (::ftruncate(box->log_fd, static_cast<off_t>(scanned.valid_bytes)) != 0) {
      fail("cannot truncate " + box->log_path, errno);
    }
  }
  box->committed_bytes = scanned.valid_bytes;
  box->reserved_bytes = scanned.valid_bytes;
  return box;
}

// A compaction interrupted before its rename leaves <log>.compact; the log itself is
// complete, so the partial copy just goes.
void remove_stray_compactions(const std::string& mailbox_dir) {
  DIR* listing = ::opendir(mailbox_dir.c_str());
  if (listing == nullptr) fail("cannot list " + mailbox_dir, errno);
  while (dirent* entry = ::readdir(listing)) {
    std::string_view name = entry->d_name;
    if (!name.ends_with(".log.compact")) continue;
    std::string path = mailbox_dir + "/" + entry->d_name;
    MW_LOG_WARN("removing %s left by an interrupted compaction", path.c_str());
    if (::unlink(path.c_str()) != 0) fail("cannot delete " + path, errno);
  }
  ::closedir(listing);
}

struct segment {
  uint32_t shard;
  uint64_t sequence;
  std::string path;
};

std::vector<segment> list_segments(const std::string& journal_dir) {
  std::vector<segment> segments;
  DIR* listing = ::opendir(journal_dir.c_str());
  if (listing == nullptr) fail("cannot list " + journal_dir, errno);
  while (dirent* entry = ::readdir(listing)) {
    segment found{};
    if (parse_journal_segment_name(entry->d_name, found.shard, found.sequence)) {
      found.path = journal_dir + "/" + entry->d_name;
      segments.push_back(found);
    }
  }
  ::closedir(listing);
  std::sort(segments.begin(), segments.end(), [](const segment& a, const segment& b) {
    return a.shard != b.shard ? a.shard < b.shard : a.sequence < b.sequence;
  });
  return segments;
}

void append_exactly(int fd, const char* data, size_t size, uint64_t offset, const std::string& path) {
  while (size > 0) {
    ssize_t written = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      fail("cannot write " + path, errno);
    }
    data += written;
    size -= static_cast<size_t>(written);
    offset += static_cast<uint64_t>(written);
  }
}

}  // namespace

recovered_store recover(const std::string& data_dir, const directory& mailboxes) {
  recovered_store result;
  make_directories(data_dir);
  make_directory(data_dir + "/mailboxes");
  make_directory(data_dir + "/journal");
  make_directory(data_dir + "/spool");

  std::string lock_path = data_dir + "/lock";
  result.lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (result.lock_fd < 0) fail("cannot open " + lock_path, errno);
  // If recovery fails, the lock goes with it, so that a retry is not locked out.
  std::unique_ptr<int, void (*)(int*)> lock_guard(&result.lock_fd, [](int* fd) { ::close(*fd); });
  if (::flock(result.lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      throw std::runtime_error("data_dir " + data_dir + " is in use by another mailwing process");
    }
    fail("cannot lock " + lock_path, errno);
  }

  // The pid lets tools (tools/mailwing-compact) signal the running server.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(result.lock_fd, 0) != 0 ||
      ::pwrite(result.lock_fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    fail("cannot write " + lock_path, errno);
  }
  remove_stray_compactions(data_dir + "/mailboxes");

  std::unordered_map<std::string, mailbox*> by_address;
  for (mailbox_id id = 0; id < mailboxes.size(); ++id) {
    result.mailboxes.push_back(open_mailbox(data_dir, id, mailboxes.address(id)));
    by_address[mailboxes.address(id)] = result.mailboxes.back().get();
  }
  // Mailboxes of users no longer configured still get their journaled mail.
  std::vector<std::unique_ptr<mailbox>> orphans;

  std::vector<segment> segments = list_segments(data_dir + "/journal");
  std::vector<mailbox*> changed;
  uint64_t replayed = 0;
  for (const segment& journal : segments) {
    journal_read_result read = read_journal(journal.path, [&](const journal_entry& entry) {
      std::string address(entry.address);
      mailbox* box = nullptr;
      if (auto found = by_address.find(address); found != by_address.end()) {
        box = found->second;
      } else {
        orphans.push_back(open_mailbox(data_dir, UINT32_MAX, address));
        box = orphans.back().get();
        by_address[address] = box;
      }
      if (entry.header.uid < box->next_uid) return;  // the log has it
      char header_bytes[record_header_bytes];
      encode_record_header(entry.header, std::span<char, record_header_bytes>(header_bytes, record_header_bytes));
      uint64_t offset = box->committed_bytes;
      append_exactly(box->log_fd, header_bytes, record_header_bytes, offset, box->log_path);
      append_exactly(box->log_fd, entry.payload.data(), entry.payload.size(),
                     offset + record_header_bytes, box->log_path);
      note_record(*box, entry.header, offset, entry.payload);
      box->reserved_bytes = box->committed_bytes;
      box->index_dirty = true;
      if (std::find(changed.begin(), changed.end(), box) == changed.end()) changed.push_back(box);
      ++replayed;
    });
    if (!read.problem.empty()) {
      MW_LOG_WARN("journal %s: stopped at offset %" PRIu64 " of %" PRIu64 " (%s); %" PRIu64
                  " entries read",
                  journal.path.c_str(), read.valid_bytes, read.file_bytes, read.problem.c_str(),
                  read.entries);
    }
  }
  for (mailbox* box : changed) {
    if (::fsync(box->log_fd) != 0) fail("fsync " + box->log_path, errno);
  }
  if (replayed > 0) {
    MW_LOG_INFO("recovery: replayed %" PRIu64 " journal records into %zu mailboxes", replayed,
                changed.size());
  }
  fsync_path(data_dir + "/mailboxes");
  // Everything is synced now, so the index files may describe all of it.
  for (auto& box : result.mailboxes) {
    if (box->index_dirty && write_index_file(index_path_for(box->log_path), snapshot_index(*box))) {
      box->index_dirty = false;
    }
  }
  for (const segment& journal : segments) {
    if (::unlink(journal.path.c_str()) != 0) fail("cannot delete " + journal.path, errno);
  }
  if (!segments.empty()) fsync_path(data_dir + "/journal");
  lock_guard.release();
  return result;
}

}  // namespace mailwing::store
