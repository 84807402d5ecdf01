#pragma once
// CRC-32C (Castagnoli), the checksum of every log and journal record.
// Computed with the SSE4.2 crc32 instruction, which the build requires (-msse4.2).

#include <cstddef>
#include <cstdint>

namespace mailwing::util {

// Continues a CRC over more bytes: crc32c_extend(crc32c_extend(0, a), b) equals the CRC of
// a followed by b. Start with 0. The result is the finalized (xor-ed) value, as in
// RFC 3720 appendix B.4: crc32c_extend(0, "123456789", 9) == 0xE3069283.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t size_bytes);

inline uint32_t crc32c(const void* data, size_t size_bytes) {
  return crc32c_extend(0, data, size_bytes);
}

}  // namespace mailwing::util
