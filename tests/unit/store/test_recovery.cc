// recovery.hh: bringing a data directory to a consistent state at startup — torn log
// tails cut off, journal segments replayed into the logs, the index rebuilt.

#include "mailwing/store/recovery.hh"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "mailwing/store/directory.hh"
#include "mailwing/store/journal.hh"
#include "mailwing/store/log_scan.hh"
#include "store_test_util.hh"

namespace mailwing::store {
namespace {

using namespace testing;  // store test helpers
using ::testing::HasSubstr;

// Releases what a recovered_store holds: the mailboxes (which close their logs) and the
// lock, as the process's exit would.
struct store_guard {
  recovered_store store;
  explicit store_guard(recovered_store recovered) : store(std::move(recovered)) {}
  store_guard(store_guard&& other) noexcept : store(std::move(other.store)) {
    other.store.mailboxes.clear();
    other.store.lock_fd = -1;
  }
  ~store_guard() { close(); }
  void close() {
    store.mailboxes.clear();
    if (store.lock_fd >= 0) ::close(store.lock_fd);
    store.lock_fd = -1;
  }
  mailbox& operator[](size_t id) { return *store.mailboxes.at(id); }
};

const std::vector<std::string> addresses = {"alice@example.test", "bob@example.test",
                                            "carol@example.test"};

class Recovery : public ::testing::Test {
 protected:
  temp_dir dir_;
  std::string data_ = dir_ / "data";
  directory directory_{addresses, 2};

  std::string log_path(const std::string& address) const { return data_ + "/mailboxes/" + address + ".log"; }
  std::string journal_path(uint32_t shard, uint64_t sequence) const {
    return data_ + "/journal/" + journal_segment_name(shard, sequence);
  }
  void make_layout() {
    ASSERT_EQ(::mkdir(data_.c_str(), 0700), 0);
    ASSERT_EQ(::mkdir((data_ + "/mailboxes").c_str(), 0700), 0);
    ASSERT_EQ(::mkdir((data_ + "/journal").c_str(), 0700), 0);
  }
  store_guard recover_quietly() {
    ::testing::internal::CaptureStderr();
    try {
      store_guard guard(recover(data_, directory_));
      stderr_ = ::testing::internal::GetCapturedStderr();
      return guard;
    } catch (...) {
      stderr_ = ::testing::internal::GetCapturedStderr();
      throw;
    }
  }
  std::string stderr_;  // what the last recover_quietly logged
};

// uid 1..count, message payloads of varied sizes.
std::string log_of(uint64_t first, uint64_t last, size_t size = 0) {
  std::string bytes;
  for (uint64_t uid = first; uid <= last; ++uid) {
    bytes += message_record(uid, payload_for(uid, size != 0 ? size : 100 + 37 * uid));
  }
  return bytes;
}

std::string journal_of(const std::string& address, uint64_t first, uint64_t last, size_t size = 0) {
  std::string bytes;
  for (uint64_t uid = first; uid <= last; ++uid) {
    bytes += journal_entry_bytes(address, message_record(uid, payload_for(uid, size != 0 ? size : 100 + 37 * uid)));
  }
  return bytes;
}

TEST_F(Recovery, CreatesTheLayoutInANestedDataDir) {
  data_ = dir_ / "var/lib/mailwing";
  store_guard recovered = recover_quietly();
  EXPECT_TRUE(file_exists(data_ + "/mailboxes"));
  EXPECT_TRUE(file_exists(data_ + "/journal"));
  EXPECT_TRUE(file_exists(data_ + "/spool"));
  EXPECT_TRUE(file_exists(data_ + "/lock"));
  EXPECT_GE(recovered.store.lock_fd, 0);
  ASSERT_EQ(recovered.store.mailboxes.size(), addresses.size());
  for (mailbox_id id = 0; id < addresses.size(); ++id) {
    mailbox& box = recovered[id];
    EXPECT_EQ(box.id, id);
    EXPECT_EQ(box.address, addresses[id]);
    EXPECT_EQ(box.log_path, log_path(addresses[id]));
    EXPECT_GE(box.log_fd, 0);
    EXPECT_EQ(file_size(box.log_path), 0u);
    EXPECT_EQ(box.committed_bytes, 0u);
    EXPECT_EQ(box.reserved_bytes, 0u);
    EXPECT_EQ(box.next_uid, 1u);
    EXPECT_TRUE(box.messages.empty());
  }
  EXPECT_TRUE(list_dir(data_ + "/journal").empty());
}

TEST_F(Recovery, RelativeDataDir) {
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof(cwd)), nullptr);
  ASSERT_EQ(::chdir(dir_.path().c_str()), 0);
  data_ = "rel/data";
  {
    store_guard recovered = recover_quietly();
    EXPECT_TRUE(file_exists(dir_ / "rel/data/mailboxes"));
  }
  ASSERT_EQ(::chdir(cwd), 0);
}

