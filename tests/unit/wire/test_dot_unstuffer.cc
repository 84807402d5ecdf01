#include "mailwing/wire/dot_unstuffer.hh"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mailwing::wire {
namespace {

struct outcome {
  std::string stored;
  bool finished = false;
  size_t consumed_bytes = 0;  // of the whole input
  bool has_dot_line = false;
  bool operator==(const outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const outcome& o) {
  return os << "{stored " << testing::PrintToString(o.stored) << ", finished " << o.finished
            << ", consumed " << o.consumed_bytes << ", has_dot_line " << o.has_dot_line << "}";
}

// The header's rules applied to the whole input at once, written without a state
// machine. Bytes that cannot be decided yet (a "." or ".\r" at a line start at the end
// of the input) are consumed but not stored, as the real thing holds them back.
outcome reference(std::string_view in) {
  outcome o;
  bool line_start = true;         // after CRLF or at the start: dots are special
  bool stored_line_start = true;  // the next stored byte starts a stored line
  size_t i = 0;
  while (i < in.size()) {
    if (line_start && in[i] == '.') {
      if (in.substr(i, 3) == ".\r\n") {
        o.finished = true;
        o.consumed_bytes = i + 3;
        return o;
      }
      if (in.size() - i == 1 || in.substr(i) == ".\r") break;
      ++i;  // the stuffed dot
      line_start = false;
      continue;
    }
    char c = in[i];
    if (stored_line_start && c == '.') o.has_dot_line = true;
    if (c == '\n') {
      bool after_cr = i > 0 && in[i - 1] == '\r';
      o.stored += after_cr ? "\n" : "\r\n";
      line_start = after_cr;
      stored_line_start = true;
    } else {
      o.stored += c;
      line_start = false;
      stored_line_start = false;
    }
    ++i;
  }
  o.consumed_bytes = in.size();
  return o;
}

outcome unstuff(const std::vector<std::string_view>& chunks, size_t out_capacity) {
  dot_unstuffer unstuffer;
  outcome o;
  std::vector<char> out(out_capacity);
  size_t chunk_start = 0;
  for (std::string_view chunk : chunks) {
    size_t used_bytes = 0;
    while (used_bytes < chunk.size() && !o.finished) {
      dot_unstuffer::result r = unstuffer.feed(chunk.substr(used_bytes), out.data(), out.size());
      EXPECT_LE(r.produced_bytes, out.size());
      EXPECT_TRUE(r.consumed_bytes > 0 || r.finished);
      o.stored.append(out.data(), r.produced_bytes);
      used_bytes += r.consumed_bytes;
      o.finished = r.finished;
    }
    o.consumed_bytes = chunk_start + used_bytes;
    if (o.finished) break;
    chunk_start += chunk.size();
  }
  o.has_dot_line = unstuffer.has_dot_line();
  return o;
}

void check_all_splits(std::string_view input) {
  SCOPED_TRACE(testing::PrintToString(std::string(input)));
  outcome expected = reference(input);
  ASSERT_EQ(unstuff({input}, 4096), expected);
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  ASSERT_EQ(unstuff(bytes, 4096), expected);
  for (size_t i = 0; i <= input.size(); ++i) {
    ASSERT_EQ(unstuff({input.substr(0, i), input.substr(i)}, 4096), expected) << i;
  }
  if (input.size() <= 40) {
    for (size_t i = 0; i <= input.size(); ++i) {
      for (size_t j = i; j <= input.size(); ++j) {
        ASSERT_EQ(unstuff({input.substr(0, i), input.substr(i, j - i), input.substr(j)}, 4096),
                  expected);
      }
    }
  }
  for (size_t capacity = 2; capacity <= 70; ++capacity) {
    ASSERT_EQ(unstuff({input}, capacity), expected) << capacity;
  }
}

outcome unstuff_once(std::string_view input) { return unstuff({input}, 4096); }

TEST(DotUnstuffer, EmptyMessage) {
  EXPECT_EQ(unstuff_once(".\r\n"), (outcome{"", true, 3, false}));
  check_all_splits(".\r\n");
}

TEST(DotUnstuffer, EndsOnlyAtCrLfDotCrLf) {
  EXPECT_EQ(unstuff_once("Subject: x\r\n\r\nbody\r\n.\r\n"),
            (outcome{"Subject: x\r\n\r\nbody\r\n", true, 23, false}));
  check_all_splits("Subject: x\r\n\r\nbody\r\n.\r\n");
}

TEST(DotUnstuffer, BytesAfterTheEndAreNotConsumed) {
  outcome o = unstuff_once("a\r\n.\r\nQUIT\r\n");
  EXPECT_TRUE(o.finished);
  EXPECT_EQ(o.consumed_bytes, 6u);
  EXPECT_EQ(o.stored, "a\r\n");
  check_all_splits("a\r\n.\r\nQUIT\r\n");
}

TEST(DotUnstuffer, StuffedDotIsRemoved) {
  EXPECT_EQ(unstuff_once("..foo\r\n.\r\n"), (outcome{".foo\r\n", true, 10, true}));
  EXPECT_EQ(unstuff_once(".foo\r\n.\r\n"), (outcome{"foo\r\n", true, 9, false}));
  EXPECT_EQ(unstuff_once("a\r\n..\r\n.\r\n"), (outcome{"a\r\n.\r\n", true, 10, true}));
  check_all_splits("..foo\r\n.\r\n");
  check_all_splits("x\r\n...\r\n.x\r\n.\r\n");
}

// SMTP smuggling: a bare LF must neither start nor end the terminating line.
TEST(DotUnstuffer, BareLfNeverEndsTheData) {
  EXPECT_EQ(unstuff_once("a\n.\nb\r\n.\r\n"), (outcome{"a\r\n.\r\nb\r\n", true, 10, true}));
  EXPECT_EQ(unstuff_once("a\n.\r\nb\r\n.\r\n"), (outcome{"a\r\n.\r\nb\r\n", true, 11, true}));
  EXPECT_EQ(unstuff_once("a\r\n.\nb\r\n.\r\n"), (outcome{"a\r\n\r\nb\r\n", true, 11, false}));
  EXPECT_EQ(unstuff_once("a\r\n.\n"), (outcome{"a\r\n\r\n", false, 5, false}));
  EXPECT_EQ(unstuff_once("\n.\r\n"), (outcome{"\r\n.\r\n", false, 4, true}));
  check_all_splits("a\n.\nb\r\n.\r\n");
  check_all_splits("a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n");
  check_all_splits("a\r\n.\nRCPT TO:<x@y>\r\n.\r\n");
  check_all_splits("a\r.\r\nb\r\n.\r\n");  // bare CR before the dot: not a line start
}

TEST(DotUnstuffer, BareLfIsStoredAsCrLf) {
  EXPECT_EQ(unstuff_once("a\nb\n\nc\r\n.\r\n"), (outcome{"a\r\nb\r\n\r\nc\r\n", true, 11, false}));
  check_all_splits("a\nb\n\nc\r\n.\r\n");
  check_all_splits("\n\n\r\n\n.\r\n");
}

TEST(DotUnstuffer, CrAloneIsContent) {
  EXPECT_EQ(unstuff_once("a\rb\r\r\n.\rX\r\n.\r\n"),
            (outcome{"a\rb\r\r\n\rX\r\n", true, 14, false}));
  check_all_splits("a\rb\r\r\n.\rX\r\n.\r\n");
  check_all_splits(".\r.\r\n.\r\r\n.\r\n");
}

TEST(DotUnstuffer, NulBytesAreContent) {
  std::string input("a\0b\r\n.\0\r\n.\r\n", 12);
  EXPECT_EQ(unstuff_once(input), (outcome{std::string("a\0b\r\n\0\r\n", 8), true, 12, false}));
  check_all_splits(input);
}

TEST(DotUnstuffer, UnfinishedInputHoldsItsState) {
  check_all_splits("abc\r\n.");
  check_all_splits("abc\r\n.\r");
  check_all_splits("abc\r\n..");
  check_all_splits("abc\r");
}

TEST(DotUnstuffer, FeedAfterTheEndConsumesNothingUntilReset) {
  dot_unstuffer unstuffer;
  char out[16];
  EXPECT_TRUE(unstuffer.feed(".\r\n", out, sizeof out).finished);
  dot_unstuffer::result r = unstuffer.feed("QUIT\r\n", out, sizeof out);
  EXPECT_EQ(r.consumed_bytes, 0u);
  EXPECT_EQ(r.produced_bytes, 0u);
  EXPECT_TRUE(r.finished);

  unstuffer.reset();
  r = unstuffer.feed("..x\r\n", out, sizeof out);
  EXPECT_FALSE(r.finished);
  EXPECT_TRUE(unstuffer.has_dot_line());
  unstuffer.reset();
  EXPECT_FALSE(unstuffer.has_dot_line());
}

TEST(DotUnstuffer, StopsWhenOutputIsNearlyFull) {
  dot_unstuffer unstuffer;
  char out[3];
  dot_unstuffer::result r = unstuffer.feed("\n\n\n", out, sizeof out);
  // After one bare LF (two bytes) only one byte is left: too few for the next LF.
  EXPECT_EQ(r.consumed_bytes, 1u);
  EXPECT_EQ(r.produced_bytes, 2u);
}

// Each interesting pattern at every offset around the 64-byte blocks of the fast path.
TEST(DotUnstuffer, PatternsAtEveryBlockOffset) {
  const char* patterns[] = {"\r\n", "\n", "\r\n.", "\r\n..", "\n.", "\r\n.\r\n", "\r", "\r\n.\r"};
  for (const char* pattern : patterns) {
    for (size_t offset = 0; offset < 200; ++offset) {
      std::string input = std::string(offset, 'a') + pattern + std::string(150, 'b') + "\r\n.\r\n";
      outcome expected = reference(input);
      ASSERT_EQ(unstuff_once(input), expected) << testing::PrintToString(input);
      ASSERT_EQ(
          unstuff({input.substr(0, offset + 1), std::string_view(input).substr(offset + 1)}, 4096),
          expected)
          << testing::PrintToString(input);
    }
  }
}

TEST(DotUnstuffer, RandomInputsMatchTheReference) {
  std::mt19937 random(5321);
  const char specials[] = {'\r', '\n', '.'};
  for (int round = 0; round < 3000; ++round) {
    // From dense special bytes (every feeding path) to realistic text with long runs.
    unsigned special_per_1000 = 1 + random() % 400;
    std::string input(random() % 1200, 'a');
    for (char& c : input) {
      if (random() % 1000 < special_per_1000) c = specials[random() % 3];
      else if (random() % 50 == 0) c = '\0';
    }
    if (random() % 2 == 0) input += "\r\n.\r\nNOOP\r\n";
    outcome expected = reference(input);
    ASSERT_EQ(unstuff({input}, 1 << 16), expected) << round;

    std::vector<std::string_view> chunks;
    for (size_t done = 0; done < input.size();) {
      size_t size = std::min(input.size() - done, size_t(random() % 300));
      chunks.push_back(std::string_view(input).substr(done, size));
      done += size;
    }
    size_t out_capacity = 2 + random() % 200;
    ASSERT_EQ(unstuff(chunks, out_capacity), expected) << round << " capacity " << out_capacity;
  }
}

}  // namespace
}  // namespace mailwing::wire
