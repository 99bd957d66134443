// Tools as a set (KeyRules::tool_sets): a reordered tool list keys alike,
// the rule is stored with a recording and absent from older ones, a
// changed tool is one difference named by the tool, and differences carry
// excerpts of both values (Canonicalizer::DiffFields).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "rewind/request_key.h"
#include "testutil/mode_fixture.h"

namespace rwd {
namespace {

using testing::Post;

Request Chat(const std::string& tools) {
  return Post(
      "/v1/chat/completions",
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[)" +
          tools + "]}");
}

// OpenAI's chat shape: {"type":"function","function":{"name":...}}.
std::string Function(const std::string& name,
                     const std::string& description = "d") {
  return R"({"type":"function","function":{"name":")" + name +
         R"(","description":")" + description +
         R"(","parameters":{"type":"object","properties":{}}}})";
}

KeyRules Rules(bool tool_sets) {
  KeyRules rules{DefaultIgnoredFields(), {}};
  rules.tool_sets = tool_sets;
  return rules;
}

TEST(ToolSets, AReorderedToolListIsTheSameKeyInEveryShape) {
  const Canonicalizer on(Rules(true));
  const Canonicalizer off(Rules(false));
  const Request ab = Chat(Function("get_weather") + "," + Function("search"));
  const Request ba = Chat(Function("search") + "," + Function("get_weather"));
  EXPECT_EQ(on.Key(ab), on.Key(ba));
  EXPECT_TRUE(on.Diff(ab, ba).empty());
  EXPECT_NE(off.Key(ab), off.Key(ba));
  // The Responses API, Anthropic and OpenAI's "functions": "name".
  for (const char* member : {"tools", "functions"}) {
    const std::string m = member;
    const Request x = Post(
        "/v1/responses",
        R"({"model":"m",")" + m +
            R"(":[{"type":"function","name":"b","parameters":{}},{"name":"a","input_schema":{}}]})");
    const Request y = Post(
        "/v1/responses",
        R"({"model":"m",")" + m +
            R"(":[{"name":"a","input_schema":{}},{"type":"function","name":"b","parameters":{}}]})");
    EXPECT_EQ(on.Key(x), on.Key(y)) << member;
    EXPECT_NE(off.Key(x), off.Key(y)) << member;
  }
  // A built-in tool is named by its type.
  EXPECT_EQ(on.Key(Post("/v1/responses",
                        R"({"tools":[{"type":"web_search"},{"name":"a"}]})")),
            on.Key(Post("/v1/responses",
                        R"({"tools":[{"name":"a"},{"type":"web_search"}]})")));
}

TEST(ToolSets, OnlyNamedTopLevelListsAreSets) {
  const Canonicalizer on(Rules(true));
  // An item without a name leaves the list as sent.
  EXPECT_NE(on.Key(Post("/x", R"({"tools":[{"name":"b"},{"x":1}]})")),
            on.Key(Post("/x", R"({"tools":[{"x":1},{"name":"b"}]})")));
  // Nested "tools" are not the tools offered.
  EXPECT_NE(
      on.Key(Post("/x", R"({"a":{"tools":[{"name":"b"},{"name":"a"}]}})")),
      on.Key(Post("/x", R"({"a":{"tools":[{"name":"a"},{"name":"b"}]}})")));
  // Items of one name keep their order.
  EXPECT_NE(on.Key(Post(
                "/x", R"({"tools":[{"name":"a","v":1},{"name":"a","v":2}]})")),
            on.Key(Post(
                "/x", R"({"tools":[{"name":"a","v":2},{"name":"a","v":1}]})")));
  // A list already in order keys as before the rule existed.
  const Request sorted = Chat(Function("a") + "," + Function("b"));
  EXPECT_EQ(on.Key(sorted), Canonicalizer(Rules(false)).Key(sorted));
}

// Whether a list is a tool set costs no walk of the root: a body of
// 200,000 top-level arrays keys and diffs in linear time.
TEST(ToolSets, ManyTopLevelListsCostLinearTime) {
  std::string body = "{";
  for (int i = 0; i < 200000; ++i) {
    body += (i ? ",\"" : "\"") + std::to_string(i) + "\":[]";
  }
  body += ",\"tools\":[{\"name\":\"b\"},{\"name\":\"a\"}]}";
  std::string other = body;
  const std::string b = R"([{"name":"b"})";
  other.replace(other.find(b), b.size(), R"([{"name":"c"})");
  const Canonicalizer on(Rules(true));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(on.Key(Post("/x", body)), on.Key(Post("/x", other)));
  EXPECT_EQ(on.Diff(Post("/x", body), Post("/x", other)),
            (std::vector<std::string>{"tools[b]", "tools[c]"}));
  // Seconds when it was quadratic; well under one even in a sanitizer build.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ToolSets, StoredWithTheRulesAndOffForRecordingsMadeBeforeThem) {
  const KeyRules on = Rules(true);
  EXPECT_NE(on.ToJson().find("\"tool_sets\":true"), std::string::npos)
      << on.ToJson();
  Result<KeyRules> back = KeyRules::FromJson(on.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->tool_sets);
  EXPECT_TRUE(*back == on);
  // Off: not written, so a recording without the rule keeps its bytes.
  const KeyRules off = Rules(false);
  EXPECT_EQ(off.ToJson().find("tool_sets"), std::string::npos);
  // Rules stored before it: off.
  Result<KeyRules> old = KeyRules::FromJson(
      R"({"ignore_fields":["user"],"match_headers":[],"content_equivalence":true})");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->tool_sets);
  EXPECT_FALSE(KeyRules::FromJson(
                   R"({"ignore_fields":[],"match_headers":[],"tool_sets":1})")
                   .ok());
  // A recording using it is stamped so that an older rewind refuses it.
  EXPECT_STREQ(Canonicalizer::NameFor(on), "rewind.json-v4");
  EXPECT_STREQ(Canonicalizer::NameFor(off), "rewind.json-v3");
  EXPECT_TRUE(Canonicalizer::Reads("rewind.json-v4"));
  EXPECT_TRUE(KeyRules().tool_sets);  // on for new rules
}

