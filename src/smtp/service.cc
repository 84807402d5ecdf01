#include "mailwing/smtp/service.hh"

#include <sys/random.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "mailwing/smtp/session.hh"
#include "mailwing/util/clock.hh"

namespace mailwing::smtp {

service::service(const smtp_shared& shared, reactor::shard& owner)
    : shared_(shared),
      owner_(owner),
      command_timeouts_(shared.cfg->smtp.command_timeout_ms),
      data_timeouts_(shared.cfg->smtp.data_timeout_ms),
      login_waits_(owner),
      carry_pool_(shared.cfg->smtp.line_bytes_max + 1, 64),
      listeners_(owner.io(), *shared.limit, "421 4.7.0 " + shared.cfg->hostname + " Error: too many connections\r\n",
                 "421 4.7.0 " + shared.cfg->hostname + " Error: too many connections from your address\r\n",
                 [this](const net::accepted_socket& socket) {
                   if (draining_) {
                     ::close(socket.fd);
                     socket.limit->release(socket.peer);
                     return;
                   }
                   (new session(*this, socket))->start();
                 }) {
  owner_.add_timer_list(command_timeouts_);
  // A handshake that stalls costs a connection for as long as a stalled command would.
  if (shared.tls != nullptr) listeners_.use_implicit_tls(*shared.tls, shared.cfg->smtp.command_timeout_ms);
  owner_.add_timer_list(data_timeouts_);
  // A random start keeps queue ids unique across restarts within one second.
  if (getrandom(&queue_counter_, sizeof(queue_counter_), 0) != sizeof(queue_counter_)) {
    queue_counter_ = static_cast<uint32_t>(util::monotonic_ms());
  }
}

service::~service() = default;

void service::listen(int listen_fd, bool implicit_tls) { listeners_.listen(listen_fd, implicit_tls); }

void service::drain(bool force) {
  draining_ = true;
  listeners_.close_all();
  for (session* member : sessions_.snapshot()) member->drain(force);
}

std::string service::next_queue_id() {
  char text[32];
  auto seconds = static_cast<uint32_t>(util::unix_ms() / 1000);
  std::snprintf(text, sizeof(text), "%08X%02X%06X", seconds, owner_.id() & 0xFF,
                queue_counter_++ & 0xFFFFFF);
  return text;
}

std::string_view service::date_now() {
  int64_t now = static_cast<int64_t>(util::unix_ms() / 1000);
  if (now != date_second_) {
    date_second_ = now;
    time_t seconds = static_cast<time_t>(now);
    tm utc{};
    gmtime_r(&seconds, &utc);
    std::strftime(date_text_, sizeof(date_text_), "%a, %d %b %Y %H:%M:%S +0000", &utc);
  }
  return date_text_;
}

}  // namespace mailwing::smtp
