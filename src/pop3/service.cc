#include "mailwing/pop3/service.hh"

#include <unistd.h>

#include <cinttypes>
#include <cstdio>

#include "mailwing/pop3/session.hh"
#include "mailwing/util/clock.hh"

namespace mailwing::pop3 {

service::service(const pop3_shared& shared, reactor::shard& owner)
    : shared_(shared),
      owner_(owner),
      autologout_timeouts_(shared.cfg->pop3.autologout_timeout_ms),
      login_waits_(owner),
      carry_pool_(line_bytes_max + 1, 64),
      read_pool_(64 * 1024, 16),
      listeners_(owner.io(), *shared.limit, "-ERR [SYS/TEMP] too many connections\r\n",
                 "-ERR [SYS/TEMP] too many connections from your address\r\n",
                 [this](const net::accepted_socket& socket) {
                   if (draining_) {
                     ::close(socket.fd);
                     socket.limit->release(socket.peer);
                     return;
                   }
                   (new session(*this, socket))->start();
                 }) {
  owner_.add_timer_list(autologout_timeouts_);
  // A handshake that stalls costs a connection for as long as an idle session would.
  if (shared.tls != nullptr) listeners_.use_implicit_tls(*shared.tls, shared.cfg->pop3.autologout_timeout_ms);
}

service::~service() = default;

void service::listen(int listen_fd, bool implicit_tls) { listeners_.listen(listen_fd, implicit_tls); }

void service::drain(bool force) {
  draining_ = true;
  listeners_.close_all();
  for (session* member : sessions_.snapshot()) member->drain(force);
}

std::string service::next_timestamp() {
  char text[96];
  std::snprintf(text, sizeof(text), "<%d.%u.%" PRIu64 ".%" PRIu64 "@", static_cast<int>(::getpid()),
                owner_.id(), ++timestamp_counter_, util::unix_ms());
  std::string timestamp = text;
  timestamp += cfg().hostname;
  timestamp += '>';
  return timestamp;
}

}  // namespace mailwing::pop3
