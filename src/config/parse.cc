#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <string>

#include "bounds.hh"
#include "mailwing/config/config.hh"
#include "names.hh"

namespace mailwing::config {
namespace {

namespace dom = simdjson::dom;

template <class Enum>
struct enum_name {
  std::string_view name;
  Enum value;
};

constexpr std::array<enum_name<durability_mode>, 2> durability_names{{
    {"fsync", durability_mode::fsync},
    {"none", durability_mode::none},
}};
constexpr std::array<enum_name<io_backend_kind>, 3> io_backend_names{{
    {"auto", io_backend_kind::auto_select},
    {"io_uring", io_backend_kind::io_uring},
    {"epoll", io_backend_kind::epoll},
}};
constexpr std::array<enum_name<uint16_t>, 2> tls_version_names{{
    {"1.2", 0x0303},
    {"1.3", 0x0304},
}};
constexpr std::array<enum_name<log_level>, 4> log_level_names{{
    {"debug", log_level::debug},
    {"info", log_level::info},
    {"warn", log_level::warn},
    {"error", log_level::error},
}};

template <class Enum, size_t count>
std::string_view name_of(const std::array<enum_name<Enum>, count>& names, Enum value) {
  for (const auto& entry : names) {
    if (entry.value == value) return entry.name;
  }
  assert(!"every enumerator has a name");
  return {};
}

[[noreturn]] void fail(const std::string& path, std::string_view problem) {
  throw config_error(path + ": " + std::string(problem));
}

std::string field_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? escaped(key) : parent + "." + escaped(key);
}

std::string element_path(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

// Calls handle(key, value, path) for every field; handle returns false for a key it does not
// know. Duplicate keys are errors too: simdjson keeps both, and quietly using one of them
// would hide a mistake just as an ignored unknown key would.
template <class Handler>
void read_object(dom::element value, const std::string& path, Handler&& handle) {
  dom::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) {
    if (path.empty()) throw config_error("the configuration must be a JSON object");
    fail(path, "must be an object");
  }
  std::set<std::string_view> keys_seen;  // views into the parser, which outlives this call
  for (dom::key_value_pair field : object) {
    std::string path_of_field = field_path(path, field.key);
    if (!keys_seen.insert(field.key).second) {
      throw config_error("duplicate key \"" + path_of_field + "\"");
    }
    if (!handle(field.key, field.value, path_of_field)) {
      throw config_error("unknown key \"" + path_of_field + "\"");
    }
  }
}

// Calls handle(item, path) for every element.
template <class Handler>
void read_array(dom::element value, const std::string& path, std::string_view problem,
                Handler&& handle) {
  dom::array array;
  if (value.get_array().get(array) != simdjson::SUCCESS) fail(path, problem);
  size_t index = 0;
  for (dom::element item : array) handle(item, element_path(path, index++));
}

std::string read_string(dom::element value, const std::string& path) {
  std::string_view text;
  if (value.get_string().get(text) != simdjson::SUCCESS) fail(path, "must be a string");
  // Strings end up as C strings (paths) or in protocols where a NUL cannot be sent (SASL
  // uses it as a separator), so one could only cause truncation or an unusable password.
  if (text.find('\0') != std::string_view::npos) fail(path, "must not contain NUL");
  return std::string(text);
}

template <class Field>
void read_integer(dom::element value, const std::string& path, const integer_bound& bound,
                  Field& field) {
  assert(path == bound.key);
  assert(bound.max <= std::numeric_limits<Field>::max());
  uint64_t number = 0;
  // Negative numbers, fractions and non-numbers all fail get_uint64.
  if (value.get_uint64().get(number) != simdjson::SUCCESS) throw_out_of_bounds(bound);
  check_bounds(number, bound);
  field = static_cast<Field>(number);
}

template <class Enum, size_t count>
Enum read_choice(dom::element value, const std::string& path,
                 const std::array<enum_name<Enum>, count>& names) {
  std::string_view text;
  if (value.get_string().get(text) == simdjson::SUCCESS) {
    for (const auto& entry : names) {
      if (entry.name == text) return entry.value;
    }
  }
  std::string problem = "must be ";
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) problem += i + 1 == count ? " or " : ", ";
    problem += '"';
    problem += names[i].name;
    problem += '"';
  }
  fail(path, problem);
}

