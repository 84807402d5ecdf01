#pragma once
// What both load generators need around their connections: a group of reactor shards
// (the project's own reactor, so the client is never the bottleneck), a blocking connect
// that hands back a socket ready for a shard, Ctrl-C handling, and a clock.
//
// Shape of a run: the main thread parses options, connects every socket, starts the
// shards (each setup() builds its connection objects from its share of the sockets),
// then only prints progress until every shard reports that its connections are gone,
// and finally stops and joins the shards and merges their results. Results live in
// per-shard objects that the main thread reads only after join(), except for a few
// relaxed atomics that feed the progress line.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/args.hh"
#include "mailwing/reactor/shard.hh"

namespace mailwing::loadgen {

// CLOCK_MONOTONIC in nanoseconds.
uint64_t now_ns();

// Connects (blocking, at most timeout_ms), then makes the socket non-blocking with
// TCP_NODELAY. Returns the fd, or -1 with `error` set to one line.
int connect_tcp(const endpoint& target, int timeout_ms, std::string& error);

// Raises the soft RLIMIT_NOFILE to the hard limit (thousands of connections). Returns
// the resulting soft limit.
uint64_t raise_fd_limit();

// "auto" | "io_uring" | "epoll"; throws usage_error naming the option.
reactor::backend_choice parse_backend(std::string_view option, std::string_view text);
const char* backend_name(reactor::backend_choice choice);

// SIGINT / SIGTERM set a flag (once; a second signal kills the process as usual).
void install_stop_signals();
bool stop_signalled();

class shard_group {
 public:
  // count shards; pin: shard i runs on the i-th CPU the process may use.
  shard_group(uint32_t count, reactor::backend_choice backend, bool pin,
              const reactor::backend_options& io);
  ~shard_group();

  uint32_t size() const { return uint32_t(shards_.size()); }
  reactor::backend_choice backend() const { return backend_; }

  // Starts every shard and runs setup(shard, index) on its thread. Throws what a setup
  // throws (the shards already started are stopped).
  void start(const std::function<void(reactor::shard&, uint32_t index)>& setup);
  // Stops every shard (each exits once its drained check holds) and joins them.
  void stop();

 private:
  reactor::backend_choice backend_;
  std::vector<std::unique_ptr<reactor::shard>> shards_;
  bool started_ = false;
};

}  // namespace mailwing::loadgen
