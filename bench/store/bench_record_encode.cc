// Building a mailbox log record: CRC-32C over the payload plus the 40-byte header (with
// its own CRC), as the store does once per message per mailbox. Bytes/s counts header
// and payload.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <span>
#include <vector>

#include "mailwing/store/record.hh"
#include "mailwing/util/crc32c.hh"

namespace {

using mailwing::store::record_header;
using mailwing::store::record_header_bytes;

std::vector<char> payload_of(size_t size) {
  std::vector<char> payload(size);
  for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + (i * 131 + i / 77) % 26);
  return payload;
}

// Payload CRC + header encode, per record.
void bm_record_encode(benchmark::State& state) {
  std::vector<char> payload = payload_of(static_cast<size_t>(state.range(0)));
  char header_bytes[record_header_bytes];
  record_header header;
  header.arrival_ms = 1700000000000ull;
  header.payload_bytes = payload.size();
  for (auto _ : state) {
    ++header.uid;
    header.payload_crc32c = mailwing::util::crc32c(payload.data(), payload.size());
    mailwing::store::encode_record_header(header, std::span<char, record_header_bytes>(header_bytes, record_header_bytes));
    benchmark::DoNotOptimize(header_bytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(payload.size() + record_header_bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(bm_record_encode)->Arg(1 << 10)->Arg(64 << 10);

// The header alone: encode (header CRC included) and decode with its checks.
void bm_record_header_round_trip(benchmark::State& state) {
  char header_bytes[record_header_bytes];
  record_header header;
  header.payload_bytes = 1024;
  for (auto _ : state) {
    ++header.uid;
    mailwing::store::encode_record_header(header, std::span<char, record_header_bytes>(header_bytes, record_header_bytes));
    auto decoded = mailwing::store::decode_record_header(
        std::span<const char, record_header_bytes>(header_bytes, record_header_bytes));
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(bm_record_header_round_trip);

}  // namespace

BENCHMARK_MAIN();
