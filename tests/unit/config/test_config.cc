#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "mailwing/config/config.hh"

namespace mailwing::config {
namespace {

// A valid document; tests replace one part at a time.
struct doc {
  std::string smtp = R"("listen": ["127.0.0.1:2525"])";
  std::string domains = R"(["example.test"])";
  std::string users = R"([{"address": "alice@example.test", "password": "pw"}])";
  std::string extra;  // more top-level fields, each followed by a comma

  std::string json() const {
    return "{" + extra + R"("smtp": {)" + smtp + R"(}, "domains": )" + domains + R"(, "users": )" +
           users + "}";
  }
};

// The config_error message, or "" when the document is accepted.
std::string error_of(std::string_view json) {
  try {
    parse_config(json);
  } catch (const config_error& error) {
    return error.what();
  }
  return "";
}

std::string error_of(const doc& document) { return error_of(document.json()); }

// The config_error message of parse_listen_address, or "" when it accepts `text`.
std::string listen_error(std::string_view text, std::string_view key) {
  try {
    parse_listen_address(text, key);
  } catch (const config_error& error) {
    return error.what();
  }
  return "";
}

std::string with_extra(std::string_view fields) {
  return error_of(doc{.extra = std::string(fields)});
}

TEST(Config, EmbeddedDefaultParses) {
  config cfg = parse_config(embedded_default_json());
  EXPECT_EQ(cfg.hostname, "mx.example.test");
  EXPECT_EQ(cfg.data_dir, "./var/mailwing");
  EXPECT_EQ(cfg.shards, 0u);
  EXPECT_EQ(cfg.durability, durability_mode::fsync);
  EXPECT_EQ(cfg.io_backend, io_backend_kind::auto_select);
  EXPECT_EQ(cfg.level, log_level::info);
  ASSERT_EQ(cfg.smtp.listen.size(), 1u);
  EXPECT_EQ(cfg.smtp.listen[0], (listen_address{"127.0.0.1", 2525}));
  ASSERT_EQ(cfg.pop3.listen.size(), 1u);
  EXPECT_EQ(cfg.pop3.listen[0], (listen_address{"127.0.0.1", 1100}));
  EXPECT_EQ(cfg.domains, std::vector<std::string>{"example.test"});
  ASSERT_EQ(cfg.users.size(), 1u);
  EXPECT_EQ(cfg.users[0].address, "demo@example.test");
  EXPECT_EQ(cfg.users[0].password, "demo");
  EXPECT_FALSE(cfg.users[0].password_is_hash());
  EXPECT_EQ(cfg.postmaster, "demo@example.test");
  EXPECT_TRUE(cfg.catch_all.empty());
}

TEST(Config, AbsentKeysKeepDefaults) {
  config cfg = parse_config(doc{}.json());
  config defaults;
  EXPECT_EQ(cfg.hostname, defaults.hostname);
  EXPECT_EQ(cfg.data_dir, defaults.data_dir);
  EXPECT_EQ(cfg.shards, 0u);
  EXPECT_EQ(cfg.durability, durability_mode::fsync);
  EXPECT_EQ(cfg.io_backend, io_backend_kind::auto_select);
  EXPECT_EQ(cfg.level, log_level::info);
  EXPECT_EQ(cfg.smtp.message_bytes_max, 52428800u);
  EXPECT_EQ(cfg.smtp.recipients_max, 100u);
  EXPECT_EQ(cfg.smtp.connections_max, 20000u);
  EXPECT_EQ(cfg.smtp.command_timeout_ms, 300000u);
  EXPECT_EQ(cfg.smtp.data_timeout_ms, 180000u);
  EXPECT_EQ(cfg.smtp.line_bytes_max, 4096u);
  EXPECT_EQ(cfg.smtp.send_timeout_ms, 60000u);
  EXPECT_EQ(cfg.smtp.connections_per_ip_max, 50u);
  EXPECT_EQ(cfg.smtp.auth_failures_max, 5u);
  EXPECT_TRUE(cfg.pop3.listen.empty());
  EXPECT_EQ(cfg.pop3.connections_max, 20000u);
  EXPECT_EQ(cfg.pop3.autologout_timeout_ms, 600000u);
  EXPECT_EQ(cfg.pop3.send_timeout_ms, 60000u);
  EXPECT_EQ(cfg.pop3.connections_per_ip_max, 50u);
  EXPECT_EQ(cfg.pop3.auth_failures_max, 5u);
  EXPECT_EQ(cfg.store.journal_segment_bytes, 64ull << 20);
  EXPECT_EQ(cfg.store.checkpoint_interval_ms, 30000u);
  EXPECT_EQ(cfg.postmaster, "alice@example.test");
}

TEST(Config, EveryKeyIsRead) {
  config cfg = parse_config(R"({
    "hostname": "mail.corp.test",
    "data_dir": "/srv/mail",
    "shards": 4,
    "durability": "none",
    "io_backend": "epoll",
    "log_level": "debug",
    "smtp": {"listen": ["0.0.0.0:25", "[::]:25"], "max_message_bytes": 1024,
             "max_recipients": 100000, "max_connections": 1, "command_timeout_ms": 100,
             "data_timeout_ms": 86400000, "line_bytes_max": 512, "send_timeout_ms": 1000,
             "max_connections_per_ip": 7, "auth_failures_max": 3},
    "pop3": {"listen": ["[::1]:110"], "max_connections": 1000000,
             "autologout_timeout_ms": 250, "send_timeout_ms": 2000,
             "max_connections_per_ip": 8, "auth_failures_max": 4},
    "store": {"journal_segment_bytes": 1048576, "checkpoint_interval_ms": 3600000},
    "domains": ["corp.test", "other.test"],
    "users": [{"address": "a@corp.test", "password": "x"},
              {"address": "b@other.test", "password": "$argon2id$v=19$m=65536,t=2,p=1$JxPwcw3KV/l53hqTCK/FTQ$Is7kUtR2j0Pq3Ki7MRBdKGbTB1mvbUaiSInRR5cRwWk"}],
    "postmaster": "b@other.test",
    "catch_all": {"corp.test": "a@corp.test"}
  })");
  EXPECT_EQ(cfg.hostname, "mail.corp.test");
  EXPECT_EQ(cfg.data_dir, "/srv/mail");
  EXPECT_EQ(cfg.shards, 4u);
  EXPECT_EQ(cfg.durability, durability_mode::none);
  EXPECT_EQ(cfg.io_backend, io_backend_kind::epoll);
  EXPECT_EQ(cfg.level, log_level::debug);
  EXPECT_EQ(cfg.smtp.listen, (std::vector<listen_address>{{"0.0.0.0", 25}, {"::", 25}}));
  EXPECT_EQ(cfg.smtp.message_bytes_max, 1024u);
  EXPECT_EQ(cfg.smtp.recipients_max, 100000u);
  EXPECT_EQ(cfg.smtp.connections_max, 1u);
  EXPECT_EQ(cfg.smtp.command_timeout_ms, 100u);
  EXPECT_EQ(cfg.smtp.data_timeout_ms, 86400000u);
  EXPECT_EQ(cfg.smtp.line_bytes_max, 512u);
  EXPECT_EQ(cfg.smtp.send_timeout_ms, 1000u);
  EXPECT_EQ(cfg.smtp.connections_per_ip_max, 7u);
  EXPECT_EQ(cfg.smtp.auth_failures_max, 3u);
  EXPECT_EQ(cfg.pop3.listen, (std::vector<listen_address>{{"::1", 110}}));
  EXPECT_EQ(cfg.pop3.connections_max, 1000000u);
  EXPECT_EQ(cfg.pop3.autologout_timeout_ms, 250u);
  EXPECT_EQ(cfg.pop3.send_timeout_ms, 2000u);
  EXPECT_EQ(cfg.pop3.connections_per_ip_max, 8u);
  EXPECT_EQ(cfg.pop3.auth_failures_max, 4u);
  EXPECT_EQ(cfg.store.journal_segment_bytes, 1048576u);
  EXPECT_EQ(cfg.store.checkpoint_interval_ms, 3600000u);
  EXPECT_EQ(cfg.domains, (std::vector<std::string>{"corp.test", "other.test"}));
  ASSERT_EQ(cfg.users.size(), 2u);
  EXPECT_FALSE(cfg.users[0].password_is_hash());
  EXPECT_TRUE(cfg.users[1].password_is_hash());
  EXPECT_EQ(cfg.postmaster, "b@other.test");
  EXPECT_EQ(cfg.catch_all, (std::map<std::string, std::string>{{"corp.test", "a@corp.test"}}));
}

TEST(Config, LargestValuesFitTheirFields) {
  config cfg = parse_config(
      doc{.smtp = R"("listen": ["127.0.0.1:1"], "max_message_bytes": 4294967295)",
          .extra = R"("shards": 256, "store": {"journal_segment_bytes": 17179869184},)"}
          .json());
  EXPECT_EQ(cfg.shards, 256u);
  EXPECT_EQ(cfg.smtp.message_bytes_max, 4294967295u);
  EXPECT_EQ(cfg.store.journal_segment_bytes, 16ull << 30);
}

TEST(Config, IntegerBoundsNameTheirKey) {
  struct bad_integer {
    std::string smtp_fields;
    std::string extra;
    std::string message;
  };
  const std::string listen = R"("listen": ["127.0.0.1:2525"])";
  const bad_integer cases[] = {
      {"", R"("shards": 257,)", "shards: must be an integer between 0 and 256"},
      {"", R"("shards": -1,)", "shards: must be an integer between 0 and 256"},
      {"", R"("shards": 1.5,)", "shards: must be an integer between 0 and 256"},
      {"", R"("shards": "4",)", "shards: must be an integer between 0 and 256"},
      {"", R"("shards": true,)", "shards: must be an integer between 0 and 256"},
      {R"(, "max_message_bytes": 1023)", "",
       "smtp.max_message_bytes: must be an integer between 1024 and 4294967295"},
      {R"(, "max_message_bytes": 4294967296)", "",
       "smtp.max_message_bytes: must be an integer between 1024 and 4294967295"},
      {R"(, "max_recipients": 0)", "",
       "smtp.max_recipients: must be an integer between 1 and 100000"},
      {R"(, "max_recipients": 100001)", "",
       "smtp.max_recipients: must be an integer between 1 and 100000"},
      {R"(, "max_connections": 0)", "",
       "smtp.max_connections: must be an integer between 1 and 1000000"},
      {R"(, "command_timeout_ms": 99)", "",
       "smtp.command_timeout_ms: must be an integer between 100 and 86400000"},
      {R"(, "data_timeout_ms": 86400001)", "",
       "smtp.data_timeout_ms: must be an integer between 100 and 86400000"},
      {R"(, "line_bytes_max": 511)", "",
       "smtp.line_bytes_max: must be an integer between 512 and 65536"},
      {R"(, "line_bytes_max": 65537)", "",
       "smtp.line_bytes_max: must be an integer between 512 and 65536"},
      {"", R"("pop3": {"max_connections": 1000001},)",
       "pop3.max_connections: must be an integer between 1 and 1000000"},
      {"", R"("pop3": {"autologout_timeout_ms": 99},)",
       "pop3.autologout_timeout_ms: must be an integer between 100 and 86400000"},
      {"", R"("store": {"journal_segment_bytes": 1048575},)",
       "store.journal_segment_bytes: must be an integer between 1048576 and 17179869184"},
      {"", R"("store": {"journal_segment_bytes": 17179869185},)",
       "store.journal_segment_bytes: must be an integer between 1048576 and 17179869184"},
      {"", R"("store": {"checkpoint_interval_ms": 3600001},)",
       "store.checkpoint_interval_ms: must be an integer between 100 and 3600000"},
      {"", R"("store": {"checkpoint_interval_ms": 99},)",
       "store.checkpoint_interval_ms: must be an integer between 100 and 3600000"},
  };
  for (const bad_integer& bad : cases) {
    EXPECT_EQ(error_of(doc{.smtp = listen + bad.smtp_fields, .extra = bad.extra}), bad.message)
        << bad.smtp_fields << bad.extra;
  }
}

TEST(Config, ChoicesNameTheirKey) {
  EXPECT_EQ(with_extra(R"("io_backend": "kqueue",)"),
            R"(io_backend: must be "auto", "io_uring" or "epoll")");
  EXPECT_EQ(with_extra(R"("io_backend": 1,)"),
            R"(io_backend: must be "auto", "io_uring" or "epoll")");
  EXPECT_EQ(with_extra(R"("durability": "FSYNC",)"), R"(durability: must be "fsync" or "none")");
  EXPECT_EQ(with_extra(R"("log_level": "trace",)"),
            R"(log_level: must be "debug", "info", "warn" or "error")");
  EXPECT_EQ(parse_config(doc{.extra = R"("io_backend": "io_uring",)"}.json()).io_backend,
            io_backend_kind::io_uring);
  EXPECT_EQ(parse_config(doc{.extra = R"("log_level": "warn",)"}.json()).level, log_level::warn);
  EXPECT_EQ(parse_config(doc{.extra = R"("log_level": "error",)"}.json()).level, log_level::error);
}

TEST(Config, TypeErrorsNameTheirKey) {
  EXPECT_EQ(with_extra(R"("hostname": 5,)"), "hostname: must be a string");
  EXPECT_EQ(with_extra(R"("data_dir": null,)"), "data_dir: must be a string");
  EXPECT_EQ(with_extra(R"("data_dir": "a\u0000b",)"), "data_dir: must not contain NUL");
  EXPECT_EQ(with_extra(R"("pop3": [],)"), "pop3: must be an object");
  EXPECT_EQ(with_extra(R"("store": 1,)"), "store: must be an object");
  EXPECT_EQ(with_extra(R"("postmaster": [],)"), "postmaster: must be a string");
  EXPECT_EQ(with_extra(R"("catch_all": ["example.test"],)"), "catch_all: must be an object");
  EXPECT_EQ(with_extra(R"("catch_all": {"example.test": 1},)"),
            "catch_all.example.test: must be a string");
  EXPECT_EQ(with_extra(R"("pop3": {"listen": "127.0.0.1:110"},)"),
            R"(pop3.listen: must be an array of "host:port" strings)");
  EXPECT_EQ(error_of(doc{.smtp = R"("listen": [2525])"}), "smtp.listen[0]: must be a string");
  EXPECT_EQ(error_of(doc{.domains = R"("example.test")"}), "domains: must be an array of strings");
  EXPECT_EQ(error_of(doc{.domains = R"(["example.test", 7])"}), "domains[1]: must be a string");
  EXPECT_EQ(error_of(doc{.users = R"({"address": "a@example.test"})"}),
            R"(users: must be an array of {"address", "password"} objects)");
  EXPECT_EQ(error_of(doc{.users = R"(["alice@example.test"])"}), "users[0]: must be an object");
  EXPECT_EQ(error_of(doc{.users = R"([{"address": "a@example.test", "password": 1}])"}),
            "users[0].password: must be a string");
  EXPECT_EQ(error_of(doc{.users = R"([{"password": "pw"}])"}), "users[0].address: is missing");
  EXPECT_EQ(error_of(doc{.users = R"([{"address": "a@example.test"}])"}),
            "users[0].password: is missing");
  EXPECT_EQ(error_of(R"(["not", "an", "object"])"), "the configuration must be a JSON object");
}

TEST(Config, UnknownAndDuplicateKeys) {
  EXPECT_EQ(error_of(doc{.smtp = R"("listen": ["127.0.0.1:2525"], "max_recipient": 5)"}),
            R"(unknown key "smtp.max_recipient")");
  EXPECT_EQ(with_extra(R"("hostnam": "x",)"), R"(unknown key "hostnam")");
  EXPECT_EQ(with_extra(R"("pop3": {"timeout": 1},)"), R"(unknown key "pop3.timeout")");
  EXPECT_EQ(with_extra(R"("store": {"segment_bytes": 1},)"),
            R"(unknown key "store.segment_bytes")");
  EXPECT_EQ(
      error_of(doc{.users = R"([{"address": "a@example.test", "password": "p", "name": "A"}])"}),
      R"(unknown key "users[0].name")");
  EXPECT_EQ(with_extra(R"("shards": 1, "shards": 2,)"), R"(duplicate key "shards")");
  EXPECT_EQ(error_of(doc{.smtp = R"("listen": ["127.0.0.1:1"], "listen": ["127.0.0.1:2"])"}),
            R"(duplicate key "smtp.listen")");
  EXPECT_EQ(with_extra("\"bad\\nkey\": 1,"), R"(unknown key "bad\u000akey")");
}

TEST(Config, JsonSyntaxErrors) {
  EXPECT_TRUE(error_of(R"({"hostname": "x",})").starts_with("invalid JSON: ")) << error_of("{");
  EXPECT_TRUE(error_of("{").starts_with("invalid JSON: "));
  EXPECT_TRUE(error_of("").starts_with("invalid JSON: "));
  EXPECT_TRUE(error_of(R"({"shards": 99999999999999999999999})").starts_with("invalid JSON: "));
}

TEST(Config, RequiredListsAreNonEmpty) {
  EXPECT_EQ(error_of(doc{.smtp = R"("listen": [])"}),
            R"(smtp.listen: must list at least one "host:port")");
  EXPECT_EQ(error_of(doc{.smtp = ""}), R"(smtp.listen: must list at least one "host:port")");
  EXPECT_EQ(error_of(doc{.domains = "[]"}), "domains: must list at least one domain");
  EXPECT_EQ(error_of(doc{.users = "[]"}), "users: must list at least one user");
  EXPECT_EQ(error_of("{}"), R"(smtp.listen: must list at least one "host:port")");
  // POP3 is optional: no listener means no POP3 service.
  EXPECT_EQ(with_extra(R"("pop3": {"listen": []},)"), "");
}

TEST(Config, HostnameAndDataDir) {
  EXPECT_EQ(with_extra(R"("hostname": "",)"), R"(hostname: "" is not a DNS name)");
  EXPECT_EQ(with_extra(R"("hostname": "mx example",)"),
            R"(hostname: "mx example" is not a DNS name)");
  EXPECT_EQ(with_extra(R"("hostname": "mx.test\r\nX",)"),
            R"(hostname: "mx.test\u000d\u000aX" is not a DNS name)");
  EXPECT_EQ(with_extra(R"("data_dir": "",)"), "data_dir: must not be empty");
  EXPECT_EQ(parse_config(doc{.extra = R"("hostname": "MX.Example.TEST",)"}.json()).hostname,
            "MX.Example.TEST");
}

TEST(Config, Domains) {
  config cfg = parse_config(doc{.domains = R"(["Example.TEST", "b.test"])"}.json());
  EXPECT_EQ(cfg.domains, (std::vector<std::string>{"example.test", "b.test"}));
  EXPECT_EQ(error_of(doc{.domains = R"(["example.test", "EXAMPLE.test"])"}),
            R"(domains[1]: "example.test" is already domains[0])");
  for (const char* bad : {"", "-a.test", "a-.test", "a..test", ".test", "test.", "a_b.test",
                          "ex ample.test", "exämple.test"}) {
    std::string json_domain = std::string(bad);
    EXPECT_EQ(error_of(doc{.domains = R"(["example.test", ")" + json_domain + R"("])"}),
              R"(domains[1]: ")" + json_domain + R"(" is not a DNS name)");
  }
  std::string label63(63, 'a');
  EXPECT_EQ(error_of(doc{.domains = R"(["example.test", ")" + label63 + R"(.test"])"}), "");
  EXPECT_NE(error_of(doc{.domains = R"(["example.test", "a)" + label63 + R"(.test"])"}), "");
}

TEST(Config, UserAddresses) {
  auto user_error = [](std::string_view address) {
    return error_of(doc{.users = R"([{"address": "alice@example.test", "password": "p"},
                                     {"address": ")" +
                                 std::string(address) + R"(", "password": "p"}])"});
  };
  auto expect_rejected = [&](std::string_view address, std::string_view problem) {
    EXPECT_EQ(user_error(address),
              R"(users[1].address: ")" + std::string(address) + R"(" )" + std::string(problem));
  };
  for (const char* shape : {"bob", "@example.test", "bob@", "a@b@example.test", ""}) {
    expect_rejected(shape, "is not an address (local@domain)");
  }
  expect_rejected("bob@other.test", R"(is not in one of the domains listed in "domains")");
  expect_rejected("bob@sub.example.test", R"(is not in one of the domains listed in "domains")");
  expect_rejected("bob+tag@example.test",
                  "has '+' in the local part (reserved for plus-addressing: user+tag@ delivers "
                  "to user)");
  for (const char* dots : {".bob@example.test", "bob.@example.test", "b..ob@example.test",
                           ".@example.test", "..@example.test"}) {
    expect_rejected(dots, R"(has a local part that starts or ends with '.' or contains "..")");
  }
  for (const char* bad_char : {"a/b@example.test", "a b@example.test", "a(b)@example.test",
                               "a,b@example.test", "a:b@example.test", "\xc3\xa4@example.test"}) {
    expect_rejected(bad_char, "has a local part character outside a-z 0-9 . and !#$%&'*-=?^_`{|}~");
  }
  expect_rejected(std::string(65, 'a') + "@example.test", "has a local part longer than 64 octets");
  EXPECT_EQ(user_error("first.last-x_y!#$%&'*=?^`{|}~@example.test"), "");
  EXPECT_EQ(user_error(std::string(64, 'a') + "@example.test"), "");

  std::string label(63, 'd');
  std::string long_domain = label + "." + label + "." + label + ".test";  // 196 octets
  std::string long_address = std::string(55, 'a') + "@" + long_domain;    // 252 octets
  EXPECT_EQ(error_of(doc{.domains = R"([")" + long_domain + R"("])",
                         .users = R"([{"address": ")" + long_address + R"(", "password": "p"}])"}),
            R"(users[0].address: ")" + long_address +
                R"(" is longer than 251 octets, too long for the mailbox file name)");
  long_address.erase(0, 1);
  EXPECT_EQ(error_of(doc{.domains = R"([")" + long_domain + R"("])",
                         .users = R"([{"address": ")" + long_address + R"(", "password": "p"}])"}),
            "");
}

