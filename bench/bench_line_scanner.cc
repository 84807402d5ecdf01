#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

#include "mailwing/util/block_pool.hh"
#include "mailwing/wire/line_scanner.hh"

// Input arrives in 16 KiB reads, so a few lines per read are split and carried.
namespace {

constexpr size_t read_bytes = 16 << 10;
constexpr size_t input_bytes = 1 << 20;

// Pipelined SMTP commands as a busy relay receives them (20 to 70 bytes each).
std::string smtp_commands() {
  const char* templates[] = {
      "MAIL FROM:<bounces+%u@mailer.example.com> SIZE=%u BODY=8BITMIME\r\n",
      "RCPT TO:<user%u@example.org>\r\n",
      "RCPT TO:<someone.else+%u@subdomain.example.net>\r\n",
      "DATA\r\n",
      "RSET\r\n",
      "EHLO mx%u.sender.example\r\n",
  };
  std::mt19937 random(1);
  std::string text;
  char line[128];
  while (text.size() < input_bytes) {
    int size = std::snprintf(line, sizeof line, templates[random() % 6],
                             unsigned(random() % 100000), unsigned(random() % 100000));
    text.append(line, size_t(size));
  }
  return text;
}

std::string fixed_lines(size_t line_bytes) {
  std::string line(line_bytes - 2, 'x');
  line += "\r\n";
  std::string text;
  while (text.size() < input_bytes) text += line;
  return text;
}

template <class ScanRead>
void run(benchmark::State& state, const std::string& text, ScanRead scan_read) {
  for (auto _ : state) {
    for (size_t done = 0; done < text.size(); done += read_bytes) {
      scan_read(std::string_view(text).substr(done, read_bytes));
    }
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.SetItemsProcessed(int64_t(state.iterations()) * std::count(text.begin(), text.end(), '\n'));
}

void scanner(benchmark::State& state, const std::string& text) {
  mailwing::util::block_pool pool(4097, 4);
  mailwing::wire::line_scanner lines(4096, pool);
  size_t count = 0;
  run(state, text, [&](std::string_view input) {
    while (lines.next(input).kind != mailwing::wire::line_scanner::status::need_more) ++count;
  });
  benchmark::DoNotOptimize(count);
}

// The floor: finding the LFs with memchr and nothing else.
void memchr_loop(benchmark::State& state, const std::string& text) {
  size_t count = 0;
  run(state, text, [&](std::string_view input) {
    const char* p = input.data();
    const char* end = p + input.size();
    while (const void* lf = std::memchr(p, '\n', size_t(end - p))) {
      p = static_cast<const char*>(lf) + 1;
      ++count;
    }
  });
  benchmark::DoNotOptimize(count);
}

const std::string commands_text = smtp_commands();
const std::string lines_80_text = fixed_lines(80);
const std::string lines_1000_text = fixed_lines(1000);

void bm_scanner_smtp_commands(benchmark::State& state) { scanner(state, commands_text); }
void bm_memchr_smtp_commands(benchmark::State& state) { memchr_loop(state, commands_text); }
void bm_scanner_lines_80(benchmark::State& state) { scanner(state, lines_80_text); }
void bm_memchr_lines_80(benchmark::State& state) { memchr_loop(state, lines_80_text); }
void bm_scanner_lines_1000(benchmark::State& state) { scanner(state, lines_1000_text); }
void bm_memchr_lines_1000(benchmark::State& state) { memchr_loop(state, lines_1000_text); }

BENCHMARK(bm_scanner_smtp_commands);
BENCHMARK(bm_memchr_smtp_commands);
BENCHMARK(bm_scanner_lines_80);
BENCHMARK(bm_memchr_lines_80);
BENCHMARK(bm_scanner_lines_1000);
BENCHMARK(bm_memchr_lines_1000);

}  // namespace

BENCHMARK_MAIN();
