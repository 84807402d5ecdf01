#include "loadgen/body_pool.hh"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "loadgen/body_hash.hh"

namespace mailwing::loadgen {
namespace {

// Printable ASCII without space, so no line has trailing white space a server might
// strip. 64 characters: one 6-bit slice of a random word each.
constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static_assert(sizeof(alphabet) == 65);

constexpr uint64_t line_content_max = 76;

void fill_random(rng& random, char* out, size_t count) {
  while (count > 0) {
    uint64_t bits = random.next();
    for (int i = 0; i < 10 && count > 0; ++i, --count) {
      *out++ = alphabet[bits & 63];
      bits >>= 6;
    }
  }
}

void write_all_at(int fd, std::string_view bytes, uint64_t offset) {
  while (!bytes.empty()) {
    ssize_t written = ::pwrite(fd, bytes.data(), bytes.size(), off_t(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::system_category(), "writing a body to its memfd");
    }
    bytes.remove_prefix(size_t(written));
    offset += uint64_t(written);
  }
}

}  // namespace

void generate_body_lines(rng& random, uint64_t size_bytes,
                         const std::function<void(std::string_view line)>& line) {
  if (size_bytes == 1) size_bytes = 2;
  char buffer[line_content_max + 4];
  uint64_t remaining = size_bytes;
  while (remaining > 0) {
    // Content length: random, but what is left afterwards must be 0 or a whole line
    // (at least its CRLF).
    uint64_t content = random.below(line_content_max + 1);
    if (remaining - 2 <= line_content_max) {
      content = remaining - 2;  // the last line takes the rest
    } else if (remaining - 2 - content < 2) {
      content = remaining - 4;  // leave room for one more (empty) line
    }
    fill_random(random, buffer, content);
    // About one line in 24 starts with a dot; a few of those are a lone ".".
    if (content > 0 && random.below(24) == 0) buffer[0] = '.';
    if (content == 1 && random.below(2) == 0) buffer[0] = '.';
    buffer[content] = '\r';
    buffer[content + 1] = '\n';
    line(std::string_view(buffer, content + 2));
    remaining -= content + 2;
  }
}

std::string dot_stuff(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() + raw.size() / 32 + 1);
  bool line_start = true;
  for (char c : raw) {
    if (line_start && c == '.') out += '.';
    out += c;
    line_start = c == '\n';
  }
  return out;
}

std::unique_ptr<body_pool> body_pool::generate(const size_dist& sizes, size_t count, uint64_t seed,
                                               uint64_t memory_bytes_max) {
  auto pool = std::make_unique<body_pool>();
  rng random(seed);
  uint64_t used_bytes = 0;
  count = std::max<size_t>(count, 1);
  for (size_t i = 0; i < count; ++i) {
    uint64_t size = sizes.draw(random);
    if (size == 1) size = 2;
    // Both forms are kept: about twice the size.
    if (i > 0 && used_bytes + 2 * size > memory_bytes_max) break;
    used_bytes += 2 * size;
    body& item = pool->bodies_.emplace_back();
    item.size_bytes = size;
    sha256 hash;
    if (size <= in_memory_bytes_max) {
      item.raw.reserve(size);
      generate_body_lines(random, size, [&](std::string_view line) { item.raw += line; });
      hash.update(item.raw);
      item.stuffed = dot_stuff(item.raw);
      item.stuffed_bytes = item.stuffed.size();
    } else {
      item.fd = memfd_create("mailwing-blaster-body", MFD_CLOEXEC);
      if (item.fd < 0) throw std::system_error(errno, std::system_category(), "memfd_create");
      std::string raw_chunk, stuffed_chunk;
      uint64_t raw_offset = 0, stuffed_written = 0;
      // The stuffed form goes after the raw one, whose size is known up front.
      auto flush = [&](bool final) {
        if (raw_chunk.size() >= (1u << 20) || (final && !raw_chunk.empty())) {
          hash.update(raw_chunk);
          write_all_at(item.fd, raw_chunk, raw_offset);
          raw_offset += raw_chunk.size();
          raw_chunk.clear();
        }
        if (stuffed_chunk.size() >= (1u << 20) || (final && !stuffed_chunk.empty())) {
          write_all_at(item.fd, stuffed_chunk, size + stuffed_written);
          stuffed_written += stuffed_chunk.size();
          stuffed_chunk.clear();
        }
      };
      generate_body_lines(random, size, [&](std::string_view line) {
        raw_chunk += line;
        if (line[0] == '.') stuffed_chunk += '.';
        stuffed_chunk += line;
        flush(false);
      });
      flush(true);
      item.stuffed_bytes = stuffed_written;
    }
    sha256::digest digest = hash.finish();
    item.hash_hex = hex(digest.data(), digest.size());
  }
  return pool;
}

body_pool::~body_pool() {
  for (const body& item : bodies_) {
    if (item.fd >= 0) ::close(item.fd);
  }
}

}  // namespace mailwing::loadgen
