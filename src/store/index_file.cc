#include "mailwing/store/index_file.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>

#include "mailwing/store/record.hh"
#include "mailwing/util/crc32c.hh"
#include "mailwing/util/log.hh"

namespace mailwing::store {
namespace {

constexpr uint32_t index_magic = 0x3158574D;  // "MWX1"
constexpr uint32_t index_version = 1;
constexpr size_t header_bytes = 56;
constexpr size_t entry_bytes = 32;

template <class T>
void put(char* out, size_t offset, T value) {
  std::memcpy(out + offset, &value, sizeof(T));
}

template <class T>
T get(const char* in, size_t offset) {
  T value;
  std::memcpy(&value, in + offset, sizeof(T));
  return value;
}

// The header CRC of the record at `offset` in the log, if a valid header is there.
std::optional<uint32_t> record_header_crc_at(int log_fd, uint64_t offset, uint64_t uid, uint64_t payload_bytes) {
  char bytes[record_header_bytes];
  if (::pread(log_fd, bytes, sizeof(bytes), static_cast<off_t>(offset)) != static_cast<ssize_t>(sizeof(bytes))) {
    return std::nullopt;
  }
  decoded_header decoded = decode_record_header(std::span<const char, record_header_bytes>(bytes, record_header_bytes));
  if (decoded.status != header_status::ok || decoded.header.uid != uid ||
      decoded.header.payload_bytes != payload_bytes || decoded.header.type != record_type::message) {
    return std::nullopt;
  }
  return get<uint32_t>(bytes, 36);
}

}  // namespace

std::string index_path_for(const std::string& log_path) {
  std::string path = log_path;
  if (path.ends_with(".log")) path.resize(path.size() - 4);
  return path + ".idx";
}

index_snapshot snapshot_index(const mailbox& box) {
  return index_snapshot{box.committed_bytes, box.next_uid, box.dead_bytes, box.last_message_header_crc,
                        box.messages};
}

bool write_index_file(const std::string& path, const index_snapshot& index) {
  std::string data(header_bytes + index.messages.size() * entry_bytes, '\0');
  char* out = data.data();
  for (size_t i = 0; i < index.messages.size(); ++i) {
    const index_entry& entry = index.messages[i];
    char* at = out + header_bytes + i * entry_bytes;
    put<uint64_t>(at, 0, entry.uid);
    put<uint64_t>(at, 8, entry.offset);
    put<uint64_t>(at, 16, entry.payload_bytes);
    put<uint8_t>(at, 24, entry.flags);
    put<uint8_t>(at, 25, entry.deleted ? 1 : 0);
  }
  put<uint32_t>(out, 0, index_magic);
  put<uint32_t>(out, 4, index_version);
  put<uint64_t>(out, 8, index.log_bytes);
  put<uint64_t>(out, 16, index.next_uid);
  put<uint64_t>(out, 24, index.dead_bytes);
  put<uint64_t>(out, 32, index.messages.size());
  put<uint32_t>(out, 40, index.messages.empty() ? 0 : index.last_record_crc);
  put<uint32_t>(out, 44, util::crc32c(out + header_bytes, data.size() - header_bytes));
  put<uint32_t>(out, 48, util::crc32c(out, 48));

  std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    MW_LOG_WARN("cannot write %s: %s", temporary.c_str(), std::strerror(errno));
    return false;
  }
  size_t written = 0;
  while (written < data.size()) {
    ssize_t result = ::write(fd, data.data() + written, data.size() - written);
    if (result < 0 && errno == EINTR) continue;
    if (result <= 0) break;
    written += static_cast<size_t>(result);
  }
  ::close(fd);
  if (written != data.size() || ::rename(temporary.c_str(), path.c_str()) != 0) {
    MW_LOG_WARN("cannot write %s: %s", path.c_str(), std::strerror(errno));
    ::unlink(temporary.c_str());
    return false;
  }
  return true;
}

std::optional<index_snapshot> read_index_file(const std::string& path, int log_fd) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat info{};
  std::string data;
  if (::fstat(fd, &info) == 0 && info.st_size >= static_cast<off_t>(header_bytes)) {
    data.resize(static_cast<size_t>(info.st_size));
    size_t filled = 0;
    while (filled < data.size()) {
      ssize_t got = ::read(fd, data.data() + filled, data.size() - filled);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      filled += static_cast<size_t>(got);
    }
    data.resize(filled);
  }
  ::close(fd);
  if (data.size() < header_bytes) return std::nullopt;
  const char* in = data.data();
  if (get<uint32_t>(in, 0) != index_magic || get<uint32_t>(in, 4) != index_version ||
      get<uint32_t>(in, 48) != util::crc32c(in, 48)) {
    return std::nullopt;
  }
  uint64_t count = get<uint64_t>(in, 32);
  if (count != (data.size() - header_bytes) / entry_bytes || data.size() != header_bytes + count * entry_bytes ||
      get<uint32_t>(in, 44) != util::crc32c(in + header_bytes, data.size() - header_bytes)) {
    return std::nullopt;
  }
  index_snapshot index;
  index.log_bytes = get<uint64_t>(in, 8);
  index.next_uid = get<uint64_t>(in, 16);
  index.dead_bytes = get<uint64_t>(in, 24);
  struct stat log_info{};
  if (::fstat(log_fd, &log_info) != 0 || static_cast<uint64_t>(log_info.st_size) < index.log_bytes) {
    return std::nullopt;
  }
  index.messages.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const char* at = in + header_bytes + i * entry_bytes;
    index.messages[i] = {get<uint64_t>(at, 0), get<uint64_t>(at, 8), get<uint64_t>(at, 16), get<uint8_t>(at, 24),
                         get<uint8_t>(at, 25) != 0};
  }
  index.last_record_crc = get<uint32_t>(in, 40);
  if (count > 0) {
    const index_entry& last = index.messages.back();
    std::optional<uint32_t> crc = record_header_crc_at(log_fd, last.offset, last.uid, last.payload_bytes);
    if (!crc || *crc != index.last_record_crc) return std::nullopt;
  }
  return index;
}

}  // namespace mailwing::store
