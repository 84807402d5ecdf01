#pragma once
// The live sessions of one protocol on one shard, so a drain at shutdown can reach them.
// O(1) add and remove: each session keeps its position (T::registry_index).
//
// Owned by a service; only its shard's thread uses it.

#include <cassert>
#include <cstddef>
#include <vector>

namespace mailwing::net {

template <class T>
class session_registry {
 public:
  void add(T& member) {
    member.registry_index = members_.size();
    members_.push_back(&member);
  }
  void remove(T& member) {
    size_t index = member.registry_index;
    assert(index < members_.size() && members_[index] == &member);
    members_[index] = members_.back();
    members_[index]->registry_index = index;
    members_.pop_back();
  }
  size_t size() const { return members_.size(); }
  // A copy: visiting may close sessions, which removes them.
  std::vector<T*> snapshot() const { return members_; }

 private:
  std::vector<T*> members_;
};

}  // namespace mailwing::net
