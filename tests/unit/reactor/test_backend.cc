// reactor/backend.hh conformance: the same cases on the io_uring and the epoll backend,
// driven directly (no shard): the test thread owns the backend and calls run_once, the
// clients are plain sockets in the same thread.

#include "mailwing/reactor/backend.hh"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mailwing/net/acceptor.hh"
#include "mailwing/reactor/shard.hh"
#include "reactor_test_util.hh"

namespace mailwing::reactor {
namespace {

using namespace testing;  // reactor test helpers

// Records every callback; complains about callbacks from inside a backend call.
class recording_target final : public io_target {
 public:
  explicit recording_target(backend& owner) : io_(owner) {}

  void on_recv(recv_buffer buffer) override {
    EXPECT_FALSE(inside_call) << "on_recv from inside a backend call";
    EXPECT_FALSE(closed) << "on_recv after on_closed";
    EXPECT_EQ(recv_ends, 0) << "on_recv after on_recv_end";
    EXPECT_GT(buffer.size_bytes, 0u);
    received.append(buffer.data, buffer.size_bytes);
    ++recv_calls;
    if (hold_buffers) {
      held.push_back(buffer);
    } else {
      io_.release(buffer);
    }
  }
  void on_recv_end(int error) override {
    EXPECT_FALSE(inside_call) << "on_recv_end from inside a backend call";
    ++recv_ends;
    end_error = error;
  }
  void on_send(int result) override {
    EXPECT_FALSE(inside_call) << "on_send from inside a backend call";
    EXPECT_FALSE(closed);
    send_results.push_back(result);
  }
  void on_closed() override {
    EXPECT_FALSE(inside_call) << "on_closed from inside a backend call";
    ++closed;
  }

  void release_held() {
    for (const recv_buffer& buffer : held) io_.release(buffer);
    held.clear();
  }

  // Wraps a call into the backend, so callbacks it makes synchronously are caught.
  template <class F>
  void call(F work) {
    inside_call = true;
    work();
    inside_call = false;
  }

  backend& io_;
  bool inside_call = false;
  bool hold_buffers = false;
  std::string received;
  int recv_calls = 0;
  std::vector<recv_buffer> held;
  int recv_ends = 0;
  int end_error = 1;
  std::vector<int> send_results;
  int closed = 0;
};

class recording_acceptor final : public accept_handler {
 public:
  void on_accept(int fd) override { fds.push_back(fd); }
  std::vector<int> fds;
};

class Backend : public ::testing::TestWithParam<backend_choice> {
 protected:
  void SetUp() override {
    MW_SKIP_IF_BACKEND_UNAVAILABLE(GetParam());
    make(backend_options{});
  }
  void TearDown() override {
    for (int fd : clients_) ::close(fd);
    // Targets must outlive the backend's references: close them and let it finish.
    for (auto& target : targets_) {
      if (target->io.fd >= 0 && !target->io.closing) target->call([&] { io_->close(*target); });
    }
    run_until([&] {
      return std::all_of(targets_.begin(), targets_.end(), [](auto& t) { return t->closed > 0; });
    });
    for (auto& target : targets_) target->release_held();
    targets_.clear();
    io_.reset();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  void make(const backend_options& options) {
    for (int fd : clients_) ::close(fd);
    clients_.clear();
    targets_.clear();
    io_.reset();
    io_ = GetParam() == backend_choice::epoll ? make_epoll_backend(options) : make_io_uring_backend(options);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = net::listen_socket("127.0.0.1", 0);
    port_ = net::bound_port(listen_fd_);
    io_->add_listener(listen_fd_, acceptor_);
    acceptor_.fds.clear();
  }

  bool run_until(const std::function<bool()>& done, double seconds = 20) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_->run_once(5);
    }
    return true;
  }
  void run_for(int iterations, int timeout_ms = 10) {
    for (int i = 0; i < iterations; ++i) io_->run_once(timeout_ms);
  }

  // A client and the server side of its connection, attached to a new target.
  std::pair<int, recording_target*> connect_pair() {
    size_t before = acceptor_.fds.size();
    int client = connect_client(port_);
    clients_.push_back(client);
    EXPECT_TRUE(run_until([&] { return acceptor_.fds.size() > before; }));
    int server_fd = acceptor_.fds.back();
    targets_.push_back(std::make_unique<recording_target>(*io_));
    recording_target* target = targets_.back().get();
    target->call([&] { io_->attach(*target, server_fd); });
    return {client, target};
  }

