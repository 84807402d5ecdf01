#include "mailwing/server/cli.hh"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "mailwing/auth/password.hh"
#include "mailwing/config/config.hh"
#include "mailwing/server/server.hh"

namespace mailwing::server {
namespace {

constexpr const char* version_text = "mailwing 0.1.0";

constexpr const char* usage_text =
    "usage: mailwing serve [--config PATH] [--data-dir DIR] [--shards N]\n"
    "                      [--io-backend auto|io_uring|epoll] [--durability fsync|none]\n"
    "                      [--smtp-listen HOST:PORT]... [--pop3-listen HOST:PORT]...\n"
    "                      [--hostname NAME] [--log-level debug|info|warn|error]\n"
    "       mailwing hash-password [PASSWORD]   (reads a line from stdin without one)\n"
    "       mailwing --version\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "mailwing: %s (see mailwing --help)\n", message.c_str());
  return 2;
}

int hash_password_command(int argc, char** argv) {
  std::string password;
  if (argc > 3) return usage_error("hash-password takes at most one argument");
  if (argc == 3) {
    password = argv[2];
  } else {
    if (isatty(STDIN_FILENO)) std::fprintf(stderr, "password: ");
    if (!std::getline(std::cin, password)) return usage_error("no password on stdin");
  }
  if (password.empty()) return usage_error("the password is empty");
  std::printf("%s\n", auth::hash_password(password).c_str());
  return 0;
}

// Applies one "--flag value" to the configuration. Returns an error message or "".
std::string apply_override(config::config& cfg, std::string_view flag, const std::string& value,
                           bool& smtp_listen_replaced, bool& pop3_listen_replaced) {
  auto number = [&](uint32_t& out) -> std::string {
    char* end = nullptr;
    unsigned long parsed = std::strtoul(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || parsed > 1000000) return std::string(flag) + ": not a number";
    out = static_cast<uint32_t>(parsed);
    return "";
  };
  if (flag == "--data-dir") {
    cfg.data_dir = value;
  } else if (flag == "--shards") {
    return number(cfg.shards);
  } else if (flag == "--hostname") {
    cfg.hostname = value;
  } else if (flag == "--io-backend") {
    if (value == "auto") cfg.io_backend = config::io_backend_kind::auto_select;
    else if (value == "io_uring") cfg.io_backend = config::io_backend_kind::io_uring;
    else if (value == "epoll") cfg.io_backend = config::io_backend_kind::epoll;
    else return "--io-backend: must be auto, io_uring or epoll";
  } else if (flag == "--durability") {
    if (value == "fsync") cfg.durability = config::durability_mode::fsync;
    else if (value == "none") cfg.durability = config::durability_mode::none;
    else return "--durability: must be fsync or none";
  } else if (flag == "--log-level") {
    if (value == "debug") cfg.level = config::log_level::debug;
    else if (value == "info") cfg.level = config::log_level::info;
    else if (value == "warn") cfg.level = config::log_level::warn;
    else if (value == "error") cfg.level = config::log_level::error;
    else return "--log-level: must be debug, info, warn or error";
  } else if (flag == "--smtp-listen" || flag == "--pop3-listen") {
    bool smtp = flag == "--smtp-listen";
    auto& list = smtp ? cfg.smtp.listen : cfg.pop3.listen;
    bool& replaced = smtp ? smtp_listen_replaced : pop3_listen_replaced;
    if (!replaced) list.clear();  // the flag replaces the configured list
    replaced = true;
    try {
      list.push_back(config::parse_listen_address(value, flag.substr(2)));
    } catch (const config::config_error& error) {
      return error.what();
    }
  } else {
    return "unknown option " + std::string(flag);
  }
  return "";
}

int serve_command(int argc, char** argv) {
  std::optional<std::string> config_path;
  struct pending {
    std::string_view flag;
    std::string value;
  };
  std::vector<pending> overrides;
  for (int i = 2; i < argc; ++i) {
    std::string_view flag = argv[i];
    std::string value;
    if (size_t equals = flag.find('='); equals != std::string_view::npos && flag.starts_with("--")) {
      value = std::string(flag.substr(equals + 1));
      flag = flag.substr(0, equals);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return usage_error(std::string(flag) + " needs a value");
    }
    if (flag == "--config") {
      config_path = value;
    } else {
      overrides.push_back({flag, value});
    }
  }
  config::config cfg;
  try {
    cfg = config_path ? config::load_config_file(*config_path)
                      : config::parse_config(config::embedded_default_json());
  } catch (const config::config_error& error) {
    std::fprintf(stderr, "mailwing: config %s: %s\n",
                 config_path ? config_path->c_str() : "(embedded default)", error.what());
    return 1;
  }
  bool smtp_listen_replaced = false;
  bool pop3_listen_replaced = false;
  try {
    for (const pending& item : overrides) {
      std::string problem = apply_override(cfg, item.flag, item.value, smtp_listen_replaced,
                                           pop3_listen_replaced);
      if (!problem.empty()) return usage_error(problem);
    }
    config::validate(cfg);
  } catch (const config::config_error& error) {
    std::fprintf(stderr, "mailwing: %s\n", error.what());
    return 1;
  }
  return run(std::move(cfg), !config_path.has_value());
}

}  // namespace

int main_command_line(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(usage_text, stderr);
    return 2;
  }
  std::string_view command = argv[1];
  try {
    if (command == "serve") return serve_command(argc, argv);
    if (command == "hash-password") return hash_password_command(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mailwing: %s\n", error.what());
    return 1;
  }
  if (command == "--version" || command == "version") {
    std::printf("%s\n", version_text);
    return 0;
  }
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(usage_text, stdout);
    return 0;
  }
  return usage_error("unknown command " + std::string(command));
}

}  // namespace mailwing::server
