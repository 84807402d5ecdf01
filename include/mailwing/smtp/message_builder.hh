#pragma once
// Collects one message's body as the dot-unstuffer produces it, and turns it into a
// store::message.
//
// The unstuffer writes straight into the builder's current block (writable/commit), so a
// body byte is copied exactly once on its way from the receive buffer to the disk write.
// The CRC is computed as the bytes arrive, while they are in cache. A body that grows
// past spool_threshold_bytes — or any body while the shard's in-memory bodies exceed
// their budget — moves to an unlinked spool file, block by block, so a 100 MB message
// costs one block of memory. A body past the size limit is not kept at all: the rest is
// written over one scratch block until the data ends, and the session answers 552.
//
// Owned by one SMTP session; runs on that session's shard.

#include <cstdint>
#include <span>
#include <string>

#include "mailwing/store/message.hh"
#include "mailwing/util/block_pool.hh"

namespace mailwing::smtp {

// Shared by the builders of one shard: how many body bytes they hold in memory.
struct body_budget {
  uint64_t in_memory_bytes = 0;
  uint64_t in_memory_bytes_max = 256ull << 20;
};

class message_builder {
 public:
  message_builder(util::block_pool& blocks, body_budget& budget, const std::string& spool_dir,
                  uint64_t spool_threshold_bytes);
  ~message_builder();
  message_builder(const message_builder&) = delete;
  message_builder& operator=(const message_builder&) = delete;

  // Starts a message whose payload begins with `trace`; the body may have up to
  // body_bytes_max bytes.
  void begin(std::string trace, uint64_t body_bytes_max, uint64_t arrival_ms);
  // Room for the next bytes of the body: at least 2 bytes.
  std::span<char> writable();
  // `bytes` bytes were written at writable().data().
  void commit(size_t bytes);

  bool too_big() const { return too_big_; }
  // errno of a failed spool write (the session answers 452), 0 otherwise.
  int spool_error() const { return spool_error_; }

  // The finished message (valid until reset). Requires !too_big() && !spool_error().
  store::message& finish(bool has_dot_line);
  // Frees the blocks and the spool file; ready for begin().
  void reset();

 private:
  void add_block();
  void release_blocks();
  void spill();
  void write_spool(const char* data, size_t size);
  void discard();

  util::block_pool& blocks_;
  body_budget& budget_;
  const std::string& spool_dir_;
  uint64_t spool_threshold_bytes_;
  uint64_t body_bytes_max_ = 0;
  store::message message_;
  uint64_t spool_bytes_ = 0;    // bytes written to the spool file
  uint32_t crc_ = 0;
  bool too_big_ = false;
  int spool_error_ = 0;
  bool active_ = false;
};

}  // namespace mailwing::smtp