TEST_F(Recovery, CleanLogsBuildTheIndex) {
  make_layout();
  std::string alice = log_of(1, 5);
  alice += tombstone_record(6, {2, 4});
  alice += message_record(7, "Subject: dotted\r\n\r\n.\r\n", record_flag_has_dot_line);
  write_file(log_path(addresses[0]), alice);
  store_guard recovered = recover_quietly();
  mailbox& box = recovered[0];
  EXPECT_EQ(box.committed_bytes, alice.size());
  EXPECT_EQ(box.reserved_bytes, alice.size());
  EXPECT_EQ(box.next_uid, 8u);
  scanned scan = scan_path(box.log_path);
  ASSERT_EQ(box.messages.size(), 6u);
  std::vector<uint64_t> uids;
  size_t record = 0;
  for (const index_entry& entry : box.messages) {
    uids.push_back(entry.uid);
    while (scan.records[record].header.type != record_type::message) ++record;
    EXPECT_EQ(entry.offset, scan.records[record].offset);
    EXPECT_EQ(entry.payload_bytes, scan.records[record].header.payload_bytes);
    EXPECT_EQ(entry.flags, scan.records[record].header.flags);
    ++record;
  }
  EXPECT_EQ(uids, (std::vector<uint64_t>{1, 2, 3, 4, 5, 7}));
  std::vector<bool> deleted;
  for (const index_entry& entry : box.messages) deleted.push_back(entry.deleted);
  EXPECT_EQ(deleted, (std::vector<bool>{false, true, false, true, false, false}));
  // Dead bytes: the two deleted messages' records and the tombstone itself.
  EXPECT_EQ(box.dead_bytes, (scan.records[2].offset - scan.records[1].offset) +
                                (scan.records[4].offset - scan.records[3].offset) +
                                (scan.records[6].offset - scan.records[5].offset));
  EXPECT_EQ(box.messages.back().flags, record_flag_has_dot_line);
  EXPECT_EQ(file_size(box.log_path), alice.size());
  // Nothing was wrong: nothing is logged as dropped.
  EXPECT_THAT(stderr_, ::testing::Not(HasSubstr("torn")));
}

// A tombstone naming a uid the log never had, or one already deleted, is harmless.
TEST_F(Recovery, TombstonesForUnknownOrRepeatedUids) {
  make_layout();
  std::string bob = log_of(1, 2) + tombstone_record(3, {9, 1}) + tombstone_record(4, {1});
  write_file(log_path(addresses[1]), bob);
  store_guard recovered = recover_quietly();
  mailbox& box = recovered[1];
  ASSERT_EQ(box.messages.size(), 2u);
  EXPECT_TRUE(box.messages[0].deleted);
  EXPECT_FALSE(box.messages[1].deleted);
  EXPECT_EQ(box.next_uid, 5u);
}

TEST_F(Recovery, TornTailIsTruncatedAndLogged) {
  make_layout();
  std::string good = log_of(1, 4);
  std::string torn = good + message_record(5, payload_for(5, 500)).substr(0, 300);
  write_file(log_path(addresses[1]), torn);
  store_guard recovered = recover_quietly();
  mailbox& box = recovered[1];
  EXPECT_EQ(file_size(box.log_path), good.size());
  EXPECT_EQ(read_file(box.log_path), good);
  EXPECT_EQ(box.committed_bytes, good.size());
  EXPECT_EQ(box.reserved_bytes, good.size());
  EXPECT_EQ(box.messages.size(), 4u);
  EXPECT_EQ(box.next_uid, 5u);
  EXPECT_THAT(stderr_, HasSubstr(addresses[1]));
  EXPECT_THAT(stderr_, HasSubstr("torn tail"));
  EXPECT_THAT(stderr_, HasSubstr("dropped 300 bytes at offset " + std::to_string(good.size())));
  EXPECT_THAT(stderr_, HasSubstr("record runs past the end of the file"));
}