TEST(Config, UsersAreLowerCasedAndUnique) {
  config cfg = parse_config(doc{.domains = R"(["Example.Test"])",
                                .users = R"([{"address": "Alice@EXAMPLE.test", "password": "PW"}])"}
                                .json());
  EXPECT_EQ(cfg.users[0].address, "alice@example.test");
  EXPECT_EQ(cfg.users[0].password, "PW");
  EXPECT_EQ(cfg.postmaster, "alice@example.test");
  EXPECT_EQ(error_of(doc{.users = R"([{"address": "a@example.test", "password": "p"},
                                      {"address": "b@example.test", "password": "p"},
                                      {"address": "A@example.test", "password": "q"}])"}),
            R"(users[2].address: "a@example.test" is already users[0])");
  EXPECT_EQ(error_of(doc{.users = R"([{"address": "a@example.test", "password": ""}])"}),
            "users[0].password: must not be empty");
}

// A password that looks like an argon2 hash must be a valid $argon2id$ string; the error
// names the user, so that the operator knows whose hash to make again.
TEST(Config, PasswordHashes) {
  const std::string good =
      "$argon2id$v=19$m=65536,t=2,p=1$JxPwcw3KV/l53hqTCK/FTQ$Is7kUtR2j0Pq3Ki7MRBdKGbTB1mvbUaiSInRR5cRwWk";
  auto hash_error = [](const std::string& password) {
    return error_of(doc{.users = R"([{"address": "alice@example.test", "password": "p"},
                                     {"address": "bob@example.test", "password": ")" +
                                 password + R"("}])"});
  };
  const std::string expected =
      R"(users[1].password: the password of "bob@example.test" is not a valid $argon2id$ string )"
      "(make one with: mailwing hash-password)";
  EXPECT_EQ(hash_error(good), "");
  EXPECT_EQ(hash_error("$argon2id$"), expected);
  EXPECT_EQ(hash_error(good.substr(0, good.size() - 10)), expected);        // hash cut short
  EXPECT_EQ(hash_error("$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA"), expected);  // too short
  EXPECT_EQ(hash_error("$argon2id$v=19$m=65536,t=2,p=1$JxPwcw3KV/l53hqTCK/FTQ"), expected);
  EXPECT_EQ(hash_error("$argon2id$v=19$m=x,t=2,p=1$JxPwcw3KV/l53hqTCK/FTQ$Is7kUtR2j0Pq3Ki7MRBdKGbTB1mvbUaiSInRR5cRwWk"),
            expected);
  std::string bad_base64 = good;
  bad_base64[bad_base64.size() - 3] = '!';
  EXPECT_EQ(hash_error(bad_base64), expected);
  std::string argon2i = good;
  argon2i.erase(8, 1);  // "$argon2i$..."
  EXPECT_EQ(hash_error(argon2i), expected);
  EXPECT_EQ(hash_error(good + std::string(200, 'A')), expected);
  // Plain-text passwords with a dollar sign stay plain text.
  EXPECT_EQ(hash_error("$ecret$"), "");
}

