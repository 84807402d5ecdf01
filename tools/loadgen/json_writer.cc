#include "loadgen/json_writer.hh"

#include <fcntl.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace mailwing::loadgen {

void json_writer::newline() {
  out_ += '\n';
  out_.append(stack_.size() * 2, ' ');
}

void json_writer::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (stack_.empty()) return;
  assert(stack_.back().array);  // object members need key() first
  if (!stack_.back().empty) out_ += ',';
  stack_.back().empty = false;
  newline();
}

void json_writer::key(std::string_view name) {
  assert(!stack_.empty() && !stack_.back().array && !after_key_);
  if (!stack_.back().empty) out_ += ',';
  stack_.back().empty = false;
  newline();
  append_escaped(out_, name);
  out_ += ": ";
  after_key_ = true;
}

void json_writer::begin_object() {
  before_value();
  out_ += '{';
  stack_.push_back({false, true});
}

void json_writer::begin_array() {
  before_value();
  out_ += '[';
  stack_.push_back({true, true});
}

void json_writer::end_object() {
  assert(!stack_.empty() && !stack_.back().array);
  bool empty = stack_.back().empty;
  stack_.pop_back();
  if (!empty) newline();
  out_ += '}';
  if (stack_.empty()) out_ += '\n';
}

void json_writer::end_array() {
  assert(!stack_.empty() && stack_.back().array);
  bool empty = stack_.back().empty;
  stack_.pop_back();
  if (!empty) newline();
  out_ += ']';
  if (stack_.empty()) out_ += '\n';
}

void json_writer::value(std::string_view text) {
  before_value();
  append_escaped(out_, text);
}

void json_writer::value(uint64_t number) {
  before_value();
  char digits[24];
  std::snprintf(digits, sizeof(digits), "%" PRIu64, number);
  out_ += digits;
}

void json_writer::value(int64_t number) {
  before_value();
  char digits[24];
  std::snprintf(digits, sizeof(digits), "%" PRId64, number);
  out_ += digits;
}

void json_writer::value(double number) {
  before_value();
  if (!std::isfinite(number)) {
    out_ += "null";
    return;
  }
  char digits[40];
  // Enough digits for rates and milliseconds; %.17g would print noise.
  std::snprintf(digits, sizeof(digits), "%.10g", number);
  out_ += digits;
}

void json_writer::value(bool flag) {
  before_value();
  out_ += flag ? "true" : "false";
}

void json_writer::null() {
  before_value();
  out_ += "null";
}

void json_writer::append_escaped(std::string& out, std::string_view text) {
  out += '"';
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
          out += escaped;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

bool write_file(const std::string& path, std::string_view text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  while (!text.empty()) {
    ssize_t written = ::write(fd, text.data(), text.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      errno = saved;
      return false;
    }
    text.remove_prefix(size_t(written));
  }
  return ::close(fd) == 0;
}

}  // namespace mailwing::loadgen
