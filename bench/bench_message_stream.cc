#include <benchmark/benchmark.h>

#include <random>
#include <string>

#include "mailwing/pop3/message_stream.hh"

// POP3 RETR of a message that needs dot-stuffing: the user-space path (a message without
// dot lines goes by sendfile instead and never comes here). 1 MiB read in 64 KiB chunks.
namespace {

constexpr size_t chunk_bytes = 64 << 10;

std::string message(unsigned dot_every) {
  std::mt19937 random(5);
  std::string text;
  while (text.size() < (1u << 20)) {
    if (random() % dot_every == 0) text += ".";
    size_t line_bytes = 40 + random() % 39;
    for (size_t i = 0; i < line_bytes; ++i) text += char('a' + random() % 26);
    text += "\r\n";
  }
  return text;
}

void encode(benchmark::State& state, const std::string& text) {
  mailwing::pop3::message_stream stream;
  std::string out;
  out.reserve(2 * chunk_bytes);
  for (auto _ : state) {
    stream.start(std::nullopt);
    for (size_t done = 0; done < text.size(); done += chunk_bytes) {
      out.clear();
      stream.feed(std::string_view(text).substr(done, chunk_bytes), out);
      benchmark::DoNotOptimize(out.data());
    }
    out.clear();
    stream.finish(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_retr_stuffing_rare_dots(benchmark::State& state) { encode(state, message(100)); }
void BM_retr_stuffing_every_tenth_line(benchmark::State& state) { encode(state, message(10)); }

}  // namespace

BENCHMARK(BM_retr_stuffing_rare_dots);
BENCHMARK(BM_retr_stuffing_every_tenth_line);
BENCHMARK_MAIN();
