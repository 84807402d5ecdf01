#include "mailwing/smtp/command.hh"

#include "mailwing/util/ascii.hh"

// Grammar references are to RFC 5321 §4.1.2 unless noted. The path is first cut out by
// its brackets, so that each grammar function below is given exactly the text it must
// match entirely.

namespace mailwing::smtp {
namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_non_ascii(char c) { return static_cast<unsigned char>(c) >= 0x80; }

using util::equals_lower;
using util::starts_with_lower;

std::string_view trim_trailing_blanks(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string_view skip_spaces(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  return text;
}

// Length of the well-formed UTF-8 encoding of one non-ASCII character at text[i]
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
size_t utf8_char_bytes(std::string_view text, size_t i) {
  auto lead = static_cast<unsigned char>(text[i]);
  size_t size_bytes;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    size_bytes = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    size_bytes = 3;
    if (lead == 0xE0) second_min = 0xA0;
    if (lead == 0xED) second_max = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    size_bytes = 4;
    if (lead == 0xF0) second_min = 0x90;
    if (lead == 0xF4) second_max = 0x8F;
  } else {
    return 0;
  }
  if (text.size() - i < size_bytes) return 0;
  auto second = static_cast<unsigned char>(text[i + 1]);
  if (second < second_min || second > second_max) return 0;
  for (size_t k = 2; k < size_bytes; ++k) {
    auto next = static_cast<unsigned char>(text[i + k]);
    if (next < 0x80 || next > 0xBF) return 0;
  }
  return size_bytes;
}

// RFC 5322 atext without the letters and digits.
bool is_atext_symbol(char c) {
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

// A run of characters accepted by `is_ascii_ok`, or well-formed UTF-8 (RFC 6531 §3.3
// extends atext, qtextSMTP and sub-domain with it; whether it is allowed is decided later,
// once the SMTPUTF8 parameter is known).
template <class AsciiOk>
bool all_chars(std::string_view text, AsciiOk is_ascii_ok) {
  for (size_t i = 0; i < text.size();) {
    if (is_non_ascii(text[i])) {
      size_t size_bytes = utf8_char_bytes(text, i);
      if (size_bytes == 0) return false;
      i += size_bytes;
    } else {
      if (!is_ascii_ok(text[i])) return false;
      ++i;
    }
  }
  return true;
}

// Dot-string = Atom *("." Atom)
bool is_dot_string(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  if (text.find("..") != std::string_view::npos) return false;
  return all_chars(text, [](char c) { return is_alnum(c) || is_atext_symbol(c) || c == '.'; });
}

// Quoted-string = DQUOTE *QcontentSMTP DQUOTE
bool is_quoted_string(std::string_view text) {
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return false;
  text = text.substr(1, text.size() - 2);
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (c == '\\') {
      // quoted-pairSMTP = %d92 %d32-126
      if (i + 1 == text.size() || text[i + 1] < 32 || text[i + 1] > 126) return false;
      i += 2;
    } else if (is_non_ascii(c)) {
      size_t size_bytes = utf8_char_bytes(text, i);
      if (size_bytes == 0) return false;
      i += size_bytes;
    } else {
      // qtextSMTP = %d32-33 / %d35-91 / %d93-126
      if (c < 32 || c > 126 || c == '"') return false;
      ++i;
    }
  }
  return true;
}

// Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]. Labels and the
// whole name are limited as in DNS (RFC 1035 §2.3.4).
bool is_domain(std::string_view text) {
  constexpr size_t label_bytes_max = 63;
  constexpr size_t domain_bytes_max = 255;
  if (text.empty() || text.size() > domain_bytes_max) return false;
  while (true) {
    size_t dot = text.find('.');
    std::string_view label = text.substr(0, dot);
    if (label.empty() || label.size() > label_bytes_max) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    if (!all_chars(label, [](char c) { return is_alnum(c) || c == '-'; })) return false;
    if (dot == std::string_view::npos) return true;
    text.remove_prefix(dot + 1);
  }
}

// Snum 3("." Snum), Snum = 1*3DIGIT with a value of at most 255.
bool is_ipv4(std::string_view text) {
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (text.empty() || text.front() != '.') return false;
      text.remove_prefix(1);
    }
    size_t digits = 0;
    unsigned value = 0;
    while (digits < text.size() && digits < 3 && is_digit(text[digits])) {
      value = value * 10 + unsigned(text[digits] - '0');
      ++digits;
    }
    if (digits == 0 || value > 255) return false;
    text.remove_prefix(digits);
  }
  return text.empty();
}