TEST_F(Recovery, EveryKindOfTornTail) {
  make_layout();
  std::string good = log_of(1, 3);
  std::string next = message_record(4, payload_for(4, 64));
  std::string flipped = next;
  flipped[record_header_bytes + 10] ^= 0x20;
  std::vector<std::string> tails = {next.substr(0, 1), next.substr(0, 39), next.substr(0, 40),
                                    next.substr(0, next.size() - 1), flipped,
                                    std::string(8192, '\0'), flipped + message_record(5, "valid")};
  for (const std::string& tail : tails) {
    write_file(log_path(addresses[0]), good + tail);
    {
      store_guard recovered = recover_quietly();
      EXPECT_EQ(file_size(log_path(addresses[0])), good.size()) << tail.size();
      EXPECT_EQ(recovered[0].messages.size(), 3u);
      EXPECT_EQ(recovered[0].next_uid, 4u);
    }
  }
}

TEST_F(Recovery, GarbageOnlyLogIsEmptied) {
  make_layout();
  write_file(log_path(addresses[2]), "this is not a mailbox log at all, and it is longer than a header\n");
  store_guard recovered = recover_quietly();
  EXPECT_EQ(file_size(log_path(addresses[2])), 0u);
  EXPECT_EQ(recovered[2].committed_bytes, 0u);
  EXPECT_EQ(recovered[2].next_uid, 1u);
  EXPECT_THAT(stderr_, HasSubstr("bad magic"));
}

// The crash: the journal (synced) holds uid 1..N, the log (not yet synced) only 1..K.
TEST_F(Recovery, JournalReplayAppendsWhatTheLogLacks) {
  make_layout();
  const uint64_t total = 12;
  for (uint64_t kept : {uint64_t{0}, uint64_t{1}, uint64_t{7}, total}) {
    SCOPED_TRACE("log holds 1.." + std::to_string(kept));
    std::string full = log_of(1, total);
    write_file(log_path(addresses[0]), log_of(1, kept));
    write_file(journal_path(0, 1), journal_of(addresses[0], 1, total));
    {
      store_guard recovered = recover_quietly();
      mailbox& box = recovered[0];
      EXPECT_EQ(read_file(box.log_path), full);
      EXPECT_EQ(box.committed_bytes, full.size());
      EXPECT_EQ(box.reserved_bytes, full.size());
      EXPECT_EQ(box.next_uid, total + 1);
      ASSERT_EQ(box.messages.size(), total);
      scanned scan = scan_path(box.log_path);
      EXPECT_EQ(scan.result.problem, "");
      for (uint64_t i = 0; i < total; ++i) {
        EXPECT_EQ(box.messages[i].uid, i + 1);
        EXPECT_EQ(box.messages[i].offset, scan.records[i].offset);
        EXPECT_EQ(box.messages[i].payload_bytes, scan.records[i].header.payload_bytes);
        EXPECT_FALSE(box.messages[i].deleted);
      }
      EXPECT_TRUE(list_dir(data_ + "/journal").empty()) << "segment not deleted";
      if (kept < total) {
        EXPECT_THAT(stderr_, HasSubstr("replayed " + std::to_string(total - kept)));
      }
    }
  }
}

// The log holds a torn copy of the last records: cut, then replayed whole.
TEST_F(Recovery, JournalReplayAfterATornLogTail) {
  make_layout();
  std::string full = log_of(1, 6);
  std::string prefix = log_of(1, 4);
  for (size_t torn_bytes : {size_t{1}, size_t{39}, size_t{41}, full.size() - prefix.size() - 1}) {
    write_file(log_path(addresses[1]), full.substr(0, prefix.size() + torn_bytes));
    write_file(journal_path(1, 3), journal_of(addresses[1], 3, 6));
    store_guard recovered = recover_quietly();
    EXPECT_EQ(read_file(log_path(addresses[1])), full) << torn_bytes;
    EXPECT_EQ(recovered[1].messages.size(), 6u);
    EXPECT_EQ(recovered[1].next_uid, 7u);
    EXPECT_EQ(recovered[1].committed_bytes, full.size());
  }
}

