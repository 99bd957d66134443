#include <gtest/gtest.h>

#include "rewind/request_key.h"

namespace rwd {
namespace {

Request Post(const std::string& body, const std::string& query = "") {
  Request r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.query = query;
  r.body = body;
  return r;
}

Canonicalizer Default() {
  return Canonicalizer(KeyRules{DefaultIgnoredFields(), {}});
}

TEST(Canonicalizer, KeyOrderAndWhitespaceDoNotChangeTheKey) {
  Canonicalizer c = Default();
  EXPECT_EQ(c.Key(Post(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})")),
            c.Key(Post(R"({ "messages" : [ {"content":"hi", "role":"user"} ],
                            "model": "m" })")));
}

TEST(Canonicalizer, ValuesAndArrayOrderDoChangeTheKey) {
  Canonicalizer c = Default();
  EXPECT_FALSE(c.Key(Post(R"({"a":[1,2]})")) == c.Key(Post(R"({"a":[2,1]})")));
  EXPECT_FALSE(c.Key(Post(R"({"t":0.5})")) == c.Key(Post(R"({"t":0.7})")));
  EXPECT_FALSE(c.Key(Post(R"({"s":"1"})")) == c.Key(Post(R"({"s":1})")));
}

TEST(Canonicalizer, DefaultVolatileFieldsAreIgnored) {
  Canonicalizer c = Default();
  EXPECT_EQ(c.Key(Post(R"({"model":"m"})")),
            c.Key(Post(R"({"model":"m","user":"u1","metadata":{"a":1},)"
                       R"("request_id":"r","store":true,"service_tier":"x",)"
                       R"("safety_identifier":"s","prompt_cache_key":"k"})")));
}

TEST(Canonicalizer, NestedIgnoredFieldIsDroppedOnlyAtItsPath) {
  Canonicalizer c(KeyRules{{"extra.trace"}, {}});
  EXPECT_EQ(c.Key(Post(R"({"extra":{"trace":1,"keep":2}})")),
            c.Key(Post(R"({"extra":{"trace":9,"keep":2}})")));
  EXPECT_FALSE(c.Key(Post(R"({"extra":{"keep":2}})")) ==
               c.Key(Post(R"({"extra":{"keep":3}})")));
  // "user" is not ignored under these rules.
  EXPECT_FALSE(c.Key(Post(R"({"user":"a"})")) == c.Key(Post(R"({"user":"b"})")));
}

TEST(Canonicalizer, NonJsonBodiesAreHashedAsBytes) {
  Canonicalizer c = Default();
  EXPECT_FALSE(c.Key(Post("hello ")) == c.Key(Post("hello")));
  EXPECT_EQ(c.Key(Post("{\"a\":")), c.Key(Post("{\"a\":")));  // truncated
  EXPECT_FALSE(c.Key(Post("{\"a\":")) == c.Key(Post("{\"a\": ")));
  std::string binary("\0\x01\xff", 3);
  EXPECT_NE(c.Canonical(Post(binary)).find(binary), std::string::npos);
  // Bytes that happen to equal a canonical JSON text still differ from JSON.
  EXPECT_FALSE(c.Key(Post("{\"a\":1}")) == c.Key(Post("x")));
}

TEST(Canonicalizer, QueryParameterOrderDoesNotMatter) {
  Canonicalizer c = Default();
  EXPECT_EQ(c.Key(Post("", "b=2&a=1")), c.Key(Post("", "a=1&b=2")));
  EXPECT_FALSE(c.Key(Post("", "a=1")) == c.Key(Post("", "a=2")));
}

TEST(Canonicalizer, MethodAndPathAreFieldsOfTheKey) {
  Canonicalizer c = Default();
  Request a = Post("{}");
  Request b = a;
  b.method = "PUT";
  EXPECT_FALSE(c.Key(a) == c.Key(b));
  b = a;
  b.path = "/v1/completions";
  EXPECT_FALSE(c.Key(a) == c.Key(b));
}

TEST(Canonicalizer, FieldsAreLengthPrefixedSoBoundariesCannotShift) {
  Canonicalizer c = Default();
  Request a = Post("", "");
  a.path = "/ab";
  a.body = "c";
  Request b = a;
  b.path = "/a";
  b.body = "bc";
  EXPECT_FALSE(c.Key(a) == c.Key(b));
  EXPECT_EQ(c.Canonical(a).rfind("4:POST3:/ab1:01:05:bytes1:c", 0), 0u)
      << c.Canonical(a);
}

TEST(Canonicalizer, OnlyMatchedHeadersJoinTheKey) {
  Canonicalizer plain = Default();
  Canonicalizer with(KeyRules{DefaultIgnoredFields(), {"X-Model"}});
  Request a = Post("{}");
  a.headers = {{"Authorization", "Bearer one"}, {"x-model", "m1"}};
  Request b = Post("{}");
  b.headers = {{"Authorization", "Bearer two"}, {"X-MODEL", "m2"}};
  EXPECT_EQ(plain.Key(a), plain.Key(b));
  EXPECT_FALSE(with.Key(a) == with.Key(b));
  b.headers[1].second = "m1";
  EXPECT_EQ(with.Key(a), with.Key(b));
}

// These values are stored in every recording. If this test fails, the
// canonical encoding changed: recordings made before no longer match.
// Change Canonicalizer::Name() and provide a re-key path before updating.
TEST(Canonicalizer, GoldenKeysNeverChangeSilently) {
  Canonicalizer c = Default();
  EXPECT_EQ(c.Key(Post(R"({"model":"demo-model","messages":[{"role":"user","content":"hello"}]})"))
                .ToHex(),
            "f61f916df024c05df3bf236e28840b6b");
  Request get;
  get.method = "GET";
  get.path = "/v1/models";
  EXPECT_EQ(c.Key(get).ToHex(), "62fabde85ee4eabb4b43f741c33d2732");
  EXPECT_EQ(std::string(Canonicalizer::Name()), "rewind.json-v1");
}

TEST(Canonicalizer, DiffNamesTheFieldsThatDiffer) {
  Canonicalizer c = Default();
  Request a = Post(
      R"({"model":"m","temperature":0.2,"messages":[{"role":"system","content":"s"},{"role":"user","content":"Paris?"}]})",
      "x=1");
  Request b = Post(
      R"({"model":"m","temperature":0.7,"user":"ignored","messages":[{"role":"system","content":"s"},{"role":"user","content":"Rome?"}]})",
      "x=2");
  std::vector<std::string> d = c.Diff(a, b);
  EXPECT_EQ(d, (std::vector<std::string>{"query.x", "messages[1].content",
                                         "temperature"}));
  EXPECT_TRUE(c.Diff(a, a).empty());
  EXPECT_EQ(c.Diff(Post("abc"), Post("abd")), std::vector<std::string>{"body"});
  EXPECT_EQ(c.Diff(Post(R"({"a":[1]})"), Post(R"({"a":[1,2]})")),
            std::vector<std::string>{"a[1]"});
}

// Found by fuzz_request_key: a zero significand with a huge exponent.
TEST(Canonicalizer, ZeroWithAHugeExponentIsZero) {
  Canonicalizer c = Default();
  EXPECT_EQ(c.Key(Post(R"({"t":0e55})")), c.Key(Post(R"({"t":0.0})")));
  EXPECT_NE(c.Canonical(Post(R"({"t":0e55})")).find(R"({"t":0.0})"), std::string::npos)
      << c.Canonical(Post(R"({"t":0e55})"));
}

TEST(Canonicalizer, DeeplyNestedJsonIsHashedWithoutCrashing) {
  Canonicalizer c = Default();
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  RequestKey k = c.Key(Post(deep));
  EXPECT_EQ(k, c.Key(Post(deep)));
  EXPECT_NE(c.Canonical(Post(deep)).find("5:bytes"), std::string::npos);
}

TEST(RequestKey, HexRoundTrip) {
  RequestKey k{0x0123456789abcdefull, 0xfedcba9876543210ull};
  EXPECT_EQ(k.ToHex(), "0123456789abcdeffedcba9876543210");
  Result<RequestKey> back = RequestKey::FromHex(k.ToHex());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value(), k);
  EXPECT_FALSE(RequestKey::FromHex("xyz").ok());
  EXPECT_FALSE(RequestKey::FromHex(std::string(32, 'G')).ok());
}

TEST(KeyRules, JsonRoundTrip) {
  KeyRules r{{"user", "a.b"}, {"x-model"}};
  Result<KeyRules> back = KeyRules::FromJson(r.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back.value() == r);
  EXPECT_FALSE(KeyRules::FromJson("[]").ok());
  EXPECT_FALSE(KeyRules::FromJson(R"({"ignore_fields":[1],"match_headers":[]})").ok());
}

}  // namespace
}  // namespace rwd
