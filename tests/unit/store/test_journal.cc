// journal.hh: segment names, the entry prefix and read_journal's replay rule.

#include "mailwing/store/journal.hh"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "store_test_util.hh"

namespace mailwing::store {
namespace {

using namespace testing;  // store test helpers

TEST(JournalSegmentName, Format) {
  EXPECT_EQ(journal_segment_name(3, 42), "shard3-000000000000002a.journal");
  EXPECT_EQ(journal_segment_name(0, 1), "shard0-0000000000000001.journal");
  EXPECT_EQ(journal_segment_name(4294967295u, UINT64_MAX), "shard4294967295-ffffffffffffffff.journal");
}

TEST(JournalSegmentName, ParseRoundTrip) {
  for (uint32_t shard : {0u, 1u, 7u, 63u, 4294967295u}) {
    for (uint64_t sequence : {uint64_t{0}, uint64_t{1}, uint64_t{0xabcdef}, uint64_t{1} << 40,
                              UINT64_MAX}) {
      uint32_t parsed_shard = 12345;
      uint64_t parsed_sequence = 12345;
      std::string name = journal_segment_name(shard, sequence);
      ASSERT_TRUE(parse_journal_segment_name(name, parsed_shard, parsed_sequence)) << name;
      EXPECT_EQ(parsed_shard, shard);
      EXPECT_EQ(parsed_sequence, sequence);
    }
  }
}

TEST(JournalSegmentName, RejectsOtherNames) {
  for (const char* name : {"", ".", "..", "lock", "shard", "shard3", "shard3-", "shard3-.journal",
                           "shard3-000000000000002a", "shard3-000000000000002a.journa",
                           "shard3-000000000000002a.journal.tmp", "shard3-000000000000002a.journalx",
                           "shardX-000000000000002a.journal", "Shard3-000000000000002a.journal",
                           "shard3_000000000000002a.journal", "shard3-00000000000000zz.journal",
                           "shard3-0000000000000002ab.journal", "xshard3-000000000000002a.journal",
                           "shard3-000000000000002a.log"}) {
    uint32_t shard = 99;
    uint64_t sequence = 99;
    EXPECT_FALSE(parse_journal_segment_name(name, shard, sequence)) << '"' << name << '"';
    EXPECT_EQ(shard, 99u) << name;
    EXPECT_EQ(sequence, 99u) << name;
  }
  // An embedded NUL does not cut the name short.
  uint32_t shard = 0;
  uint64_t sequence = 0;
  std::string with_nul = journal_segment_name(1, 2) + std::string("\0x", 2);
  EXPECT_FALSE(parse_journal_segment_name(with_nul, shard, sequence));
}

// SEQ is exactly 16 lower-case hex digits and the shard a plain decimal number
// (journal.hh); recovery replays and then deletes whatever this accepts, so names that
// journal_segment_name never makes — fewer digits, a sign, blanks, a "0x" prefix, upper
// case — are refused (a stray "shard0-1.journal" must survive).
TEST(JournalSegmentName, RejectsNonCanonicalNames) {
  for (const char* name : {"shard3-2a.journal", "shard3-0x2a.journal", "shard3- 000000000000002a.journal",
                           "shard 3-000000000000002a.journal", "shard+3-000000000000002a.journal",
                           "shard-1-000000000000002a.journal", "shard3-000000000000002A.journal",
                           "shard03-000000000000002a.journal"}) {
    uint32_t shard = 99;
    uint64_t sequence = 99;
    EXPECT_FALSE(parse_journal_segment_name(name, shard, sequence)) << '"' << name << '"';
  }
}

TEST(JournalPrefix, LayoutMatchesTheFormat) {
  std::string address = "alice@example.test";
  std::string prefix(journal_prefix_bytes, '\x77');
  encode_journal_prefix(address, std::span<char, journal_prefix_bytes>(prefix.data(), journal_prefix_bytes));
  EXPECT_EQ(prefix.substr(0, 4), "MWJ1");
  EXPECT_EQ(get_le<uint16_t>(prefix, 4), address.size());
  EXPECT_EQ(get_le<uint16_t>(prefix, 6), 0);
  EXPECT_EQ(get_le<uint32_t>(prefix, 8), crc_of(address));
  EXPECT_EQ(get_le<uint32_t>(prefix, 12), 0u);
  // Same bytes as the independent builder in store_test_util.hh.
  EXPECT_EQ(prefix + address, journal_entry_bytes(address, ""));
}

class ReadJournal : public ::testing::Test {
 protected:
  temp_dir dir_;
  std::string path_ = dir_ / journal_segment_name(0, 1);

  struct seen_entry {
    std::string address;
    record_header header;
    std::string payload;
  };
  struct read_back {
    journal_read_result result;
    std::vector<seen_entry> entries;
  };

  read_back read(std::string_view bytes) {
    write_file(path_, bytes);
    read_back out;
    out.result = read_journal(path_, [&out](const journal_entry& entry) {
      out.entries.push_back({std::string(entry.address), entry.header, std::string(entry.payload)});
    });
    return out;
  }

