#include "mailwing/pop3/message_stream.hh"

#include <cstring>

namespace mailwing::pop3 {

void message_stream::start(std::optional<uint64_t> body_lines) {
  part_ = part::headers;
  line_bytes_ = 0;
  previous_ = '\n';
  before_previous_ = '\r';
  limited_ = body_lines.has_value();
  body_lines_left_ = body_lines.value_or(0);
}

bool message_stream::feed(std::string_view chunk, std::string& out) {
  if (chunk.empty()) return part_ != part::done;
  if (!limited_) {
    stuff(chunk, out);
    return true;
  }
  // TOP: byte by byte, counting lines; whole runs between stuffed dots are appended at
  // once.
  size_t run_start = 0;
  size_t i = 0;
  for (; i < chunk.size() && part_ != part::done; ++i) {
    char c = chunk[i];
    if (line_bytes_ == 0 && c == '.') {
      out.append(chunk.data() + run_start, i - run_start);
      out.push_back('.');  // the stuffing; the original dot starts the next run
      run_start = i;
    }
    before_previous_ = previous_;
    previous_ = c;
    if (c != '\n') {
      ++line_bytes_;
      continue;
    }
    // A line ended. In the headers, the empty line (CRLF alone, or a bare LF) ends them.
    bool empty_line = line_bytes_ == 0 || (line_bytes_ == 1 && before_previous_ == '\r');
    line_bytes_ = 0;
    if (!limited_) continue;
    if (part_ == part::headers) {
      if (empty_line) part_ = body_lines_left_ == 0 ? part::done : part::body;
    } else if (--body_lines_left_ == 0) {
      part_ = part::done;
    }
  }
  out.append(chunk.data() + run_start, i - run_start);
  return part_ != part::done;
}

// RETR: only line starts matter, so jump from LF to LF with memchr and append the runs
// in between.
void message_stream::stuff(std::string_view chunk, std::string& out) {
  size_t run_start = 0;
  size_t line_start = line_bytes_ == 0 ? 0 : std::string_view::npos;
  while (true) {
    if (line_start != std::string_view::npos && line_start < chunk.size() && chunk[line_start] == '.') {
      out.append(chunk.data() + run_start, line_start - run_start);
      out.push_back('.');
      run_start = line_start;
    }
    size_t search_from = line_start == std::string_view::npos ? 0 : line_start;
    const void* found = std::memchr(chunk.data() + search_from, '\n', chunk.size() - search_from);
    if (found == nullptr) break;
    line_start = static_cast<size_t>(static_cast<const char*>(found) - chunk.data()) + 1;
    if (line_start == chunk.size()) break;
  }
  out.append(chunk.data() + run_start, chunk.size() - run_start);
  before_previous_ = chunk.size() >= 2 ? chunk[chunk.size() - 2] : previous_;
  previous_ = chunk.back();
  line_bytes_ = previous_ == '\n' ? 0 : 1;
}

void message_stream::finish(std::string& out) const {
  if (previous_ != '\n' || before_previous_ != '\r') out.append("\r\n");
  out.append(".\r\n");
}

}  // namespace mailwing::pop3
