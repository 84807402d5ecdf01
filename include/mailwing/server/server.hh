#pragma once
// The whole server: configuration in, shards running, signals handled, a clean stop.
//
// run() lives on the main thread: it recovers the store, starts one shard (with its
// blocking worker, store and SMTP service) per configured core, logs where it listens
// and "ready", then waits for SIGTERM or SIGINT, drains the shards, and makes everything
// durable before returning.

#include "mailwing/config/config.hh"

namespace mailwing::server {

// Returns the process exit code. Throws std::exception with a one-line reason when the
// server cannot start (a port in use, an unusable data_dir).
int run(config::config cfg, bool embedded_default);

}  // namespace mailwing::server