  // Entries alternating between two mailboxes, one of them a tombstone.
  struct built {
    std::string bytes;
    std::vector<size_t> entry_offsets;
    std::vector<std::string> addresses;
    std::vector<std::string> payloads;
  };
  static built sample(int count) {
    built out;
    for (int i = 0; i < count; ++i) {
      std::string address = i % 2 == 0 ? "alice@example.test" : "b@x.test";
      uint64_t uid = static_cast<uint64_t>(i / 2 + 1);
      std::string record;
      std::string payload;
      if (i == 3) {
        payload = tombstone_payload({1});
        record = tombstone_record(uid, {1});
      } else {
        payload = payload_for(uid, 50 + 31 * static_cast<size_t>(i));
        record = message_record(uid, payload, i == 4 ? record_flag_has_dot_line : 0);
      }
      out.entry_offsets.push_back(out.bytes.size());
      out.addresses.push_back(address);
      out.payloads.push_back(payload);
      out.bytes += journal_entry_bytes(address, record);
    }
    return out;
  }
};

TEST_F(ReadJournal, EmptySegment) {
  read_back back = read("");
  EXPECT_EQ(back.result.problem, "");
  EXPECT_EQ(back.result.entries, 0u);
  EXPECT_EQ(back.result.valid_bytes, 0u);
  EXPECT_EQ(back.result.file_bytes, 0u);
  EXPECT_TRUE(back.entries.empty());
}

TEST_F(ReadJournal, MissingFileIsAProblem) {
  journal_read_result result =
      read_journal(dir_ / "no-such.journal", [](const journal_entry&) { FAIL() << "visited"; });
  EXPECT_NE(result.problem, "");
  EXPECT_EQ(result.entries, 0u);
}

TEST_F(ReadJournal, CleanSegmentVisitsEveryEntryInOrder) {
  built journal = sample(6);
  read_back back = read(journal.bytes);
  EXPECT_EQ(back.result.problem, "");
  EXPECT_EQ(back.result.entries, 6u);
  EXPECT_EQ(back.result.valid_bytes, journal.bytes.size());
  EXPECT_EQ(back.result.file_bytes, journal.bytes.size());
  ASSERT_EQ(back.entries.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(back.entries[i].address, journal.addresses[i]);
    EXPECT_EQ(back.entries[i].payload, journal.payloads[i]);
    EXPECT_EQ(back.entries[i].header.uid, i / 2 + 1);
    EXPECT_EQ(back.entries[i].header.payload_bytes, journal.payloads[i].size());
    EXPECT_EQ(back.entries[i].header.payload_crc32c, crc_of(journal.payloads[i]));
  }
  EXPECT_EQ(back.entries[3].header.type, record_type::tombstone);
  EXPECT_EQ(back.entries[4].header.flags, record_flag_has_dot_line);
}

TEST_F(ReadJournal, EmptyAddressAndEmptyPayload) {
  std::string bytes = journal_entry_bytes("", message_record(1, "")) +
                      journal_entry_bytes("a@b", message_record(2, ""));
  read_back back = read(bytes);
  EXPECT_EQ(back.result.problem, "");
  ASSERT_EQ(back.entries.size(), 2u);
  EXPECT_EQ(back.entries[0].address, "");
  EXPECT_EQ(back.entries[1].address, "a@b");
  EXPECT_EQ(back.entries[1].payload, "");
}

// A crash mid-append leaves any prefix of the last entry: each one ends the segment at
// the entry before it.
TEST_F(ReadJournal, TruncatedAtEveryByteOfTheLastEntry) {
  built journal = sample(5);
  size_t last = journal.entry_offsets.back();
  for (size_t cut = last + 1; cut < journal.bytes.size(); ++cut) {
    read_back back = read(std::string_view(journal.bytes).substr(0, cut));
    SCOPED_TRACE("cut at " + std::to_string(cut));
    EXPECT_NE(back.result.problem, "");
    EXPECT_EQ(back.result.entries, 4u);
    EXPECT_EQ(back.entries.size(), 4u);
    EXPECT_EQ(back.result.valid_bytes, last);
    EXPECT_EQ(back.result.file_bytes, cut);
  }
  // Cut exactly at an entry boundary: a clean, shorter segment.
  read_back back = read(std::string_view(journal.bytes).substr(0, last));
  EXPECT_EQ(back.result.problem, "");
  EXPECT_EQ(back.result.entries, 4u);
}

TEST_F(ReadJournal, TruncatedAtEveryByteOfTheOnlyEntry) {
  std::string entry = journal_entry_bytes("alice@example.test", message_record(1, payload_for(1, 100)));
  for (size_t cut = 1; cut < entry.size(); ++cut) {
    read_back back = read(std::string_view(entry).substr(0, cut));
    EXPECT_NE(back.result.problem, "") << cut;
    EXPECT_EQ(back.result.entries, 0u) << cut;
    EXPECT_EQ(back.result.valid_bytes, 0u) << cut;
  }
}

TEST_F(ReadJournal, BadMagic) {
  built journal = sample(4);
  std::string bytes = journal.bytes;
  bytes[journal.entry_offsets[2] + 1] = 'X';
  read_back back = read(bytes);
  EXPECT_EQ(back.result.problem, "bad magic");
  EXPECT_EQ(back.result.entries, 2u);
  EXPECT_EQ(back.result.valid_bytes, journal.entry_offsets[2]);
}

TEST_F(ReadJournal, BadAddressCrc) {
  built journal = sample(4);
  // A flipped address byte and a flipped stored CRC are both caught.
  for (size_t at : {journal_prefix_bytes + 2, size_t{9}}) {
    std::string bytes = journal.bytes;
    bytes[journal.entry_offsets[1] + at] ^= 0x08;
    read_back back = read(bytes);
    EXPECT_EQ(back.result.problem, "bad address checksum") << at;
    EXPECT_EQ(back.result.entries, 1u);
    EXPECT_EQ(back.result.valid_bytes, journal.entry_offsets[1]);
  }
}

// A damaged address length makes the address CRC (or the size check) fail, never a
// read out of bounds.
TEST_F(ReadJournal, BadAddressLength) {
  built journal = sample(3);
  for (uint16_t length : {uint16_t{0}, uint16_t{1}, uint16_t{17}, uint16_t{200}, uint16_t{65535}}) {
    std::string bytes = journal.bytes;
    put_le<uint16_t>(bytes, journal.entry_offsets[2] + 4, length);
    read_back back = read(bytes);
    EXPECT_NE(back.result.problem, "") << length;
    EXPECT_EQ(back.result.entries, 2u) << length;
    EXPECT_EQ(back.result.valid_bytes, journal.entry_offsets[2]) << length;
  }
}

TEST_F(ReadJournal, BadRecordHeader) {
  built journal = sample(4);
  size_t header_at = journal.entry_offsets[2] + journal_prefix_bytes + journal.addresses[2].size();
  for (size_t at : {size_t{0}, size_t{4}, size_t{8}, size_t{24}, size_t{36}}) {
    std::string bytes = journal.bytes;
    bytes[header_at + at] ^= 0x10;
    read_back back = read(bytes);
    EXPECT_EQ(back.result.problem, "bad record header") << at;
    EXPECT_EQ(back.result.entries, 2u);
  }
}

TEST_F(ReadJournal, BadPayloadCrc) {
  built journal = sample(4);
  std::string bytes = journal.bytes;
  size_t payload_at = journal.entry_offsets[2] + journal_prefix_bytes + journal.addresses[2].size() +
                      record_header_bytes;
  bytes[payload_at + 5] ^= 0x01;
  read_back back = read(bytes);
  EXPECT_EQ(back.result.problem, "bad payload checksum");
  EXPECT_EQ(back.result.entries, 2u);
  EXPECT_EQ(back.result.valid_bytes, journal.entry_offsets[2]);
}

TEST_F(ReadJournal, GoodEntryAfterABadOneIsNotRead) {
  built journal = sample(6);
  std::string bytes = journal.bytes;
  bytes[journal.entry_offsets[3] + journal_prefix_bytes] ^= 0x01;  // address byte
  read_back back = read(bytes);
  EXPECT_EQ(back.result.entries, 3u);
  EXPECT_EQ(back.entries.size(), 3u);
  EXPECT_EQ(back.result.valid_bytes, journal.entry_offsets[3]);
}

TEST_F(ReadJournal, ZerosAndGarbageAfterTheLastEntry) {
  built journal = sample(3);
  std::mt19937 random(7);
  for (size_t extra : {1u, 15u, 16u, 56u, 57u, 4096u}) {
    for (bool zeros : {true, false}) {
      std::string tail(extra, '\0');
      if (!zeros) {
        for (char& c : tail) c = static_cast<char>(random());
      }
      read_back back = read(journal.bytes + tail);
      SCOPED_TRACE(std::to_string(extra) + (zeros ? " zeros" : " garbage"));
      // Zeros are preallocated space, the normal end of a segment; garbage is damage.
      if (zeros) {
        EXPECT_EQ(back.result.problem, "");
      } else {
        EXPECT_NE(back.result.problem, "");
      }
      EXPECT_EQ(back.result.entries, 3u);
      EXPECT_EQ(back.result.valid_bytes, journal.bytes.size());
      EXPECT_EQ(back.result.file_bytes, journal.bytes.size() + extra);
    }
  }
}

// A recycled segment still holds entries of its previous use after the new ones; their
// segment tag differs from the first entry's, and they end the segment cleanly.
TEST_F(ReadJournal, EntriesWithAnotherSegmentTagEndTheSegment) {
  built current = sample(2);
  built previous = sample(3);
  std::string old_entries = previous.bytes;
  for (size_t offset : previous.entry_offsets) {
    if (offset < old_entries.size()) stamp_segment_tag(old_entries.data() + offset, 0xdeadbeef);
  }
  read_back back = read(current.bytes + old_entries);
  EXPECT_EQ(back.result.problem, "");
  EXPECT_EQ(back.result.entries, 2u);
  EXPECT_EQ(back.result.valid_bytes, current.bytes.size());
}

}  // namespace
}  // namespace mailwing::store