bool read_bool(dom::element value, const std::string& path) {
  bool flag = false;
  if (value.get_bool().get(flag) != simdjson::SUCCESS) fail(path, "must be true or false");
  return flag;
}

std::vector<std::string> read_strings(dom::element value, const std::string& path) {
  std::vector<std::string> strings;
  read_array(value, path, "must be an array of strings",
             [&](dom::element item, const std::string& item_path) {
               strings.push_back(read_string(item, item_path));
             });
  return strings;
}

std::vector<listen_address> read_listen(dom::element value, const std::string& path) {
  std::vector<listen_address> addresses;
  read_array(value, path, "must be an array of \"host:port\" strings",
             [&](dom::element item, const std::string& item_path) {
               addresses.push_back(parse_listen_address(read_string(item, item_path), item_path));
             });
  return addresses;
}

void read_smtp(dom::element value, const std::string& path, smtp_config& smtp) {
  read_object(value, path, [&](std::string_view key, dom::element field, const std::string& at) {
    if (key == "listen") {
      smtp.listen = read_listen(field, at);
    } else if (key == "max_message_bytes") {
      read_integer(field, at, bounds::smtp_message_bytes_max, smtp.message_bytes_max);
    } else if (key == "max_recipients") {
      read_integer(field, at, bounds::smtp_recipients_max, smtp.recipients_max);
    } else if (key == "max_connections") {
      read_integer(field, at, bounds::smtp_connections_max, smtp.connections_max);
    } else if (key == "command_timeout_ms") {
      read_integer(field, at, bounds::smtp_command_timeout_ms, smtp.command_timeout_ms);
    } else if (key == "data_timeout_ms") {
      read_integer(field, at, bounds::smtp_data_timeout_ms, smtp.data_timeout_ms);
    } else if (key == "line_bytes_max") {
      read_integer(field, at, bounds::smtp_line_bytes_max, smtp.line_bytes_max);
    } else if (key == "send_timeout_ms") {
      read_integer(field, at, bounds::smtp_send_timeout_ms, smtp.send_timeout_ms);
    } else if (key == "max_connections_per_ip") {
      read_integer(field, at, bounds::smtp_connections_per_ip_max, smtp.connections_per_ip_max);
    } else if (key == "auth_failures_max") {
      read_integer(field, at, bounds::smtp_auth_failures_max, smtp.auth_failures_max);
    } else if (key == "tls_listen") {
      smtp.tls_listen = read_listen(field, at);
    } else if (key == "auth_requires_tls") {
      smtp.auth_requires_tls = read_bool(field, at);
    } else {
      return false;
    }
    return true;
  });
}

void read_pop3(dom::element value, const std::string& path, pop3_config& pop3) {
  read_object(value, path, [&](std::string_view key, dom::element field, const std::string& at) {
    if (key == "listen") {
      pop3.listen = read_listen(field, at);
    } else if (key == "max_connections") {
      read_integer(field, at, bounds::pop3_connections_max, pop3.connections_max);
    } else if (key == "autologout_timeout_ms") {
      read_integer(field, at, bounds::pop3_autologout_timeout_ms, pop3.autologout_timeout_ms);
    } else if (key == "send_timeout_ms") {
      read_integer(field, at, bounds::pop3_send_timeout_ms, pop3.send_timeout_ms);
    } else if (key == "max_connections_per_ip") {
      read_integer(field, at, bounds::pop3_connections_per_ip_max, pop3.connections_per_ip_max);
    } else if (key == "auth_failures_max") {
      read_integer(field, at, bounds::pop3_auth_failures_max, pop3.auth_failures_max);
    } else if (key == "tls_listen") {
      pop3.tls_listen = read_listen(field, at);
    } else if (key == "auth_requires_tls") {
      pop3.auth_requires_tls = read_bool(field, at);
    } else {
      return false;
    }
    return true;
  });
}

void read_tls(dom::element value, const std::string& path, tls_config& tls) {
  tls.enabled = true;
  read_object(value, path, [&](std::string_view key, dom::element field, const std::string& at) {
    if (key == "certificate") {
      tls.certificate = read_string(field, at);
    } else if (key == "private_key") {
      tls.private_key = read_string(field, at);
    } else if (key == "min_version") {
      tls.min_version = read_choice(field, at, tls_version_names);
    } else {
      return false;
    }
    return true;
  });
}

