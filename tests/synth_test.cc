#include "rewind/synth.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "testutil/test_server.h"

namespace rwd {
namespace {

Request Chat(const std::string& body) {
  Request r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.body = body;
  return r;
}

SynthOptions Options(const std::string& output = "echo") {
  SynthOptions o;
  o.output = OutputMode::Parse(output, nullptr).value();
  o.ttft = Distribution::Parse("fixed:100").value();
  o.itl = Distribution::Parse("fixed:10").value();
  return o;
}

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

// The JSON payloads of an SSE body, "[DONE]" included as a string.
std::vector<std::string> Events(const Response& r) {
  std::vector<std::string> out;
  for (const Chunk& c : r.chunks) {
    EXPECT_EQ(c.data.rfind("data: ", 0), 0u) << c.data;
    EXPECT_EQ(c.data.substr(c.data.size() - 2), "\n\n");
    out.push_back(c.data.substr(6, c.data.size() - 8));
  }
  return out;
}

TEST(Tokenize, KeepsLeadingSpacesWithEachToken) {
  EXPECT_EQ(Tokenize("Hello  big world!"),
            (std::vector<std::string>{"Hello", "  big", " world!"}));
  EXPECT_TRUE(Tokenize("").empty());
}

TEST(OpenAIRequest, ParsesChatAndCompletions) {
  Result<OpenAIRequest> chat = OpenAIRequest::Parse(
      OpenAIRequest::Kind::kChat,
      R"({"model":"m","messages":[{"role":"system","content":"be brief"},
          {"role":"user","content":[{"type":"text","text":"hi there"}]}],
          "max_completion_tokens":5,"stop":["x","y"],"n":2,"stream":true,
          "stream_options":{"include_usage":true}})");
  ASSERT_TRUE(chat.ok()) << chat.status().ToString();
  EXPECT_EQ(chat->prompt, "hi there");
  EXPECT_EQ(chat->prompt_tokens, 4);
  EXPECT_EQ(chat->max_tokens, 5);
  EXPECT_EQ(chat->stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(chat->n, 2);
  EXPECT_TRUE(chat->stream);
  EXPECT_TRUE(chat->include_usage);
  Result<OpenAIRequest> completion = OpenAIRequest::Parse(
      OpenAIRequest::Kind::kCompletion, R"({"prompt":"once upon","stop":"."})");
  ASSERT_TRUE(completion.ok());
  EXPECT_EQ(completion->prompt, "once upon");
  EXPECT_EQ(completion->stop, std::vector<std::string>{"."});
}

TEST(OpenAIRequest, RejectsInvalidRequestsWithAReason) {
  for (const char* body :
       {"", "[]", "{\"messages\":[]}", "{\"messages\":[{\"content\":\"x\"}]}",
        R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})",
        R"({"messages":[{"role":"user","content":"x"}],"n":0})",
        R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})",
        R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})"}) {
    Result<OpenAIRequest> r =
        OpenAIRequest::Parse(OpenAIRequest::Kind::kChat, body);
    EXPECT_FALSE(r.ok()) << body;
    EXPECT_FALSE(r.status().message().empty());
  }
  EXPECT_FALSE(
      OpenAIRequest::Parse(OpenAIRequest::Kind::kCompletion, "{}").ok());
}

TEST(OutputMode, StaticEchoAndRandom) {
  OpenAIRequest r;
  r.prompt = "say this back";
  std::mt19937_64 rng(1);
  EXPECT_EQ(
      OutputMode::Parse("static:Fixed answer.", nullptr)->Generate(r, rng),
      "Fixed answer.");
  EXPECT_EQ(OutputMode::Parse("echo", nullptr)->Generate(r, rng),
            "say this back");
  OutputMode random = OutputMode::Parse("random", nullptr).value();
  r.max_tokens = 6;
  std::set<std::string> distinct;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    std::mt19937_64 a(seed), b(seed);
    std::string text = random.Generate(r, a);
    EXPECT_EQ(text, random.Generate(r, b));
    EXPECT_GE(Tokenize(text).size(), 1u);
    EXPECT_LE(Tokenize(text).size(), 6u);
    distinct.insert(text);
  }
  EXPECT_GT(distinct.size(), 40u);
  EXPECT_FALSE(OutputMode::Parse("telepathy", nullptr).ok());
  EXPECT_FALSE(OutputMode::Parse("history", nullptr).ok());
}

