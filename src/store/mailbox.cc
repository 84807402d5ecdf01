#include "mailwing/store/mailbox.hh"

#include <algorithm>

namespace mailwing::store {

index_entry* mailbox::find(uint64_t uid) {
  auto found = std::lower_bound(messages.begin(), messages.end(), uid,
                                [](const index_entry& entry, uint64_t value) { return entry.uid < value; });
  return found != messages.end() && found->uid == uid ? &*found : nullptr;
}

}  // namespace mailwing::store