// IPv6-addr in any of its four forms. Counting an embedded IPv4 address as two groups,
// the full forms have exactly 8 groups, and the "::" forms at most 6 besides the "::".
bool is_ipv6(std::string_view text) {
  size_t groups = 0;
  bool compressed = false;
  if (text.substr(0, 2) == "::") {
    compressed = true;
    text.remove_prefix(2);
  }
  while (!text.empty()) {
    if (text.find(':') == std::string_view::npos && text.find('.') != std::string_view::npos) {
      if (!is_ipv4(text)) return false;
      groups += 2;
      break;
    }
    size_t digits = 0;
    while (digits < text.size() && digits < 4 && is_hex(text[digits])) ++digits;
    if (digits == 0) return false;
    ++groups;
    text.remove_prefix(digits);
    if (text.empty()) break;
    if (text.front() != ':') return false;
    text.remove_prefix(1);
    if (!text.empty() && text.front() == ':') {
      if (compressed) return false;
      compressed = true;
      text.remove_prefix(1);
    } else if (text.empty()) {
      return false;
    }
  }
  return compressed ? groups <= 6 : groups == 8;
}

// address-literal = "[" ( IPv4-address-literal / IPv6-address-literal ) "]". A
// General-address-literal needs a tag registered with IANA, and none but IPv6 is.
bool is_address_literal(std::string_view text) {
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') return false;
  text = text.substr(1, text.size() - 2);
  if (starts_with_lower(text, "ipv6:")) return is_ipv6(text.substr(5));
  return is_ipv4(text);
}

// Mailbox = Local-part "@" ( Domain / address-literal )
bool split_mailbox(std::string_view text, mailbox& out) {
  size_t at = text.rfind('@');
  if (at == std::string_view::npos) return false;
  std::string_view local_part = text.substr(0, at);
  std::string_view domain = text.substr(at + 1);
  bool local_ok = !local_part.empty() && local_part.front() == '"' ? is_quoted_string(local_part)
                                                                    : is_dot_string(local_part);
  if (!local_ok || domain.empty()) return false;
  if (!(domain.front() == '[' ? is_address_literal(domain) : is_domain(domain))) return false;
  out = {local_part, domain};
  return true;
}

// A-d-l ":" with A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain. Returns
// the text after the ":", or nullopt when the route is malformed.
std::optional<std::string_view> skip_source_route(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view route = text.substr(0, colon);
  while (true) {
    size_t comma = route.find(',');
    std::string_view at_domain = route.substr(0, comma);
    if (at_domain.empty() || at_domain.front() != '@' || !is_domain(at_domain.substr(1))) {
      return std::nullopt;
    }
    if (comma == std::string_view::npos) return text.substr(colon + 1);
    route.remove_prefix(comma + 1);
  }
}

// The index of the ">" closing a path that starts with "<" at text[0]. A quoted local
// part may contain ">", so quotes and their backslash escapes are skipped.
size_t find_path_end(std::string_view text) {
  bool quoted = false;
  for (size_t i = 1; i < text.size(); ++i) {
    char c = text[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == '>') {
      return i;
    }
  }
  return std::string_view::npos;
}

bool has_non_ascii(std::string_view text) {
  for (char c : text) {
    if (is_non_ascii(c)) return true;
  }
  return false;
}

struct parsed_path {
  path_error error = path_error::none;
  bool empty = false;  // "<>"
  mailbox address;
  std::string_view parameters;  // after the path and the spaces that follow it
};

