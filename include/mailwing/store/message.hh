#pragma once
// A message on its way into mailbox logs: what an SMTP session hands to the store.
//
// Built by the session's shard, then read — never written — by the shards that own the
// recipient mailboxes and by their commit threads, and finally freed by the session's
// shard once every delivery reported back. The payload is `trace` followed by the body;
// the body is either in blocks of the session shard's body pool or, for a large message,
// in an unlinked spool file.

#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mailwing::store {

struct message {
  std::string trace;  // "Return-Path: <...>\r\nReceived: ...\r\n"
  std::vector<iovec> body_blocks;   // pool blocks and the bytes used in each
  uint64_t body_bytes = 0;
  int spool_fd = -1;               // >= 0: the body is in this file at [0, body_bytes)
  uint32_t payload_crc32c = 0;     // of trace + body
  bool has_dot_line = false;
  uint64_t arrival_ms = 0;

  uint64_t payload_bytes() const { return trace.size() + body_bytes; }
  bool spooled() const { return spool_fd >= 0; }
};

}  // namespace mailwing::store