TEST(Config, Postmaster) {
  const std::string two_users = R"([{"address": "a@example.test", "password": "p"},
                                    {"address": "b@example.test", "password": "p"}])";
  EXPECT_EQ(parse_config(doc{.users = two_users}.json()).postmaster, "a@example.test");
  EXPECT_EQ(
      parse_config(doc{.users = two_users, .extra = R"("postmaster": "B@Example.test",)"}.json())
          .postmaster,
      "b@example.test");
  EXPECT_EQ(error_of(doc{.users = two_users, .extra = R"("postmaster": "c@example.test",)"}),
            R"(postmaster: "c@example.test" is not the address of a user)");
  EXPECT_EQ(error_of(doc{.users = two_users, .extra = R"("postmaster": "postmaster",)"}),
            R"(postmaster: "postmaster" is not the address of a user)");
}

TEST(Config, CatchAll) {
  const std::string domains = R"(["a.test", "b.test"])";
  const std::string users = R"([{"address": "x@a.test", "password": "p"},
                                {"address": "y@b.test", "password": "p"}])";
  config cfg =
      parse_config(doc{.domains = domains,
                       .users = users,
                       .extra = R"("catch_all": {"A.TEST": "X@a.test", "b.test": "x@a.test"},)"}
                       .json());
  EXPECT_EQ(cfg.catch_all,
            (std::map<std::string, std::string>{{"a.test", "x@a.test"}, {"b.test", "x@a.test"}}));
  EXPECT_EQ(
      error_of(doc{
          .domains = domains, .users = users, .extra = R"("catch_all": {"c.test": "x@a.test"},)"}),
      R"(catch_all.c.test: "c.test" is not one of the domains listed in "domains")");
  EXPECT_EQ(
      error_of(doc{
          .domains = domains, .users = users, .extra = R"("catch_all": {"a.test": "z@a.test"},)"}),
      R"(catch_all.a.test: "z@a.test" is not the address of a user)");
  EXPECT_EQ(error_of(doc{.domains = domains,
                         .users = users,
                         .extra = R"("catch_all": {"a.test": "x@a.test", "A.test": "y@b.test"},)"}),
            "catch_all.a.test: another key names the same domain in a different case");
}

