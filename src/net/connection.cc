#include "mailwing/net/connection.hh"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <algorithm>
#include <cstring>

namespace mailwing::net {

connection::connection(reactor::shard& owner, int fd) : owner_(owner) {
  owner_.io().attach(*this, fd);
  sockaddr_storage peer{};
  socklen_t peer_bytes = sizeof(peer);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_bytes) == 0) {
    if (peer.ss_family == AF_INET) {
      const auto& v4 = reinterpret_cast<const sockaddr_in&>(peer);
      inet_ntop(AF_INET, &v4.sin_addr, peer_address_text_, sizeof(peer_address_text_));
      peer_port_ = ntohs(v4.sin_port);
    } else if (peer.ss_family == AF_INET6) {
      const auto& v6 = reinterpret_cast<const sockaddr_in6&>(peer);
      inet_ntop(AF_INET6, &v6.sin6_addr, peer_address_text_, sizeof(peer_address_text_));
      peer_port_ = ntohs(v6.sin6_port);
    }
  }
  peer_address_ = peer_address_text_;
}

connection::~connection() {
  assert(closed_ && holds_ == 0);
  drop_input();
  release_all_output();
}

void connection::start() {
  on_start();
  flush();
  update_receiving();
}

void connection::write(std::string_view bytes) {
  if (close_requested_ && !io.send_pending && output_queued_bytes_ == 0) return;
  util::block_pool& pool = owner_.output_pool();
  while (!bytes.empty()) {
    if (output_.empty() || output_.back().file_fd >= 0 || output_.back().end == pool.block_bytes()) {
      output_.push_back({pool.acquire(), 0, 0, -1, 0, 0});
    }
    output_segment& tail = output_.back();
    size_t take = std::min(pool.block_bytes() - tail.end, bytes.size());
    std::memcpy(tail.block + tail.end, bytes.data(), take);
    tail.end += static_cast<uint32_t>(take);
    output_queued_bytes_ += take;
    bytes.remove_prefix(take);
  }
}

void connection::write_file(int file_fd, uint64_t offset, uint64_t bytes) {
  if (bytes == 0 || (close_requested_ && !io.send_pending && output_queued_bytes_ == 0)) return;
  output_.push_back({nullptr, 0, 0, file_fd, offset, bytes});
  output_queued_bytes_ += bytes;
}

void connection::flush() {
  if (closed_ || io.closing || io.send_pending) return;
  if (output_queued_bytes_ > 0) send_more();
}

void connection::send_more() {
  assert(!io.send_pending && output_queued_bytes_ > 0);
  if (output_.front().file_fd >= 0 && (input_ended_ || io.peer_write_closed)) {
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

void connection::release_all_output() {
  for (const output_segment& segment : output_) {
    if (segment.file_fd < 0) owner_.output_pool().release(segment.block);
  }
  output_.clear();
  output_queued_bytes_ = 0;
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
  if (output_queued_bytes_ > 0) {
    send_more();
    if (!output_congested()) deliver_input();
    return;
  }
  if (close_requested_) {
    close_when_sent();
    return;
  }
  on_output_drained();
  deliver_input();
}

void connection::close_when_sent() {
  if (input_ended_ || io.closing || closed_) {
    owner_.io().close(*this);
    return;
  }
  ::shutdown(io.fd, SHUT_WR);
  lingering_ = true;
  arm_deadline(owner_.linger_timeouts());
  update_receiving();
}

void connection::on_timer() {
  if (lingering_) {
    owner_.io().close(*this);
    return;
  }
  on_deadline();
}

void connection::on_recv(reactor::recv_buffer buffer) {
  if (close_requested_) {
    owner_.io().release(buffer);
    return;
  }
  input_queue_.push_back({buffer, 0});
  deliver_input();
}

void connection::on_recv_end(int error) {
  (void)error;  // EOF and a reset end the session the same way
  input_ended_ = true;
  receiving_ = false;
  if (lingering_) {
    owner_.io().close(*this);
    return;
  }
  deliver_input();
}

void connection::resume_input() {
  input_paused_ = false;
  deliver_input();
}

void connection::deliver_input() {
  if (delivering_ || closed_) return;
  delivering_ = true;
  while (!input_queue_.empty() && !input_paused_ && !close_requested_ && !output_congested()) {
    queued_buffer& front = input_queue_.front();
    std::string_view view(front.buffer.data + front.offset, front.buffer.size_bytes - front.offset);
    size_t consumed = on_input(view);
    assert(consumed <= view.size());
    front.offset += static_cast<uint32_t>(consumed);
    if (front.offset == front.buffer.size_bytes) {
      owner_.io().release(front.buffer);
      input_queue_.erase(input_queue_.begin());
      continue;
    }
    // Stopped early: the session paused, closed, or saw the output congested.
    assert(input_paused_ || close_requested_ || output_congested());
    break;
  }
  if (close_requested_) drop_input();
  flush();
  if (input_ended_ && input_queue_.empty() && !input_paused_ && !input_end_delivered_ &&
      !close_requested_) {
    input_end_delivered_ = true;
    on_input_end();
  }
  delivering_ = false;
  if (!closed_) update_receiving();
}

void connection::update_receiving() {
  bool want = !input_ended_ && !io.closing &&
              (lingering_ || (!close_requested_ && input_queue_.size() < queued_input_buffers_max));
  if (want == receiving_) return;
  receiving_ = want;
  if (want) {
    owner_.io().recv_start(*this);
  } else if (!io.closing) {
    owner_.io().recv_stop(*this);
  }
}

void connection::drop_input() {
  for (const queued_buffer& queued : input_queue_) owner_.io().release(queued.buffer);
  input_queue_.clear();
}

void connection::close_after_output() {
  if (close_requested_) return;
  close_requested_ = true;
  disarm_timer();
  if (!delivering_) drop_input();
  if (closed_ || io.closing) return;
  if (io.send_pending) return;  // on_send closes once the output is out
  if (output_queued_bytes_ > 0) {
    send_more();
    return;
  }
  close_when_sent();
}

void connection::close_now() {
  close_requested_ = true;
  lingering_ = false;
  disarm_timer();
  if (!delivering_) drop_input();
  if (closed_) return;
  owner_.io().close(*this);
}

void connection::on_closed() {
  closed_ = true;
  disarm_timer();
  drop_input();
  // A send may have been cancelled mid-way; the kernel no longer reads the blocks.
  release_all_output();
  if (!input_end_delivered_) {
    input_end_delivered_ = true;
    on_input_end();
  }
  destroy_if_unused();
}

bool connection::release_hold() {
  assert(holds_ > 0);
  --holds_;
  if (closed_ && holds_ == 0) {
    delete this;
    return true;
  }
  return false;
}

void connection::destroy_if_unused() {
  if (closed_ && holds_ == 0) delete this;
}

}  // namespace mailwing::net
