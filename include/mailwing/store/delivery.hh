#pragma once
// Delivering one message to its recipients' mailboxes, which may belong to several shards.
//
// The session's shard (the origin) splits the recipients by owning shard and sends each
// owner one delivery_part. Each owner appends the message to its mailboxes in its next
// group commit and sends the part back; when the last part is back the origin's listener
// learns whether every mailbox has the message durably. The message itself is shared,
// read-only, by pointer: no copy of its bytes crosses shards.
//
// A delivery object lives on the origin shard and only that thread touches it, except
// that its parts travel to the owners and back.

#include <cstdint>
#include <span>
#include <vector>

#include "mailwing/reactor/shard.hh"
#include "mailwing/store/directory.hh"
#include "mailwing/store/message.hh"

namespace mailwing::store {

class store_shard;
class delivery;

class delivery_listener {
 public:
  // Origin shard: all parts are back. ok = the message is durable in every mailbox.
  virtual void on_delivery_done(bool ok) = 0;

 protected:
  ~delivery_listener() = default;
};

struct delivery_part {
  delivery* parent = nullptr;
  reactor::shard* origin = nullptr;
  uint32_t owner_shard = 0;
  std::vector<mailbox_id> mailboxes;  // all owned by owner_shard
  bool ok = false;
};

class delivery {
 public:
  // `stores` is indexed by shard id. `mailboxes` must be free of duplicates.
  void start(reactor::shard& origin, std::span<store_shard* const> stores, const message& payload,
             std::span<const mailbox_id> mailboxes, const directory& mailbox_directory,
             delivery_listener& listener);

  const message& payload() const { return *message_; }
  bool in_progress() const { return parts_pending_ > 0; }

  // Owner side done; runs on the origin shard.
  void part_done(delivery_part& part);

 private:
  const message* message_ = nullptr;
  delivery_listener* listener_ = nullptr;
  std::vector<delivery_part> parts_;  // capacity reused across messages
  size_t parts_used_ = 0;
  uint32_t parts_pending_ = 0;
  bool ok_ = true;
};

}  // namespace mailwing::store
