#include "mailwing/store/delivery.hh"

#include <cassert>

#include "mailwing/store/store_shard.hh"
#include "mailwing/util/task.hh"

namespace mailwing::store {

void delivery::start(reactor::shard& origin, std::span<store_shard* const> stores,
                     const message& payload, std::span<const mailbox_id> mailboxes,
                     const directory& mailbox_directory, delivery_listener& listener) {
  assert(parts_pending_ == 0 && !mailboxes.empty());
  message_ = &payload;
  listener_ = &listener;
  ok_ = true;
  parts_used_ = 0;
  uint32_t shard_count = mailbox_directory.shard_count();
  if (parts_.size() < shard_count) parts_.resize(shard_count);
  for (delivery_part& part : parts_) part.mailboxes.clear();
  for (mailbox_id id : mailboxes) parts_[mailbox_directory.owner_shard(id)].mailboxes.push_back(id);
  for (uint32_t shard = 0; shard < shard_count; ++shard) {
    if (!parts_[shard].mailboxes.empty()) ++parts_pending_;
  }
  // Counted before sending so that a part finishing at once cannot end the delivery early.
  for (uint32_t shard = 0; shard < shard_count; ++shard) {
    delivery_part& part = parts_[shard];
    if (part.mailboxes.empty()) continue;
    part.parent = this;
    part.origin = &origin;
    part.owner_shard = shard;
    part.ok = false;
    store_shard* owner = stores[shard];
    if (shard == origin.id()) {
      owner->deliver(part);
    } else {
      delivery_part* sent = &part;
      origin.submit_to(owner->owner(), util::make_task([owner, sent] { owner->deliver(*sent); }));
    }
  }
}

void delivery::part_done(delivery_part& part) {
  assert(parts_pending_ > 0);
  ok_ = ok_ && part.ok;
  if (--parts_pending_ == 0) listener_->on_delivery_done(ok_);
}

}  // namespace mailwing::store