TEST(OutputMode, RulesFirstMatchWinsElseDefault) {
  testing::TempDir dir;
  const std::string path = dir.File("rules.json");
  std::ofstream(path) << R"({"rules":[
      {"pattern":"capital of france","reply":"Paris."},
      {"pattern":"capital","reply":"Some city."}],
    "default":"I do not know."})";
  OutputMode rules = OutputMode::Parse("rules:" + path, nullptr).value();
  std::mt19937_64 rng(1);
  OpenAIRequest r;
  r.prompt = "What is the Capital of France?";
  EXPECT_EQ(rules.Generate(r, rng), "Paris.");
  r.prompt = "capital of Peru?";
  EXPECT_EQ(rules.Generate(r, rng), "Some city.");
  r.prompt = "weather?";
  EXPECT_EQ(rules.Generate(r, rng), "I do not know.");
  std::ofstream(path) << R"({"rules":[{"pattern":"(","reply":"x"}]})";
  Result<OutputMode> bad = OutputMode::Parse("rules:" + path, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad pattern"), std::string::npos);
  EXPECT_FALSE(
      OutputMode::Parse("rules:" + dir.File("none.json"), nullptr).ok());
}

TEST(OutputMode, HistoryReplaysRecordedAnswersOfTheSameModel) {
  testing::TempDir dir;
  auto store = testing::OpenTestStore(dir.File("r.sqlite"));
  auto add = [&](const std::string& model, const std::string& body) {
    Exchange e;
    e.key_hex = HashBytes(model + body).ToHex();
    e.request = Chat("{\"model\":\"" + model + "\",\"messages\":[]}");
    e.response.status = 200;
    e.response.chunks = {{0, body}};
    store->Append(e);
  };
  add("a", R"({"choices":[{"message":{"content":"from a"}}]})");
  add("b",
      "data: {\"choices\":[{\"delta\":{\"content\":\"from\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\" b\"}}]}\n\ndata: "
      "[DONE]\n\n");
  ASSERT_TRUE(store->Flush().ok());
  OutputMode history = OutputMode::Parse("history", store.get()).value();
  OpenAIRequest r;
  std::mt19937_64 rng(3);
  r.model = "b";
  EXPECT_EQ(history.Generate(r, rng), "from b");
  r.model = "a";
  EXPECT_EQ(history.Generate(r, rng), "from a");
}

TEST(Synthesizer, NonStreamingChatHasOpenAIShapeAndTiming) {
  Synthesizer s(Options());
  SynthContext ctx;
  ctx.seed = 42;
  ctx.created = 123;
  SynthPlan p = s.Plan(
      Chat(
          R"({"model":"m","messages":[{"role":"user","content":"one two three four"}],"n":2,"max_tokens":3})"),
      ctx);
  ASSERT_EQ(p.response.status, 200);
  EXPECT_FALSE(p.response.chunked);
  ASSERT_EQ(p.response.chunks.size(), 1u);
  // TTFT 100 ms, then two more tokens 10 ms apart.
  EXPECT_EQ(p.response.chunks[0].offset_us, 120000);
  rapidjson::Document d = Json(p.response.chunks[0].data);
  EXPECT_STREQ(d["object"].GetString(), "chat.completion");
  EXPECT_EQ(d["created"].GetInt(), 123);
  EXPECT_STREQ(d["model"].GetString(), "m");
  ASSERT_EQ(d["choices"].Size(), 2u);
  EXPECT_STREQ(d["choices"][1]["message"]["content"].GetString(),
               "one two three");
  EXPECT_STREQ(d["choices"][0]["finish_reason"].GetString(), "length");
  EXPECT_EQ(d["usage"]["prompt_tokens"].GetInt(), 4);
  EXPECT_EQ(d["usage"]["completion_tokens"].GetInt(), 6);
  EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 10);
}

TEST(Synthesizer, StopSequenceEndsTheAnswer) {
  Synthesizer s(Options("static:Paris. Then more text."));
  SynthPlan p = s.Plan(
      Chat(R"({"messages":[{"role":"user","content":"?"}],"stop":[" Then"]})"),
      {});
  rapidjson::Document d = Json(p.response.chunks[0].data);
  EXPECT_STREQ(d["choices"][0]["message"]["content"].GetString(), "Paris.");
  EXPECT_STREQ(d["choices"][0]["finish_reason"].GetString(), "stop");
}

