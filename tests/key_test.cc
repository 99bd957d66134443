#include <gtest/gtest.h>

#include <cstring>

#include "key/json.h"
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
  EXPECT_EQ(
      c.Key(
          Post(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})")),
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
  EXPECT_FALSE(c.Key(Post(R"({"user":"a"})")) ==
               c.Key(Post(R"({"user":"b"})")));
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

TEST(Canonicalizer, RepeatedQueryParametersKeepTheirOrder) {
  Canonicalizer c = Default();
  EXPECT_FALSE(c.Key(Post("", "ids=1&ids=2")) ==
               c.Key(Post("", "ids=2&ids=1")));
  // Different names still sort; one name's values keep their order.
  EXPECT_EQ(c.Key(Post("", "ids=1&b=x&ids=2")),
            c.Key(Post("", "b=x&ids=1&ids=2")));
  EXPECT_NE(c.Canonical(Post("", "z=1&ids=2&a=0&ids=1"))
                .find("3:a=05:ids=25:ids=13:z=1"),
            std::string::npos);
  EXPECT_EQ(c.Diff(Post("", "ids=1&ids=2&x=1"), Post("", "ids=2&ids=1&x=1")),
            std::vector<std::string>{"query.ids"});
  EXPECT_TRUE(
      c.Diff(Post("", "ids=1&b=x&ids=2"), Post("", "b=x&ids=1&ids=2")).empty());
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
  // rewind.json-v1 gave these two the same keys: v2 changed only numbers,
  // repeated member names and repeated query parameters.
  EXPECT_EQ(
      c
          .Key(Post(
              R"({"model":"demo-model","messages":[{"role":"user","content":"hello"}]})"))
          .ToHex(),
      "f61f916df024c05df3bf236e28840b6b");
  Request get;
  get.method = "GET";
  get.path = "/v1/models";
  EXPECT_EQ(c.Key(get).ToHex(), "62fabde85ee4eabb4b43f741c33d2732");
  // v2: exact numbers, every repeated name, repeated parameters in order.
  const Request v2 = Post(
      R"({"model":"m","temperature":1.8072080523879885,"seed":18446744073709551617,)"
      R"("top_p":1.0,"tiny":2.4703282292062328e-324,"a":1,"a":2,"user":"u","user":"v"})",
      "ids=2&ids=1&b=0");
  EXPECT_EQ(
      c.Canonical(v2),
      "4:POST20:/v1/chat/completions1:33:b=05:ids=25:ids=11:04:json"
      "127:{\"a\":1,\"a\":2,\"model\":\"m\",\"seed\":18446744073709551617,"
      "\"temperature\":1.8072080523879885,\"tiny\":2.4703282292062328e-324,"
      "\"top_p\":1}");
  EXPECT_EQ(c.Key(v2).ToHex(), "3ed2f9b5bc01792615e5345f6843a747");
  EXPECT_EQ(std::string(Canonicalizer::Name()), "rewind.json-v2");
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
  EXPECT_NE(c.Canonical(Post(R"({"t":0e55})")).find(R"({"t":0})"),
            std::string::npos)
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

std::string CanonicalNumber(std::string_view number) {
  std::string out;
  AppendCanonicalNumber(number, &out);
  return out;
}

TEST(CanonicalNumber, DependsOnTheExactValueOnly) {
  for (const char* one :
       {"1", "1.0", "1e0", "10E-1", "0.1e1", "1.000e+0", "100e-2"}) {
    EXPECT_EQ(CanonicalNumber(one), "1") << one;
  }
  for (const char* zero :
       {"0", "-0", "0.0", "0e55", "-0.000E-7", "0e-99999999999999999999999"}) {
    EXPECT_EQ(CanonicalNumber(zero), "0") << zero;
  }
  EXPECT_EQ(CanonicalNumber("1.8072080523879885"), "1.8072080523879885");
  EXPECT_EQ(CanonicalNumber("1.8072080523879883"), "1.8072080523879883");
  EXPECT_EQ(CanonicalNumber("18446744073709551616"), "18446744073709551616");
  EXPECT_EQ(CanonicalNumber("18446744073709551617"), "18446744073709551617");
  EXPECT_EQ(CanonicalNumber("2.4703282292062328e-324"),
            "2.4703282292062328e-324");
  EXPECT_EQ(CanonicalNumber("-1.5E+3"), "-1500");
  EXPECT_EQ(CanonicalNumber("0.250"), "0.25");
  EXPECT_EQ(CanonicalNumber("0.000001"), "0.000001");
  EXPECT_EQ(CanonicalNumber("-0.0000012"), "-0.0000012");
  EXPECT_EQ(CanonicalNumber("0.00000012"), "1.2e-7");
  EXPECT_EQ(CanonicalNumber("123e-9"), "1.23e-7");
  EXPECT_EQ(CanonicalNumber("1e20"), "100000000000000000000");
  EXPECT_EQ(CanonicalNumber("12.5e19"), "125000000000000000000");
  EXPECT_EQ(CanonicalNumber("1e21"), "1e21");
  EXPECT_EQ(CanonicalNumber("-0.001e300"), "-1e297");
  // Exponents beyond 64 bits stay exact.
  EXPECT_EQ(CanonicalNumber("1e-99999999999999999999"),
            "1e-99999999999999999999");
  EXPECT_EQ(CanonicalNumber("12.5e-99999999999999999999"),
            "1.25e-99999999999999999998");
  EXPECT_EQ(CanonicalNumber("0.0125e-99999999999999999999"),
            "1.25e-100000000000000000001");
  EXPECT_EQ(CanonicalNumber("1e99999999999999999999"),
            "1e99999999999999999999");
  EXPECT_EQ(CanonicalNumber("0.5e10000000000000000000"),
            "5e9999999999999999999");
}

// Every number of up to 2 + 2 digits and exponents -3..3: canonical forms
// are equal exactly when the values are (computed here as integers).
TEST(CanonicalNumber, EqualFormsExactlyForEqualValues) {
  std::vector<std::pair<std::string, std::string>> numbers;  // text, value
  const char* ints[] = {"0", "1", "5", "10", "12", "50"};
  const char* fracs[] = {"", "0", "5", "00", "05", "50", "12"};
  const char* exps[] = {"", "e0", "e1", "E-1", "e+2", "e-2", "e3", "e-3"};
  for (const char* sign : {"", "-"}) {
    for (const char* i : ints) {
      for (const char* f : fracs) {
        for (const char* e : exps) {
          std::string text = std::string(sign) + i + (*f ? "." : "") + f + e;
          // value * 10^10 as an integer: digits, then 10 + exponent - |f|
          // zeros.
          int exponent = 0;
          if (*e) exponent = std::stoi(std::string(e + 1));
          std::string digits = std::string(i) + f;
          digits.erase(0,
                       std::min(digits.find_first_not_of('0'), digits.size()));
          std::string value =
              digits.empty()
                  ? "0"
                  : std::string(digits.empty() || !*sign ? "" : "-") + digits +
                        std::string(static_cast<size_t>(
                                        10 + exponent -
                                        static_cast<int>(std::strlen(f))),
                                    '0');
          numbers.emplace_back(text, value);
        }
      }
    }
  }
  for (const auto& [ta, va] : numbers) {
    for (const auto& [tb, vb] : numbers) {
      EXPECT_EQ(CanonicalNumber(ta) == CanonicalNumber(tb), va == vb)
          << ta << " vs " << tb;
    }
  }
}

TEST(Canonicalizer, NumbersThatDifferInValueNeverShareAKey) {
  Canonicalizer c = Default();
  auto key = [&](const std::string& t) {
    return c.Key(Post(R"({"model":"m","temperature":)" + t + "}"));
  };
  EXPECT_FALSE(key("1.8072080523879885") == key("1.8072080523879883"));
  EXPECT_FALSE(key("18446744073709551616") == key("18446744073709551617"));
  EXPECT_FALSE(key("2.4703282292062328e-324") == key("0.0"));
  EXPECT_FALSE(key("-1") == key("1"));
  // Spellings of one value share one.
  EXPECT_EQ(key("1.0"), key("1e0"));
  EXPECT_EQ(key("1.0"), key("10E-1"));
  EXPECT_EQ(key("0"), key("-0.0"));
  EXPECT_NE(c.Canonical(Post(R"({"t":1.50})")).find(R"({"t":1.5})"),
            std::string::npos);
  // The diff agrees with the key.
  EXPECT_EQ(c.Diff(Post(R"({"temperature":1.8072080523879885})"),
                   Post(R"({"temperature":1.8072080523879883})")),
            std::vector<std::string>{"temperature"});
  EXPECT_TRUE(c.Diff(Post(R"({"t":1.0})"), Post(R"({"t":1e0})")).empty());
  // A number is not the string of its digits.
  EXPECT_FALSE(key("1") == key("\"1\""));
}

TEST(Canonicalizer, RepeatedMemberNamesAreAllKeptInTheirOrder) {
  Canonicalizer c = Default();
  const Request ab = Post(R"({"a":1,"a":2})");
  const Request ba = Post(R"({"a":2,"a":1})");
  EXPECT_FALSE(c.Key(ab) == c.Key(ba));
  EXPECT_FALSE(c.Key(ab) == c.Key(Post(R"({"a":2})")));
  EXPECT_EQ(c.Key(Post(R"({"a":1,"b":0,"a":2})")),
            c.Key(Post(R"({"b":0,"a":1,"a":2})")));
  EXPECT_NE(c.Canonical(Post(R"({"b":0,"a":1,"a":2})"))
                .find(R"({"a":1,"a":2,"b":0})"),
            std::string::npos);
  EXPECT_EQ(c.Diff(ab, ba), (std::vector<std::string>{"a", "a"}));
  EXPECT_EQ(c.Diff(ab, Post(R"({"a":1})")), std::vector<std::string>{"a"});
  EXPECT_TRUE(c.Diff(ab, ab).empty());
  // Every occurrence of an ignored field goes.
  EXPECT_EQ(c.Key(Post(R"({"user":"u1","m":1,"user":"u2"})")),
            c.Key(Post(R"({"m":1})")));
  Canonicalizer nested(KeyRules{{"x.secret"}, {}});
  EXPECT_EQ(nested.Key(Post(R"({"x":{"secret":1,"k":1},"x":{"secret":2}})")),
            nested.Key(Post(R"({"x":{"k":1},"x":{}})")));
  // Paths lead through objects only, as before.
  EXPECT_FALSE(nested.Key(Post(R"({"x":[{"secret":1}]})")) ==
               nested.Key(Post(R"({"x":[{"secret":2}]})")));
}

// Found by fuzz_request_key (UBSan): sorting the members of an object left
// empty by its ignored fields offset a null pointer.
TEST(Canonicalizer, ObjectsLeftEmptyKeyAndDiff) {
  Canonicalizer c(KeyRules{{"a.b.c"}, {}});
  const Request a = Post(R"({"a":{"b":{"c":1}},"e":{}})");
  const Request b = Post(R"({"a":{"b":{"c":2}},"e":{}})");
  EXPECT_EQ(c.Key(a), c.Key(b));
  EXPECT_TRUE(c.Diff(a, b).empty());
  EXPECT_NE(c.Canonical(a).find(R"({"a":{"b":{}},"e":{}})"), std::string::npos);
}

TEST(Canonicalizer, JsonUpToTheDepthLimitIsCanonicalDeeperIsBytes) {
  Canonicalizer c = Default();
  auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  EXPECT_NE(c.Canonical(Post(nest(kMaxJsonDepth))).find("4:json"),
            std::string::npos);
  EXPECT_NE(c.Canonical(Post(nest(kMaxJsonDepth + 1))).find("5:bytes"),
            std::string::npos);
  EXPECT_NE(c.Canonical(Post(" " + nest(kMaxJsonDepth + 1))).find("5:bytes"),
            std::string::npos);
  // What is ignored does not count: a deep "metadata" leaves the rest JSON.
  const std::string deep = R"({"model":"m","metadata":)" + nest(100000) + "}";
  EXPECT_EQ(c.Key(Post(deep)), c.Key(Post(R"({"model":"m"})")));
  EXPECT_TRUE(c.Diff(Post(deep), Post(R"({"model":"m"})")).empty());
  // Bodies too deep are compared as bytes, like any other.
  EXPECT_EQ(c.Diff(Post(nest(300)), Post(nest(301))),
            std::vector<std::string>{"body"});
  EXPECT_TRUE(c.Diff(Post(nest(100000)), Post(nest(100000))).empty());
  EXPECT_EQ(c.Diff(Post(nest(300)), Post("[]")),
            std::vector<std::string>{"body"});
}

TEST(Canonicalizer, BytesAfterANulByteAreNotIgnored) {
  Canonicalizer c = Default();
  const std::string with_nul("{\"a\":1}\0{\"b\":2}", 15);
  EXPECT_FALSE(c.Key(Post(with_nul)) == c.Key(Post("{\"a\":1}")));
  EXPECT_NE(c.Canonical(Post(with_nul)).find("5:bytes"), std::string::npos);
}

TEST(RedactJsonFields, EveryOccurrenceIsRedacted) {
  std::string body =
      R"({"api_key":"x","api_key":"SECRET", "n":1.50,"s":"a\u00e9\n"})";
  Result<bool> r = RedactJsonFields(&body, {"api_key"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r.value());
  EXPECT_EQ(body,
            "{\"api_key\":\"[REDACTED]\",\"api_key\":\"[REDACTED]\",\"n\":1.50,"
            "\"s\":\"a\xC3\xA9\\n\"}");
  body =
      R"({"auth":{"token":"A"},"auth":{"token":"B","x":[{"token":"keep"}]},"token":"k"})";
  ASSERT_TRUE(RedactJsonFields(&body, {"auth.token"}).ok());
  EXPECT_EQ(
      body,
      R"({"auth":{"token":"[REDACTED]"},"auth":{"token":"[REDACTED]","x":[{"token":"keep"}]},"token":"k"})");
  body = R"({"api_key":{"a":[1,{"b":2}]},"m":1})";
  ASSERT_TRUE(RedactJsonFields(&body, {"api_key"}).ok());
  EXPECT_EQ(body, R"({"api_key":"[REDACTED]","m":1})");
  // Nothing to redact: the body is left byte for byte.
  for (std::string same :
       {std::string(R"({ "m" : 1.0 })"), std::string("plain text"),
        std::string(""), std::string(R"(["api_key"])")}) {
    const std::string before = same;
    Result<bool> none = RedactJsonFields(&same, {"api_key"});
    ASSERT_TRUE(none.ok()) << before;
    EXPECT_FALSE(none.value()) << before;
    EXPECT_EQ(same, before);
  }
}

TEST(RedactJsonFields, RefusesWhatItCannotRedactAndKeyAlike) {
  auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  // Looks like JSON but does not parse (a lenient backend may still read it).
  for (std::string bad : {std::string(R"({"api_key":"SECRET","t":NaN})"),
                          std::string("\xEF\xBB\xBF {\"api_key\":\"SECRET\",}"),
                          std::string(" [{\"api_key\":\"SECRET\"}"),
                          std::string("{\"api_key\":\"SECRET\"}\0x", 23)}) {
    const std::string before = bad;
    Result<bool> r = RedactJsonFields(&bad, {"api_key"});
    EXPECT_FALSE(r.ok()) << before;
    EXPECT_EQ(bad, before);
  }
  // Too deep to key as JSON, with a secret: refused, however deep.
  for (int depth : {kMaxJsonDepth, 300, 100000}) {
    std::string deep = R"({"api_key":"SECRET","x":)" + nest(depth) + "}";
    const std::string before = deep;
    Result<bool> r = RedactJsonFields(&deep, {"api_key"});
    EXPECT_FALSE(r.ok()) << depth;
    EXPECT_EQ(deep, before);
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("deeper than"), std::string::npos);
    }
  }
  // One level less is fine; too deep without a secret is left alone.
  std::string fits =
      R"({"api_key":"SECRET","x":)" + nest(kMaxJsonDepth - 1) + "}";
  EXPECT_TRUE(RedactJsonFields(&fits, {"api_key"}).ok());
  EXPECT_EQ(fits.find("SECRET"), std::string::npos);
  std::string deep = R"({"model":"m","x":)" + nest(100000) + "}";
  const std::string before = deep;
  Result<bool> r = RedactJsonFields(&deep, {"api_key"});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.value());
  EXPECT_EQ(deep, before);
  // Depth under the redacted value does not count: it is gone.
  std::string under = R"({"api_key":)" + nest(100000) + R"(,"m":1})";
  ASSERT_TRUE(RedactJsonFields(&under, {"api_key"}).ok());
  EXPECT_EQ(under, R"({"api_key":"[REDACTED]","m":1})");
}

TEST(RedactJsonFields, RedactedBodiesKeepTheKeyOfTheOriginal) {
  Canonicalizer c(KeyRules{{"api_key", "auth.token"}, {}});
  auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  for (
      const std::string& body :
      {std::string(
           R"({"api_key":"x","api_key":"SECRET","t":1.8072080523879885})"),
       std::string(
           R"( {"auth" : {"token":"A","k":[1,2e5]},"auth":{"token":{"deep":)") +
           nest(1000) + R"(}},"b":"\u0041\/"})",
       std::string(R"({"api_key":)") + nest(100000) + R"(,"m":1})",
       R"({"x":)" + nest(kMaxJsonDepth - 1) + R"(,"api_key":"S"})"}) {
    std::string redacted = body;
    Result<bool> r = RedactJsonFields(&redacted, {"api_key", "auth.token"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r.value());
    EXPECT_EQ(c.Key(Post(body)), c.Key(Post(redacted)))
        << redacted.substr(0, 200);
    EXPECT_NE(c.Canonical(Post(redacted)).find("4:json"), std::string::npos);
  }
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
  EXPECT_FALSE(
      KeyRules::FromJson(R"({"ignore_fields":[1],"match_headers":[]})").ok());
}

}  // namespace
}  // namespace rwd
