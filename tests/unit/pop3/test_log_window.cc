// pop3::log_window on a real file. Whether a view came from the window or from a fresh
// pread shows by changing the file underneath: a hit still returns the old bytes.
#include "mailwing/pop3/log_window.hh"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace mailwing::pop3 {
namespace {

class LogWindow : public ::testing::Test {
 protected:
  void SetUp() override {
    char path[] = "/tmp/mailwing-log-window-XXXXXX";
    fd_ = ::mkstemp(path);
    ASSERT_GE(fd_, 0);
    ::unlink(path);
    content_.resize(200 * 1024);
    for (size_t i = 0; i < content_.size(); ++i) content_[i] = static_cast<char>('a' + i % 26);
    ASSERT_EQ(::pwrite(fd_, content_.data(), content_.size(), 0), static_cast<ssize_t>(content_.size()));
  }
  void TearDown() override { ::close(fd_); }

  // Overwrites the file with 'X' bytes; the window keeps what it read before.
  void scribble() {
    std::string x(content_.size(), 'X');
    ASSERT_EQ(::pwrite(fd_, x.data(), x.size(), 0), static_cast<ssize_t>(x.size()));
  }

  std::string view(log_window& window, uint64_t offset, size_t bytes) {
    std::string_view out;
    EXPECT_EQ(window.view(fd_, offset, bytes, out), 0);
    return std::string(out);
  }

  util::block_pool pool_{64 * 1024, 4};
  int fd_ = -1;
  std::string content_;
};

TEST_F(LogWindow, ReturnsTheFileBytes) {
  log_window window(pool_);
  EXPECT_EQ(view(window, 0, 100), content_.substr(0, 100));
  EXPECT_EQ(view(window, 70000, 65536), content_.substr(70000, 65536));
  EXPECT_EQ(view(window, 5, 1), content_.substr(5, 1));
}

TEST_F(LogWindow, SmallReadsAheadThenServesFromMemory) {
  log_window window(pool_);
  EXPECT_EQ(view(window, 0, 1000), content_.substr(0, 1000));
  scribble();
  // Inside the first 16 KiB read: still the old bytes, no pread.
  EXPECT_EQ(view(window, 1000, 1000), content_.substr(1000, 1000));
  EXPECT_EQ(view(window, 15 * 1024, 1024), content_.substr(15 * 1024, 1024));
  // Past it: read again.
  EXPECT_EQ(view(window, 16 * 1024, 10), std::string(10, 'X'));
}

TEST_F(LogWindow, AWalkGrowsTheReadAJumpShrinksIt) {
  log_window window(pool_);
  view(window, 0, 100);              // 16 KiB at 0
  view(window, 16 * 1024, 100);      // sequential: 32 KiB at 16 KiB
  view(window, 48 * 1024, 100);      // sequential: 64 KiB at 48 KiB
  scribble();
  EXPECT_EQ(view(window, 48 * 1024 + 60000, 100), content_.substr(48 * 1024 + 60000, 100));
  view(window, 0, 100);              // a jump back: 16 KiB again
  EXPECT_EQ(view(window, 17 * 1024, 10), std::string(10, 'X'));
}

TEST_F(LogWindow, ReleaseGivesTheBlockBackAndRereads) {
  log_window window(pool_);
  view(window, 0, 100);
  EXPECT_EQ(pool_.blocks_outstanding(), 1u);
  window.release();
  EXPECT_EQ(pool_.blocks_outstanding(), 0u);
  scribble();
  EXPECT_EQ(view(window, 10, 10), std::string(10, 'X'));
}

TEST_F(LogWindow, TheEndOfTheFileIsAnError) {
  log_window window(pool_);
  // A window may end short at the end of the file, as long as the asked bytes are there.
  EXPECT_EQ(view(window, content_.size() - 10, 10), content_.substr(content_.size() - 10));
  std::string_view out;
  EXPECT_EQ(window.view(fd_, content_.size() - 10, 11, out), EIO);
  EXPECT_EQ(window.view(-1, 0, 10, out), EBADF);
}

}  // namespace
}  // namespace mailwing::pop3