TEST(Synthesizer, StreamingEventsFollowTheOpenAIFormat) {
  SynthOptions o = Options();
  o.prefill_per_token_ms = 2;
  Synthesizer s(o);
  SynthContext ctx;
  ctx.admitted_us = 5000;  // waited 5 ms in the queue
  SynthPlan p = s.Plan(
      Chat(
          R"({"messages":[{"role":"user","content":"a b c"}],"stream":true,"stream_options":{"include_usage":true}})"),
      ctx);
  ASSERT_TRUE(p.response.chunked);
  EXPECT_EQ(p.response.headers_us, 5000);
  std::vector<std::string> events = Events(p.response);
  // role, 3 tokens, finish, usage, [DONE]
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string id;
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    rapidjson::Document d = Json(events[i]);
    EXPECT_STREQ(d["object"].GetString(), "chat.completion.chunk");
    if (id.empty()) id = d["id"].GetString();
    EXPECT_EQ(id, d["id"].GetString()) << "one id per stream";
    if (i == 0) {
      EXPECT_STREQ(d["choices"][0]["delta"]["role"].GetString(), "assistant");
    }
    if (i >= 1 && i <= 3)
      text += d["choices"][0]["delta"]["content"].GetString();
    if (i == 4) {
      EXPECT_STREQ(d["choices"][0]["finish_reason"].GetString(), "stop");
    }
    if (i == 5) {
      EXPECT_EQ(d["choices"].Size(), 0u);
      EXPECT_EQ(d["usage"]["completion_tokens"].GetInt(), 3);
    }
  }
  EXPECT_EQ(text, "a b c");
  // 5 ms queue + 100 ms TTFT + 3 prompt tokens × 2 ms, then 10 ms per token.
  EXPECT_EQ(p.response.chunks[1].offset_us, 111000);
  EXPECT_EQ(p.response.chunks[2].offset_us, 121000);
  EXPECT_EQ(p.response.chunks[3].offset_us, 131000);
}

TEST(Synthesizer, CompletionsUseTextCompletionObjects) {
  Synthesizer s(Options());
  Request r = Chat(R"({"prompt":"x y","stream":true})");
  r.path = "/v1/completions";
  std::vector<std::string> events = Events(s.Plan(r, {}).response);
  ASSERT_GE(events.size(), 3u);
  rapidjson::Document d = Json(events[0]);
  EXPECT_STREQ(d["object"].GetString(), "text_completion");
  EXPECT_STREQ(d["choices"][0]["text"].GetString(), "x");
}

TEST(Synthesizer, SameSeedSameAnswerAndLatency) {
  SynthOptions o = Options("random");
  o.ttft = Distribution::Parse("normal:100,30").value();
  o.itl = Distribution::Parse("uniform:5..15").value();
  Synthesizer s(o);
  Request r =
      Chat(R"({"messages":[{"role":"user","content":"?"}],"stream":true})");
  SynthContext a;
  a.seed = 9;
  SynthPlan p1 = s.Plan(r, a), p2 = s.Plan(r, a);
  ASSERT_EQ(p1.response.chunks.size(), p2.response.chunks.size());
  for (size_t i = 0; i < p1.response.chunks.size(); ++i) {
    EXPECT_EQ(p1.response.chunks[i].data, p2.response.chunks[i].data);
    EXPECT_EQ(p1.response.chunks[i].offset_us, p2.response.chunks[i].offset_us);
  }
  a.seed = 10;
  EXPECT_NE(s.Plan(r, a).response.Body(), p1.response.Body());
}

TEST(Synthesizer, ErrorsUseOpenAIShape) {
  Synthesizer s(Options());
  SynthPlan bad = s.Plan(Chat("{"), {});
  EXPECT_EQ(bad.response.status, 400);
  rapidjson::Document d = Json(bad.response.chunks[0].data);
  EXPECT_STREQ(d["error"]["type"].GetString(), "invalid_request_error");
  EXPECT_TRUE(d["error"].HasMember("message"));
  EXPECT_TRUE(d["error"]["param"].IsNull());
  Request other = Chat("{}");
  other.path = "/v1/audio/speech";
  EXPECT_EQ(s.Plan(other, {}).response.status, 404);
}

TEST(Synthesizer, ForcedFaultsShapeTheResponse) {
  SynthOptions o = Options();
  o.faults.stall_ms = 1000;
  Synthesizer s(o);
  Request stream = Chat(
      R"({"messages":[{"role":"user","content":"a b c d e f"}],"stream":true})");
  SynthContext ctx;
  ctx.seed = 5;
  ctx.forced_fault = FaultType::k429;
  SynthPlan p = s.Plan(stream, ctx);
  EXPECT_EQ(p.response.status, 429);
  EXPECT_STREQ(Json(p.response.chunks[0].data)["error"]["code"].GetString(),
               "rate_limit_exceeded");
  ctx.forced_fault = FaultType::kNone;
  const SynthPlan clean = s.Plan(stream, ctx);
  ctx.forced_fault = FaultType::kDrop;
  p = s.Plan(stream, ctx);
  EXPECT_TRUE(p.abort);
  EXPECT_LT(p.response.chunks.size(), clean.response.chunks.size());
  EXPECT_NE(p.response.chunks.back().data, "data: [DONE]\n\n");
  ctx.forced_fault = FaultType::kStall;
  p = s.Plan(stream, ctx);
  EXPECT_EQ(p.response.chunks.back().offset_us,
            clean.response.chunks.back().offset_us + 1000000);
  ctx.forced_fault = FaultType::kGarbage;
  p = s.Plan(stream, ctx);
  int malformed = 0;
  for (const std::string& e : Events(p.response)) {
    rapidjson::Document d;
    d.Parse(e.c_str());
    if (e != "[DONE]" && d.HasParseError()) ++malformed;
  }
  EXPECT_EQ(malformed, 1);
  ctx.forced_fault = FaultType::kDrop;
  p = s.Plan(Chat(R"({"messages":[{"role":"user","content":"a b"}]})"), ctx);
  EXPECT_TRUE(p.abort);
  EXPECT_GT(p.content_length, p.response.Body().size());
}

