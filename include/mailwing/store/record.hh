#pragma once
// The mailbox log format: one page, everything a reader or a recovery needs.
//
// A mailbox is one append-only file, <data_dir>/mailboxes/<address>.log, holding records
// back to back from offset 0, with no file header and no padding:
//
//   offset size  field
//   0      4     magic            "MWL1" (bytes 4D 57 4C 31)
//   4      1     type             1 = message, 2 = tombstone
//   5      1     flags            bit 0: has_dot_line — some line of the payload starts
//                                 with "." (POP3 must dot-stuff it; otherwise it can be
//                                 sent with splice, byte for byte)
//   6      2     reserved         0
//   8      8     uid              unique in the mailbox, increasing, never reused; a
//                                 tombstone takes one too, so a replay can tell by uid
//                                 alone whether the log already holds a record
//   16     8     arrival_ms       Unix time in milliseconds when the record was written
//   24     8     payload_bytes
//   32     4     payload_crc32c   CRC-32C of the payload
//   36     4     header_crc32c    CRC-32C of bytes 0..35 of this header
//   40     ...   payload
//
// All integers are little-endian. A message payload is the message as stored: the
// "Return-Path:" and "Received:" lines the server prepends, then the body after
// dot-unstuffing, with CRLF line ends — exactly the octets POP3 RETR sends before
// dot-stuffing, so payload_bytes is the RFC 1939 message size. A tombstone's payload is
// a list of 8-byte uids of messages deleted from the mailbox.
//
// Recovery rule (as LevelDB's and Kafka's): records are read from the start; the first
// record whose magic, header CRC, type or payload CRC is wrong, or which runs past the end
// of the file, marks a torn tail, and the file is truncated there. Acknowledged messages
// are never lost by this: until a checkpoint has synced a log, every record written to it
// is also in the owning shard's journal (see journal.hh), which recovery replays.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace mailwing::store {

inline constexpr uint32_t record_magic = 0x314C574D;  // "MWL1" little-endian
inline constexpr size_t record_header_bytes = 40;

enum class record_type : uint8_t { message = 1, tombstone = 2 };

inline constexpr uint8_t record_flag_has_dot_line = 0x01;

struct record_header {
  record_type type = record_type::message;
  uint8_t flags = 0;
  uint64_t uid = 0;
  uint64_t arrival_ms = 0;
  uint64_t payload_bytes = 0;
  uint32_t payload_crc32c = 0;
};

// Writes the 40 header bytes (computing header_crc32c).
void encode_record_header(const record_header& header, std::span<char, record_header_bytes> out);

enum class header_status : uint8_t { ok, bad_magic, bad_crc, bad_type };

struct decoded_header {
  header_status status;
  record_header header;
};

// The header_crc32c encode_record_header writes for `header`.
uint32_t record_header_crc(const record_header& header);

// Checks magic, header CRC and type. The payload CRC is the caller's to check.
decoded_header decode_record_header(std::span<const char, record_header_bytes> bytes);

}  // namespace mailwing::store
