#include "mailwing/pop3/service.hh"

#include <unistd.h>

#include <cinttypes>
#include <cstdio>


#include "mailwing/pop3/session.hh"
#include "mailwing/util/clock.hh"

namespace mailwing::pop3 {

service::service(const pop3_shared& shared, reactor::shard& owner, reactor::worker& worker)
    : shared_(shared),
      owner_(owner),
      worker_(worker),
      autologout_timeouts_(shared.cfg->pop3.autologout_timeout_ms),
      failure_delays_(failure_delay_ms),
      carry_pool_(line_bytes_max + 1, 64),
      read_pool_(64 * 1024, 16),
      acceptor_(*shared.limit, "-ERR [SYS/TEMP] too many connections\r\n",
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
  owner_.add_timer_list(failure_delays_);
}

service::~service() {
  for (int fd : listen_fds_) ::close(fd);
}

void service::listen(int listen_fd) {
  listen_fds_.push_back(listen_fd);
  owner_.io().add_listener(listen_fd, acceptor_);
}

void service::drain(bool force) {
  draining_ = true;
  for (int fd : listen_fds_) {
    owner_.io().remove_listener(fd);
    ::close(fd);
  }
  listen_fds_.clear();
  for (session* member : sessions_.snapshot()) member->drain(force);
}

uint32_t service::note_failed_login(std::string_view peer_address) {
  uint64_t now = owner_.now_ms();
  // Bounded: past this many addresses, forget the ones that went quiet.
  if (failures_by_address_.size() >= 10000) {
    std::erase_if(failures_by_address_, [now](const auto& item) {
      return now - item.second.last_ms > failure_memory_ms;
    });
  }
  failures& entry = failures_by_address_[std::string(peer_address)];
  if (now - entry.last_ms > failure_memory_ms) entry.count = 0;
  entry.last_ms = now;
  return ++entry.count;
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
