// scan_log over a whole mailbox log, as recovery and the index rebuild read it: every
// header and payload CRC checked. The log is a temporary file of N records of S bytes
// (arguments N/S), written once; the scans read it from the page cache, so this measures
// the scanner (reads + CRC), not the disk. Reports records/s and bytes/s.

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "mailwing/store/log_scan.hh"
#include "mailwing/store/record.hh"
#include "mailwing/util/crc32c.hh"

namespace {

using mailwing::store::record_header;
using mailwing::store::record_header_bytes;

// A temporary log file, deleted at the end.
class temp_log {
 public:
  temp_log(int64_t records, int64_t payload_bytes) {
    const char* base = std::getenv("TMPDIR");
    path_ = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/mailwing-bench-XXXXXX";
    fd_ = ::mkstemp(path_.data());
    if (fd_ < 0) return;
    ::unlink(path_.c_str());  // gone when closed
    std::string payload(static_cast<size_t>(payload_bytes), '\0');
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + (i * 7) % 26);
    std::string chunk;
    record_header header;
    header.payload_bytes = payload.size();
    for (int64_t uid = 1; uid <= records; ++uid) {
      payload[0] = static_cast<char>('A' + uid % 26);
      header.uid = static_cast<uint64_t>(uid);
      header.arrival_ms = 1700000000000ull + static_cast<uint64_t>(uid);
      header.payload_crc32c = mailwing::util::crc32c(payload.data(), payload.size());
      char bytes[record_header_bytes];
      mailwing::store::encode_record_header(header, std::span<char, record_header_bytes>(bytes, record_header_bytes));
      chunk.append(bytes, record_header_bytes);
      chunk += payload;
      if (chunk.size() >= (8u << 20) || uid == records) {
        if (::write(fd_, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) {
          ::close(fd_);
          fd_ = -1;
          return;
        }
        bytes_ += chunk.size();
        chunk.clear();
      }
    }
  }
  ~temp_log() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
};

void bm_scan_log(benchmark::State& state) {
  int64_t records = state.range(0);
  temp_log log(records, state.range(1));
  if (log.fd() < 0) {
    state.SkipWithError("could not write the temporary log");
    return;
  }
  uint64_t seen = 0;
  for (auto _ : state) {
    seen = 0;
    auto result = mailwing::store::scan_log(log.fd(), [&seen](const mailwing::store::scanned_record&,
                                                               std::string_view) { ++seen; });
    if (result.records != static_cast<uint64_t>(records) || !result.problem.empty()) {
      state.SkipWithError(("scan stopped early: " + result.problem).c_str());
      return;
    }
    benchmark::DoNotOptimize(seen);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(log.bytes()));
  state.counters["records"] = benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(records),
                                                 benchmark::Counter::kIsRate);
}
// 100,000 x 1 KiB (~100 MB) is the real measurement; 1000 x 1 KiB is for the smoke test.
BENCHMARK(bm_scan_log)->Args({100000, 1024})->Args({10000, 64 << 10})->Args({1000, 1024})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
