#pragma once
// Writes JSON text for the tools' `--json FILE` reports: nested objects and arrays with
// commas and string escaping handled, nothing else. Output is indented for people and
// stable in key order for diffs.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mailwing::loadgen {

class json_writer {
 public:
  void begin_object();
  void end_object();
  void begin_array();
  void end_array();

  // Inside an object: the next value's key.
  void key(std::string_view name);

  void value(std::string_view text);
  void value(const char* text) { value(std::string_view(text)); }
  void value(uint64_t number);
  void value(int64_t number);
  void value(int number) { value(int64_t(number)); }
  void value(unsigned number) { value(uint64_t(number)); }
  // Non-finite numbers become null (JSON has no NaN).
  void value(double number);
  void value(bool flag);
  void null();

  // key(name) followed by value(v).
  template <class T>
  void field(std::string_view name, const T& v) {
    key(name);
    value(v);
  }

  const std::string& text() const { return out_; }

  static void append_escaped(std::string& out, std::string_view text);

 private:
  void before_value();
  void newline();

  std::string out_;
  struct level {
    bool array;
    bool empty;
  };
  std::vector<level> stack_;
  bool after_key_ = false;
};

// Writes text to path (replacing it); returns false with errno set on failure.
bool write_file(const std::string& path, std::string_view text);

}  // namespace mailwing::loadgen
