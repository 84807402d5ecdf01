#include "mailwing/util/block_pool.hh"

#include <cassert>
#include <cstdlib>
#include <new>

namespace mailwing::util {

block_pool::block_pool(size_t block_bytes, size_t blocks_cached_max)
    : block_bytes_(block_bytes), blocks_cached_max_(blocks_cached_max) {
  assert(block_bytes > 0);
  free_.reserve(blocks_cached_max);
}

block_pool::~block_pool() {
  for (char* block : free_) ::operator delete(block, std::align_val_t{64});
}

char* block_pool::acquire() {
  ++blocks_outstanding_;
  if (!free_.empty()) {
    char* block = free_.back();
    free_.pop_back();
    return block;
  }
  return static_cast<char*>(::operator new(block_bytes_, std::align_val_t{64}));
}

void block_pool::release(char* block) {
  assert(block != nullptr);
  assert(blocks_outstanding_ > 0);
  --blocks_outstanding_;
  if (free_.size() < blocks_cached_max_) {
    free_.push_back(block);
  } else {
    ::operator delete(block, std::align_val_t{64});
  }
}

}  // namespace mailwing::util
