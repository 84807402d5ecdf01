#include "mailwing/wire/line_scanner.hh"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mailwing::wire {
namespace {

using status = line_scanner::status;

struct recorded {
  status kind;
  std::string line;
  bool operator==(const recorded&) const = default;
};

std::ostream& operator<<(std::ostream& os, const recorded& r) {
  return os << (r.kind == status::line ? "line:" : r.kind == status::too_long ? "too_long:" : "?:")
            << testing::PrintToString(r.line);
}

// What the scanner must report for `input`, by the header's rules, independent of chunking:
// one too_long per over-long line, also for an unfinished one that is already over the
// limit (counting a final CR as the possible start of CRLF).
std::vector<recorded> reference_events(std::string_view input, size_t line_bytes_max) {
  std::vector<recorded> events;
  size_t lf;
  while ((lf = input.find('\n')) != std::string_view::npos) {
    std::string_view line = input.substr(0, lf);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > line_bytes_max) {
      events.push_back({status::too_long, {}});
    } else {
      events.push_back({status::line, std::string(line)});
    }
    input.remove_prefix(lf + 1);
  }
  std::string_view tail = input;
  if (!tail.empty() && tail.back() == '\r') tail.remove_suffix(1);
  if (tail.size() > line_bytes_max) events.push_back({status::too_long, {}});
  return events;
}

struct scan_result {
  std::vector<recorded> events;
  size_t blocks_outstanding;
};

scan_result scan_chunks(const std::vector<std::string_view>& chunks, size_t line_bytes_max) {
  util::block_pool pool(line_bytes_max + 1, 2);
  line_scanner scanner(line_bytes_max, pool);
  scan_result result;
  for (std::string_view chunk : chunks) {
    std::string_view input = chunk;
    while (true) {
      size_t before_bytes = input.size();
      line_scanner::event e = scanner.next(input);
      if (e.kind == status::need_more) {
        EXPECT_TRUE(input.empty());
        break;
      }
      EXPECT_LT(input.size(), before_bytes);
      result.events.push_back({e.kind, std::string(e.line)});
    }
  }
  result.blocks_outstanding = pool.blocks_outstanding();
  scanner.reset();
  EXPECT_EQ(pool.blocks_outstanding(), 0u);
  return result;
}

// Feeds `input` one-shot, one byte at a time, split in two at every index and, when
// short, split in three at every pair of indexes; every way must match the reference.
void check_all_splits(std::string_view input, size_t line_bytes_max) {
  SCOPED_TRACE(testing::PrintToString(std::string(input)));
  std::vector<recorded> expected = reference_events(input, line_bytes_max);
  size_t tail_start = input.rfind('\n') == std::string_view::npos ? 0 : input.rfind('\n') + 1;
  std::string_view tail = input.substr(tail_start);
  // A tail that may still become a line is carried in a block; a longer one is discarded.
  bool tail_fits = tail.size() <= line_bytes_max || (tail.size() == line_bytes_max + 1 && tail.back() == '\r');
  size_t expect_blocks = !tail.empty() && tail_fits ? 1 : 0;

  auto check = [&](const std::vector<std::string_view>& chunks) {
    scan_result r = scan_chunks(chunks, line_bytes_max);
    ASSERT_EQ(r.events, expected);
    ASSERT_EQ(r.blocks_outstanding, expect_blocks);
  };

  check({input});
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  check(bytes);
  for (size_t i = 0; i <= input.size(); ++i) check({input.substr(0, i), input.substr(i)});
  if (input.size() <= 40) {
    for (size_t i = 0; i <= input.size(); ++i) {
      for (size_t j = i; j <= input.size(); ++j) {
        check({input.substr(0, i), input.substr(i, j - i), input.substr(j)});
      }
    }
  }
}

TEST(LineScanner, LineEnds) {
  check_all_splits("EHLO client.example\r\nMAIL FROM:<a@b>\r\n", 64);
  check_all_splits("NOOP\nQUIT\n", 64);            // bare LF
  check_all_splits("NO\rOP\r\nA\rB\r\r\n", 64);    // CR alone stays in the line
  check_all_splits("\r\n\n\r\n\r\r\nX\n", 64);      // empty lines
  check_all_splits(std::string("A\0B\r\n\0\n", 7), 64);  // NUL bytes are line content
  check_all_splits("unfinished", 64);
  check_all_splits("done\r\nunfinished\r", 64);
}

TEST(LineScanner, LengthLimit) {
  const size_t max_bytes = 16;
  std::string at_max(max_bytes, 'x');
  std::string over_max(max_bytes + 1, 'y');
  check_all_splits(at_max + "\r\n", max_bytes);
  check_all_splits(at_max + "\n", max_bytes);
  check_all_splits(over_max + "\r\n", max_bytes);
  check_all_splits(over_max + "\n", max_bytes);
  check_all_splits(at_max + "\r\r\n", max_bytes);  // the first CR is content: too long
  check_all_splits(over_max + "\r\nQUIT\r\n" + at_max + "\r\n", max_bytes);
  check_all_splits(std::string(100, 'z') + "\r\nRSET\r\n" + std::string(40, 'z'), max_bytes);
  check_all_splits(at_max + "\r", max_bytes);  // a carried tail of max + 1 bytes
  check_all_splits(over_max + "\r", max_bytes);
  check_all_splits(over_max, max_bytes);         // too long before any line end arrives
  check_all_splits(at_max + "x\rQUIT\r\nNOOP\r\n", max_bytes);
  check_all_splits("NOOP\r\n" + std::string(60, 'w') + "\r\nQUIT\r\n", max_bytes);
}

