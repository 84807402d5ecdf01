#include "mailwing/store/mailbox.hh"

#include <unistd.h>

#include <algorithm>

namespace mailwing::store {

mailbox::~mailbox() {
  if (log_fd >= 0) ::close(log_fd);
}

index_entry* mailbox::find(uint64_t uid) {
  auto found = std::lower_bound(messages.begin(), messages.end(), uid,
                                [](const index_entry& entry, uint64_t value) { return entry.uid < value; });
  return found != messages.end() && found->uid == uid ? &*found : nullptr;
}

}  // namespace mailwing::store