// `keyword` is "from:" or "to:". Structural problems are syntax errors; a path whose
// brackets are in place but whose content is no Mailbox is a bad address.
parsed_path parse_path(std::string_view argument, std::string_view keyword, bool allow_postmaster) {
  parsed_path result;
  argument = trim_trailing_blanks(argument);
  if (!starts_with_lower(argument, keyword)) return {path_error::syntax};
  // RFC 5321 has no space here, but many clients send one.
  argument = skip_spaces(argument.substr(keyword.size()));
  if (argument.empty() || argument.front() != '<') return {path_error::syntax};
  size_t end = find_path_end(argument);
  if (end == std::string_view::npos) return {path_error::syntax};
  std::string_view inner = argument.substr(1, end - 1);
  std::string_view rest = argument.substr(end + 1);
  if (!rest.empty() && rest.front() != ' ') return {path_error::syntax};
  result.parameters = skip_spaces(rest);

  if (inner.empty()) {
    result.empty = true;
    return result;
  }
  if (allow_postmaster && equals_lower(inner, "postmaster")) {
    result.address = {"postmaster", {}};
    return result;
  }
  if (inner.front() == '@') {
    // The route is obsolete and must be ignored (RFC 5321 §4.1.1.3 and appendix C).
    std::optional<std::string_view> after_route = skip_source_route(inner);
    if (!after_route) return {path_error::bad_address};
    inner = *after_route;
  }
  if (!split_mailbox(inner, result.address)) return {path_error::bad_address};
  return result;
}

struct parameter {
  std::string_view keyword;
  std::string_view value;
  bool has_value;
};

// esmtp-param = esmtp-keyword ["=" esmtp-value]; esmtp-keyword = (ALPHA / DIGIT)
// *(ALPHA / DIGIT / "-"); esmtp-value = 1*(%d33-60 / %d62-126). Consumes one parameter
// and the spaces after it.
std::optional<parameter> next_parameter(std::string_view& parameters) {
  size_t space = parameters.find(' ');
  std::string_view token = parameters.substr(0, space);
  parameters =
      space == std::string_view::npos ? std::string_view{} : skip_spaces(parameters.substr(space));
  size_t equals = token.find('=');
  parameter p{token.substr(0, equals), {}, equals != std::string_view::npos};
  if (p.keyword.empty() || !is_alnum(p.keyword.front())) return std::nullopt;
  for (char c : p.keyword) {
    if (!is_alnum(c) && c != '-') return std::nullopt;
  }
  if (p.has_value) {
    p.value = token.substr(equals + 1);
    if (p.value.empty()) return std::nullopt;
    for (char c : p.value) {
      if (c < 33 || c > 126 || c == '=') return std::nullopt;
    }
  }
  return p;
}

// RFC 1870: size-value = 1*20DIGIT. A valid 20-digit value past what 64 bits hold is
// still a size, just larger than any limit: it saturates, so the client hears 552.
std::optional<uint64_t> parse_size(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  bool saturated = false;
  for (char c : text) {
    if (!is_digit(c)) return std::nullopt;
    saturated = saturated || __builtin_mul_overflow(value, 10u, &value) ||
                __builtin_add_overflow(value, unsigned(c - '0'), &value);
  }
  return saturated ? UINT64_MAX : value;
}

// RFC 3461 §4: xtext = *( xchar / hexchar ). The value already holds only esmtp-value
// characters, which are xtext's xchar range plus "+", so only each "+" needs a look: it
// must start a hexchar, "+" and two uppercase hex digits.
bool is_xtext(std::string_view value) {
  for (size_t plus = value.find('+'); plus != std::string_view::npos;
       plus = value.find('+', plus + 3)) {
    if (value.size() - plus < 3) return false;
    for (char h : value.substr(plus + 1, 2)) {
      if (!is_digit(h) && !(h >= 'A' && h <= 'F')) return false;
    }
  }
  return true;
}

