#pragma once
// How many protocol errors a session answers before it ends the connection, for SMTP and
// POP3 alike. Like Postfix's smtpd_hard_error_limit (20): a client that keeps sending
// nonsense — another protocol, binary garbage, a user-name enumeration — is cut off
// instead of being answered for ever (5 MB of garbage once got 20,458 POP3 -ERRs). A
// correct client makes an error or two in a session, never twenty.
//
// Owned by one session, on that session's shard.

#include <cstdint>

namespace mailwing::wire {

class error_cap {
 public:
  static constexpr uint32_t errors_max = 20;

  // Counts one error; true when the session must end now.
  bool count() { return ++errors_ >= errors_max; }

 private:
  uint32_t errors_ = 0;
};

}  // namespace mailwing::wire
