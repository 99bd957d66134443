// src/util/base64: RFC 4648's test vectors, every byte, and what decoding
// does with text that is not base64.
#include "util/base64.h"

#include <gtest/gtest.h>

namespace rwd {
namespace {

TEST(Base64, EncodesTheRfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xfb\xff\0", 3)), "+/8A");
}

TEST(Base64, EveryByteRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 37) {
    const std::string bytes = all.substr(all.size() - n);
    EXPECT_EQ(Base64Decode(Base64Encode(bytes)), bytes) << n;
  }
}

TEST(Base64, DecodesOnlyPaddedBase64) {
  EXPECT_EQ(Base64Decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(Base64Decode("Zm8="), "fo");
  EXPECT_EQ(Base64Decode("Zg=="), "f");
  EXPECT_EQ(Base64Decode(""), "");
  // What cereal alone would shorten silently.
  EXPECT_EQ(Base64Decode("Zm9v!YmFy"), std::nullopt);
  EXPECT_EQ(Base64Decode("Zm9v YmFy"), std::nullopt);
  EXPECT_EQ(Base64Decode("Zm9vYmF"), std::nullopt);   // truncated
  EXPECT_EQ(Base64Decode("Zm8=Zm8="), std::nullopt);  // '=' inside
  EXPECT_EQ(Base64Decode("Z==="), std::nullopt);
  EXPECT_EQ(Base64Decode("===="), std::nullopt);
}

}  // namespace
}  // namespace rwd
