#include "mailwing/pop3/message_stream.hh"

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
  // Byte by byte: this path only serves messages that need stuffing and TOP; whole runs
  // between stuffed dots are appended at once.
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

void message_stream::finish(std::string& out) const {
  if (previous_ != '\n' || before_previous_ != '\r') out.append("\r\n");
  out.append(".\r\n");
}

}  // namespace mailwing::pop3
