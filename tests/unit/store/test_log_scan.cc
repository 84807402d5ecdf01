// log_scan.hh: reading a mailbox log from the start and finding where a torn tail starts
// (record.hh's recovery rule), on real files.

#include "mailwing/store/log_scan.hh"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "store_test_util.hh"

namespace mailwing::store {
namespace {

using namespace testing;  // store test helpers

class LogScan : public ::testing::Test {
 protected:
  temp_dir dir_;
  std::string path_ = dir_ / "box.log";

  scanned scan_bytes(std::string_view bytes) {
    write_file(path_, bytes);
    return scan_path(path_);
  }
};

// Three good records of different shapes; returns their bytes and offsets.
struct good_log {
  std::string bytes;
  std::vector<uint64_t> offsets;
  std::vector<std::string> payloads;
};

good_log three_records() {
  good_log log;
  for (uint64_t uid = 1; uid <= 3; ++uid) {
    std::string payload = payload_for(uid, uid == 2 ? 0 : 300 * uid);
    log.offsets.push_back(log.bytes.size());
    log.payloads.push_back(payload);
    log.bytes += message_record(uid, payload, uid == 3 ? record_flag_has_dot_line : 0, 1000 + uid);
  }
  return log;
}

void expect_clean(const scanned& scan, uint64_t size, uint64_t records) {
  EXPECT_EQ(scan.result.error, 0);
  EXPECT_EQ(scan.result.problem, "");
  EXPECT_EQ(scan.result.file_bytes, size);
  EXPECT_EQ(scan.result.valid_bytes, size);
  EXPECT_EQ(scan.result.records, records);
  EXPECT_EQ(scan.records.size(), records);
}

// Scanning stopped at `valid` with `records` good records and a reason.
void expect_torn(const scanned& scan, uint64_t file_size_bytes, uint64_t valid, uint64_t records) {
  EXPECT_EQ(scan.result.error, 0);
  EXPECT_NE(scan.result.problem, "");
  EXPECT_EQ(scan.result.file_bytes, file_size_bytes);
  EXPECT_EQ(scan.result.valid_bytes, valid);
  EXPECT_EQ(scan.result.records, records);
  EXPECT_EQ(scan.records.size(), records);
}

TEST_F(LogScan, EmptyFile) {
  scanned scan = scan_bytes("");
  expect_clean(scan, 0, 0);
}

TEST_F(LogScan, CleanLogVisitsEveryRecordInOrder) {
  good_log log = three_records();
  scanned scan = scan_bytes(log.bytes);
  expect_clean(scan, log.bytes.size(), 3);
  for (size_t i = 0; i < scan.records.size(); ++i) {
    const scanned_record& record = scan.records[i];
    EXPECT_EQ(record.offset, log.offsets[i]);
    EXPECT_EQ(record.header.uid, i + 1);
    EXPECT_EQ(record.header.type, record_type::message);
    EXPECT_EQ(record.header.arrival_ms, 1001 + i);
    EXPECT_EQ(record.header.payload_bytes, log.payloads[i].size());
    EXPECT_EQ(record.header.payload_crc32c, crc_of(log.payloads[i]));
    // Message payloads are checked, not shown.
    EXPECT_EQ(scan.tombstones[i], "");
  }
  EXPECT_EQ(scan.records[2].header.flags, record_flag_has_dot_line);
  EXPECT_EQ(scan.records[0].header.flags, 0);
}

// Payloads larger than the scanner's read chunk (1 MiB) are checked across chunks.
TEST_F(LogScan, LargePayloadsAcrossReadChunks) {
  std::string bytes;
  std::vector<size_t> sizes = {(1u << 20) - 40, 1u << 20, (1u << 20) + 1, (5u << 20) / 2, 17};
  for (size_t i = 0; i < sizes.size(); ++i) bytes += message_record(i + 1, payload_for(i + 1, sizes[i]));
  scanned scan = scan_bytes(bytes);
  expect_clean(scan, bytes.size(), sizes.size());

  // A flipped byte deep in the third chunk of the big one is still found.
  uint64_t big_offset = scan.records[3].offset;
  std::string damaged = bytes;
  damaged[big_offset + record_header_bytes + (2u << 20) + 12345] ^= 0x01;
  scanned torn = scan_bytes(damaged);
  expect_torn(torn, damaged.size(), big_offset, 3);
  EXPECT_EQ(torn.result.problem, "bad payload checksum");
}

TEST_F(LogScan, ManySmallRecords) {
  std::string bytes;
  for (uint64_t uid = 1; uid <= 5000; ++uid) bytes += message_record(uid, payload_for(uid, uid % 97));
  scanned scan = scan_bytes(bytes);
  expect_clean(scan, bytes.size(), 5000);
  for (size_t i = 0; i < scan.records.size(); ++i) ASSERT_EQ(scan.records[i].header.uid, i + 1);
}

TEST_F(LogScan, TruncatedHeaderAtEveryLength) {
  good_log log = three_records();
  std::string next = message_record(4, "fourth");
  for (size_t length = 1; length < record_header_bytes; ++length) {
    std::string bytes = log.bytes + next.substr(0, length);
    scanned scan = scan_bytes(bytes);
    SCOPED_TRACE("header length " + std::to_string(length));
    expect_torn(scan, bytes.size(), log.bytes.size(), 3);
    EXPECT_EQ(scan.result.problem, "truncated record header");
  }
}

// A header alone, or a header with part of its payload: the record runs past the end.
TEST_F(LogScan, TruncatedPayloadAtEveryLength) {
  good_log log = three_records();
  std::string payload = payload_for(4, 200);
  std::string next = message_record(4, payload);
  for (size_t length = record_header_bytes; length < next.size(); ++length) {
    std::string bytes = log.bytes + next.substr(0, length);
    scanned scan = scan_bytes(bytes);
    SCOPED_TRACE("record length " + std::to_string(length));
    expect_torn(scan, bytes.size(), log.bytes.size(), 3);
    EXPECT_EQ(scan.result.problem, "record runs past the end of the file");
  }
}

TEST_F(LogScan, TruncatedFirstRecord) {
  std::string record = message_record(1, payload_for(1, 64));
  for (size_t length = 1; length < record.size(); ++length) {
    scanned scan = scan_bytes(record.substr(0, length));
    expect_torn(scan, length, 0, 0);
  }
}

TEST_F(LogScan, FlippedPayloadByteIsBadPayloadChecksum) {
  good_log log = three_records();
  std::string payload = payload_for(4, 128);
  std::string next = message_record(4, payload);
  for (size_t at = 0; at < payload.size(); ++at) {
    std::string bytes = log.bytes + next;
    bytes[log.bytes.size() + record_header_bytes + at] ^= 0x40;
    scanned scan = scan_bytes(bytes);
    SCOPED_TRACE("payload byte " + std::to_string(at));
    expect_torn(scan, bytes.size(), log.bytes.size(), 3);
    EXPECT_EQ(scan.result.problem, "bad payload checksum");
  }
}

TEST_F(LogScan, FlippedHeaderByteStopsTheScan) {
  good_log log = three_records();
  std::string next = message_record(4, "payload");
  for (size_t at = 0; at < record_header_bytes; ++at) {
    std::string bytes = log.bytes + next;
    bytes[log.bytes.size() + at] ^= 0x04;
    scanned scan = scan_bytes(bytes);
    SCOPED_TRACE("header byte " + std::to_string(at));
    expect_torn(scan, bytes.size(), log.bytes.size(), 3);
    EXPECT_EQ(scan.result.problem, at < 4 ? "bad magic" : "bad header checksum");
  }
}

TEST_F(LogScan, UnknownRecordTypeStopsTheScan) {
  good_log log = three_records();
  std::string bytes = log.bytes + raw_header(7, 0, 4, 0, 0, crc_of(""));
  scanned scan = scan_bytes(bytes);
  expect_torn(scan, bytes.size(), log.bytes.size(), 3);
  EXPECT_EQ(scan.result.problem, "unknown record type");
}

TEST_F(LogScan, ZerosAppended) {
  good_log log = three_records();
  // Shorter and longer than a header: preallocated or zero-filled blocks after a crash.
  for (size_t zeros : {1u, 39u, 40u, 41u, 4096u, 1u << 20}) {
    std::string bytes = log.bytes + std::string(zeros, '\0');
    scanned scan = scan_bytes(bytes);
    SCOPED_TRACE("zeros " + std::to_string(zeros));
    expect_torn(scan, bytes.size(), log.bytes.size(), 3);
  }
}

TEST_F(LogScan, GarbageAppended) {
  good_log log = three_records();
  std::mt19937 random(12345);
  for (int round = 0; round < 50; ++round) {
    std::string garbage(1 + random() % 3000, '\0');
    for (char& c : garbage) c = static_cast<char>(random());
    std::string bytes = log.bytes + garbage;
    scanned scan = scan_bytes(bytes);
    SCOPED_TRACE("round " + std::to_string(round));
    expect_torn(scan, bytes.size(), log.bytes.size(), 3);
  }
}

// A header claiming an absurd payload size must not make the scanner read or allocate it.
TEST_F(LogScan, HugePayloadSizeRunsPastTheEnd) {
  good_log log = three_records();
  std::string bytes = log.bytes + raw_header(1, 0, 4, 0, UINT64_MAX - 10, 0) + "tail";
  scanned scan = scan_bytes(bytes);
  expect_torn(scan, bytes.size(), log.bytes.size(), 3);
  EXPECT_EQ(scan.result.problem, "record runs past the end of the file");
}

// The rule keeps nothing after the first bad record, even records that are valid.
TEST_F(LogScan, ValidRecordAfterACorruptOneIsNotKept) {
  good_log log = three_records();
  std::string bad = message_record(4, "this payload gets damaged");
  bad[record_header_bytes + 3] ^= 0x01;
  std::string after = message_record(5, "a perfectly good record") + message_record(6, "another");
  std::string bytes = log.bytes + bad + after;
  scanned scan = scan_bytes(bytes);
  expect_torn(scan, bytes.size(), log.bytes.size(), 3);
  for (const scanned_record& record : scan.records) EXPECT_LE(record.header.uid, 3u);

  // The same with a torn header in the middle.
  bytes = log.bytes + message_record(4, "x").substr(0, 20) + after;
  scan = scan_bytes(bytes);
  expect_torn(scan, bytes.size(), log.bytes.size(), 3);

  // And with a corrupt first record: nothing at all is kept.
  bytes = bad + log.bytes;
  scan = scan_bytes(bytes);
  expect_torn(scan, bytes.size(), 0, 0);
}

TEST_F(LogScan, TombstonePayloadsArePassedToTheVisitor) {
  std::string bytes = message_record(1, "one") + message_record(2, "two") + message_record(3, "three");
  bytes += tombstone_record(4, {1, 3});
  bytes += message_record(5, "five");
  bytes += tombstone_record(6, {});
  bytes += tombstone_record(7, {5, 2, 0xFFFFFFFFFFFFFFFFull});
  scanned scan = scan_bytes(bytes);
  expect_clean(scan, bytes.size(), 7);
  ASSERT_EQ(scan.records.size(), 7u);
  EXPECT_EQ(scan.records[3].header.type, record_type::tombstone);
  EXPECT_EQ(scan.tombstones[3], tombstone_payload({1, 3}));
  EXPECT_EQ(scan.tombstones[4], "");
  EXPECT_EQ(scan.records[5].header.type, record_type::tombstone);
  EXPECT_EQ(scan.tombstones[5], "");
  EXPECT_EQ(scan.tombstones[6], tombstone_payload({5, 2, 0xFFFFFFFFFFFFFFFFull}));
  EXPECT_EQ(scan.tombstones[0], "");
}

// A tombstone is a list of 8-byte uids: any other length is corruption.
TEST_F(LogScan, TombstoneWithARaggedPayloadIsCorrupt) {
  std::string bytes = message_record(1, "one");
  std::string ragged = "0123456789AB";  // 12 bytes
  std::string record = raw_header(2, 0, 2, 0, ragged.size(), crc_of(ragged)) + ragged;
  std::string all = bytes + record + message_record(3, "three");
  scanned scan = scan_bytes(all);
  expect_torn(scan, all.size(), bytes.size(), 1);
}

TEST_F(LogScan, TornTombstone) {
  std::string bytes = message_record(1, "one");
  std::string tombstone = tombstone_record(2, {1});
  for (size_t length = 1; length < tombstone.size(); ++length) {
    std::string all = bytes + tombstone.substr(0, length);
    scanned scan = scan_bytes(all);
    expect_torn(scan, all.size(), bytes.size(), 1);
  }
}

TEST_F(LogScan, ReadsFromOffsetZeroWhateverTheFilePosition) {
  good_log log = three_records();
  write_file(path_, log.bytes);
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::lseek(fd, 100, SEEK_SET), 100);
  scanned scan = scan_fd(fd);
  ::close(fd);
  expect_clean(scan, log.bytes.size(), 3);
}

// Scanning from a record boundary (what an index file's log prefix gives).
TEST_F(LogScan, StartOffset) {
  good_log log = three_records();
  write_file(path_, log.bytes + message_record(4, "four"));
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  for (size_t first = 0; first < 4; ++first) {
    uint64_t start = first < 3 ? log.offsets[first] : log.bytes.size();
    scanned scan;
    scan.result = scan_log(fd, [&scan](const scanned_record& record, std::string_view) {
      scan.records.push_back(record);
    }, start);
    EXPECT_EQ(scan.result.problem, "");
    EXPECT_EQ(scan.result.valid_bytes, log.bytes.size() + record_header_bytes + 4);
    ASSERT_EQ(scan.records.size(), 4 - first);
    EXPECT_EQ(scan.records[0].header.uid, first + 1);
    EXPECT_EQ(scan.records[0].offset, start);
  }
  // At the end: nothing to read, nothing wrong.
  scanned at_end;
  at_end.result = scan_log(fd, [&at_end](const scanned_record& record, std::string_view) {
    at_end.records.push_back(record);
  }, log.bytes.size() + record_header_bytes + 4);
  EXPECT_EQ(at_end.result.problem, "");
  EXPECT_TRUE(at_end.records.empty());
  EXPECT_EQ(at_end.result.valid_bytes, at_end.result.file_bytes);
  // Not at a boundary: a bad header there ends the scan at the start offset.
  scanned middle;
  middle.result = scan_log(fd, [&middle](const scanned_record& record, std::string_view) {
    middle.records.push_back(record);
  }, log.offsets[1] + 3);
  EXPECT_NE(middle.result.problem, "");
  EXPECT_TRUE(middle.records.empty());
  EXPECT_EQ(middle.result.valid_bytes, log.offsets[1] + 3);
  ::close(fd);
}

// A torn tail found from a start offset is reported where it is.
TEST_F(LogScan, StartOffsetWithATornTail) {
  good_log log = three_records();
  std::string bytes = log.bytes + message_record(4, "four").substr(0, 41);
  write_file(path_, bytes);
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  scanned scan;
  scan.result = scan_log(fd, [&scan](const scanned_record& record, std::string_view) {
    scan.records.push_back(record);
  }, log.offsets[2]);
  ::close(fd);
  EXPECT_EQ(scan.records.size(), 1u);
  EXPECT_EQ(scan.result.valid_bytes, log.bytes.size());
  EXPECT_EQ(scan.result.file_bytes, bytes.size());
  EXPECT_EQ(scan.result.problem, "record runs past the end of the file");
}

TEST_F(LogScan, UnreadableDescriptorReportsTheError) {
  scanned scan = scan_fd(-1);
  EXPECT_EQ(scan.result.error, EBADF);
  EXPECT_NE(scan.result.problem, "");
  EXPECT_EQ(scan.records.size(), 0u);
}

// A directory can be fstat-ed but not read: an error, not a torn tail.
TEST_F(LogScan, ReadErrorIsReportedAsError) {
  int fd = ::open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  scanned scan = scan_fd(fd);
  ::close(fd);
  // A directory's st_size is often 4096; reading it fails with EISDIR.
  if (scan.result.file_bytes >= record_header_bytes) {
    EXPECT_EQ(scan.result.error, EISDIR);
  }
  EXPECT_EQ(scan.records.size(), 0u);
}

}  // namespace
}  // namespace mailwing::store
