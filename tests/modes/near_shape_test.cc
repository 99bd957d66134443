// --on-miss nearest keeps the request's shape (src/modes/request_shape.h):
// a near answer never has another "stream", JSON-RPC method, set of tool
// names or response format; the nearest recording is the one a person
// would call closest; a miss shows the values that differ.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "modes/miss_mode.h"
#include "modes/request_shape.h"
#include "store/memory_store.h"
#include "testutil/mode_fixture.h"

namespace rwd {
namespace {

using testing::BodyOf;
using testing::Post;
using testing::Recorded;

// One replay under --on-miss nearest, over what "store" holds.
struct NearFixture {
  NearFixture()
      : keys(store.rules()),
        index(RepeatPolicy::kSequence, 0),
        cache(&store, 1 << 20) {
    pacing.seed = 0;
  }
  void Add(const std::string& path, const std::string& body,
           const std::string& answer) {
    Exchange e = Recorded(Post(path, body), keys, 0, {0});
    e.response.chunks[0].data = answer;
    store.Append(e);
  }
  void Start(MissPolicy policy = MissPolicy::kNearest) {
    ASSERT_TRUE(index.Load(&store, false).ok());
    nearest = std::make_unique<NearestMode>(&store, &index, &keys, 3, &cache,
                                            &pacing, &counters);
    MissMode::Wrapped wrapped;
    wrapped.nearest = nearest.get();
    mode = std::make_unique<MissMode>(policy, wrapped, &store, &index, &keys,
                                      &counters, &events);
  }
  Answer Ask(const std::string& path, const std::string& body) {
    const Request r = Post(path, body);
    return mode->Serve(Call{r, keys.Key(r), 0, nullptr, nullptr});
  }