// A flipped byte inside a record the journal also holds: the log is cut there and the
// journal restores that record and everything after it.
TEST_F(Recovery, JournalRepairsACorruptRecord) {
  make_layout();
  std::string full = log_of(1, 5);
  std::string damaged = full;
  scanned scan = scan_bytes_of(full);
  damaged[scan.records[2].offset + record_header_bytes + 1] ^= 0x01;
  write_file(log_path(addresses[0]), damaged);
  write_file(journal_path(0, 1), journal_of(addresses[0], 1, 5));
  store_guard recovered = recover_quietly();
  EXPECT_EQ(read_file(log_path(addresses[0])), full);
  EXPECT_EQ(recovered[0].messages.size(), 5u);
}

TEST_F(Recovery, ReplaySkipsUidsAlreadyInTheLog) {
  make_layout();
  std::string full = log_of(1, 5);
  write_file(log_path(addresses[2]), full);
  write_file(journal_path(0, 1), journal_of(addresses[2], 2, 5));
  store_guard recovered = recover_quietly();
  EXPECT_EQ(read_file(log_path(addresses[2])), full);
  EXPECT_EQ(recovered[2].messages.size(), 5u);
  EXPECT_EQ(recovered[2].next_uid, 6u);
  EXPECT_TRUE(list_dir(data_ + "/journal").empty());
  EXPECT_THAT(stderr_, ::testing::Not(HasSubstr("replayed")));
}

// Several segments and shards, entries for several mailboxes interleaved.
TEST_F(Recovery, ReplaysEverySegmentInOrder) {
  make_layout();
  write_file(log_path(addresses[0]), log_of(1, 1));
  // Shard 0 owns mailboxes 0 and 2; shard 1 owns mailbox 1.
  write_file(journal_path(0, 1), journal_of(addresses[0], 1, 3) + journal_of(addresses[2], 1, 2));
  write_file(journal_path(0, 2), journal_of(addresses[2], 3, 3) + journal_of(addresses[0], 4, 6));
  write_file(journal_path(0, 0x10), journal_of(addresses[0], 7, 7));
  write_file(journal_path(1, 5), journal_of(addresses[1], 1, 4));
  write_file(data_ + "/journal/notes.txt", "not a segment");
  store_guard recovered = recover_quietly();
  EXPECT_EQ(read_file(log_path(addresses[0])), log_of(1, 7));
  EXPECT_EQ(read_file(log_path(addresses[1])), log_of(1, 4));
  EXPECT_EQ(read_file(log_path(addresses[2])), log_of(1, 3));
  EXPECT_EQ(recovered[0].next_uid, 8u);
  EXPECT_EQ(recovered[1].next_uid, 5u);
  EXPECT_EQ(recovered[2].next_uid, 4u);
  // The segments are gone; a file that is not one is left alone.
  EXPECT_EQ(list_dir(data_ + "/journal"), std::vector<std::string>{"notes.txt"});
}

// A torn last journal entry was never acknowledged: the entries before it are replayed.
TEST_F(Recovery, TornJournalTailReplaysTheGoodEntries) {
  make_layout();
  std::string journal = journal_of(addresses[0], 1, 4);
  std::string last = journal_entry_bytes(addresses[0], message_record(5, payload_for(5, 300)));
  for (size_t cut : {size_t{1}, size_t{16}, size_t{60}, last.size() - 1}) {
    write_file(log_path(addresses[0]), "");
    write_file(journal_path(0, 9), journal + last.substr(0, cut));
    store_guard recovered = recover_quietly();
    EXPECT_EQ(read_file(log_path(addresses[0])), log_of(1, 4)) << cut;
    EXPECT_EQ(recovered[0].next_uid, 5u);
    EXPECT_THAT(stderr_, HasSubstr("stopped at offset " + std::to_string(journal.size())));
    EXPECT_TRUE(list_dir(data_ + "/journal").empty());
  }
}

