#include <benchmark/benchmark.h>

#include <vector>

#include "mailwing/util/crc32c.hh"

namespace {

void bm_crc32c(benchmark::State& state) {
  std::vector<unsigned char> buffer(size_t(state.range(0)));
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<unsigned char>(i * 131);
  for (auto _ : state) {
    benchmark::DoNotOptimize(mailwing::util::crc32c(buffer.data(), buffer.size()));
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
}
BENCHMARK(bm_crc32c)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(64 << 10)->Arg(1 << 20);

}  // namespace

BENCHMARK_MAIN();