// Applies one MAIL FROM parameter; `seen` stops a keyword given twice.
path_error apply_mail_parameter(const parameter& p, mail_from& into, unsigned& seen) {
  enum : unsigned { size_seen = 1, body_seen = 2, smtputf8_seen = 4, auth_seen = 8 };
  auto first_time = [&seen](unsigned bit) {
    bool first = (seen & bit) == 0;
    seen |= bit;
    return first;
  };
  if (equals_lower(p.keyword, "size")) {
    if (!first_time(size_seen) || !p.has_value) return path_error::bad_parameter;
    into.size_bytes = parse_size(p.value);
    return into.size_bytes ? path_error::none : path_error::bad_parameter;
  }
  if (equals_lower(p.keyword, "body")) {
    if (!first_time(body_seen)) return path_error::bad_parameter;
    if (equals_lower(p.value, "7bit")) {
      into.body = body_type::seven_bit;
    } else if (equals_lower(p.value, "8bitmime")) {
      into.body = body_type::eight_bit_mime;
    } else {
      return path_error::bad_parameter;
    }
    return path_error::none;
  }
  if (equals_lower(p.keyword, "smtputf8")) {
    if (!first_time(smtputf8_seen) || p.has_value) return path_error::bad_parameter;
    into.smtputf8 = true;
    return path_error::none;
  }
  if (equals_lower(p.keyword, "auth")) {
    // RFC 4954 §5: the value is the authenticated identity of the submitter, or "<>".
    // This server trusts no other server's identity, so it is checked and dropped.
    if (!first_time(auth_seen) || !p.has_value || !is_xtext(p.value))
      return path_error::bad_parameter;
    return path_error::none;
  }
  return path_error::unknown_parameter;
}

struct verb_name {
  std::string_view lower;
  verb name;
};

constexpr verb_name verb_names[] = {
    {"helo", verb::helo}, {"ehlo", verb::ehlo}, {"mail", verb::mail}, {"rcpt", verb::rcpt},
    {"data", verb::data}, {"bdat", verb::bdat}, {"rset", verb::rset}, {"noop", verb::noop},
    {"quit", verb::quit}, {"vrfy", verb::vrfy}, {"expn", verb::expn}, {"help", verb::help},
    {"auth", verb::auth}, {"starttls", verb::starttls},
};

verb find_verb(std::string_view word) {
  for (const verb_name& v : verb_names) {
    if (equals_lower(word, v.lower)) return v.name;
  }
  return verb::unknown;
}

}  // namespace

command parse_command(std::string_view line) {
  // NUL has no place in any command; letting it through would let text after it be
  // handled differently by C strings later on.
  if (line.find('\0') != std::string_view::npos) return {verb::unknown, {}};
  line = trim_trailing_blanks(line);
  size_t space = line.find(' ');
  verb name = find_verb(line.substr(0, space));
  std::string_view argument =
      space == std::string_view::npos ? std::string_view{} : skip_spaces(line.substr(space));
  return {name, argument};
}

mail_from parse_mail_from(std::string_view argument) {
  parsed_path path = parse_path(argument, "from:", false);
  if (path.error != path_error::none) return {path.error};

  mail_from result;
  result.null_sender = path.empty;
  result.sender = path.address;
  unsigned seen = 0;
  while (!path.parameters.empty()) {
    std::optional<parameter> p = next_parameter(path.parameters);
    if (!p) return {path_error::syntax};
    path_error error = apply_mail_parameter(*p, result, seen);
    if (error != path_error::none) return {error};
  }
  if (!result.smtputf8 &&
      (has_non_ascii(result.sender.local_part) || has_non_ascii(result.sender.domain))) {
    return {path_error::bad_address};
  }
  return result;
}

rcpt_to parse_rcpt_to(std::string_view argument, bool utf8_allowed) {
  parsed_path path = parse_path(argument, "to:", true);
  if (path.error != path_error::none) return {path.error};
  if (path.empty) return {path_error::bad_address};
  if (!path.parameters.empty()) {
    return {next_parameter(path.parameters) ? path_error::unknown_parameter : path_error::syntax};
  }
  if (!utf8_allowed &&
      (has_non_ascii(path.address.local_part) || has_non_ascii(path.address.domain))) {
    return {path_error::bad_address};
  }
  return {path_error::none, path.address};
}

}  // namespace mailwing::smtp