// Mail journaled for a user who is no longer configured still reaches that user's log.
TEST_F(Recovery, ReplayIntoAnOrphanMailbox) {
  make_layout();
  std::string gone = "gone@example.test";
  write_file(journal_path(0, 1), journal_of(addresses[0], 1, 2) + journal_of(gone, 1, 3) +
                                     journal_of(addresses[0], 3, 3));
  store_guard recovered = recover_quietly();
  EXPECT_EQ(recovered.store.mailboxes.size(), addresses.size());
  EXPECT_EQ(read_file(log_path(gone)), log_of(1, 3));
  EXPECT_EQ(read_file(log_path(addresses[0])), log_of(1, 3));
  EXPECT_TRUE(list_dir(data_ + "/journal").empty());
}

// An orphan whose log already holds part of the journal: the uid rule applies to it too.
TEST_F(Recovery, OrphanMailboxWithAnExistingLog) {
  make_layout();
  std::string gone = "gone@example.test";
  write_file(log_path(gone), log_of(1, 2) + "torn");
  write_file(journal_path(1, 1), journal_of(gone, 1, 4));
  store_guard recovered = recover_quietly();
  EXPECT_EQ(read_file(log_path(gone)), log_of(1, 4));
}

TEST_F(Recovery, ReplayedTombstonesMarkMessagesDeleted) {
  make_layout();
  write_file(log_path(addresses[1]), log_of(1, 3));
  write_file(journal_path(1, 1),
             journal_of(addresses[1], 1, 3) +
                 journal_entry_bytes(addresses[1], tombstone_record(4, {1, 3})) +
                 journal_of(addresses[1], 5, 5));
  store_guard recovered = recover_quietly();
  mailbox& box = recovered[1];
  ASSERT_EQ(box.messages.size(), 4u);
  EXPECT_TRUE(box.messages[0].deleted);
  EXPECT_FALSE(box.messages[1].deleted);
  EXPECT_TRUE(box.messages[2].deleted);
  EXPECT_FALSE(box.messages[3].deleted);
  EXPECT_EQ(box.messages[3].uid, 5u);
  EXPECT_EQ(box.next_uid, 6u);
  scanned scan = scan_path(box.log_path);
  EXPECT_EQ(scan.result.problem, "");
  ASSERT_EQ(scan.records.size(), 5u);
  EXPECT_EQ(scan.records[3].header.type, record_type::tombstone);
  EXPECT_EQ(scan.tombstones[3], tombstone_payload({1, 3}));
}

// Recovering twice gives the same state: the first run left nothing to do.
TEST_F(Recovery, IsIdempotent) {
  make_layout();
  write_file(log_path(addresses[0]), log_of(1, 2) + "xx");
  write_file(journal_path(0, 1), journal_of(addresses[0], 1, 5));
  std::vector<index_entry> first;
  {
    store_guard recovered = recover_quietly();
    first = recovered[0].messages;
  }
  std::string after_first = read_file(log_path(addresses[0]));
  store_guard recovered = recover_quietly();
  EXPECT_EQ(read_file(log_path(addresses[0])), after_first);
  ASSERT_EQ(recovered[0].messages.size(), first.size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(recovered[0].messages[i].uid, first[i].uid);
    EXPECT_EQ(recovered[0].messages[i].offset, first[i].offset);
  }
  EXPECT_THAT(stderr_, ::testing::Not(HasSubstr("torn")));
  EXPECT_THAT(stderr_, ::testing::Not(HasSubstr("replayed")));
}

// The returned log descriptors are open for appending at committed_bytes.
TEST_F(Recovery, LogDescriptorsAreUsable) {
  make_layout();
  write_file(log_path(addresses[0]), log_of(1, 2));
  store_guard recovered = recover_quietly();
  mailbox& box = recovered[0];
  std::string next = message_record(box.next_uid, "appended");
  ASSERT_EQ(::pwrite(box.log_fd, next.data(), next.size(), static_cast<off_t>(box.committed_bytes)),
            static_cast<ssize_t>(next.size()));
  EXPECT_EQ(read_file(box.log_path), log_of(1, 2) + next);
}

