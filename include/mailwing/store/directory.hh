#pragma once
// The mailboxes this server has, and which shard owns each one.
//
// Built once from the configuration before the shards start, then read-only and shared
// by every shard (no locking needed). Mailbox i belongs to shard i % shard_count: only
// that shard appends to it, reads its index and locks it for POP3.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mailwing::store {

using mailbox_id = uint32_t;

class directory {
 public:
  directory(const std::vector<std::string>& addresses, uint32_t shard_count);

  // `address` must already be lower-cased "local@domain".
  std::optional<mailbox_id> find(std::string_view address) const;
  const std::string& address(mailbox_id id) const { return addresses_[id]; }
  uint32_t owner_shard(mailbox_id id) const { return id % shard_count_; }
  size_t size() const { return addresses_.size(); }
  uint32_t shard_count() const { return shard_count_; }

 private:
  struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  std::vector<std::string> addresses_;
  std::unordered_map<std::string, mailbox_id, string_hash, std::equal_to<>> ids_;
  uint32_t shard_count_;
};

}  // namespace mailwing::store
