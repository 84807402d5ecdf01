#include "mailwing/store/directory.hh"

#include <cassert>

namespace mailwing::store {

directory::directory(const std::vector<std::string>& addresses, uint32_t shard_count)
    : addresses_(addresses), shard_count_(shard_count) {
  assert(shard_count > 0);
  for (mailbox_id id = 0; id < addresses_.size(); ++id) {
    bool inserted = ids_.emplace(addresses_[id], id).second;
    assert(inserted && "addresses are unique (config validation)");
    (void)inserted;
  }
}

std::optional<mailbox_id> directory::find(std::string_view address) const {
  auto found = ids_.find(address);
  if (found == ids_.end()) return std::nullopt;
  return found->second;
}

}  // namespace mailwing::store