TEST(ListenAddress, Accepted) {
  EXPECT_EQ(parse_listen_address("127.0.0.1:2525", "k"), (listen_address{"127.0.0.1", 2525}));
  EXPECT_EQ(parse_listen_address("0.0.0.0:25", "k"), (listen_address{"0.0.0.0", 25}));
  EXPECT_EQ(parse_listen_address("0.0.0.0:0", "k"), (listen_address{"0.0.0.0", 0}));
  EXPECT_EQ(parse_listen_address("10.1.2.3:65535", "k"), (listen_address{"10.1.2.3", 65535}));
  EXPECT_EQ(parse_listen_address("[::1]:2525", "k"), (listen_address{"::1", 2525}));
  EXPECT_EQ(parse_listen_address("[::]:25", "k"), (listen_address{"::", 25}));
  EXPECT_EQ(parse_listen_address("[2001:db8::1]:587", "k"), (listen_address{"2001:db8::1", 587}));
  EXPECT_EQ(parse_listen_address("[::ffff:127.0.0.1]:25", "k"),
            (listen_address{"::ffff:127.0.0.1", 25}));
}

TEST(ListenAddress, BadHostsNameTheKey) {
  for (const char* bad : {"localhost:25", "example.test:25", "127.0.0.1", "::1:25", "::1", "[::1]",
                          "[::1]25", "[127.0.0.1]:25", "1.2.3:25", "256.0.0.1:25", "127.0.0.01:25",
                          ":25", "[]:25", "[::1:25", "[fe80::1%lo]:25", " 127.0.0.1:25", ""}) {
    EXPECT_EQ(listen_error(bad, "smtp.listen[3]"),
              "smtp.listen[3]: \"" + std::string(bad) +
                  "\" is not host:port (an IPv4 address, or an IPv6 address in brackets)");
  }
  EXPECT_EQ(
      listen_error(std::string_view("127.0.0.1\0:25", 13), "k"),
      R"(k: "127.0.0.1\u0000:25" is not host:port (an IPv4 address, or an IPv6 address in brackets))");
}

