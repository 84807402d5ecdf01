#include "loadgen/json_writer.hh"

#include <gtest/gtest.h>

#include <cmath>

namespace mailwing::loadgen {
namespace {

std::string compact(std::string text) {
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"' && (i == 0 || text[i - 1] != '\\')) in_string = !in_string;
    if (!in_string && (c == ' ' || c == '\n')) continue;
    out += c;
  }
  return out;
}

TEST(JsonWriter, NestedValues) {
  json_writer json;
  json.begin_object();
  json.field("name", "blaster");
  json.field("count", uint64_t(3));
  json.field("negative", int64_t(-2));
  json.field("rate", 1.5);
  json.field("ok", true);
  json.key("list");
  json.begin_array();
  json.value(uint64_t(1));
  json.begin_object();
  json.end_object();
  json.begin_array();
  json.end_array();
  json.null();
  json.end_array();
  json.end_object();
  EXPECT_EQ(compact(json.text()),
            R"({"name":"blaster","count":3,"negative":-2,"rate":1.5,"ok":true,"list":[1,{},[],null]})");
  EXPECT_EQ(json.text().back(), '\n');
}

TEST(JsonWriter, EscapesStrings) {
  std::string out;
  json_writer::append_escaped(out, std::string_view("a\"b\\c\n\r\t\x01", 9));
  EXPECT_EQ(out, R"("a\"b\\c\n\r\t\u0001")");
}

TEST(JsonWriter, NonFiniteNumbersAreNull) {
  json_writer json;
  json.begin_array();
  json.value(std::nan(""));
  json.value(HUGE_VAL);
  json.end_array();
  EXPECT_EQ(compact(json.text()), "[null,null]");
}

}  // namespace
}  // namespace mailwing::loadgen
