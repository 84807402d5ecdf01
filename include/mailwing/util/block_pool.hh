#pragma once
// A free list of fixed-size memory blocks.
//
// Owned by one shard; only that shard's thread may call it. Blocks are recycled instead
// of returned to the allocator so that steady-state traffic does no malloc per read.

#include <cstddef>
#include <vector>

namespace mailwing::util {

class block_pool {
 public:
  block_pool(size_t block_bytes, size_t blocks_cached_max);
  ~block_pool();
  block_pool(const block_pool&) = delete;
  block_pool& operator=(const block_pool&) = delete;

  // Never fails: allocates when no cached block is left.
  char* acquire();
  void release(char* block);

  size_t block_bytes() const { return block_bytes_; }
  size_t blocks_outstanding() const { return blocks_outstanding_; }

 private:
  size_t block_bytes_;
  size_t blocks_cached_max_;
  size_t blocks_outstanding_ = 0;
  std::vector<char*> free_;
};

}  // namespace mailwing::util
