#pragma once
// Helpers shared by the store unit tests: temporary directories, hand-built records and
// journal entries (built from the format in record.hh / journal.hh, not from the code
// under test where that matters), and reading files back.

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "mailwing/store/journal.hh"
#include "mailwing/store/log_scan.hh"
#include "mailwing/store/record.hh"
#include "mailwing/util/crc32c.hh"

namespace mailwing::store::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                          "/mailwing-unit-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << pattern << ": " << std::strerror(errno);
    }
    path_ = buffer.data();
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

inline uint32_t crc_of(std::string_view bytes) { return util::crc32c(bytes.data(), bytes.size()); }

template <class T>
void put_le(std::string& out, size_t offset, T value) {
  std::memcpy(out.data() + offset, &value, sizeof(T));
}

template <class T>
T get_le(std::string_view in, size_t offset) {
  T value;
  std::memcpy(&value, in.data() + offset, sizeof(T));
  return value;
}

// The 40 header bytes, built by hand from record.hh's table.
inline std::string raw_header(uint8_t type, uint8_t flags, uint64_t uid, uint64_t arrival_ms,
                              uint64_t payload_bytes, uint32_t payload_crc) {
  std::string bytes(record_header_bytes, '\0');
  std::memcpy(bytes.data(), "MWL1", 4);
  put_le<uint8_t>(bytes, 4, type);
  put_le<uint8_t>(bytes, 5, flags);
  put_le<uint64_t>(bytes, 8, uid);
  put_le<uint64_t>(bytes, 16, arrival_ms);
  put_le<uint64_t>(bytes, 24, payload_bytes);
  put_le<uint32_t>(bytes, 32, payload_crc);
  put_le<uint32_t>(bytes, 36, util::crc32c(bytes.data(), 36));
  return bytes;
}

// A whole record: header and payload.
inline std::string message_record(uint64_t uid, std::string_view payload, uint8_t flags = 0,
                                  uint64_t arrival_ms = 1700000000000ull) {
  return raw_header(1, flags, uid, arrival_ms, payload.size(), crc_of(payload)) +
         std::string(payload);
}

inline std::string tombstone_payload(const std::vector<uint64_t>& uids) {
  std::string payload(uids.size() * 8, '\0');
  for (size_t i = 0; i < uids.size(); ++i) put_le<uint64_t>(payload, i * 8, uids[i]);
  return payload;
}

inline std::string tombstone_record(uint64_t uid, const std::vector<uint64_t>& deleted) {
  std::string payload = tombstone_payload(deleted);
  return raw_header(2, 0, uid, 1700000000000ull, payload.size(), crc_of(payload)) + payload;
}

// A journal entry: the 16-byte prefix (built by hand from journal.hh's table), the
// address, then the record.
inline std::string journal_entry_bytes(std::string_view address, std::string_view record) {
  std::string prefix(journal_prefix_bytes, '\0');
  std::memcpy(prefix.data(), "MWJ1", 4);
  put_le<uint16_t>(prefix, 4, static_cast<uint16_t>(address.size()));
  put_le<uint32_t>(prefix, 8, crc_of(address));
  return prefix + std::string(address) + std::string(record);
}

// A deterministic message payload of `size` bytes that differs per uid.
inline std::string payload_for(uint64_t uid, size_t size) {
  std::string text = "Return-Path: <sender@example.test>\r\nSubject: message " +
                     std::to_string(uid) + "\r\n\r\n";
  std::mt19937_64 random(uid * 7919 + size);
  while (text.size() < size) {
    text.push_back(static_cast<char>('a' + random() % 26));
    if (random() % 60 == 0) text += "\r\n";
  }
  text.resize(size);
  return text;
}

inline void write_file(const std::string& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  while (!bytes.empty()) {
    ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written <= 0) break;
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  ::close(fd);
  ASSERT_TRUE(bytes.empty()) << "writing " << path;
}

inline std::string read_file(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buffer[65536];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got <= 0) break;
    out.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return out;
}

inline bool file_exists(const std::string& path) {
  struct stat info{};
  return ::stat(path.c_str(), &info) == 0;
}

inline uint64_t file_size(const std::string& path) {
  struct stat info{};
  if (::stat(path.c_str(), &info) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(info.st_size);
}

// Names in a directory (no "." / ".."), sorted.
inline std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(path, error)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// What was written into a journal segment: the file without the preallocated zeros
// after the last entry (journal.hh). The entries the tests write never end in a zero.
inline std::string segment_contents(const std::string& path) {
  std::string bytes = read_file(path);
  size_t end = bytes.find_last_not_of('\0');
  bytes.resize(end == std::string::npos ? 0 : end + 1);
  return bytes;
}

// The journal's segments: its directory without the preallocated spare (journal.hh),
// which is not a segment and holds nothing to replay.
inline std::vector<std::string> list_segments(const std::string& journal_path) {
  std::vector<std::string> names = list_dir(journal_path);
  std::erase_if(names, [](const std::string& name) { return name.ends_with("-spare.journal"); });
  return names;
}

struct scanned {
  scan_result result;
  std::vector<scanned_record> records;
  std::vector<std::string> tombstones;  // the payload the visitor saw, per record
};

inline scanned scan_fd(int fd) {
  scanned out;
  out.result = scan_log(fd, [&out](const scanned_record& record, std::string_view tombstone) {
    out.records.push_back(record);
    out.tombstones.emplace_back(tombstone);
  });
  return out;
}

// Scans bytes held in memory (a memfd, so the real file code path runs).
inline scanned scan_bytes_of(std::string_view bytes) {
  int fd = ::memfd_create("scan", MFD_CLOEXEC);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  if (fd < 0) return {};
  EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  scanned out = scan_fd(fd);
  ::close(fd);
  return out;
}

inline scanned scan_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
  if (fd < 0) return {};
  scanned out = scan_fd(fd);
  ::close(fd);
  return out;
}

}  // namespace mailwing::store::testing
