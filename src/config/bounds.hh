#pragma once
// The accepted range of every integer key, shared by the JSON reader (which must not
// truncate into a narrower field) and validate() (which also sees command-line overrides).
// Internal to the config module.

#include <cstdint>
#include <string_view>

namespace mailwing::config {

struct integer_bound {
  std::string_view key;
  uint64_t min;
  uint64_t max;
};

// Throws config_error "<key>: must be an integer between <min> and <max>".
[[noreturn]] void throw_out_of_bounds(const integer_bound& bound);

inline void check_bounds(uint64_t value, const integer_bound& bound) {
  if (value < bound.min || value > bound.max) throw_out_of_bounds(bound);
}

namespace bounds {

inline constexpr uint64_t kib = 1024;
inline constexpr uint64_t mib = 1024 * kib;
inline constexpr uint64_t gib = 1024 * mib;
// Below 100 ms a timer fires before a slow client's round trip; above a day it is a typo.
inline constexpr uint64_t timeout_min_ms = 100;
inline constexpr uint64_t timeout_max_ms = 24 * 3600 * 1000;

inline constexpr integer_bound shards{"shards", 0, 256};
// A message size is a 32-bit quantity.
inline constexpr integer_bound smtp_message_bytes_max{"smtp.max_message_bytes", kib, 4 * gib - 1};
inline constexpr integer_bound smtp_recipients_max{"smtp.max_recipients", 1, 100000};
inline constexpr integer_bound smtp_connections_max{"smtp.max_connections", 1, 1000000};
inline constexpr integer_bound smtp_command_timeout_ms{"smtp.command_timeout_ms", timeout_min_ms,
                                                       timeout_max_ms};
inline constexpr integer_bound smtp_data_timeout_ms{"smtp.data_timeout_ms", timeout_min_ms,
                                                    timeout_max_ms};
// RFC 5321 §4.5.3.1.4: a server accepts command lines of at least 512 octets.
inline constexpr integer_bound smtp_line_bytes_max{"smtp.line_bytes_max", 512, 64 * kib};
inline constexpr integer_bound smtp_send_timeout_ms{"smtp.send_timeout_ms", timeout_min_ms, timeout_max_ms};
inline constexpr integer_bound smtp_connections_per_ip_max{"smtp.max_connections_per_ip", 1, 1000000};
inline constexpr integer_bound smtp_auth_failures_max{"smtp.auth_failures_max", 1, 100};
inline constexpr integer_bound pop3_connections_max{"pop3.max_connections", 1, 1000000};
inline constexpr integer_bound pop3_send_timeout_ms{"pop3.send_timeout_ms", timeout_min_ms, timeout_max_ms};
inline constexpr integer_bound pop3_connections_per_ip_max{"pop3.max_connections_per_ip", 1, 1000000};
inline constexpr integer_bound pop3_auth_failures_max{"pop3.auth_failures_max", 1, 100};
// RFC 1939 §3 asks for at least 10 minutes, but tests need short timers; the default
// (pop3_config) keeps the RFC's value.
inline constexpr integer_bound pop3_autologout_timeout_ms{"pop3.autologout_timeout_ms",
                                                          timeout_min_ms, timeout_max_ms};
inline constexpr integer_bound store_journal_segment_bytes{"store.journal_segment_bytes", mib,
                                                           16 * gib};
inline constexpr integer_bound store_checkpoint_interval_ms{"store.checkpoint_interval_ms", 100,
                                                            3600 * 1000};

}  // namespace bounds
}  // namespace mailwing::config
