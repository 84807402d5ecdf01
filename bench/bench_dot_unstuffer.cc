#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mailwing/wire/dot_unstuffer.hh"

// A message of 1 MiB arrives in 16 KiB reads and is unstuffed into a 16 KiB buffer.
namespace {

constexpr size_t read_bytes = 16 << 10;
constexpr size_t message_bytes = 1 << 20;

// Text lines of 40 to 78 bytes; one line in `dot_every` starts with a stuffed dot.
std::string message(const char* line_end, unsigned dot_every) {
  std::mt19937 random(3);
  std::string text;
  while (text.size() < message_bytes) {
    if (random() % dot_every == 0) text += "..";
    size_t line_bytes = 40 + random() % 39;
    for (size_t i = 0; i < line_bytes; ++i) text += char('a' + random() % 26);
    text += line_end;
  }
  return text;
}

void unstuff(benchmark::State& state, const std::string& text) {
  mailwing::wire::dot_unstuffer unstuffer;
  std::vector<char> out(read_bytes);
  for (auto _ : state) {
    unstuffer.reset();
    for (size_t done = 0; done < text.size(); done += read_bytes) {
      std::string_view input = std::string_view(text).substr(done, read_bytes);
      while (!input.empty()) {
        mailwing::wire::dot_unstuffer::result r = unstuffer.feed(input, out.data(), out.size());
        input.remove_prefix(r.consumed_bytes);
        benchmark::DoNotOptimize(out.data());
      }
    }
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}

// The floor: copying the reads.
void bm_memcpy(benchmark::State& state) {
  std::string text = message("\r\n", 1000);
  std::vector<char> out(read_bytes);
  for (auto _ : state) {
    for (size_t done = 0; done < text.size(); done += read_bytes) {
      std::memcpy(out.data(), text.data() + done, std::min(read_bytes, text.size() - done));
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}

void bm_unstuff_crlf(benchmark::State& state) { unstuff(state, message("\r\n", 1000)); }
void bm_unstuff_crlf_many_dots(benchmark::State& state) { unstuff(state, message("\r\n", 10)); }
void bm_unstuff_bare_lf(benchmark::State& state) { unstuff(state, message("\n", 1000)); }

BENCHMARK(bm_memcpy);
BENCHMARK(bm_unstuff_crlf);
BENCHMARK(bm_unstuff_crlf_many_dots);
BENCHMARK(bm_unstuff_bare_lf);

}  // namespace

BENCHMARK_MAIN();