  MemoryStore store;
  Canonicalizer keys;
  ReplayIndex index;
  ExchangeCache cache;
  Pacing pacing;
  ModeCounters counters;
  testing::RecordedEvents events;
  std::unique_ptr<NearestMode> nearest;
  std::unique_ptr<MissMode> mode;
};

const char kChat[] = "/v1/chat/completions";

std::string Chat(const std::string& extra, const std::string& content) {
  return R"({"model":"m")" + extra +
         R"(,"messages":[{"role":"user","content":")" + content + R"("}]})";
}

std::string Explanation(const Answer& a) {
  return a.miss ? a.miss->explanation : "(no miss)";
}

TEST(RequestShape, ReadsTheFieldsAnAnswerDependsOn) {
  const RequestShape s = RequestShape::Of(
      R"({"model":"m","stream":true,"jsonrpc":"2.0","method":"tools/list",)"
      R"("tools":[{"function":{"name":"b"}},{"name":"a"},{"type":"web_search"},{"name":"a"}],)"
      R"("response_format":{"type":"json_schema"},"messages":[{"stream":false}]})");
  EXPECT_EQ(s.model, "\"m\"");
  EXPECT_TRUE(s.stream);
  EXPECT_EQ(s.method, "tools/list");
  EXPECT_EQ(s.tools, (std::vector<std::string>{"a", "b", "web_search"}));
  EXPECT_EQ(s.response_format, "json_schema;");
  // "method" outside JSON-RPC is an ordinary field; "stream" false or
  // absent is alike.
  EXPECT_EQ(RequestShape::Of(R"({"method":"cosine"})").method, "");
  EXPECT_FALSE(RequestShape::Of(R"({"stream":false})").stream);
  EXPECT_FALSE(RequestShape::Of(R"({"stream":"true"})").stream);
  EXPECT_EQ(RequestShape::Of(R"({"text":{"format":{"type":"json_schema"}}})")
                .response_format,
            "json_schema;");
  EXPECT_TRUE(RequestShape::Of("not json").tools.empty());
  EXPECT_TRUE(
      RequestShape::Of(std::string(100000, '[') + std::string(100000, ']'))
          .model.empty());

  EXPECT_EQ(ShapeDifferences(R"({"model":"m"})",
                             R"({"model":"m","stream":true})", {}),
            std::vector<std::string>{"stream"});
  EXPECT_EQ(ShapeDifferences(R"({"model":"m"})",
                             R"({"model":"m","stream":false})", {}),
            std::vector<std::string>{});
  // A field the rules ignore is not part of the shape.
  EXPECT_TRUE(ShapeDifferences(R"({"model":"m"})",
                               R"({"model":"m","stream":true})", {"stream"})
                  .empty());
}

// issue 30, item 6: a streaming request was answered with a recorded
// non-streamed body (differs in: stream), which a streaming client cannot
// parse.
TEST(NearShape, AStreamingRequestIsNeverAnsweredWithANonStreamedRecording) {
  NearFixture f;
  f.Add(kChat, Chat("", "Capital of Italy?"), "Rome");
  f.Start();
  Answer a = f.Ask(kChat, Chat(",\"stream\":true", "Capital of Italy?"));
  EXPECT_STREQ(a.outcome, "miss");
  EXPECT_EQ(a.timeline.response->status, 404);
  EXPECT_NE(Explanation(a).find(
                "nearest recording is #1, which differs in: stream; stream: "
                "recorded nothing sent true; #1 cannot answer it: it differs "
                "in stream (a near answer keeps the request's shape"),
            std::string::npos)
      << Explanation(a);
  // "stream": false is the recording's shape: near.
  Answer b = f.Ask(kChat, Chat(",\"stream\":false", "Capital of Italy?"));
  EXPECT_STREQ(b.outcome, "near");
  EXPECT_EQ(BodyOf(b.timeline), "Rome");
  EXPECT_EQ(f.counters.near.load(), 1u);
}

TEST(NearShape, AJsonRpcRequestIsNeverAnsweredWithAnotherMethod) {
  NearFixture f;
  f.Add("/mcp", R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})",
        R"({"jsonrpc":"2.0","id":1,"result":{"tools":[]}})");
  f.Start();
  Answer ping = f.Ask("/mcp", R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  EXPECT_STREQ(ping.outcome, "miss");
  EXPECT_NE(Explanation(ping).find("which differs in: id, method; id: "
                                   "recorded 1 sent 2; method: recorded "
                                   "\"tools/list\" sent \"ping\"; #1 cannot "
                                   "answer it: it differs in JSON-RPC method"),
            std::string::npos)
      << Explanation(ping);
  // The same method with another id is near.
  EXPECT_STREQ(
      f.Ask("/mcp", R"({"jsonrpc":"2.0","id":3,"method":"tools/list"})")
          .outcome,
      "near");
}

TEST(NearShape, ToolsAndResponseFormatsKeepTheirShape) {
  NearFixture f;
  f.Add(kChat,
        Chat(R"(,"tools":[{"name":"a","description":"x"},{"name":"b"}])", "hi"),
        "tools");
  f.Add(
      "/v1/responses",
      R"({"model":"m","input":"hi","text":{"format":{"type":"json_schema"}}})",
      "structured");
  f.Start();
  // Another set of tool names: a miss.
  Answer other = f.Ask(
      kChat,
      Chat(R"(,"tools":[{"name":"a","description":"x"},{"name":"c"}])", "hi"));
  EXPECT_STREQ(other.outcome, "miss");
  EXPECT_NE(Explanation(other).find("it differs in tool names"),
            std::string::npos)
      << Explanation(other);
  // The same tools reordered: the same key, a hit-equivalent... here, with
  // one described otherwise, one difference named by the tool: near.
  Answer changed = f.Ask(
      kChat,
      Chat(R"(,"tools":[{"name":"b"},{"name":"a","description":"y"}])", "hi"));
  EXPECT_STREQ(changed.outcome, "near");
  ASSERT_NE(changed.near_differences, nullptr);
  EXPECT_EQ(*changed.near_differences,
            std::vector<std::string>{"tools[a].description"});
  // Another text format: a miss; another input: near.
  EXPECT_STREQ(
      f.Ask("/v1/responses",
            R"({"model":"m","input":"hi","text":{"format":{"type":"text"}}})")
          .outcome,
      "miss");
  EXPECT_STREQ(
      f.Ask(
           "/v1/responses",
           R"({"model":"m","input":"ho","text":{"format":{"type":"json_schema"}}})")
          .outcome,
      "near");
}

TEST(NearShape, TheNearestIsTheSameModelAndStreamBeforeFewerFields) {
  NearFixture f;
  // #1: one field away, but not streamed; #2: streamed, two fields away;
  // #3: one field away, another model.
  f.Add(kChat, Chat("", "Capital of Italy?"), "one");
  f.Add(kChat, Chat(R"(,"stream":true,"seed":1)", "Capital of France?"), "two");
  f.Add(
      kChat,
      R"({"model":"n","stream":true,"messages":[{"role":"user","content":"Capital of Italy?"}]})",
      "three");
  f.Start();
  Answer a = f.Ask(kChat, Chat(",\"stream\":true", "Capital of Italy?"));
  EXPECT_STREQ(a.outcome, "near");
  EXPECT_EQ(a.exchange, 2);
  EXPECT_EQ(BodyOf(a.timeline), "two");
  // The error policy explains with the same choice.
  NearFixture g;
  g.Add(kChat, Chat("", "Capital of Italy?"), "one");
  g.Add(kChat, Chat(R"(,"stream":true,"seed":1)", "Capital of France?"), "two");
  g.Start(MissPolicy::kError);
  Answer miss = g.Ask(kChat, Chat(",\"stream\":true", "Capital of Italy?"));
  ASSERT_NE(miss.miss, nullptr);
  EXPECT_EQ(miss.miss->nearest_id, 2);
}

TEST(NearShape, AMissShowsTheRecordedAndTheSentValues) {
  NearFixture f;
  f.Add(kChat, Chat("", "Today is 2026-11-30. Capital of Italy?"), "Rome");
  f.Start(MissPolicy::kError);
  Answer a = f.Ask(kChat, Chat(",\"temperature\":0.5",
                               "Today is 2026-12-07. Capital of Italy?"));
  EXPECT_EQ(Explanation(a).substr(Explanation(a).find("; nearest")),
            "; nearest recording is #1, which differs in: "
            "messages[0].content, temperature; messages[0].content: "
            "recorded \"Today is 2026-11-30. Capital of Italy?\" sent \"Today "
            "is 2026-12-07. Capital of Italy?\"; temperature: recorded "
            "nothing sent 0.5");
  // The log line says it too; the 404's JSON lists them.
  ASSERT_EQ(f.events.errors.size(), 1u);
  EXPECT_NE(f.events.errors[0].find("sent 0.5"), std::string::npos);
  const std::string body = BodyOf(a.timeline);
  EXPECT_NE(
      body.find(
          R"("values":[{"field":"messages[0].content","recorded":"\"Today is 2026-11-30. Capital of Italy?\"")"),
      std::string::npos)
      << body;
  // Bounded: a long value is cut around its difference.
  NearFixture g;
  const std::string pad(5000, 'p');
  g.Add(kChat, Chat("", pad + "Italy" + pad), "Rome");
  g.Start(MissPolicy::kError);
  const std::string e =
      Explanation(g.Ask(kChat, Chat("", pad + "Spain" + pad)));
  EXPECT_LT(e.size(), 500u) << e;
  EXPECT_NE(e.find("Italy"), std::string::npos) << e;
  EXPECT_NE(e.find("Spain"), std::string::npos) << e;
}

}  // namespace
}  // namespace rwd
