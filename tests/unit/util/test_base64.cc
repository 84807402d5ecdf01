#include "mailwing/util/base64.hh"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace mailwing::util {
namespace {

// RFC 4648 §10.
TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(base64_encode(bytes), text);
    EXPECT_EQ(base64_decode(text), bytes) << text;
  }
}

TEST(Base64, SaslPlainResponse) {
  std::string bytes("\0user\0secret", 12);
  EXPECT_EQ(base64_encode(bytes), "AHVzZXIAc2VjcmV0");
  EXPECT_EQ(base64_decode("AHVzZXIAc2VjcmV0"), bytes);
}

TEST(Base64, PaddingIsOptional) {
  EXPECT_EQ(base64_decode("Zg"), "f");
  EXPECT_EQ(base64_decode("Zm8"), "fo");
  EXPECT_EQ(base64_decode("Zm9vYg"), "foob");
}

TEST(Base64, RejectsMisplacedOrPartialPadding) {
  EXPECT_EQ(base64_decode("Zg="), std::nullopt);  // padding that does not complete
  EXPECT_EQ(base64_decode("Zg==="), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9v===="), std::nullopt);
  EXPECT_EQ(base64_decode("Z=g="), std::nullopt);  // '=' in the middle
  EXPECT_EQ(base64_decode("Zg==Zm8="), std::nullopt);
  EXPECT_EQ(base64_decode("="), std::nullopt);
  EXPECT_EQ(base64_decode("=="), std::nullopt);
  EXPECT_EQ(base64_decode("===="), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9v="), std::nullopt);
}

TEST(Base64, RejectsBadCharacters) {
  EXPECT_EQ(base64_decode("Zm9v YmFy"), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9v\r\n"), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9-"), std::nullopt);  // base64url alphabet
  EXPECT_EQ(base64_decode("Zm9_"), std::nullopt);
  EXPECT_EQ(base64_decode(std::string("Zm\0v", 4)), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9\xc3\xa9"), std::nullopt);
}

TEST(Base64, RejectsImpossibleLengthAndNonZeroPadBits) {
  EXPECT_EQ(base64_decode("Z"), std::nullopt);
  EXPECT_EQ(base64_decode("Zm9vY"), std::nullopt);
  EXPECT_EQ(base64_decode("Zh=="), std::nullopt);  // "f" is Zg==; Zh carries a stray bit
  EXPECT_EQ(base64_decode("Zm9="), std::nullopt);  // "fo" is Zm8=
}

TEST(Base64, RoundTripsRandomBytes) {
  std::mt19937 random(1);
  for (size_t size = 0; size < 200; ++size) {
    std::string bytes(size, '\0');
    for (char& c : bytes) c = static_cast<char>(random());
    std::string text = base64_encode(bytes);
    EXPECT_EQ(text.size() % 4, 0u);
    EXPECT_EQ(base64_decode(text), bytes);
  }
}

}  // namespace
}  // namespace mailwing::util