// A client that never ends its line hears about it as soon as the limit is passed, at
// whatever split, and not again for the rest of that line.
TEST(LineScanner, TooLongIsReportedBeforeTheLineEnds) {
  const size_t max_bytes = 8;
  std::string endless(1000, 'q');
  for (size_t first = 1; first <= 20; ++first) {
    util::block_pool pool(max_bytes + 1, 1);
    line_scanner scanner(max_bytes, pool);
    std::vector<status> seen;
    size_t fed = 0;
    for (std::string_view rest = endless; !rest.empty();) {
      size_t size = std::min(rest.size(), fed == 0 ? first : size_t(1));
      std::string_view input = rest.substr(0, size);
      rest.remove_prefix(size);
      fed += size;
      for (line_scanner::event e = scanner.next(input); e.kind != status::need_more; e = scanner.next(input)) {
        seen.push_back(e.kind);
        EXPECT_EQ(fed, std::max(first, max_bytes + 1)) << "reported late or early";
      }
    }
    ASSERT_EQ(seen, std::vector<status>{status::too_long}) << first;
    EXPECT_EQ(pool.blocks_outstanding(), 0u);
  }
}

TEST(LineScanner, LineInsideChunkIsAViewIntoIt) {
  util::block_pool pool(65, 1);
  line_scanner scanner(64, pool);
  std::string chunk = "QUIT\r\nNOOP\r\n";
  std::string_view input = chunk;
  line_scanner::event e = scanner.next(input);
  EXPECT_EQ(e.kind, status::line);
  EXPECT_EQ(e.line, "QUIT");
  EXPECT_EQ(e.line.data(), chunk.data());
  EXPECT_EQ(input, "NOOP\r\n");
  EXPECT_EQ(pool.blocks_outstanding(), 0u);
}

TEST(LineScanner, CarryBlockGoesBackToThePool) {
  // No cached blocks: a released block is freed, so reading it too early or keeping it
  // too long shows up under the address sanitizer.
  util::block_pool pool(65, 0);
  line_scanner scanner(64, pool);

  std::string_view input = "HELO ex";
  EXPECT_EQ(scanner.next(input).kind, status::need_more);
  EXPECT_EQ(pool.blocks_outstanding(), 1u);

  input = "ample\r\nNO";
  line_scanner::event e = scanner.next(input);
  ASSERT_EQ(e.kind, status::line);
  EXPECT_EQ(std::string(e.line), "HELO example");  // still readable after the call
  EXPECT_EQ(input, "NO");

  EXPECT_EQ(scanner.next(input).kind, status::need_more);  // "NO" starts a new carry
  EXPECT_EQ(pool.blocks_outstanding(), 1u);
  input = "OP\r\n";
  EXPECT_EQ(scanner.next(input).line, "NOOP");
  input = {};
  EXPECT_EQ(scanner.next(input).kind, status::need_more);
  EXPECT_EQ(pool.blocks_outstanding(), 0u);
}

TEST(LineScanner, ResetDropsThePartialLine) {
  util::block_pool pool(65, 1);
  line_scanner scanner(64, pool);
  std::string_view input = "MAIL FR";
  scanner.next(input);
  EXPECT_EQ(pool.blocks_outstanding(), 1u);
  scanner.reset();
  EXPECT_EQ(pool.blocks_outstanding(), 0u);
  input = "OM:<>\r\n";
  EXPECT_EQ(scanner.next(input).line, "OM:<>");
}

TEST(LineScanner, OverLongSplitLineReleasesItsBlock) {
  util::block_pool pool(9, 1);
  line_scanner scanner(8, pool);
  std::string_view input = "1234567";
  scanner.next(input);
  EXPECT_EQ(pool.blocks_outstanding(), 1u);
  input = "89abc";
  EXPECT_EQ(scanner.next(input).kind, status::too_long);  // at once, not at the LF
  EXPECT_EQ(pool.blocks_outstanding(), 0u);  // discarding needs no memory
  EXPECT_EQ(scanner.next(input).kind, status::need_more);
  input = "def\r\nQUIT\r\n";
  EXPECT_EQ(scanner.next(input).line, "QUIT");
}

TEST(LineScanner, DestructorReturnsTheBlock) {
  util::block_pool pool(65, 1);
  {
    line_scanner scanner(64, pool);
    std::string_view input = "partial";
    scanner.next(input);
    EXPECT_EQ(pool.blocks_outstanding(), 1u);
  }
  EXPECT_EQ(pool.blocks_outstanding(), 0u);
}

TEST(LineScanner, RandomInputsMatchTheReference) {
  std::mt19937 random(2024);
  const char alphabet[] = {'a', 'b', '\r', '\n', '\0', ' '};
  for (int round = 0; round < 3000; ++round) {
    size_t line_bytes_max = 1 + random() % 80;
    std::string input(random() % 400, 'a');
    // Vary the line length so that lines straddle both limits and SIMD widths.
    unsigned lf_per_1000 = 5 + random() % 200;
    for (char& c : input) {
      c = random() % 1000 < lf_per_1000 ? '\n' : alphabet[random() % sizeof alphabet];
    }
    std::vector<recorded> expected = reference_events(input, line_bytes_max);

    std::vector<std::string_view> chunks;
    for (size_t done = 0; done < input.size();) {
      size_t size = std::min(input.size() - done, size_t(random() % 100));
      chunks.push_back(std::string_view(input).substr(done, size));
      done += size;
    }
    ASSERT_EQ(scan_chunks(chunks, line_bytes_max).events, expected) << round;
    ASSERT_EQ(scan_chunks({input}, line_bytes_max).events, expected) << round;
  }
}

}  // namespace
}  // namespace mailwing::wire
