#include "mailwing/server/server.hh"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "mailwing/auth/authenticator.hh"
#include "mailwing/auth/password.hh"
#include "mailwing/net/acceptor.hh"
#include "mailwing/net/tls_context.hh"
#include "mailwing/pop3/service.hh"
#include "mailwing/reactor/shard.hh"
#include "mailwing/reactor/worker.hh"
#include "mailwing/smtp/recipients.hh"
#include "mailwing/smtp/service.hh"
#include "mailwing/store/directory.hh"
#include "mailwing/store/recovery.hh"
#include "mailwing/store/store_shard.hh"
#include "mailwing/util/log.hh"
#include "mailwing/util/task.hh"

#ifdef MAILWING_MIMALLOC
#include <mimalloc.h>
#endif

namespace mailwing::server {
namespace {

struct shard_slot {
  std::unique_ptr<reactor::shard> shard;
  std::unique_ptr<reactor::worker> worker;
  std::unique_ptr<store::store_shard> store;
  std::unique_ptr<smtp::service> smtp;
  std::unique_ptr<pop3::service> pop3;
  std::vector<int> smtp_listen_fds;
  std::vector<int> smtps_listen_fds;
  std::vector<int> pop3_listen_fds;
  std::vector<int> pop3s_listen_fds;
};

std::vector<int> usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  if (cpus.empty()) cpus.push_back(-1);
  return cpus;
}

// 10,000 connections need more descriptors than the usual soft limit of 1024.
void raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  MW_LOG_DEBUG("file descriptor limit %llu", static_cast<unsigned long long>(limit.rlim_cur));
}

util::log_severity severity_of(config::log_level level) {
  switch (level) {
    case config::log_level::debug: return util::log_severity::debug;
    case config::log_level::info: return util::log_severity::info;
    case config::log_level::warn: return util::log_severity::warn;
    case config::log_level::error: return util::log_severity::error;
  }
  return util::log_severity::info;
}

std::string address_text(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// One socket per shard per configured address, all bound to the same port; a port of 0
// becomes whatever the first bind got.
std::vector<std::vector<int>> open_listeners(std::vector<config::listen_address>& addresses,
                                             uint32_t shard_count, const char* protocol) {
  std::vector<std::vector<int>> per_shard(shard_count);
  for (config::listen_address& address : addresses) {
    net::check_port_free(address.host, address.port);
    for (uint32_t shard = 0; shard < shard_count; ++shard) {
      int fd = net::listen_socket(address.host, address.port);
      if (address.port == 0) address.port = net::bound_port(fd);
      per_shard[shard].push_back(fd);
    }
    MW_LOG_INFO("%s listening on %s", protocol, address_text(address.host, address.port).c_str());
  }
  return per_shard;
}

// The TLS material the config names, or the self-signed pair under data_dir/tls/.
// Throws net::tls_error with one line.
std::shared_ptr<net::tls_context> load_tls(const config::config& cfg) {
  net::tls_settings settings;
  if (cfg.tls.certificate.empty()) {
    settings = net::ensure_self_signed(cfg.data_dir + "/tls", cfg.hostname);
  } else {
    settings.certificate_path = cfg.tls.certificate;
    settings.private_key_path = cfg.tls.private_key;
  }
  settings.min_version = cfg.tls.min_version;
  auto context = net::tls_context::load(settings);
  MW_LOG_INFO("tls: certificate %s%s, SHA-256 fingerprint %s", settings.certificate_path.c_str(),
              cfg.tls.certificate.empty() ? " (self-signed, made for the embedded default)" : "",
              context->fingerprint_sha256().c_str());
  return context;
}

}  // namespace

