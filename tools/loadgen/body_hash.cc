#include "loadgen/body_hash.hh"

#include <cinttypes>
#include <cstdio>

namespace mailwing::loadgen {
namespace {

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char a = text[i], b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = char(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = char(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::string hex(const unsigned char* bytes, size_t count) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(count * 2, '0');
  for (size_t i = 0; i < count; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  sha256::digest digest = sha256::of(bytes);
  return hex(digest.data(), digest.size());
}

std::string hash_header_line(std::string_view hash_hex, uint64_t body_bytes) {
  char size_text[32];
  std::snprintf(size_text, sizeof(size_text), "; bytes=%" PRIu64 "\r\n", body_bytes);
  std::string line(hash_header_name);
  line += ": sha256=";
  line += hash_hex;
  line += size_text;
  return line;
}

bool parse_hash_header_value(std::string_view value, std::string& hash_hex, uint64_t& bytes) {
  value = trim(value);
  if (!iequals_prefix(value, "sha256=")) return false;
  value.remove_prefix(7);
  if (value.size() < 64) return false;
  std::string digest(value.substr(0, 64));
  for (char& c : digest) {
    if (c >= 'A' && c <= 'F') c = char(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  value.remove_prefix(64);
  bytes = UINT64_MAX;
  value = trim(value);
  if (!value.empty()) {
    if (value.front() != ';') return false;
    value = trim(value.substr(1));
    if (!iequals_prefix(value, "bytes=")) return false;
    value.remove_prefix(6);
    if (value.empty() || value.size() > 19) return false;
    uint64_t number = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return false;
      number = number * 10 + uint64_t(c - '0');
    }
    bytes = number;
  }
  hash_hex = std::move(digest);
  return true;
}

bool find_hash_header(std::string_view headers, std::string& hash_hex, uint64_t& bytes) {
  while (!headers.empty()) {
    size_t end = headers.find('\n');
    std::string_view line = headers.substr(0, end);
    headers = end == std::string_view::npos ? std::string_view() : headers.substr(end + 1);
    if (iequals_prefix(line, hash_header_name) && line.size() > hash_header_name.size() &&
        line[hash_header_name.size()] == ':') {
      return parse_hash_header_value(line.substr(hash_header_name.size() + 1), hash_hex, bytes);
    }
  }
  return false;
}

void body_verifier::reset() {
  headers_.clear();
  in_body_ = false;
  overflow_ = false;
  body_bytes_ = 0;
  message_bytes_ = 0;
  hash_.reset();
}

void body_verifier::hash_body(std::string_view bytes) {
  body_bytes_ += bytes.size();
  hash_.update(bytes);
}

void body_verifier::feed(std::string_view bytes) {
  message_bytes_ += bytes.size();
  if (in_body_) {
    hash_body(bytes);
    return;
  }
  if (overflow_) return;
  // The header block ends at the first empty line: CRLF CRLF, or CRLF at the very start.
  size_t search_from = headers_.size() >= 3 ? headers_.size() - 3 : 0;
  headers_.append(bytes);
  size_t body_start = std::string::npos;
  if (headers_.size() >= 2 && headers_[0] == '\r' && headers_[1] == '\n') {
    body_start = 2;
  } else if (size_t end = headers_.find("\r\n\r\n", search_from); end != std::string::npos) {
    body_start = end + 4;
  }
  if (body_start == std::string::npos) {
    if (headers_.size() > header_bytes_max) {
      overflow_ = true;
      headers_.clear();
    }
    return;
  }
  in_body_ = true;
  hash_body(std::string_view(headers_).substr(body_start));
  headers_.resize(body_start);
}

body_verifier::result body_verifier::finish() {
  result out{verdict::no_header, {}, {}, UINT64_MAX, body_bytes_, message_bytes_};
  if (overflow_) {
    out.outcome = verdict::headers_too_long;
    return out;
  }
  if (!in_body_) {
    // No blank line: the whole message is a header block and the body is empty.
    in_body_ = true;
  }
  if (!find_hash_header(headers_, out.expected_hex, out.expected_bytes)) return out;
  sha256::digest digest = hash_.finish();
  out.actual_hex = hex(digest.data(), digest.size());
  out.outcome = out.actual_hex == out.expected_hex &&
                        (out.expected_bytes == UINT64_MAX || out.expected_bytes == body_bytes_)
                    ? verdict::ok
                    : verdict::mismatch;
  return out;
}

}  // namespace mailwing::loadgen