TEST(ListenAddress, BadPortsNameTheKey) {
  for (const char* bad : {"127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:+25",
                          "127.0.0.1: 25", "127.0.0.1:25 ", "127.0.0.1:2x",
                          "127.0.0.1:", "[::1]:", "[::1]:70000", "127.0.0.1:000025"}) {
    EXPECT_EQ(listen_error(bad, "pop3.listen[0]"),
              "pop3.listen[0]: \"" + std::string(bad) + "\" needs a port number from 0 to 65535");
  }
}

TEST(ListenAddress, ErrorsInAConfigNameTheArrayElement) {
  EXPECT_EQ(error_of(doc{.smtp = R"("listen": ["127.0.0.1:25", "127.0.0.1:70000"])"}),
            R"(smtp.listen[1]: "127.0.0.1:70000" needs a port number from 0 to 65535)");
  EXPECT_EQ(
      with_extra(R"("pop3": {"listen": ["[::1]:110", "::1:110"]},)"),
      R"(pop3.listen[1]: "::1:110" is not host:port (an IPv4 address, or an IPv6 address in brackets))");
}

TEST(Validate, RechecksOverrides) {
  config cfg = parse_config(embedded_default_json());
  cfg.smtp.recipients_max = 0;
  try {
    validate(cfg);
    ADD_FAILURE() << "accepted max_recipients 0";
  } catch (const config_error& error) {
    EXPECT_EQ(std::string(error.what()),
              "smtp.max_recipients: must be an integer between 1 and 100000");
  }
  cfg = parse_config(embedded_default_json());
  cfg.domains.push_back("Second.Test");
  cfg.users.push_back({"Bob@second.test", "pw"});
  cfg.postmaster = "BOB@second.test";
  validate(cfg);
  EXPECT_EQ(cfg.domains.back(), "second.test");
  EXPECT_EQ(cfg.users.back().address, "bob@second.test");
  EXPECT_EQ(cfg.postmaster, "bob@second.test");
  cfg.smtp.listen.clear();
  EXPECT_THROW(validate(cfg), config_error);
}