TEST(Synthesizer, FaultRateIsSeededAndNearItsTarget) {
  SynthOptions o = Options();
  o.faults = FaultSpec::Parse("rate=0.2,types=500|503").value();
  Synthesizer s(o);
  Request r = Chat(R"({"messages":[{"role":"user","content":"x"}]})");
  int failed = 0;
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    SynthContext ctx;
    ctx.seed = seed;
    int status = s.Plan(r, ctx).response.status;
    EXPECT_EQ(status, s.Plan(r, ctx).response.status);
    EXPECT_TRUE(status == 200 || status == 500 || status == 503);
    if (status != 200) ++failed;
  }
  // Binomial(1000, 0.2): mean 200, sd 12.6; ±4.5 sd.
  EXPECT_GT(failed, 143);
  EXPECT_LT(failed, 257);
}

TEST(FaultSpec, ParsesAndRejects) {
  Result<FaultSpec> f =
      FaultSpec::Parse("rate=0.05,types=429|drop,stall_ms=200");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_DOUBLE_EQ(f->rate, 0.05);
  EXPECT_EQ(f->types,
            (std::vector<FaultType>{FaultType::k429, FaultType::kDrop}));
  EXPECT_EQ(f->stall_ms, 200);
  for (const char* bad : {"rate=2,types=429", "rate=0.1", "types=boom",
                          "rate=0.1,types=429,color=red", "rate"}) {
    EXPECT_FALSE(FaultSpec::Parse(bad).ok()) << bad;
  }
}

TEST(Synthesizer, LoadFactorGrowsLinearlyToMaxConcurrency) {
  SynthOptions o = Options();
  o.load_factor = 3;
  o.max_concurrency = 5;
  Synthesizer s(o);
  EXPECT_DOUBLE_EQ(s.LoadMultiplier(1), 1);
  EXPECT_DOUBLE_EQ(s.LoadMultiplier(3), 2);
  EXPECT_DOUBLE_EQ(s.LoadMultiplier(5), 3);
  EXPECT_DOUBLE_EQ(s.LoadMultiplier(9), 3);
  SynthContext ctx;
  ctx.load_multiplier = 2;
  SynthPlan p = s.Plan(
      Chat(R"({"messages":[{"role":"user","content":"a b"}],"stream":true})"),
      ctx);
  EXPECT_EQ(p.response.chunks[1].offset_us, 200000);  // TTFT 100 ms × 2
  EXPECT_EQ(p.response.chunks[2].offset_us, 220000);  // ITL 10 ms × 2
}

TEST(Admission, AdmitsQueuesInOrderAndRefusesBeyondTheQueue) {
  Admission a(2, 2);
  auto s1 = a.Enter();
  auto s2 = a.Enter();
  ASSERT_TRUE(s1 && s2);
  a.AddTokens(s1.get(), 100);
  EXPECT_EQ(a.tokens(), 100);
  std::vector<int> order;
  std::mutex mu;
  std::vector<std::thread> waiters;
  std::vector<std::shared_ptr<Admission::Slot>> held(2);
  for (int i = 0; i < 2; ++i) {
    waiters.emplace_back([&, i] {
      auto slot = a.Enter();
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
      held[static_cast<size_t>(i)] = slot;
    });
    while (a.waiting() != static_cast<size_t>(i + 1)) std::this_thread::yield();
  }
  EXPECT_EQ(a.Enter(), nullptr);  // two running, two waiting: full
  s1.reset();
  EXPECT_EQ(a.tokens(), 0);
  while (true) {
    std::lock_guard<std::mutex> lock(mu);
    if (order.size() == 1) break;
  }
  EXPECT_EQ(order, std::vector<int>{0});
  s2.reset();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  EXPECT_EQ(a.running(), 2u);
  held.clear();
  EXPECT_EQ(a.running(), 0u);
}

TEST(Admission, UnlimitedNeverWaits) {
  Admission a(0, 0);
  std::vector<std::shared_ptr<Admission::Slot>> slots;
  for (int i = 0; i < 100; ++i) slots.push_back(a.Enter());
  EXPECT_EQ(a.running(), 100u);
  EXPECT_EQ(a.waiting(), 0u);
}

}  // namespace
}  // namespace rwd
