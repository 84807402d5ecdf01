#include "mailwing/store/log_scan.hh"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

#include "mailwing/util/crc32c.hh"

namespace mailwing::store {
namespace {

constexpr size_t read_chunk_bytes = 1 << 20;
// A tombstone lists uids; anything near this size is corruption, not a real tombstone.
constexpr uint64_t tombstone_bytes_max = 64ull << 20;

// Reads exactly `size` bytes at `offset` unless the file ends first; returns bytes read
// or -errno.
ssize_t read_at(int fd, char* out, size_t size, uint64_t offset) {
  size_t done = 0;
  while (done < size) {
    ssize_t got = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return static_cast<ssize_t>(done);
}

const char* describe(header_status status) {
  switch (status) {
    case header_status::ok: return "ok";
    case header_status::bad_magic: return "bad magic";
    case header_status::bad_crc: return "bad header checksum";
    case header_status::bad_type: return "unknown record type";
  }
  return "?";
}

}  // namespace

scan_result scan_log(int fd,
                     const std::function<void(const scanned_record&, std::string_view)>& visit,
                     uint64_t start_offset) {
  scan_result result;
  struct stat info{};
  if (::fstat(fd, &info) != 0) {
    result.error = errno;
    result.problem = std::string("fstat: ") + std::strerror(errno);
    return result;
  }
  result.file_bytes = static_cast<uint64_t>(info.st_size);
  auto buffer = std::make_unique<char[]>(read_chunk_bytes);
  std::string tombstone;
  uint64_t offset = start_offset;
  result.valid_bytes = start_offset;
  while (offset < result.file_bytes) {
    if (result.file_bytes - offset < record_header_bytes) {
      result.problem = "truncated record header";
      break;
    }
    char header_bytes[record_header_bytes];
    ssize_t got = read_at(fd, header_bytes, record_header_bytes, offset);
    if (got < 0) {
      result.error = static_cast<int>(-got);
      result.problem = std::string("read: ") + std::strerror(result.error);
      break;
    }
    decoded_header decoded = decode_record_header(std::span<const char, record_header_bytes>(header_bytes, record_header_bytes));
    if (decoded.status != header_status::ok) {
      result.problem = describe(decoded.status);
      break;
    }
    const record_header& header = decoded.header;
    uint64_t payload_offset = offset + record_header_bytes;
    if (header.payload_bytes > result.file_bytes - payload_offset) {
      result.problem = "record runs past the end of the file";
      break;
    }
    if (header.type == record_type::tombstone &&
        (header.payload_bytes > tombstone_bytes_max || header.payload_bytes % 8 != 0)) {
      result.problem = "malformed tombstone";
      break;
    }
    uint32_t crc = 0;
    uint64_t remaining = header.payload_bytes;
    uint64_t position = payload_offset;
    tombstone.clear();
    bool read_failed = false;
    while (remaining > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, read_chunk_bytes));
      got = read_at(fd, buffer.get(), want, position);
      if (got < 0 || static_cast<size_t>(got) != want) {
        result.error = got < 0 ? static_cast<int>(-got) : 0;
        result.problem = got < 0 ? std::string("read: ") + std::strerror(result.error)
                                 : std::string("file shrank while reading");
        read_failed = true;
        break;
      }
      crc = util::crc32c_extend(crc, buffer.get(), want);
      if (header.type == record_type::tombstone) tombstone.append(buffer.get(), want);
      remaining -= want;
      position += want;
    }
    if (read_failed) break;
    if (crc != header.payload_crc32c) {
      result.problem = "bad payload checksum";
      break;
    }
    visit(scanned_record{offset, header}, tombstone);
    ++result.records;
    offset = payload_offset + header.payload_bytes;
    result.valid_bytes = offset;
  }
  return result;
}

}  // namespace mailwing::store