TEST(ToolSets, AChangedToolIsOneDifferenceNamedByTheTool) {
  const Canonicalizer on(Rules(true));
  const Request recorded =
      Chat(Function("get_weather") + "," + Function("search"));
  // Reordered, and get_weather's description and parameters changed.
  const Request sent = Chat(
      Function("search") + "," +
      R"({"type":"function","function":{"name":"get_weather","description":"e","parameters":{"type":"object","properties":{"city":{}}}}})");
  EXPECT_EQ(on.Diff(recorded, sent),
            std::vector<std::string>{"tools[get_weather].function"});
  // One field changed: its path under the tool.
  EXPECT_EQ(
      on.Diff(recorded,
              Chat(Function("search") + "," + Function("get_weather", "e"))),
      std::vector<std::string>{"tools[get_weather].function.description"});
  // A tool added or taken away: the tool.
  EXPECT_EQ(on.Diff(recorded, Chat(Function("get_weather"))),
            std::vector<std::string>{"tools[search]"});
  EXPECT_EQ(
      on.Diff(recorded, Chat(Function("search") + "," + Function("lookup") +
                             "," + Function("get_weather"))),
      std::vector<std::string>{"tools[lookup]"});
  // Without the rule, as before: by position, leaf by leaf.
  const Canonicalizer off(Rules(false));
  EXPECT_EQ(off.Diff(recorded,
                     Chat(Function("search") + "," + Function("get_weather")))
                .size(),
            2u);
}

TEST(DiffFields, ShowsBothValuesCutWithTheDifferenceInView) {
  const Canonicalizer c(Rules(true));
  const std::string pad(200, 'x');
  const Request a = Post(
      "/v1/chat/completions",
      R"({"model":"m","temperature":0.2,"messages":[{"role":"system","content":")" +
          pad + R"( Now is 2026-11-30. )" + pad + R"("}]})");
  const Request b =
      Post("/v1/chat/completions",
           R"({"model":"m","messages":[{"role":"system","content":")" + pad +
               R"( Now is 2026-12-07. )" + pad + R"("}],"stream":true})");
  const std::vector<FieldDifference> d = c.DiffFields(a, b, 20, 3);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].path, "messages[0].content");
  ASSERT_TRUE(d[0].shown);
  EXPECT_NE(d[0].a.find("Now is 2026-11-30"), std::string::npos) << d[0].a;
  EXPECT_NE(d[0].b.find("Now is 2026-12-07"), std::string::npos) << d[0].b;
  EXPECT_EQ(d[0].a.rfind("\"\xE2\x80\xA6", 0), 0u) << d[0].a;  // "…
  EXPECT_LE(d[0].a.size(), 90u);
  EXPECT_LE(d[0].b.size(), 90u);
  // Absent on one side: empty.
  EXPECT_EQ(d[1].path, "stream");
  EXPECT_EQ(d[1].a, "");
  EXPECT_EQ(d[1].b, "true");
  EXPECT_EQ(d[2].path, "temperature");
  EXPECT_EQ(d[2].a, "0.2");
  EXPECT_EQ(d[2].b, "");
  // Only the first "shown" carry values; control characters are escaped.
  const std::vector<FieldDifference> one =
      c.DiffFields(Post("/x", R"({"a":"x\ny","b":1})"),
                   Post("/x", R"({"a":"x\u0000y","b":2})"), 20, 1);
  ASSERT_EQ(one.size(), 2u);
  EXPECT_EQ(one[0].a, R"("x\ny")");
  EXPECT_EQ(one[0].b, R"("x\u0000y")");
  EXPECT_FALSE(one[1].shown);
  // A query parameter or header is named, never shown.
  Request q = Post("/x", "{}");
  q.query = "api-key=secret";
  const std::vector<FieldDifference> query =
      c.DiffFields(Post("/x", "{}"), q, 20, 3);
  ASSERT_EQ(query.size(), 1u);
  EXPECT_FALSE(query[0].shown);
  EXPECT_EQ(query[0].a + query[0].b, "");
}

TEST(DiffFields, ShowsWhatIsKeyedNeverAScrubbedValue) {
  KeyRules rules = Rules(true);
  rules.scrub = {"email"};
  const Canonicalizer c(rules);
  const std::vector<FieldDifference> d =
      c.DiffFields(Post("/x", R"({"to":"ann@example.com","n":1})"),
                   Post("/x", R"({"to":"bob@example.org","n":2})"), 20, 3);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].path, "n");
  const std::vector<FieldDifference> e =
      c.DiffFields(Post("/x", R"({"to":"x ann@example.com"})"),
                   Post("/x", R"({"to":"y bob@example.org"})"), 20, 3);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].b.find("bob"), std::string::npos) << e[0].b;
  EXPECT_NE(e[0].b.find("<email>"), std::string::npos) << e[0].b;
}

}  // namespace
}  // namespace rwd