void read_store(dom::element value, const std::string& path, store_config& store) {
  read_object(value, path, [&](std::string_view key, dom::element field, const std::string& at) {
    if (key == "journal_segment_bytes") {
      read_integer(field, at, bounds::store_journal_segment_bytes, store.journal_segment_bytes);
    } else if (key == "checkpoint_interval_ms") {
      read_integer(field, at, bounds::store_checkpoint_interval_ms, store.checkpoint_interval_ms);
    } else {
      return false;
    }
    return true;
  });
}

user read_user(dom::element value, const std::string& path) {
  user entry;
  bool has_address = false;
  bool has_password = false;
  read_object(value, path, [&](std::string_view key, dom::element field, const std::string& at) {
    if (key == "address") {
      entry.address = read_string(field, at);
      has_address = true;
    } else if (key == "password") {
      entry.password = read_string(field, at);
      has_password = true;
    } else {
      return false;
    }
    return true;
  });
  if (!has_address) fail(path + ".address", "is missing");
  if (!has_password) fail(path + ".password", "is missing");
  return entry;
}

std::vector<user> read_users(dom::element value, const std::string& path) {
  std::vector<user> users;
  read_array(value, path, "must be an array of {\"address\", \"password\"} objects",
             [&](dom::element item, const std::string& item_path) {
               users.push_back(read_user(item, item_path));
             });
  return users;
}

std::map<std::string, std::string> read_catch_all(dom::element value, const std::string& path) {
  std::map<std::string, std::string> catch_all;
  read_object(value, path, [&](std::string_view key, dom::element field, const std::string& at) {
    catch_all.emplace(key, read_string(field, at));
    return true;
  });
  return catch_all;
}

void read_root(dom::element root, config& cfg) {
  read_object(root, "", [&](std::string_view key, dom::element field, const std::string& at) {
    if (key == "hostname") {
      cfg.hostname = read_string(field, at);
    } else if (key == "data_dir") {
      cfg.data_dir = read_string(field, at);
    } else if (key == "shards") {
      read_integer(field, at, bounds::shards, cfg.shards);
    } else if (key == "durability") {
      cfg.durability = read_choice(field, at, durability_names);
    } else if (key == "io_backend") {
      cfg.io_backend = read_choice(field, at, io_backend_names);
    } else if (key == "log_level") {
      cfg.level = read_choice(field, at, log_level_names);
    } else if (key == "smtp") {
      read_smtp(field, at, cfg.smtp);
    } else if (key == "pop3") {
      read_pop3(field, at, cfg.pop3);
    } else if (key == "store") {
      read_store(field, at, cfg.store);
    } else if (key == "tls") {
      read_tls(field, at, cfg.tls);
    } else if (key == "domains") {
      cfg.domains = read_strings(field, at);
    } else if (key == "users") {
      cfg.users = read_users(field, at);
    } else if (key == "postmaster") {
      cfg.postmaster = read_string(field, at);
    } else if (key == "catch_all") {
      cfg.catch_all = read_catch_all(field, at);
    } else {
      return false;
    }
    return true;
  });
}

[[noreturn]] void throw_unreadable(const std::string& path, int error) {
  throw config_error("cannot read config file " + in_quotes(path) + ": " + std::strerror(error));
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_unreadable(path, errno);
  std::string text;
  char buffer[16384];
  while (true) {
    ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int error = errno;
      ::close(fd);
      throw_unreadable(path, error);
    }
    if (got == 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return text;
}

}  // namespace

config parse_config(std::string_view json) {
  simdjson::padded_string padded(json);
  dom::parser parser;
  dom::element root;
  if (auto error = parser.parse(padded).get(root); error != simdjson::SUCCESS) {
    throw config_error(std::string("invalid JSON: ") + simdjson::error_message(error));
  }
  config cfg;
  read_root(root, cfg);
  validate(cfg);
  return cfg;
}

config load_config_file(const std::string& path) { return parse_config(read_file(path)); }

std::string_view to_string(durability_mode mode) { return name_of(durability_names, mode); }

std::string_view to_string(io_backend_kind kind) { return name_of(io_backend_names, kind); }

}  // namespace mailwing::config
