#include "mailwing/store/journal.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "mailwing/util/crc32c.hh"

namespace mailwing::store {

void encode_journal_prefix(std::string_view address, std::span<char, journal_prefix_bytes> out) {
  char* bytes = out.data();
  uint32_t magic = journal_magic;
  auto address_bytes = static_cast<uint16_t>(address.size());
  uint16_t zero16 = 0;
  uint32_t crc = util::crc32c(address.data(), address.size());
  uint32_t zero32 = 0;
  std::memcpy(bytes, &magic, 4);
  std::memcpy(bytes + 4, &address_bytes, 2);
  std::memcpy(bytes + 6, &zero16, 2);
  std::memcpy(bytes + 8, &crc, 4);
  std::memcpy(bytes + 12, &zero32, 4);
}

void stamp_segment_tag(char* prefix, uint32_t segment_tag) { std::memcpy(prefix + 12, &segment_tag, 4); }

std::string journal_spare_name(uint32_t shard) { return "shard" + std::to_string(shard) + "-spare.journal"; }

std::string journal_segment_name(uint32_t shard, uint64_t sequence) {
  char name[64];
  std::snprintf(name, sizeof(name), "shard%u-%016" PRIx64 ".journal", shard, sequence);
  return name;
}

// Exactly the names journal_segment_name makes: a stray file that merely looks similar
// must not be replayed and deleted.
bool parse_journal_segment_name(std::string_view name, uint32_t& shard, uint64_t& sequence) {
  constexpr std::string_view prefix = "shard";
  constexpr std::string_view suffix = ".journal";
  if (!name.starts_with(prefix) || !name.ends_with(suffix)) return false;
  name = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  size_t dash = name.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash > 10) return false;
  std::string_view shard_text = name.substr(0, dash);
  std::string_view sequence_text = name.substr(dash + 1);
  if (sequence_text.size() != 16 || (shard_text.size() > 1 && shard_text[0] == '0')) return false;
  uint64_t parsed_shard = 0;
  for (char c : shard_text) {
    if (c < '0' || c > '9') return false;
    parsed_shard = parsed_shard * 10 + static_cast<uint64_t>(c - '0');
  }
  uint64_t parsed_sequence = 0;
  for (char c : sequence_text) {
    uint64_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
    parsed_sequence = parsed_sequence << 4 | digit;
  }
  if (parsed_shard > UINT32_MAX) return false;
  shard = static_cast<uint32_t>(parsed_shard);
  sequence = parsed_sequence;
  return true;
}

journal_read_result read_journal(const std::string& path,
                                 const std::function<void(const journal_entry&)>& visit) {
  journal_read_result result;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    result.problem = std::string("open: ") + std::strerror(errno);
    return result;
  }
  // Segments are bounded (journal_segment_bytes), so reading one whole is simple and fine.
  std::string data;
  struct stat info{};
  if (::fstat(fd, &info) == 0) data.resize(static_cast<size_t>(info.st_size));
  size_t filled = 0;
  while (filled < data.size()) {
    ssize_t got = ::read(fd, data.data() + filled, data.size() - filled);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    filled += static_cast<size_t>(got);
  }
  ::close(fd);
  data.resize(filled);
  result.file_bytes = filled;

  size_t offset = 0;
  uint32_t segment_tag = 0;
  while (offset < data.size()) {
    const char* at = data.data() + offset;
    size_t left = data.size() - offset;
    uint32_t magic = 0;
    std::memcpy(&magic, at, std::min<size_t>(left, 4));
    if (magic == 0) break;  // preallocated space: the entries ended
    if (left < journal_prefix_bytes + record_header_bytes) {
      result.problem = "truncated entry";
      break;
    }
    uint16_t address_bytes;
    uint32_t address_crc;
    uint32_t tag;
    std::memcpy(&address_bytes, at + 4, 2);
    std::memcpy(&address_crc, at + 8, 4);
    std::memcpy(&tag, at + 12, 4);
    if (magic != journal_magic) {
      result.problem = "bad magic";
      break;
    }
    if (result.entries == 0) segment_tag = tag;
    if (tag != segment_tag) break;  // an entry from the file's previous use: the end
    if (left < journal_prefix_bytes + address_bytes + record_header_bytes) {
      result.problem = "truncated entry";
      break;
    }
    std::string_view address(at + journal_prefix_bytes, address_bytes);
    if (util::crc32c(address.data(), address.size()) != address_crc) {
      result.problem = "bad address checksum";
      break;
    }
    const char* header_at = at + journal_prefix_bytes + address_bytes;
    decoded_header decoded =
        decode_record_header(std::span<const char, record_header_bytes>(header_at, record_header_bytes));
    if (decoded.status != header_status::ok) {
      result.problem = "bad record header";
      break;
    }
    size_t entry_head = journal_prefix_bytes + address_bytes + record_header_bytes;
    if (decoded.header.payload_bytes > left - entry_head) {
      result.problem = "truncated payload";
      break;
    }
    std::string_view payload(header_at + record_header_bytes,
                             static_cast<size_t>(decoded.header.payload_bytes));
    if (util::crc32c(payload.data(), payload.size()) != decoded.header.payload_crc32c) {
      result.problem = "bad payload checksum";
      break;
    }
    visit(journal_entry{address, decoded.header, payload});
    ++result.entries;
    offset += entry_head + payload.size();
    result.valid_bytes = offset;
  }
  return result;
}

}  // namespace mailwing::store
