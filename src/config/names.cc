#include "names.hh"

#include <cassert>
#include <cstdio>

namespace mailwing::config {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// RFC 5322 atext (lower case) without '/', which would make the mailbox file name a path,
// and without '+', which plus-addressing reserves (user+tag@ delivers to user).
bool is_mailbox_char(char c) {
  if (is_lower_alnum(c)) return true;
  for (char allowed : std::string_view("!#$%&'*-=?^_`{|}~")) {
    if (c == allowed) return true;
  }
  return false;
}

}  // namespace

std::string escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\u%04x", byte);
      out += hex;
    } else {
      out += c;
    }
  }
  return out;
}

std::string in_quotes(std::string_view text) { return '"' + escaped(text) + '"'; }

bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label_start = 0;
  while (true) {
    size_t dot = name.find('.', label_start);
    std::string_view label = name.substr(label_start, dot - label_start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      bool upper = c >= 'A' && c <= 'Z';
      if (!upper && !is_lower_alnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    label_start = dot + 1;
  }
}

std::string_view local_part_problem(std::string_view local) {
  assert(!local.empty());
  // RFC 5321 §4.5.3.1.1.
  if (local.size() > 64) return "has a local part longer than 64 octets";
  if (local.find('+') != std::string_view::npos) {
    return "has '+' in the local part (reserved for plus-addressing: user+tag@ delivers to "
           "user)";
  }
  // Dot-atom rules; they also keep "." and ".." from naming directories.
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return "has a local part that starts or ends with '.' or contains \"..\"";
  }
  for (char c : local) {
    if (c != '.' && !is_mailbox_char(c)) {
      return "has a local part character outside a-z 0-9 . and !#$%&'*-=?^_`{|}~";
    }
  }
  return {};
}

}  // namespace mailwing::config