int run(config::config cfg, bool embedded_default) {
  util::set_log_threshold(severity_of(cfg.level));
  // From here on no thread writes stderr itself (util/log.hh): a stuck stderr costs log
  // lines, never a stalled shard. The scope writes what is buffered on every way out.
  struct log_writer_scope {
    log_writer_scope() { util::start_log_writer(); }
    ~log_writer_scope() { util::stop_log_writer(); }
  } log_writer;
  auth::init_crypto();

  // Signals are taken by sigwait on this thread only; every thread started below
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (embedded_default) {
    // On one line, like every log line: newlines and indentation squeezed to one space.
    std::string compact;
    for (char c : config::embedded_default_json()) {
      bool blank = c == '\n' || c == ' ';
      if (blank && (compact.empty() || compact.back() == ' ')) continue;
      compact.push_back(blank ? ' ' : c);
    }
    if (!compact.empty() && compact.back() == ' ') compact.pop_back();
    MW_LOG_INFO("no --config given: using the embedded default configuration: %s", compact.c_str());
  }
  raise_file_limit();
  std::vector<int> cpus = usable_cpus();
  uint32_t shard_count = cfg.shards != 0 ? cfg.shards : static_cast<uint32_t>(cpus.size());

  auto requested = cfg.io_backend == config::io_backend_kind::io_uring ? reactor::backend_choice::io_uring
                   : cfg.io_backend == config::io_backend_kind::epoll  ? reactor::backend_choice::epoll
                                                                       : reactor::backend_choice::auto_select;
  reactor::backend_choice backend = reactor::resolve_backend(requested);
  const char* backend_name = backend == reactor::backend_choice::epoll ? "epoll" : "io_uring";
  bool sync = cfg.durability == config::durability_mode::fsync;
#ifdef MAILWING_MIMALLOC
  const char* allocator = "mimalloc";
#else
  const char* allocator = "system malloc";
#endif
  MW_LOG_INFO("mailwing 0.1.0: %u shards, io backend: %s, durability: %s, allocator: %s, data_dir: %s",
              shard_count, backend_name, sync ? "fsync" : "none", allocator, cfg.data_dir.c_str());
  if (!sync) {
    MW_LOG_WARN("durability \"none\": 250 is sent before mail is on disk; a crash loses it "
                "(for sink benchmarks only)");
  }

  std::vector<std::string> addresses;
  for (const config::user& user : cfg.users) addresses.push_back(user.address);
  store::directory mailboxes(addresses, shard_count);
  store::recovered_store recovered = store::recover(cfg.data_dir, mailboxes);
  smtp::recipient_resolver recipients(cfg, mailboxes);

  net::tls_context_holder tls;
  if (cfg.tls.enabled) {
    tls.replace(load_tls(cfg));
    // Memory BIOs keep TLS in user space on the shard; handing records to the kernel
    // (kTLS) would need the keys moved into the socket after the handshake.
    MW_LOG_INFO("tls: records are encrypted in user space on the shards (kernel TLS %s)",
                net::kernel_tls_available() ? "is available here but not used" : "is not available here");
  } else if (!embedded_default) {
    MW_LOG_WARN("tls is off (no \"tls\" in the config): no STARTTLS, STLS or implicit TLS, and "
                "passwords cross the network in clear text");
  }

  net::connection_limit smtp_limit(cfg.smtp.connections_max, cfg.smtp.connections_per_ip_max);
  smtp::smtp_shared shared;
  shared.cfg = &cfg;
  shared.mailboxes = &mailboxes;
  shared.recipients = &recipients;
  shared.limit = &smtp_limit;
  shared.tls = cfg.tls.enabled ? &tls : nullptr;
  shared.spool_dir = cfg.data_dir + "/spool";
  auth::authenticator authenticator(cfg, mailboxes, shard_count);
  shared.auth = &authenticator;
  net::connection_limit pop3_limit(cfg.pop3.connections_max, cfg.pop3.connections_per_ip_max);
  pop3::pop3_shared pop3_shared;
  pop3_shared.cfg = &cfg;
  pop3_shared.mailboxes = &mailboxes;
  pop3_shared.limit = &pop3_limit;
  pop3_shared.tls = shared.tls;
  pop3_shared.auth = &authenticator;

  std::vector<std::vector<int>> smtp_fds = open_listeners(cfg.smtp.listen, shard_count, "smtp");
  std::vector<std::vector<int>> pop3_fds = open_listeners(cfg.pop3.listen, shard_count, "pop3");
  std::vector<std::vector<int>> smtps_fds = open_listeners(cfg.smtp.tls_listen, shard_count, "smtps");
  std::vector<std::vector<int>> pop3s_fds = open_listeners(cfg.pop3.tls_listen, shard_count, "pop3s");

  store::store_options store_options;
  store_options.data_dir = cfg.data_dir;
  store_options.sync = sync;
  store_options.journal_segment_bytes = cfg.store.journal_segment_bytes;
  store_options.checkpoint_interval_ms = cfg.store.checkpoint_interval_ms;

  std::vector<shard_slot> slots(shard_count);
  for (uint32_t id = 0; id < shard_count; ++id) {
    reactor::shard_options options;
    options.backend = backend;
    options.cpu = cpus[id % cpus.size()];
    slots[id].shard = std::make_unique<reactor::shard>(id, shard_count, options);
    slots[id].worker = std::make_unique<reactor::worker>(*slots[id].shard);
    std::vector<std::unique_ptr<store::mailbox>> owned;
    for (auto& box : recovered.mailboxes) {
      if (box && mailboxes.owner_shard(box->id) == id) owned.push_back(std::move(box));
    }
    slots[id].store = std::make_unique<store::store_shard>(*slots[id].shard, *slots[id].worker, mailboxes,
                                                           std::move(owned), store_options);
    slots[id].smtp_listen_fds = smtp_fds[id];
    slots[id].pop3_listen_fds = pop3_fds[id];
    slots[id].smtps_listen_fds = smtps_fds[id];
    slots[id].pop3s_listen_fds = pop3s_fds[id];
    shared.stores.push_back(slots[id].store.get());
    pop3_shared.stores.push_back(slots[id].store.get());
  }

  authenticator.start();
  for (shard_slot& slot : slots) {
    slot.worker->start();
    slot.shard->start([&slot, &shared, &pop3_shared, &smtp_limit, &pop3_limit](reactor::shard& shard) {
      slot.store->start();
      slot.smtp = std::make_unique<smtp::service>(shared, shard);
      slot.pop3 = std::make_unique<pop3::service>(pop3_shared, shard);
      for (int fd : slot.smtp_listen_fds) slot.smtp->listen(fd, false);
      for (int fd : slot.smtps_listen_fds) slot.smtp->listen(fd, true);
      for (int fd : slot.pop3_listen_fds) slot.pop3->listen(fd, false);
      for (int fd : slot.pop3s_listen_fds) slot.pop3->listen(fd, true);
      smtp::service* smtp_service = slot.smtp.get();
      pop3::service* pop3_service = slot.pop3.get();
      shard.add_stop_hook([smtp_service, pop3_service](bool force) {
        smtp_service->drain(force);
        pop3_service->drain(force);
      });
      // Drained only when no shard has a session left: a session's delivery or deletion
      // may still need other shards' stores, so shards stop together, not one by one.
      shard.set_drained_check([&smtp_limit, &pop3_limit] {
        return smtp_limit.count() == 0 && pop3_limit.count() == 0;
      });
    });
  }
  MW_LOG_INFO("ready");

  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number == SIGHUP) {
      // New handshakes use the new pair; sessions already under way keep theirs. A pair
      // that does not load changes nothing.
      if (!cfg.tls.enabled) continue;
      try {
        tls.replace(load_tls(cfg));
        MW_LOG_INFO("SIGHUP: tls certificate reloaded");
      } catch (const net::tls_error& error) {
        MW_LOG_ERROR("SIGHUP: %s; keeping the certificate in use", error.what());
      }
      continue;
    }
    if (signal_number != SIGUSR1) break;
    // tools/mailwing-compact: compact every mailbox that has deleted messages.
    MW_LOG_INFO("SIGUSR1: compacting mailboxes with deleted messages");
    for (shard_slot& slot : slots) {
      store::store_shard* store = slot.store.get();
      slot.shard->post(slot.shard->main_slot(), util::make_task([store] { store->compact_all(); }));
    }
  }
  MW_LOG_INFO("%s: draining connections and stopping", strsignal(signal_number));
  for (shard_slot& slot : slots) slot.shard->request_stop();
  for (shard_slot& slot : slots) slot.shard->join();
  // Its threads post answers to the shards, so it stops before they are destroyed.
  authenticator.stop();
  for (shard_slot& slot : slots) {
    slot.store->stop();
    slot.worker->stop();
  }
  // Sessions and stores go before the shards whose pools and backends they use.
  for (shard_slot& slot : slots) {
    slot.smtp.reset();
    slot.pop3.reset();
    slot.store.reset();
  }
  MW_LOG_INFO("stopped");
  return 0;
}

}  // namespace mailwing::server
