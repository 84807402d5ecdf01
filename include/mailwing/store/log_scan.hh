#pragma once
// Reading a mailbox log from the start, checking every record (record.hh's recovery
// rule). Used by recovery, by the index rebuild and by the log tools.

#include <cstdint>
#include <functional>
#include <string>

#include "mailwing/store/record.hh"

namespace mailwing::store {

struct scanned_record {
  uint64_t offset;  // of the header
  record_header header;
};

struct scan_result {
  uint64_t valid_bytes = 0;  // end of the last good record: where a torn tail starts
  uint64_t file_bytes = 0;
  uint64_t records = 0;
  std::string problem;       // why scanning stopped before file_bytes ("" when it didn't)
  int error = 0;             // errno when reading failed (then nothing is certain)
};

// Reads `fd` from `start_offset` (a record boundary; 0 = the whole log), checking headers
// and payload CRCs, and calls `visit` for each good record in order. `tombstone_payload`
// holds a tombstone's payload (it is small); message payloads are checked, not shown.
scan_result scan_log(int fd,
                     const std::function<void(const scanned_record&, std::string_view tombstone_payload)>& visit,
                     uint64_t start_offset = 0);

}  // namespace mailwing::store
