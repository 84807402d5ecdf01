#include "mailwing/auth/login_guard.hh"

#include <cassert>
#include <utility>

#include "mailwing/util/ascii.hh"
#include "mailwing/util/log.hh"

namespace mailwing::auth {
namespace {

// Addresses are at most a few hundred bytes; a longer "login" is noise.
constexpr size_t login_logged_bytes_max = 256;

}  // namespace

wait_timers::wait_timers(reactor::shard& owner) {
  for (size_t i = 0; i < list_count; ++i) {
    lists_.push_back(std::make_unique<reactor::timer_list>(shortest_ms << (2 * i)));
    owner.add_timer_list(*lists_.back());
  }
}

void wait_timers::arm(reactor::timer_entry& entry, uint64_t now_ms, uint64_t wait_ms) {
  size_t index = 0;
  while (index + 1 < lists_.size() && lists_[index + 1]->duration_ms() <= wait_ms) ++index;
  lists_[index]->arm(entry, now_ms);
}

login_guard::login_guard(authenticator& auth, wait_timers& timers, reactor::shard& owner,
                         const char* protocol)
    : auth_(auth), timers_(timers), owner_(owner), protocol_(protocol) {}

login_guard::~login_guard() {
  // The session is held while a check runs, so it cannot go away with one in flight.
  assert(state_ != state::running);
  disarm_timer();
}

void login_guard::check(const net::peer_address& peer, credentials offered, callback done) {
  assert(state_ == state::idle);
  client_ = failure_table::client{peer.key};
  login_ = offered.login;
  peer_address_ = peer.text();
  pending_ = auth_.prepare(std::move(offered));
  done_ = std::move(done);
  state_ = state::waiting;
  try_start();
}

void login_guard::try_start() {
  uint64_t now_ms = owner_.now_ms();
  // This session's own spacing: the address's usually implies it, but an address the
  // table had to forget (a flood of distinct addresses) still pays it.
  uint64_t session_allowed_ms = last_end_ms_ + failure_table::delay_ms(failures_);
  if (failures_ > 0 && now_ms < session_allowed_ms) {
    timers_.arm(*this, now_ms, session_allowed_ms - now_ms);
    return;
  }
  failure_table::admission admitted = auth_.failures().try_start(client_, now_ms);
  if (!admitted.admitted) {
    timers_.arm(*this, now_ms, admitted.retry_at_ms - now_ms);
    return;
  }
  state_ = state::running;
  bool queued = auth_.pool().submit(owner_, std::move(pending_.verify), [this](bool ok) { finished(ok); });
  if (!queued) {
    // Nothing was checked, so nothing is counted; the answer comes after the shortest
    // wait rather than inside check(), so that sessions see one way of being answered.
    auth_.failures().finish(client_, now_ms, false);
    state_ = state::refusing;
    timers_.arm(*this, now_ms, 0);
  }
}

void login_guard::on_timer() {
  if (state_ == state::refusing) {
    answer(login_outcome::unavailable);
    return;
  }
  assert(state_ == state::waiting);
  try_start();
}

void login_guard::finished(bool ok) {
  assert(state_ == state::running);
  uint64_t now_ms = owner_.now_ms();
  auth_.failures().finish(client_, now_ms, !ok);
  last_end_ms_ = now_ms;
  if (!ok) {
    ++failures_;
    // Limited: a guesser (many of them, from many addresses) must not be able to flood
    // the log; one line a second, with the count of those left out, still shows an attack.
    // The login is the client's text: made printable and short, it cannot forge log lines.
    MW_LOG_INFO_LIMITED(1000, "%s login failed for \"%s\" from %.*s", protocol_,
                        util::printable_ascii(login_, login_logged_bytes_max).c_str(),
                        static_cast<int>(peer_address_.size()), peer_address_.data());
  }
  answer(ok ? login_outcome::accepted : login_outcome::rejected);
}

void login_guard::cancel() {
  if (state_ != state::waiting && state_ != state::refusing) return;
  disarm_timer();
  answer(login_outcome::cancelled);
}

void login_guard::answer(login_outcome outcome) {
  login_result result{outcome, std::nullopt};
  if (outcome == login_outcome::accepted) result.mailbox = pending_.mailbox;
  state_ = state::idle;
  pending_ = {};
  login_.clear();
  callback done = std::move(done_);
  done_ = nullptr;
  done(result);  // may destroy the session, and this with it
}

}  // namespace mailwing::auth
