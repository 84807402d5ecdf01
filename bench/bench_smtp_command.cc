#include <benchmark/benchmark.h>

#include <string_view>

#include "mailwing/smtp/command.hh"

// Time per iteration is the time to parse one command line.
namespace {

using namespace mailwing::smtp;

constexpr std::string_view mail_lines[] = {
    "MAIL FROM:<bounces+1234@mailer.example.com> SIZE=48213 BODY=8BITMIME",
    "MAIL FROM:<>",
    "MAIL FROM:<j.doe@example.org> SIZE=1024",
    "mail from: <\"quoted name\"@[192.0.2.1]> SMTPUTF8",
};
constexpr std::string_view rcpt_lines[] = {
    "RCPT TO:<user123@example.org>",
    "RCPT TO:<someone.else+tag@subdomain.example.net>",
    "RCPT TO:<postmaster>",
    "rcpt to:<a@[IPv6:2001:db8::1]>",
};
constexpr std::string_view other_lines[] = {"DATA", "QUIT", "EHLO mx1.sender.example", "RSET"};

void bm_parse_command(benchmark::State& state) {
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(parse_command(other_lines[i++ % 4]));
  }
}

void bm_parse_mail_from(benchmark::State& state) {
  size_t i = 0;
  for (auto _ : state) {
    command c = parse_command(mail_lines[i++ % 4]);
    benchmark::DoNotOptimize(parse_mail_from(c.argument));
  }
}

void bm_parse_rcpt_to(benchmark::State& state) {
  size_t i = 0;
  for (auto _ : state) {
    command c = parse_command(rcpt_lines[i++ % 4]);
    benchmark::DoNotOptimize(parse_rcpt_to(c.argument, false));
  }
}

BENCHMARK(bm_parse_command);
BENCHMARK(bm_parse_mail_from);
BENCHMARK(bm_parse_rcpt_to);

}  // namespace

BENCHMARK_MAIN();