  std::unique_ptr<backend> io_;
  recording_acceptor acceptor_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> clients_;
  std::vector<std::unique_ptr<recording_target>> targets_;
};

TEST_P(Backend, Name) {
  EXPECT_STREQ(io_->name(), backend_name(GetParam()));
}

TEST_P(Backend, AcceptsNonBlockingCloseOnExecSockets) {
  for (int i = 0; i < 20; ++i) clients_.push_back(connect_client(port_));
  ASSERT_TRUE(run_until([&] { return acceptor_.fds.size() == 20; }));
  std::set<int> distinct(acceptor_.fds.begin(), acceptor_.fds.end());
  EXPECT_EQ(distinct.size(), 20u);
  for (int fd : acceptor_.fds) {
    EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ::close(fd);
  }
}

TEST_P(Backend, ReceivesInOrderThenOrderlyEnd) {
  auto [client, target] = connect_pair();
  target->call([&] { io_->recv_start(*target); });
  std::string data = pattern_bytes(300000, 1);
  ASSERT_TRUE(send_all(client, data.substr(0, 5)));
  ASSERT_TRUE(run_until([&] { return target->received.size() == 5; }));
  ASSERT_TRUE(send_all(client, data.substr(5)));
  ::shutdown(client, SHUT_WR);
  ASSERT_TRUE(run_until([&] { return target->recv_ends == 1; }));
  EXPECT_EQ(target->received, data);
  EXPECT_EQ(target->end_error, 0);
  run_for(5);
  EXPECT_EQ(target->recv_ends, 1);
}

TEST_P(Backend, PeerResetEndsInputWithAnError) {
  auto [client, target] = connect_pair();
  target->call([&] { io_->recv_start(*target); });
  ASSERT_TRUE(send_all(client, "x"));
  ASSERT_TRUE(run_until([&] { return target->received == "x"; }));
  linger abort_close{1, 0};
  ::setsockopt(client, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
  ::close(client);
  clients_.pop_back();
  ASSERT_TRUE(run_until([&] { return target->recv_ends == 1; }));
  EXPECT_EQ(target->end_error, -ECONNRESET);
}

TEST_P(Backend, SendCompletesLaterWithTheByteCount) {
  auto [client, target] = connect_pair();
  std::string a = "hello ", b = "multi-part ", c = "world\n";
  iovec iov[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  target->call([&] { io_->send(*target, iov, 3); });
  EXPECT_TRUE(target->send_results.empty());
  ASSERT_TRUE(run_until([&] { return !target->send_results.empty(); }));
  ASSERT_EQ(target->send_results.size(), 1u);
  EXPECT_EQ(target->send_results[0], static_cast<int>(a.size() + b.size() + c.size()));
  EXPECT_EQ(read_exactly(client, 23), a + b + c);
  // A single iovec too.
  std::string d = "single";
  iovec one{d.data(), d.size()};
  target->call([&] { io_->send(*target, &one, 1); });
  ASSERT_TRUE(run_until([&] { return target->send_results.size() == 2; }));
  EXPECT_EQ(target->send_results[1], 6);
  EXPECT_EQ(read_exactly(client, 6), d);
}

// A send larger than the socket buffers, to a client that reads only later: the backend
// waits for room (never reports EAGAIN) and may report a short count, which the caller
// continues from. Every byte arrives once, in order.
TEST_P(Backend, LargeSendToASlowReader) {
  auto [client, target] = connect_pair();
  std::string data = pattern_bytes(24 << 20, 2);
  size_t offset = 0;
  std::string got;
  std::vector<iovec> live(1);
  live[0] = {data.data(), data.size()};
  target->call([&] { io_->send(*target, live.data(), 1); });
  run_for(20, 5);  // nobody reads: the socket buffers fill up
  int flags = ::fcntl(client, F_GETFL);
  ::fcntl(client, F_SETFL, flags | O_NONBLOCK);
  char buffer[65536];
  size_t completions = 0;
  bool ok = run_until([&] {
    for (;;) {
      ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      got.append(buffer, static_cast<size_t>(n));
    }
    while (completions < target->send_results.size()) {
      int result = target->send_results[completions++];
      EXPECT_GT(result, 0) << "send reported " << result;
      if (result <= 0) return true;
      offset += static_cast<size_t>(result);
      EXPECT_LE(offset, data.size());
      if (offset < data.size()) {
        live[0] = {data.data() + offset, data.size() - offset};
        target->call([&] { io_->send(*target, live.data(), 1); });
      }
    }
    return offset == data.size() && got.size() == data.size();
  }, 60);
  EXPECT_TRUE(ok) << "sent " << offset << " received " << got.size();
  EXPECT_TRUE(got == data) << "the received bytes differ";
}

TEST_P(Backend, CloseCallsOnClosedLaterExactlyOnce) {
  auto [client, target] = connect_pair();
  target->call([&] { io_->recv_start(*target); });
  run_for(2, 0);
  target->call([&] { io_->close(*target); });
  EXPECT_EQ(target->closed, 0);
  // Closing twice is harmless.
  target->call([&] { io_->close(*target); });
  ASSERT_TRUE(run_until([&] { return target->closed == 1; }));
  run_for(5, 1);
  EXPECT_EQ(target->closed, 1);
  // The peer sees an orderly end.
  read_all_result rest = read_to_eof(client);
  EXPECT_TRUE(rest.eof);
  EXPECT_EQ(rest.bytes, "");
  // A close without receive: no request in flight at all.
  auto [client2, idle] = connect_pair();
  idle->call([&] { io_->close(*idle); });
  ASSERT_TRUE(run_until([&] { return idle->closed == 1; }));
  EXPECT_TRUE(read_to_eof(client2).eof);
}

// Close with a send stuck on a full socket: cancelled, on_send never comes, on_closed does.
TEST_P(Backend, CloseCancelsAPendingSend) {
  auto [client, target] = connect_pair();
  target->call([&] { io_->recv_start(*target); });
  std::string data = pattern_bytes(32 << 20, 3);
  iovec piece{data.data(), data.size()};
  target->call([&] { io_->send(*target, &piece, 1); });
  run_for(20, 2);
  // The client never read: 32 MiB cannot have gone.
  size_t completions_before = target->send_results.size();
  target->call([&] { io_->close(*target); });
  ASSERT_TRUE(run_until([&] { return target->closed == 1; }));
  EXPECT_EQ(target->send_results.size(), completions_before) << "on_send after close()";
  EXPECT_EQ(target->recv_ends, 0);
}

TEST_P(Backend, RecvStopAndRestart) {
  auto [client, target] = connect_pair();
  target->call([&] { io_->recv_start(*target); });
  ASSERT_TRUE(send_all(client, "first"));
  ASSERT_TRUE(run_until([&] { return target->received == "first"; }));
  target->call([&] { io_->recv_stop(*target); });
  run_for(5, 2);  // the stop takes effect
  ASSERT_TRUE(send_all(client, "second"));
  run_for(10, 10);
  EXPECT_EQ(target->received, "first") << "received after recv_stop took effect";
  target->call([&] { io_->recv_start(*target); });
  ASSERT_TRUE(run_until([&] { return target->received == "firstsecond"; }));
  // Stop and start again without a turn in between.
  target->call([&] {
    io_->recv_stop(*target);
    io_->recv_start(*target);
  });
  ASSERT_TRUE(send_all(client, "third"));
  ASSERT_TRUE(run_until([&] { return target->received == "firstsecondthird"; }));
  ::shutdown(client, SHUT_WR);
  ASSERT_TRUE(run_until([&] { return target->recv_ends == 1; }));
}

// An orderly end while receiving is stopped is reported once receiving resumes.
TEST_P(Backend, EndOfInputWhileStopped) {
  auto [client, target] = connect_pair();
  target->call([&] { io_->recv_start(*target); });
  run_for(2, 0);
  target->call([&] { io_->recv_stop(*target); });
  run_for(3, 2);
  ASSERT_TRUE(send_all(client, "tail"));
  ::shutdown(client, SHUT_WR);
  run_for(10, 5);
  EXPECT_EQ(target->recv_ends, 0);
  target->call([&] { io_->recv_start(*target); });
  ASSERT_TRUE(run_until([&] { return target->recv_ends == 1; }));
  EXPECT_EQ(target->received, "tail");
  EXPECT_EQ(target->end_error, 0);
}

// With every pooled buffer held, receiving pauses; each release lets it continue, and no
// byte is lost or reordered.
TEST_P(Backend, BufferStarvationPausesAndResumes) {
  backend_options options;
  options.recv_buffer_count = 2;
  options.recv_buffer_bytes = 4096;
  make(options);
  auto [client, target] = connect_pair();
  target->hold_buffers = true;
  target->call([&] { io_->recv_start(*target); });
  std::string data = pattern_bytes(200000, 4);
  int flags = ::fcntl(client, F_GETFL);
  ::fcntl(client, F_SETFL, flags | O_NONBLOCK);
  size_t sent = 0;
  auto push = [&] {
    while (sent < data.size()) {
      ssize_t n = ::send(client, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
  };
  push();
  ASSERT_TRUE(run_until([&] { return target->held.size() == 2; }));
  run_for(10, 5);
  EXPECT_EQ(target->held.size(), 2u) << "more buffers than the pool holds";
  EXPECT_NE(target->held[0].id, target->held[1].id);
  for (const recv_buffer& buffer : target->held) EXPECT_LE(buffer.size_bytes, 4096u);
  // Release one at a time.
  ASSERT_TRUE(run_until([&] {
    push();
    if (!target->held.empty()) {
      io_->release(target->held.front());
      target->held.erase(target->held.begin());
    }
    return target->received.size() == data.size();
  }, 60));
  EXPECT_TRUE(target->received == data);
}

// Two connections share the pool: one holding every buffer starves the other until it
// lets go.
TEST_P(Backend, StarvedConnectionResumesWhenAnotherReleases) {
  backend_options options;
  options.recv_buffer_count = 2;
  options.recv_buffer_bytes = 1024;
  make(options);
  auto [hog_client, hog] = connect_pair();
  auto [client, target] = connect_pair();
  hog->hold_buffers = true;
  hog->call([&] { io_->recv_start(*hog); });
  target->call([&] { io_->recv_start(*target); });
  ASSERT_TRUE(send_all(hog_client, std::string(5000, 'h')));
  ASSERT_TRUE(run_until([&] { return hog->held.size() == 2; }));
  ASSERT_TRUE(send_all(client, "waiting"));
  run_for(10, 5);
  EXPECT_EQ(target->received, "");
  hog->call([&] { io_->recv_stop(*hog); });
  hog->release_held();
  ASSERT_TRUE(run_until([&] { return target->received == "waiting"; }));
  ASSERT_TRUE(send_all(client, " more"));
  ASSERT_TRUE(run_until([&] { return target->received == "waiting more"; }));
}

// The pool is shared by the connections that happen to have data; many clients with a
// tiny pool all get through.
TEST_P(Backend, ManyClientsTinyPool) {
  backend_options options;
  options.recv_buffer_count = 2;
  options.recv_buffer_bytes = 512;
  make(options);
  std::vector<std::pair<int, recording_target*>> pairs;
  for (int i = 0; i < 40; ++i) {
    pairs.push_back(connect_pair());
    pairs.back().second->call([&] { io_->recv_start(*pairs.back().second); });
  }
  std::vector<std::string> data;
  for (int i = 0; i < 40; ++i) {
    data.push_back(pattern_bytes(20000, 100 + static_cast<uint32_t>(i)));
    ASSERT_TRUE(send_all(pairs[static_cast<size_t>(i)].first, data.back()));
    ::shutdown(pairs[static_cast<size_t>(i)].first, SHUT_WR);
  }
  ASSERT_TRUE(run_until([&] {
    return std::all_of(pairs.begin(), pairs.end(), [](auto& p) { return p.second->recv_ends == 1; });
  }, 60));
  for (size_t i = 0; i < pairs.size(); ++i) EXPECT_TRUE(pairs[i].second->received == data[i]) << i;
}

TEST_P(Backend, RemoveListenerStopsAccepting) {
  clients_.push_back(connect_client(port_));
  ASSERT_TRUE(run_until([&] { return acceptor_.fds.size() == 1; }));
  io_->remove_listener(listen_fd_);
  run_for(3, 5);
  size_t accepted = acceptor_.fds.size();
  // The kernel still completes handshakes on the listening socket, but nobody accepts.
  for (int i = 0; i < 3; ++i) clients_.push_back(connect_client(port_));
  run_for(20, 10);
  EXPECT_EQ(acceptor_.fds.size(), accepted);
  for (int fd : acceptor_.fds) ::close(fd);
  acceptor_.fds.clear();
  ::close(listen_fd_);
  listen_fd_ = -1;
  run_for(3, 5);
  EXPECT_TRUE(acceptor_.fds.empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, Backend, ::testing::Values(backend_choice::epoll, backend_choice::io_uring),
                         backend_param_name);

TEST(BackendChoice, ResolveKeepsAnExplicitChoice) {
  EXPECT_EQ(resolve_backend(backend_choice::epoll), backend_choice::epoll);
  EXPECT_EQ(resolve_backend(backend_choice::io_uring), backend_choice::io_uring);
  backend_choice automatic = resolve_backend(backend_choice::auto_select);
  EXPECT_NE(automatic, backend_choice::auto_select);
}

}  // namespace
}  // namespace mailwing::reactor