TEST(Config, EnumNames) {
  EXPECT_EQ(to_string(durability_mode::fsync), "fsync");
  EXPECT_EQ(to_string(durability_mode::none), "none");
  EXPECT_EQ(to_string(io_backend_kind::auto_select), "auto");
  EXPECT_EQ(to_string(io_backend_kind::io_uring), "io_uring");
  EXPECT_EQ(to_string(io_backend_kind::epoll), "epoll");
}

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/mailwing-config-XXXXXX";
    int fd = mkstemp(pattern);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = pattern;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
};

TEST_F(ConfigFile, LoadsAFile) {
  std::ofstream(path_) << embedded_default_json();
  EXPECT_EQ(load_config_file(path_).users[0].address, "demo@example.test");
}

TEST_F(ConfigFile, ErrorsInAFileNameTheKey) {
  std::ofstream(path_) << doc{.extra = R"("shards": 1000,)"}.json();
  EXPECT_THROW(
      {
        try {
          load_config_file(path_);
        } catch (const config_error& error) {
          EXPECT_EQ(std::string(error.what()), "shards: must be an integer between 0 and 256");
          throw;
        }
      },
      config_error);
}

TEST_F(ConfigFile, UnreadableFileNamesPathAndReason) {
  std::string missing = path_ + ".missing";
  try {
    load_config_file(missing);
    ADD_FAILURE() << "loaded a missing file";
  } catch (const config_error& error) {
    EXPECT_EQ(std::string(error.what()),
              "cannot read config file \"" + missing + "\": No such file or directory");
  }
  try {
    load_config_file("/tmp");
    ADD_FAILURE() << "loaded a directory";
  } catch (const config_error& error) {
    EXPECT_EQ(std::string(error.what()), "cannot read config file \"/tmp\": Is a directory");
  }
}

}  // namespace
}  // namespace mailwing::config
