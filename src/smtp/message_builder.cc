#include "mailwing/smtp/message_builder.hh"

#include <fcntl.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>

#include "mailwing/util/crc32c.hh"

namespace mailwing::smtp {

// Invariant while a body is spooled: the file holds every body byte except those in the
// single current block.

message_builder::message_builder(util::block_pool& blocks, body_budget& budget,
                                 const std::string& spool_dir, uint64_t spool_threshold_bytes)
    : blocks_(blocks),
      budget_(budget),
      spool_dir_(spool_dir),
      spool_threshold_bytes_(spool_threshold_bytes) {}

message_builder::~message_builder() { reset(); }

void message_builder::begin(std::string trace, uint64_t body_bytes_max, uint64_t arrival_ms) {
  reset();
  active_ = true;
  body_bytes_max_ = body_bytes_max;
  message_.trace = std::move(trace);
  message_.arrival_ms = arrival_ms;
  crc_ = util::crc32c(message_.trace.data(), message_.trace.size());
}

void message_builder::add_block() {
  message_.body_blocks.push_back({blocks_.acquire(), 0});
  budget_.in_memory_bytes += blocks_.block_bytes();
}

std::span<char> message_builder::writable() {
  assert(active_);
  if (message_.body_blocks.empty()) {
    add_block();
  } else if (message_.body_blocks.back().iov_len + 2 > blocks_.block_bytes()) {
    if (too_big_ || spool_error_ != 0) {
      message_.body_blocks.back().iov_len = 0;  // nothing is kept: write over it
    } else if (message_.spooled()) {
      iovec& current = message_.body_blocks.back();
      write_spool(static_cast<const char*>(current.iov_base), current.iov_len);
      current.iov_len = 0;
    } else {
      add_block();
    }
  }
  iovec& current = message_.body_blocks.back();
  return {static_cast<char*>(current.iov_base) + current.iov_len, blocks_.block_bytes() - current.iov_len};
}

void message_builder::commit(size_t bytes) {
  assert(active_);
  iovec& current = message_.body_blocks.back();
  assert(current.iov_len + bytes <= blocks_.block_bytes());
  char* written = static_cast<char*>(current.iov_base) + current.iov_len;
  current.iov_len += bytes;
  if (too_big_ || spool_error_ != 0) return;
  message_.body_bytes += bytes;
  if (message_.body_bytes > body_bytes_max_) {
    discard();
    return;
  }
  crc_ = util::crc32c_extend(crc_, written, bytes);
  if (!message_.spooled() && (message_.body_bytes > spool_threshold_bytes_ ||
                              budget_.in_memory_bytes > budget_.in_memory_bytes_max)) {
    spill();
  }
}

void message_builder::spill() {
  int fd = ::open(spool_dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    spool_error_ = errno;
    return;
  }
  message_.spool_fd = fd;
  // Every block but the current one goes to the file now.
  iovec current = message_.body_blocks.back();
  for (size_t i = 0; i + 1 < message_.body_blocks.size(); ++i) {
    const iovec& block = message_.body_blocks[i];
    write_spool(static_cast<const char*>(block.iov_base), block.iov_len);
    blocks_.release(static_cast<char*>(block.iov_base));
    budget_.in_memory_bytes -= blocks_.block_bytes();
  }
  message_.body_blocks.assign(1, current);
}

void message_builder::write_spool(const char* data, size_t size) {
  while (size > 0 && spool_error_ == 0) {
    ssize_t written = ::pwrite(message_.spool_fd, data, size, static_cast<off_t>(spool_bytes_));
    if (written < 0) {
      if (errno != EINTR) spool_error_ = errno;
      continue;
    }
    data += written;
    size -= static_cast<size_t>(written);
    spool_bytes_ += static_cast<uint64_t>(written);
  }
}

void message_builder::discard() {
  too_big_ = true;
  // Keep a single block to write the rest of the data over; free everything else.
  while (message_.body_blocks.size() > 1) {
    blocks_.release(static_cast<char*>(message_.body_blocks.back().iov_base));
    message_.body_blocks.pop_back();
    budget_.in_memory_bytes -= blocks_.block_bytes();
  }
  message_.body_blocks.back().iov_len = 0;
  if (message_.spool_fd >= 0) {
    ::close(message_.spool_fd);
    message_.spool_fd = -1;
  }
}

store::message& message_builder::finish(bool has_dot_line) {
  assert(active_ && !too_big_);
  if (message_.spooled()) {
    // The current block goes to the file too; the whole body is then there.
    const iovec& current = message_.body_blocks.back();
    write_spool(static_cast<const char*>(current.iov_base), current.iov_len);
    assert(spool_error_ != 0 || spool_bytes_ == message_.body_bytes);
    release_blocks();
  } else if (message_.body_bytes == 0) {
    release_blocks();
  }
  message_.has_dot_line = has_dot_line;
  message_.payload_crc32c = crc_;
  return message_;
}

void message_builder::release_blocks() {
  for (const iovec& block : message_.body_blocks) {
    blocks_.release(static_cast<char*>(block.iov_base));
    budget_.in_memory_bytes -= blocks_.block_bytes();
  }
  message_.body_blocks.clear();
}

void message_builder::reset() {
  release_blocks();
  if (message_.spool_fd >= 0) ::close(message_.spool_fd);
  message_.spool_fd = -1;
  message_.body_bytes = 0;
  message_.trace.clear();
  message_.has_dot_line = false;
  message_.payload_crc32c = 0;
  spool_bytes_ = 0;
  crc_ = 0;
  too_big_ = false;
  spool_error_ = 0;
  active_ = false;
}

}  // namespace mailwing::smtp
