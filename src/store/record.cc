#include "mailwing/store/record.hh"

#include <bit>
#include <cstring>

#include "mailwing/util/crc32c.hh"

namespace mailwing::store {
namespace {

// The format is little-endian; so is every machine this builds for (x86-64), which the
// static_assert makes explicit instead of paying for byte swaps.
static_assert(std::endian::native == std::endian::little);

template <class T>
void put(char* out, size_t offset, T value) {
  std::memcpy(out + offset, &value, sizeof(T));
}

template <class T>
T get(const char* in, size_t offset) {
  T value;
  std::memcpy(&value, in + offset, sizeof(T));
  return value;
}

}  // namespace

void encode_record_header(const record_header& header,
                          std::span<char, record_header_bytes> out) {
  char* bytes = out.data();
  put<uint32_t>(bytes, 0, record_magic);
  put<uint8_t>(bytes, 4, static_cast<uint8_t>(header.type));
  put<uint8_t>(bytes, 5, header.flags);
  put<uint16_t>(bytes, 6, 0);
  put<uint64_t>(bytes, 8, header.uid);
  put<uint64_t>(bytes, 16, header.arrival_ms);
  put<uint64_t>(bytes, 24, header.payload_bytes);
  put<uint32_t>(bytes, 32, header.payload_crc32c);
  put<uint32_t>(bytes, 36, util::crc32c(bytes, 36));
}

uint32_t record_header_crc(const record_header& header) {
  char bytes[record_header_bytes];
  encode_record_header(header, std::span<char, record_header_bytes>(bytes, record_header_bytes));
  return get<uint32_t>(bytes, 36);
}

decoded_header decode_record_header(std::span<const char, record_header_bytes> in) {
  const char* bytes = in.data();
  decoded_header result{header_status::ok, {}};
  if (get<uint32_t>(bytes, 0) != record_magic) {
    result.status = header_status::bad_magic;
    return result;
  }
  if (get<uint32_t>(bytes, 36) != util::crc32c(bytes, 36)) {
    result.status = header_status::bad_crc;
    return result;
  }
  uint8_t type = get<uint8_t>(bytes, 4);
  if (type != static_cast<uint8_t>(record_type::message) &&
      type != static_cast<uint8_t>(record_type::tombstone)) {
    result.status = header_status::bad_type;
    return result;
  }
  result.header.type = static_cast<record_type>(type);
  result.header.flags = get<uint8_t>(bytes, 5);
  result.header.uid = get<uint64_t>(bytes, 8);
  result.header.arrival_ms = get<uint64_t>(bytes, 16);
  result.header.payload_bytes = get<uint64_t>(bytes, 24);
  result.header.payload_crc32c = get<uint32_t>(bytes, 32);
  return result;
}

}  // namespace mailwing::store
