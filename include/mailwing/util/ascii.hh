#pragma once
// ASCII case folding for protocol keywords, domains and mailbox names. Locale-free on
// purpose: tolower() would fold bytes differently under another locale, and non-ASCII
// bytes (UTF-8 in SMTPUTF8 addresses) are left exactly as they are.

#include <string>
#include <string_view>

namespace mailwing::util {

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

// Whether `text` equals `lower` ignoring ASCII case; `lower` is lower case already (a
// literal), so only `text` is folded.
constexpr bool equals_lower(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (ascii_lower(text[i]) != lower[i]) return false;
  }
  return true;
}

constexpr bool starts_with_lower(std::string_view text, std::string_view lower) {
  return text.size() >= lower.size() && equals_lower(text.substr(0, lower.size()), lower);
}

inline void append_lower(std::string& out, std::string_view text) {
  for (char c : text) out.push_back(ascii_lower(c));
}

inline void lower_in_place(std::string& text) {
  for (char& c : text) c = ascii_lower(c);
}

// At most size_max bytes of `text`, each outside printable ASCII (0x21-0x7e: no space, no
// control byte, nothing beyond ASCII) replaced by '?': for client-supplied text that goes
// into a header line or the log, where it must not start a new line or fake one.
inline std::string printable_ascii(std::string_view text, size_t size_max) {
  text = text.substr(0, size_max);
  std::string out;
  out.reserve(text.size());
  for (char c : text) out.push_back(c >= 0x21 && c <= 0x7e ? c : '?');
  return out;
}

}  // namespace mailwing::util
