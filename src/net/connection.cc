#include "mailwing/net/connection.hh"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "mailwing/util/log.hh"

// Where the states change (connection.hh describes them):
//   lifecycle_: close_after_output (open → flushing), close_when_sent (flushing →
//     lingering), start_closing (→ closing), on_closed (→ closed).
//   input_:     on_recv_end and deliver_input (a TLS close_notify) (open →
//     peer_finished), deliver_input and on_closed (→ end_delivered).
//   tls_:       begin_tls creates it; its own phase moves in advance_handshake (the
//     handshake), decrypt_into_stash (close_notify, errors) and close_when_sent (our
//     close_notify).

namespace mailwing::net {

connection::connection(reactor::shard& owner, const accepted_socket& socket, uint64_t send_timeout_ms)
    : owner_(owner), limit_(socket.limit), peer_(socket.peer) {
  owner_.io().attach(*this, socket.fd);
  if (send_timeout_ms > 0) {
    send_timeouts_ = &owner_.timer_list_for(send_timeout_ms);
    // Output the kernel took but the peer never does (its window stays shut, or nothing
    // is acknowledged) is ours to time out too: several megabytes of replies fit in an
    // autotuned socket buffer, and then our own queue looks empty. The kernel aborts such
    // a connection after this long, and the session sees the error as the end of input.
    auto timeout = static_cast<unsigned>(std::min<uint64_t>(send_timeout_ms, UINT32_MAX));
    ::setsockopt(socket.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
  }
  if (socket.tls) {
    start_after_handshake_ = true;
    begin_tls(*socket.tls, true, nullptr, socket.tls_handshake_timeout_ms);
  }
}

connection::connection(reactor::shard& owner, int connected_fd, uint64_t send_timeout_ms) : owner_(owner) {
  owner_.io().attach(*this, connected_fd);
  read_peer_address(connected_fd, peer_);
  if (send_timeout_ms > 0) send_timeouts_ = &owner_.timer_list_for(send_timeout_ms);
}

connection::~connection() {
  assert(lifecycle_ == lifecycle::closed && holds_ == 0);
  assert(!watchdog_.armed() && !armed());
  drop_stash();
  release_all_output();
  if (limit_ != nullptr) limit_->release(peer_);
}

void connection::start() {
  if (!start_after_handshake_) {
    on_start();
    flush();
  }
  update_receiving();
}

// --- output ---------------------------------------------------------------------------

void connection::append_bytes(std::vector<output_segment>& queue, size_t& queued_bytes, std::string_view bytes) {
  util::block_pool& pool = owner_.output_pool();
  while (!bytes.empty()) {
    if (queue.empty() || queue.back().file_fd >= 0 || queue.back().end == pool.block_bytes()) {
      queue.push_back({pool.acquire(), 0, 0, -1, 0, 0});
    }
    output_segment& tail = queue.back();
    size_t take = std::min(pool.block_bytes() - tail.end, bytes.size());
    std::memcpy(tail.block + tail.end, bytes.data(), take);
    tail.end += static_cast<uint32_t>(take);
    queued_bytes += take;
    bytes.remove_prefix(take);
  }
}

void connection::write(std::string_view bytes) {
  // Once the output is finished (lingering) or the socket is going, nothing more is sent.
  if (lifecycle_ != lifecycle::open && lifecycle_ != lifecycle::flushing) return;
  if (tls_ != nullptr) {
    append_bytes(plain_, plain_queued_bytes_, bytes);
  } else {
    append_bytes(output_, output_queued_bytes_, bytes);
  }
}

void connection::write_file(int file_fd, uint64_t offset, uint64_t bytes) {
  if (bytes == 0 || (lifecycle_ != lifecycle::open && lifecycle_ != lifecycle::flushing)) return;
  if (tls_ != nullptr) {
    plain_.push_back({nullptr, 0, 0, file_fd, offset, bytes});
    plain_queued_bytes_ += bytes;
  } else {
    output_.push_back({nullptr, 0, 0, file_fd, offset, bytes});
    output_queued_bytes_ += bytes;
  }
}

void connection::cipher_out(std::string_view bytes) { append_bytes(output_, output_queued_bytes_, bytes); }

void connection::flush() {
  if (lifecycle_ != lifecycle::open && lifecycle_ != lifecycle::flushing) return;
  encrypt_pending();
  if (io.send_pending || output_queued_bytes_ == 0 || lifecycle_ == lifecycle::closing) return;
  send_more();
}

// Plaintext becomes ciphertext as the socket takes it: never more than the high-water
// mark ahead of what was sent, so a large reply costs no more memory under TLS.
void connection::encrypt_pending() {
  if (!tls_writable()) return;
  util::block_pool& pool = owner_.output_pool();
  while (!plain_.empty() && output_queued_bytes_ < output_high_water_bytes) {
    output_segment& front = plain_.front();
    bool ok;
    size_t taken;
    if (front.file_fd >= 0) {
      // User-space TLS cannot sendfile: a piece is read and encrypted.
      char* block = pool.acquire();
      size_t want = static_cast<size_t>(std::min<uint64_t>(front.file_bytes, pool.block_bytes()));
      ssize_t got = ::pread(front.file_fd, block, want, static_cast<off_t>(front.file_offset));
      if (got <= 0) {
        pool.release(block);
        close_now();  // the file lost bytes under us; the response cannot be completed
        return;
      }
      taken = static_cast<size_t>(got);
      ok = tls_->write(std::string_view(block, taken));
      pool.release(block);
      front.file_offset += taken;
      front.file_bytes -= taken;
      if (front.file_bytes == 0) plain_.erase(plain_.begin());
    } else {
      taken = front.end - front.begin;
      ok = tls_->write(std::string_view(front.block + front.begin, taken));
      pool.release(front.block);
      plain_.erase(plain_.begin());
    }
    plain_queued_bytes_ -= taken;
    if (!ok) {
      MW_LOG_DEBUG_LIMITED(1000, "%s: TLS %s", std::string(peer_address()).c_str(), tls_->failure().c_str());
      close_now();
      return;
    }
  }
}

void connection::send_more() {
  assert(!io.send_pending && output_queued_bytes_ > 0);
  if (output_.front().file_fd >= 0 && (input_ != input_phase::open || io.peer_write_closed)) {
    // The peer half-closed: io_uring's poll then reports its FIN as ready at once and
    // forever, so waiting for writability to sendfile would spin. Go through memory:
    // the front of the file range becomes a memory segment of its own.
    output_segment& file = output_.front();
    char* block = owner_.output_pool().acquire();
    size_t want = static_cast<size_t>(std::min<uint64_t>(file.file_bytes, owner_.output_pool().block_bytes()));
    ssize_t got = ::pread(file.file_fd, block, want, static_cast<off_t>(file.file_offset));
    if (got <= 0) {
      owner_.output_pool().release(block);
      close_now();  // the file lost bytes under us; the response cannot be completed
      return;
    }
    output_segment memory{block, 0, static_cast<uint32_t>(got), -1, 0, 0};
    file.file_offset += static_cast<uint64_t>(got);
    file.file_bytes -= static_cast<uint64_t>(got);
    if (file.file_bytes == 0) {
      file = memory;
    } else {
      output_.emplace(output_.begin(), memory);
    }
  }
  // The peer has send_timeout_ms from now to take some of it.
  if (send_timeouts_ != nullptr && !watchdog_.armed()) send_timeouts_->arm(watchdog_, owner_.now_ms());
  const output_segment& front = output_.front();
  if (front.file_fd >= 0) {
    owner_.io().send_file(*this, front.file_fd, front.file_offset, front.file_bytes);
    return;
  }
  int count = 0;
  for (const output_segment& segment : output_) {
    if (segment.file_fd >= 0 || count == static_cast<int>(std::size(send_iov_))) break;
    if (segment.end == segment.begin) continue;
    send_iov_[count].iov_base = segment.block + segment.begin;
    send_iov_[count].iov_len = segment.end - segment.begin;
    ++count;
  }
  assert(count > 0);
  owner_.io().send(*this, send_iov_, count);
}

void connection::release_output(size_t bytes) {
  assert(bytes <= output_queued_bytes_);
  output_queued_bytes_ -= bytes;
  size_t consumed_segments = 0;
  for (output_segment& segment : output_) {
    if (segment.file_fd >= 0) {
      uint64_t take = std::min<uint64_t>(segment.file_bytes, bytes);
      segment.file_offset += take;
      segment.file_bytes -= take;
      bytes -= static_cast<size_t>(take);
      if (segment.file_bytes > 0) break;
    } else {
      size_t take = std::min<size_t>(segment.end - segment.begin, bytes);
      segment.begin += static_cast<uint32_t>(take);
      bytes -= take;
      if (segment.begin < segment.end) break;
      owner_.output_pool().release(segment.block);
    }
    ++consumed_segments;
    if (bytes == 0) break;
  }
  output_.erase(output_.begin(), output_.begin() + static_cast<ptrdiff_t>(consumed_segments));
}

void connection::release_queue(std::vector<output_segment>& queue, size_t& queued_bytes) {
  for (const output_segment& segment : queue) {
    if (segment.file_fd < 0) owner_.output_pool().release(segment.block);
  }
  queue.clear();
  queued_bytes = 0;
}

void connection::release_all_output() {
  release_queue(output_, output_queued_bytes_);
  release_queue(plain_, plain_queued_bytes_);
}

void connection::on_send(int result) {
  if (result == -EAGAIN) {
    send_more();  // a sendfile given back because the peer half-closed (backend.hh)
    return;
  }
  if (result < 0) {
    // The peer is gone; nothing more can be said to it.
    close_now();
    return;
  }
  release_output(static_cast<size_t>(result));
  watch_send_progress(result > 0);
  encrypt_pending();
  if (lifecycle_ == lifecycle::closing) return;
  if (output_queued_bytes_ > 0) {
    send_more();
    if (!output_congested()) deliver_input();
    return;
  }
  if (lifecycle_ == lifecycle::flushing) {
    close_when_sent();
    return;
  }
  on_output_drained();
  deliver_input();
}

// The send timeout counts from the last time the peer took something.
void connection::watch_send_progress(bool progressed) {
  if (send_timeouts_ == nullptr) return;
  if (output_queued_bytes_ == 0) {
    watchdog_.disarm_timer();
  } else if (progressed) {
    send_timeouts_->arm(watchdog_, owner_.now_ms());
  }
}

void connection::on_send_timeout() {
  MW_LOG_DEBUG_LIMITED(1000, "%s: the peer took none of %zu queued bytes for %llu ms: closing",
                       std::string(peer_address()).c_str(), output_queued_bytes(),
                       static_cast<unsigned long long>(send_timeouts_->duration_ms()));
  close_now();
}

// --- TLS ------------------------------------------------------------------------------

void connection::start_tls(const tls_context& context, uint64_t handshake_timeout_ms) {
  assert(tls_ == nullptr && lifecycle_ == lifecycle::open);
  // Whatever came after the command in plain text is the peer's (or an attacker's) and
  // is never executed: offer() takes the rest of the current input, the stash goes.
  discard_input_ = true;
  drop_stash();
  begin_tls(context, true, nullptr, handshake_timeout_ms);
}

void connection::start_tls_client(const tls_context& context, SSL_SESSION* resume, uint64_t handshake_timeout_ms) {
  assert(tls_ == nullptr && lifecycle_ == lifecycle::open);
  drop_stash();
  begin_tls(context, false, resume, handshake_timeout_ms);
  advance_handshake();  // the client speaks first
}

void connection::begin_tls(const tls_context& context, bool server, SSL_SESSION* resume,
                           uint64_t handshake_timeout_ms) {
  // Output written before this point (the "go ahead" reply) stays plain text in output_;
  // from now on the session's writes wait in plain_ to be encrypted.
  tls_channel::cipher_sink& sink = *this;
  tls_ = std::make_unique<tls_channel>(context.native(), server, sink, resume);
  if (handshake_timeout_ms > 0) owner_.timer_list_for(handshake_timeout_ms).arm(*this, owner_.now_ms());
}

void connection::advance_handshake() {
  tls_channel::phase now = tls_->handshake();
  flush();  // the handshake's own messages
  if (now == tls_channel::phase::failed) {
    MW_LOG_DEBUG_LIMITED(1000, "%s: TLS handshake failed: %s", std::string(peer_address()).c_str(),
                         tls_->failure().c_str());
    close_now();
    return;
  }
  if (now != tls_channel::phase::established) return;
  disarm_timer();  // the handshake deadline; the session arms its own
  if (start_after_handshake_) {
    start_after_handshake_ = false;
    on_start();
  } else {
    on_tls_established();
  }
  flush();
}

// Decrypts what is there into the (empty) stash. False when nothing came out.
bool connection::decrypt_into_stash() {
  assert(input_stashed_bytes() == 0);
  util::block_pool& pool = owner_.stash_pool();
  if (stash_ == nullptr) {
    stash_ = pool.acquire();
    stash_capacity_ = static_cast<uint32_t>(pool.block_bytes());
  }
  stash_begin_ = 0;
  stash_end_ = static_cast<uint32_t>(tls_->read(stash_, stash_capacity_));
  flush();  // a read can answer the peer (a key update, a ticket)
  if (stash_end_ > 0) return true;
  drop_stash();
  return false;
}

// --- input ----------------------------------------------------------------------------

void connection::on_recv(reactor::recv_buffer buffer) {
  std::string_view fresh(buffer.data, buffer.size_bytes);
  if (lifecycle_ == lifecycle::open && tls_ != nullptr) {
    if (input_waiting_bytes() + fresh.size() > input_stash_max_bytes) {
      MW_LOG_DEBUG_LIMITED(1000, "%s: %zu bytes of input beyond what its session took: closing",
                           std::string(peer_address()).c_str(), input_waiting_bytes() + fresh.size());
      owner_.io().release(buffer);
      close_now();
      return;
    }
    tls_->cipher_in(fresh);
    owner_.io().release(buffer);
    if (tls_->state() == tls_channel::phase::handshaking) advance_handshake();
    deliver_input();
    return;
  }
  if (lifecycle_ == lifecycle::open) {
    if (input_stashed_bytes() == 0 && taking_input() && !delivering_) {
      // The common case: the session takes the bytes straight from the pooled buffer.
      delivering_ = true;
      fresh.remove_prefix(offer(fresh));
      delivering_ = false;
    }
    if (!fresh.empty() && lifecycle_ == lifecycle::open) stash(fresh);
  }
  // Flushing or lingering: the peer's input is ignored (connection.hh).
  owner_.io().release(buffer);
  deliver_input();
}

void connection::on_recv_end(int error) {
  (void)error;  // EOF and a reset end the session the same way
  if (input_ == input_phase::open) input_ = input_phase::peer_finished;
  receiving_ = false;
  if (lifecycle_ == lifecycle::lingering) {
    start_closing();
    return;
  }
  deliver_input();
}

void connection::resume_input() {
  input_paused_ = false;
  deliver_input();
}

size_t connection::offer(std::string_view input) {
  size_t consumed = on_input(input);
  assert(consumed <= input.size());
  if (discard_input_) {
    // start_tls: nothing after the command is executed.
    discard_input_ = false;
    return input.size();
  }
  // A session stops early only to wait, to close, or because its output is congested.
  assert(consumed == input.size() || !taking_input());
  return consumed;
}

void connection::deliver_input() {
  if (delivering_ || lifecycle_ == lifecycle::closing || lifecycle_ == lifecycle::closed) return;
  delivering_ = true;
  while (taking_input()) {
    if (input_stashed_bytes() > 0) {
      stash_begin_ += static_cast<uint32_t>(offer(std::string_view(stash_ + stash_begin_, input_stashed_bytes())));
      continue;
    }
    if (tls_active() && decrypt_into_stash()) continue;
    break;
  }
  if (input_stashed_bytes() == 0 || lifecycle_ != lifecycle::open) drop_stash();
  if (tls_ != nullptr && lifecycle_ == lifecycle::open) {
    if (tls_->state() == tls_channel::phase::failed) {
      MW_LOG_DEBUG_LIMITED(1000, "%s: TLS %s", std::string(peer_address()).c_str(), tls_->failure().c_str());
      delivering_ = false;
      close_now();
      return;
    }
    // The peer's close_notify ends its input like a FIN.
    if (tls_->state() == tls_channel::phase::finished && input_ == input_phase::open) {
      input_ = input_phase::peer_finished;
    }
  }
  flush();
  if (input_ == input_phase::peer_finished && input_waiting_bytes() == 0 && !input_paused_ &&
      lifecycle_ == lifecycle::open) {
    input_ = input_phase::end_delivered;
    on_input_end();
  }
  delivering_ = false;
  update_receiving();
}

void connection::stash(std::string_view bytes) {
  if (input_stashed_bytes() + bytes.size() > input_stash_max_bytes) {
    MW_LOG_DEBUG_LIMITED(1000, "%s: %zu bytes of input beyond what its session took: closing",
                         std::string(peer_address()).c_str(), input_stashed_bytes() + bytes.size());
    close_now();
    return;
  }
  util::block_pool& pool = owner_.stash_pool();
  if (stash_ == nullptr) {
    stash_ = pool.acquire();
    stash_capacity_ = static_cast<uint32_t>(pool.block_bytes());
    stash_begin_ = stash_end_ = 0;
  }
  size_t live = input_stashed_bytes();
  if (stash_capacity_ - stash_end_ < bytes.size()) {
    if (stash_capacity_ - live >= bytes.size()) {
      std::memmove(stash_, stash_ + stash_begin_, live);
    } else {
      // Receives already under way when the connection stopped receiving (connection.hh).
      size_t capacity = live + bytes.size();
      char* bigger = static_cast<char*>(::operator new(capacity));
      std::memcpy(bigger, stash_ + stash_begin_, live);
      drop_stash();
      stash_ = bigger;
      stash_capacity_ = static_cast<uint32_t>(capacity);
    }
    stash_begin_ = 0;
    stash_end_ = static_cast<uint32_t>(live);
  }
  std::memcpy(stash_ + stash_end_, bytes.data(), bytes.size());
  stash_end_ += static_cast<uint32_t>(bytes.size());
}

void connection::drop_stash() {
  if (stash_ == nullptr) return;
  util::block_pool& pool = owner_.stash_pool();
  if (stash_capacity_ == pool.block_bytes()) {
    pool.release(stash_);
  } else {
    ::operator delete(stash_);
  }
  stash_ = nullptr;
  stash_begin_ = stash_end_ = stash_capacity_ = 0;
}

void connection::update_receiving() {
  bool want = input_ == input_phase::open && !io.closing &&
              (lifecycle_ == lifecycle::lingering ||
               (lifecycle_ == lifecycle::open &&
                (taking_input() || input_waiting_bytes() < input_stash_low_water_bytes)));
  if (want == receiving_) return;
  receiving_ = want;
  if (want) {
    owner_.io().recv_start(*this);
  } else if (!io.closing) {
    owner_.io().recv_stop(*this);
  }
}

// --- closing --------------------------------------------------------------------------

void connection::close_after_output() {
  if (lifecycle_ != lifecycle::open) return;
  lifecycle_ = lifecycle::flushing;
  disarm_timer();
  if (!delivering_) {
    drop_stash();
    update_receiving();
  }
  if (tls_ != nullptr && !tls_writable()) {
    // A handshake that never finished: what the session wrote cannot be encrypted.
    release_queue(plain_, plain_queued_bytes_);
  }
  encrypt_pending();
  if (lifecycle_ == lifecycle::closing) return;
  if (io.send_pending) return;  // on_send goes on once the output is out
  if (output_queued_bytes_ > 0) {
    send_more();
    return;
  }
  close_when_sent();
}

void connection::close_when_sent() {
  assert(lifecycle_ == lifecycle::flushing && output_queued_bytes_ == 0);
  if (plain_queued_bytes_ > 0 && tls_writable()) {
    // encrypt_pending left some for lack of room; the socket took it all: go on.
    encrypt_pending();
    if (output_queued_bytes_ > 0 && lifecycle_ == lifecycle::flushing) send_more();
    return;
  }
  release_queue(plain_, plain_queued_bytes_);  // no channel to send it through
  if (tls_writable() && tls_->shut_down()) {
    // close_notify goes after everything else; on_send brings us back here.
    if (output_queued_bytes_ > 0) {
      send_more();
      return;
    }
  }
  if (input_ != input_phase::open || io.closing) {
    start_closing();  // the peer already finished: nothing to linger for
    return;
  }
  ::shutdown(io.fd, SHUT_WR);
  lifecycle_ = lifecycle::lingering;
  drop_stash();
  arm_deadline(owner_.linger_timeouts());
  update_receiving();
}

void connection::close_now() {
  if (lifecycle_ == lifecycle::closing || lifecycle_ == lifecycle::closed) return;
  start_closing();
}

void connection::start_closing() {
  lifecycle_ = lifecycle::closing;
  disarm_timer();
  watchdog_.disarm_timer();
  if (!delivering_) drop_stash();
  receiving_ = false;
  owner_.io().close(*this);
}

void connection::on_timer() {
  if (lifecycle_ == lifecycle::lingering) {
    start_closing();
    return;
  }
  if (tls_ != nullptr && tls_->state() == tls_channel::phase::handshaking) {
    MW_LOG_DEBUG_LIMITED(1000, "%s: TLS handshake timed out", std::string(peer_address()).c_str());
    close_now();
    return;
  }
  on_deadline();
}

void connection::on_closed() {
  lifecycle_ = lifecycle::closed;
  disarm_timer();
  watchdog_.disarm_timer();
  drop_stash();
  // A send may have been cancelled mid-way; the kernel no longer reads the blocks.
  release_all_output();
  if (input_ != input_phase::end_delivered) {
    input_ = input_phase::end_delivered;
    on_input_end();
  }
  if (holds_ == 0) delete this;
}

bool connection::release_hold() {
  assert(holds_ > 0);
  --holds_;
  if (lifecycle_ == lifecycle::closed && holds_ == 0) {
    delete this;
    return true;
  }
  return false;
}

}  // namespace mailwing::net