TEST_F(Recovery, SecondRecoverWhileLockedThrowsInUse) {
  store_guard first = recover_quietly();
  ASSERT_GE(first.store.lock_fd, 0);
  try {
    recover_quietly();
    FAIL() << "a second recover() succeeded while the first held the lock";
  } catch (const std::runtime_error& error) {
    EXPECT_THAT(error.what(), HasSubstr("in use"));
    EXPECT_THAT(error.what(), HasSubstr(data_));
  }
  // Once the first process is gone, the store can be used again.
  first.close();
  EXPECT_NO_THROW({ store_guard second = recover_quietly(); });
}

// Another process's flock (not just ours) is honoured.
TEST_F(Recovery, LockHeldByAnotherDescriptor) {
  make_layout();
  int fd = ::open((data_ + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  EXPECT_THROW(recover_quietly(), std::runtime_error);
  ::close(fd);
}

// A failed recover() must not leave descriptors behind (the server exits, but a test
// harness or an embedding program may retry). (Found leaking the lock descriptor; fixed.)
TEST_F(Recovery, FailedRecoverLeaksNoDescriptors) {
  store_guard first = recover_quietly();
  auto count_fds = [] { return list_dir("/proc/self/fd").size(); };
  size_t before = count_fds();
  for (int i = 0; i < 3; ++i) EXPECT_THROW(recover_quietly(), std::runtime_error);
  EXPECT_EQ(count_fds(), before);
}

// A recover() that fails after taking the lock must let go of it, or the same process
// can never recover this data_dir again. (Found failing with "in use by another mailwing
// process" on the retry; fixed.)
TEST_F(Recovery, RetryAfterAFailureIsNotLockedOut) {
  make_layout();
  // A directory where alice's log should be: open(O_RDWR) fails with EISDIR.
  ASSERT_EQ(::mkdir(log_path(addresses[0]).c_str(), 0700), 0);
  EXPECT_THROW(recover_quietly(), std::runtime_error);
  ASSERT_EQ(::rmdir(log_path(addresses[0]).c_str()), 0);
  try {
    store_guard recovered = recover_quietly();
    EXPECT_EQ(recovered.store.mailboxes.size(), addresses.size());
  } catch (const std::runtime_error& error) {
    ADD_FAILURE() << "retry failed: " << error.what();
  }
}

// ---- index files (<address>.idx): a cache of the index for a durable log prefix ----

std::string index_path(const std::string& log) { return log.substr(0, log.size() - 4) + ".idx"; }

// The index recovery builds, compared with the log it describes.
void expect_index_matches_log(mailbox& box) {
  scanned scan = scan_path(box.log_path);
  ASSERT_EQ(scan.result.problem, "");
  EXPECT_EQ(box.committed_bytes, scan.result.valid_bytes);
  std::vector<uint64_t> deleted;
  size_t message = 0;
  uint64_t next_uid = 1;
  for (size_t i = 0; i < scan.records.size(); ++i) {
    const scanned_record& record = scan.records[i];
    next_uid = record.header.uid + 1;
    if (record.header.type == record_type::tombstone) {
      for (size_t at = 0; at + 8 <= scan.tombstones[i].size(); at += 8) {
        deleted.push_back(get_le<uint64_t>(scan.tombstones[i], at));
      }
      continue;
    }
    ASSERT_LT(message, box.messages.size());
    EXPECT_EQ(box.messages[message].uid, record.header.uid);
    EXPECT_EQ(box.messages[message].offset, record.offset);
    EXPECT_EQ(box.messages[message].payload_bytes, record.header.payload_bytes);
    EXPECT_EQ(box.messages[message].flags, record.header.flags);
    ++message;
  }
  EXPECT_EQ(box.messages.size(), message);
  EXPECT_EQ(box.next_uid, next_uid);
  for (const index_entry& entry : box.messages) {
    bool named = std::find(deleted.begin(), deleted.end(), entry.uid) != deleted.end();
    EXPECT_EQ(entry.deleted, named) << "uid " << entry.uid;
  }
}

TEST_F(Recovery, WritesIndexFilesAndUsesThemWithTheLogsTail) {
  make_layout();
  write_file(log_path(addresses[0]), log_of(1, 4) + tombstone_record(5, {2}));
  {
    store_guard recovered = recover_quietly();
    expect_index_matches_log(recovered[0]);
  }
  EXPECT_TRUE(file_exists(index_path(log_path(addresses[0]))));
  // Records appended after the index was written: read from the log's tail.
  std::string more = log_of(6, 8) + tombstone_record(9, {1, 7}) + log_of(10, 10);
  std::string log = read_file(log_path(addresses[0])) + more;
  write_file(log_path(addresses[0]), log);
  store_guard recovered = recover_quietly();
  expect_index_matches_log(recovered[0]);
  EXPECT_EQ(recovered[0].messages.size(), 8u);
  EXPECT_EQ(recovered[0].next_uid, 11u);
}

// An index file that does not describe the log any more is rebuilt from the log.
TEST_F(Recovery, IndexFileThatDoesNotMatchTheLogIsIgnored) {
  make_layout();
  std::string path = log_path(addresses[1]);
  auto recover_and_check = [&](const char* what) {
    SCOPED_TRACE(what);
    store_guard recovered = recover_quietly();
    expect_index_matches_log(recovered[1]);
  };
  write_file(path, log_of(1, 6));
  recover_and_check("first");
  std::string good_index = read_file(index_path(path));

  // A shorter log (lost its tail).
  write_file(path, log_of(1, 3));
  write_file(index_path(path), good_index);
  recover_and_check("shorter log");

  // A different log of the same size: other payloads and uids.
  write_file(path, log_of(101, 106));
  write_file(index_path(path), good_index);
  recover_and_check("different log");

  // Same records but the last one replaced by another of the same size.
  std::string replaced = log_of(1, 5) + message_record(6, payload_for(60, 100 + 37 * 6));
  write_file(path, replaced);
  write_file(index_path(path), good_index);
  recover_and_check("last record replaced");

  // A damaged index file.
  write_file(path, log_of(1, 6));
  for (size_t at : {size_t{0}, size_t{9}, size_t{20}, size_t{60}, good_index.size() - 1}) {
    std::string damaged = good_index;
    damaged[at] ^= 0x01;
    write_file(index_path(path), damaged);
    recover_and_check("damaged index");
  }
  write_file(index_path(path), good_index.substr(0, good_index.size() - 5));
  recover_and_check("truncated index");
  write_file(index_path(path), "");
  recover_and_check("empty index");
}

// A torn tail after the indexed prefix is cut off as without an index.
TEST_F(Recovery, TornTailAfterTheIndexedPrefix) {
  make_layout();
  std::string path = log_path(addresses[0]);
  write_file(path, log_of(1, 3));
  { store_guard recovered = recover_quietly(); }
  std::string good = log_of(1, 5);
  write_file(path, good + message_record(6, "torn").substr(0, 30));
  store_guard recovered = recover_quietly();
  EXPECT_EQ(read_file(path), good);
  expect_index_matches_log(recovered[0]);
  EXPECT_THAT(stderr_, HasSubstr("torn tail"));
}

// Journal replay on top of an indexed log, then a restart that uses the new index.
TEST_F(Recovery, ReplayOnTopOfAnIndexedLog) {
  make_layout();
  write_file(log_path(addresses[2]), log_of(1, 2));
  { store_guard recovered = recover_quietly(); }
  write_file(journal_path(0, 1), journal_of(addresses[2], 1, 5) +
                                     journal_entry_bytes(addresses[2], tombstone_record(6, {4})));
  {
    store_guard recovered = recover_quietly();
    EXPECT_EQ(read_file(log_path(addresses[2])), log_of(1, 5) + tombstone_record(6, {4}));
    expect_index_matches_log(recovered[2]);
  }
  store_guard recovered = recover_quietly();
  expect_index_matches_log(recovered[2]);
  EXPECT_TRUE(recovered[2].messages[3].deleted);
}

TEST_F(Recovery, RemovesInterruptedCompactions) {
  make_layout();
  write_file(log_path(addresses[0]), log_of(1, 2));
  write_file(log_path(addresses[0]) + ".compact", "partial copy");
  store_guard recovered = recover_quietly();
  EXPECT_FALSE(file_exists(log_path(addresses[0]) + ".compact"));
  EXPECT_EQ(read_file(log_path(addresses[0])), log_of(1, 2));
}

TEST_F(Recovery, UnusableDataDirThrows) {
  write_file(dir_ / "file", "x");
  data_ = dir_ / "file/data";
  EXPECT_THROW(recover_quietly(), std::runtime_error);
}

}  // namespace
}  // namespace mailwing::store
