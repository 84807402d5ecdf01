#include "mailwing/config/config.hh"

namespace mailwing::config {

// Kept as JSON rather than a filled-in struct so that it goes through the same parser and
// validation as a file, and can be printed as a starting point for one.
std::string_view embedded_default_json() {
  return R"json({
  "hostname": "mx.example.test",
  "data_dir": "./var/mailwing",
  "shards": 0,
  "durability": "fsync",
  "io_backend": "auto",
  "smtp": {
    "listen": ["127.0.0.1:2525"],
    "tls_listen": ["127.0.0.1:4465"]
  },
  "pop3": {
    "listen": ["127.0.0.1:1100"],
    "tls_listen": ["127.0.0.1:9995"]
  },
  "tls": {},
  "domains": ["example.test"],
  "users": [
    {"address": "demo@example.test", "password": "demo"}
  ]
}
)json";
}

}  // namespace mailwing::config
