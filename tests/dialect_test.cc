// The dummy engine's other dialects (Anthropic Messages, Ollama) and the
// error bodies rewind writes in each: plans unit by unit, then over real
// HTTP on 127.0.0.1 (serve, replay misses, record's 502).
#include "synth/dialect.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "rewind/server.h"
#include "rewind/synth.h"
#include "testutil/raw_http.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::BackgroundServer;
using testing::HeaderOf;
using testing::InProcessRewind;
using testing::OpenTestStore;
using testing::RawExchange;
using testing::RawResponse;
using testing::RequestText;
using testing::TempDir;

SynthOptions Options(const std::string& output = "echo") {
  SynthOptions o;
  o.output = OutputMode::Parse(output, nullptr).value();
  o.ttft = Distribution::Parse("fixed:100").value();
  o.itl = Distribution::Parse("fixed:10").value();
  o.faults.stall_ms = 1000;
  return o;
}

Request Post(const std::string& path, const std::string& body) {
  Request r;
  r.method = "POST";
  r.path = path;
  r.body = body;
  return r;
}

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

struct SseEvent {
  std::string name;
  std::string data;
  int64_t offset_us = 0;
};

// An Anthropic stream's events: each chunk is "event: NAME\ndata: JSON\n\n".
std::vector<SseEvent> Events(const Response& r) {
  std::vector<SseEvent> out;
  for (const Chunk& c : r.chunks) {
    EXPECT_EQ(c.data.rfind("event: ", 0), 0u) << c.data;
    EXPECT_EQ(c.data.substr(c.data.size() - 2), "\n\n") << c.data;
    const size_t nl = c.data.find('\n');
    const size_t data = c.data.find("data: ", nl);
    EXPECT_EQ(data, nl + 1) << c.data;
    out.push_back({c.data.substr(7, nl - 7),
                   c.data.substr(data + 6, c.data.size() - data - 8),
                   c.offset_us});
  }
  return out;
}

// The same from a raw body, split on blank lines.
std::vector<SseEvent> EventsOf(const std::string& body) {
  Response r;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) break;
    r.chunks.push_back({0, body.substr(at, end + 2 - at)});
    at = end + 2;
  }
  return Events(r);
}

std::vector<std::string> Lines(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

const char kMessage[] =
    R"({"model":"claude-test","max_tokens":64,"messages":[{"role":"user","content":"tell me three words"}]})";
const char kStreamMessage[] =
    R"({"model":"claude-test","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"tell me three words"}]})";
const char kWeatherTool[] =
    R"({"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]},"days":{"type":"integer","minimum":1,"maximum":7},"where":{"type":"object","properties":{"lat":{"type":"number","minimum":-90,"maximum":90}},"required":["lat"]},"tags":{"type":"array","items":{"type":"string"},"minItems":2}},"required":["city","unit"]}})";
// kWeatherTool's input_schema, serialized.
std::string WeatherSchema() {
  rapidjson::Document t;
  t.Parse(kWeatherTool);
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  t["input_schema"].Accept(w);
  return std::string(b.GetString(), b.GetSize());
}

const char kOllamaChat[] =
    R"({"model":"llama3.2","messages":[{"role":"user","content":"tell me three words"}]})";

// ---------------------------------------------------------------- errors

TEST(Dialect, ChosenByPath) {
  EXPECT_EQ(DialectOf("/v1/messages"), Dialect::kAnthropic);
  EXPECT_EQ(DialectOf("/v1/messages/count_tokens"), Dialect::kAnthropic);
  EXPECT_EQ(DialectOf("/api/chat"), Dialect::kOllama);
  EXPECT_EQ(DialectOf("/api/tags"), Dialect::kOllama);
  EXPECT_EQ(DialectOf("/v1/chat/completions"), Dialect::kOpenAI);
  EXPECT_EQ(DialectOf("/v1/messagesx"), Dialect::kOpenAI);
  EXPECT_EQ(DialectOf("/apix"), Dialect::kOpenAI);
}

TEST(Dialect, ErrorBodiesInEachShape) {
  const std::string extra = R"(,"key":"abc","nearest":null)";
  rapidjson::Document a = Json(DialectErrorBody(
      Dialect::kAnthropic, 404, "no recording", "rewind_miss", "", extra));
  EXPECT_STREQ(a["type"].GetString(), "error");
  EXPECT_STREQ(a["error"]["type"].GetString(), "not_found_error");
  EXPECT_STREQ(a["error"]["message"].GetString(), "no recording");
  EXPECT_STREQ(a["error"]["code"].GetString(), "rewind_miss");
  EXPECT_STREQ(a["error"]["key"].GetString(), "abc");
  EXPECT_TRUE(a["error"]["nearest"].IsNull());

  rapidjson::Document o = Json(DialectErrorBody(
      Dialect::kOllama, 404, "no recording", "rewind_miss", "", extra));
  EXPECT_STREQ(o["error"].GetString(), "no recording");
  EXPECT_STREQ(o["code"].GetString(), "rewind_miss");
  EXPECT_STREQ(o["key"].GetString(), "abc");

  // OpenAI: rewind's own shape with extras; OpenAI's with a code.
  rapidjson::Document m = Json(DialectErrorBody(
      Dialect::kOpenAI, 404, "no recording", "rewind_miss", "", extra));
  EXPECT_STREQ(m["error"]["type"].GetString(), "rewind_miss");
  EXPECT_STREQ(m["error"]["key"].GetString(), "abc");
  EXPECT_EQ(
      DialectErrorBody(Dialect::kOpenAI, 429, "slow down", "rate_limit_error",
                       "rate_limit_exceeded"),
      OpenAIErrorBody("slow down", "rate_limit_error", "rate_limit_exceeded"));

  // Anthropic's types by status; an injected fault carries no rewind code.
  const std::pair<int, const char*> types[] = {{400, "invalid_request_error"},
                                               {401, "authentication_error"},
                                               {403, "permission_error"},
                                               {404, "not_found_error"},
                                               {413, "request_too_large"},
                                               {429, "rate_limit_error"},
                                               {500, "api_error"},
                                               {502, "api_error"},
                                               {503, "overloaded_error"},
                                               {529, "overloaded_error"},
                                               {504, "timeout_error"},
                                               {408, "invalid_request_error"}};
  for (const auto& [status, type] : types) {
    rapidjson::Document d = Json(DialectErrorBody(Dialect::kAnthropic, status,
                                                  "m", "server_error", "x"));
    EXPECT_STREQ(d["error"]["type"].GetString(), type) << status;
    EXPECT_FALSE(d["error"].HasMember("code"));
  }
}

// ---------------------------------------------------------------- schema

// Checks "value" against the subset of JSON Schema ValueForSchema claims.
void ExpectFits(const rapidjson::Value& schema, const rapidjson::Value& value,
                const std::string& where) {
  if (schema.HasMember("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"].GetArray()) found = found || e == value;
    EXPECT_TRUE(found) << where;
    return;
  }
  const std::string type =
      schema.HasMember("type") ? schema["type"].GetString() : "object";
  if (type == "object") {
    ASSERT_TRUE(value.IsObject()) << where;
    if (schema.HasMember("required")) {
      for (const auto& r : schema["required"].GetArray()) {
        EXPECT_TRUE(value.HasMember(r.GetString()))
            << where << "." << r.GetString();
      }
    }
    if (schema.HasMember("properties")) {
      for (const auto& p : schema["properties"].GetObject()) {
        if (value.HasMember(p.name)) {
          ExpectFits(p.value, value[p.name], where + "." + p.name.GetString());
        }
      }
    }
  } else if (type == "array") {
    ASSERT_TRUE(value.IsArray()) << where;
    if (schema.HasMember("minItems")) {
      EXPECT_GE(value.Size(), schema["minItems"].GetUint()) << where;
    }
    if (schema.HasMember("maxItems")) {
      EXPECT_LE(value.Size(), schema["maxItems"].GetUint()) << where;
    }
    for (const auto& v : value.GetArray())
      ExpectFits(schema["items"], v, where + "[]");
  } else if (type == "integer") {
    ASSERT_TRUE(value.IsInt64()) << where;
    if (schema.HasMember("minimum")) {
      EXPECT_GE(value.GetInt64(), schema["minimum"].GetInt64());
    }
    if (schema.HasMember("maximum")) {
      EXPECT_LE(value.GetInt64(), schema["maximum"].GetInt64());
    }
  } else if (type == "number") {
    ASSERT_TRUE(value.IsNumber()) << where;
    if (schema.HasMember("minimum")) {
      EXPECT_GE(value.GetDouble(), schema["minimum"].GetDouble());
    }
    if (schema.HasMember("maximum")) {
      EXPECT_LE(value.GetDouble(), schema["maximum"].GetDouble());
    }
  } else if (type == "string") {
    ASSERT_TRUE(value.IsString()) << where;
    if (schema.HasMember("minLength")) {
      EXPECT_GE(value.GetStringLength(), schema["minLength"].GetUint())
          << where;
    }
    if (schema.HasMember("maxLength")) {
      EXPECT_LE(value.GetStringLength(), schema["maxLength"].GetUint())
          << where;
    }
  } else if (type == "boolean") {
    EXPECT_TRUE(value.IsBool()) << where;
  }
}

TEST(ValueForSchema, FitsTheSchemaForManySeeds) {
  const std::string schema =
      R"({"type":"object","properties":{"city":{"type":"string","minLength":3,"maxLength":4},"unit":{"type":"string","enum":["celsius","fahrenheit"]},"days":{"type":"integer","minimum":1,"maximum":7},"ok":{"type":"boolean"},"where":{"type":"object","properties":{"lat":{"type":"number","minimum":-90,"maximum":90}},"required":["lat"]},"tags":{"type":"array","items":{"type":"integer","minimum":5,"maximum":6},"minItems":2,"maxItems":3}},"required":["city","unit"]})";
  rapidjson::Document s = Json(schema);
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    std::mt19937_64 rng(seed);
    const std::string value = ValueForSchema(schema, rng);
    rapidjson::Document v = Json(value);
    ExpectFits(s, v, "input");
    seen.insert(value);
  }
  EXPECT_GT(seen.size(), 50u);  // seeded, not constant
  std::mt19937_64 a(7), b(7);
  EXPECT_EQ(ValueForSchema(schema, a), ValueForSchema(schema, b));
}

TEST(ValueForSchema, ConstsUnionsAndOddSchemas) {
  std::mt19937_64 rng(1);
  EXPECT_EQ(ValueForSchema(R"({"const":{"a":[1,2]}})", rng), R"({"a":[1,2]})");
  EXPECT_EQ(ValueForSchema("", rng), "{}");
  EXPECT_EQ(ValueForSchema("not json", rng), "{}");
  EXPECT_EQ(ValueForSchema(R"({"type":"null"})", rng), "null");
  const std::string any = ValueForSchema(
      R"({"anyOf":[{"type":"integer","minimum":3,"maximum":3},{"type":"boolean"}]})",
      rng);
  EXPECT_TRUE(any == "3" || any == "true" || any == "false") << any;
  EXPECT_EQ(
      ValueForSchema(R"({"type":["null","string"],"format":"date"})", rng),
      "\"2024-05-17\"");
  // Deep nesting ends at a bound instead of recursing without one.
  std::string deep;
  for (int i = 0; i < 5000; ++i)
    deep += R"({"type":"object","properties":{"a":)";
  deep += "{}";
  for (int i = 0; i < 5000; ++i) deep += "}}";
  Json(ValueForSchema(deep, rng));
}

// ---------------------------------------------------------------- Anthropic

TEST(Anthropic, MessageHasTheMessagesShapeAndTiming) {
  Synthesizer s(Options());
  SynthContext ctx;
  ctx.seed = 3;
  SynthPlan p = s.Plan(Post("/v1/messages", kMessage), ctx);
  ASSERT_EQ(p.response.status, 200) << p.response.Body();
  EXPECT_EQ(FindHeader(p.response.headers, "Content-Type"), "application/json");
  EXPECT_EQ(FindHeader(p.response.headers, "request-id").rfind("req_", 0), 0u);
  rapidjson::Document d = Json(p.response.Body());
  EXPECT_EQ(std::string(d["id"].GetString()).rfind("msg_", 0), 0u);
  EXPECT_STREQ(d["type"].GetString(), "message");
  EXPECT_STREQ(d["role"].GetString(), "assistant");
  EXPECT_STREQ(d["model"].GetString(), "claude-test");
  ASSERT_EQ(d["content"].Size(), 1u);
  EXPECT_STREQ(d["content"][0]["type"].GetString(), "text");
  EXPECT_STREQ(d["content"][0]["text"].GetString(), "tell me three words");
  EXPECT_STREQ(d["stop_reason"].GetString(), "end_turn");
  EXPECT_TRUE(d["stop_sequence"].IsNull());
  EXPECT_EQ(d["usage"]["input_tokens"].GetInt(), 4);
  EXPECT_EQ(d["usage"]["output_tokens"].GetInt(), 4);
  // TTFT 100 ms + 3 gaps of 10 ms.
  EXPECT_EQ(p.response.chunks[0].offset_us, 130000);
  EXPECT_EQ(p.prompt_tokens, 4);
  EXPECT_EQ(p.completion_tokens, 4);
}

TEST(Anthropic, MaxTokensAndStopSequences) {
  Synthesizer s(Options("static:one two three four five"));
  SynthPlan p = s.Plan(
      Post(
          "/v1/messages",
          R"({"model":"m","max_tokens":2,"messages":[{"role":"user","content":"x"}]})"),
      {});
  rapidjson::Document d = Json(p.response.Body());
  EXPECT_STREQ(d["content"][0]["text"].GetString(), "one two");
  EXPECT_STREQ(d["stop_reason"].GetString(), "max_tokens");
  p = s.Plan(
      Post(
          "/v1/messages",
          R"({"model":"m","max_tokens":20,"stop_sequences":[" four"," three"],"system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]})"),
      {});
  d = Json(p.response.Body());
  EXPECT_STREQ(d["content"][0]["text"].GetString(), "one two");
  EXPECT_STREQ(d["stop_reason"].GetString(), "stop_sequence");
  EXPECT_STREQ(d["stop_sequence"].GetString(), " three");
  EXPECT_EQ(d["usage"]["input_tokens"].GetInt(), 3);  // system + user
}

TEST(Anthropic, StreamFollowsTheEventSequence) {
  Synthesizer s(Options());
  SynthPlan p = s.Plan(Post("/v1/messages", kStreamMessage), {});
  ASSERT_EQ(p.response.status, 200);
  EXPECT_TRUE(p.response.chunked);
  EXPECT_EQ(FindHeader(p.response.headers, "Content-Type"),
            "text/event-stream; charset=utf-8");
  std::vector<SseEvent> events = Events(p.response);
  std::vector<std::string> names;
  std::string text;
  for (const SseEvent& e : events) {
    names.push_back(e.name);
    rapidjson::Document d = Json(e.data);
    EXPECT_EQ(e.name, d["type"].GetString());  // event name = data type
    if (e.name == "content_block_delta") {
      EXPECT_STREQ(d["delta"]["type"].GetString(), "text_delta");
      text += d["delta"]["text"].GetString();
    }
    if (e.name == "message_start") {
      EXPECT_STREQ(d["message"]["role"].GetString(), "assistant");
      EXPECT_TRUE(d["message"]["content"].Empty());
      EXPECT_EQ(d["message"]["usage"]["input_tokens"].GetInt(), 4);
    }
    if (e.name == "message_delta") {
      EXPECT_STREQ(d["delta"]["stop_reason"].GetString(), "end_turn");
      EXPECT_EQ(d["usage"]["output_tokens"].GetInt(), 4);
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{
                       "message_start", "content_block_start", "ping",
                       "content_block_delta", "content_block_delta",
                       "content_block_delta", "content_block_delta",
                       "content_block_stop", "message_delta", "message_stop"}));
  EXPECT_EQ(text, "tell me three words");
  EXPECT_EQ(events.front().offset_us, 100000);  // TTFT
  EXPECT_EQ(events[4].offset_us, 110000);       // second token after one ITL
  EXPECT_EQ(events.back().offset_us, 130000);
}

TEST(Anthropic, ToolUseWhenToolsAreGiven) {
  Synthesizer s(Options());
  const std::string tools = std::string(R"("tools":[)") + kWeatherTool + "]";
  const rapidjson::Document schema = Json(WeatherSchema());
  // Non-streamed, tool_choice any: a tool_use block whose input fits.
  SynthPlan p = s.Plan(
      Post("/v1/messages",
           R"({"model":"m","max_tokens":50,"tool_choice":{"type":"any"},)" +
               tools +
               R"(,"messages":[{"role":"user","content":"weather?"}]})"),
      {});
  rapidjson::Document d = Json(p.response.Body());
  EXPECT_STREQ(d["stop_reason"].GetString(), "tool_use");
  ASSERT_EQ(d["content"].Size(), 1u);
  const auto& block = d["content"][0];
  EXPECT_STREQ(block["type"].GetString(), "tool_use");
  EXPECT_EQ(std::string(block["id"].GetString()).rfind("toolu_", 0), 0u);
  EXPECT_STREQ(block["name"].GetString(), "get_weather");
  ExpectFits(schema, block["input"], "input");

  // Streamed (auto): input_json_delta pieces that join into the input.
  SynthContext ctx;
  ctx.seed = 9;
  p = s.Plan(Post("/v1/messages",
                  R"({"model":"m","max_tokens":50,"stream":true,)" + tools +
                      R"(,"messages":[{"role":"user","content":"weather?"}]})"),
             ctx);
  std::string json;
  std::string stop;
  for (const SseEvent& e : Events(p.response)) {
    rapidjson::Document ev = Json(e.data);
    if (e.name == "content_block_start") {
      EXPECT_STREQ(ev["content_block"]["type"].GetString(), "tool_use");
      EXPECT_TRUE(ev["content_block"]["input"].ObjectEmpty());
    }
    if (e.name == "content_block_delta") {
      EXPECT_STREQ(ev["delta"]["type"].GetString(), "input_json_delta");
      json += ev["delta"]["partial_json"].GetString();
    }
    if (e.name == "message_delta")
      stop = ev["delta"]["stop_reason"].GetString();
  }
  EXPECT_EQ(stop, "tool_use");
  ExpectFits(schema, Json(json), "streamed input");

  // After the tool's result, or with tool_choice none: text.
  const std::string followup =
      R"({"model":"m","max_tokens":50,)" + tools +
      R"(,"messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]}]})";
  d = Json(s.Plan(Post("/v1/messages", followup), {}).response.Body());
  EXPECT_STREQ(d["stop_reason"].GetString(), "end_turn");
  EXPECT_STREQ(d["content"][0]["type"].GetString(), "text");
  d = Json(
      s.Plan(
           Post(
               "/v1/messages",
               R"({"model":"m","max_tokens":50,"tool_choice":{"type":"none"},)" +
                   tools + R"(,"messages":[{"role":"user","content":"hi"}]})"),
           {})
          .response.Body());
  EXPECT_STREQ(d["content"][0]["type"].GetString(), "text");
  // A named tool is always the one called.
  d = Json(
      s.Plan(
           Post(
               "/v1/messages",
               R"({"model":"m","max_tokens":50,"tool_choice":{"type":"tool","name":"get_weather"},"tools":[{"name":"other","input_schema":{}},)" +
                   std::string(kWeatherTool) +
                   R"(],"messages":[{"role":"user","content":"hi"}]})"),
           {})
          .response.Body());
  EXPECT_STREQ(d["content"][0]["name"].GetString(), "get_weather");
}

TEST(Anthropic, BadRequestsAndFaultsUseAnthropicErrors) {
  Synthesizer s(Options());
  const std::pair<const char*, const char*> bad[] = {
      {"{", "not a JSON object"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}]})",
       "max_tokens"},
      {R"({"max_tokens":5,"messages":[{"role":"user","content":"x"}]})",
       "model"},
      {R"({"model":"m","max_tokens":5,"messages":[]})", "messages"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]})",
       "role"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"tool","name":"nope"}})",
       "nope"},
  };
  for (const auto& [body, mentions] : bad) {
    SynthPlan p = s.Plan(Post("/v1/messages", body), {});
    EXPECT_EQ(p.response.status, 400) << body;
    rapidjson::Document d = Json(p.response.Body());
    EXPECT_STREQ(d["type"].GetString(), "error");
    EXPECT_STREQ(d["error"]["type"].GetString(), "invalid_request_error");
    EXPECT_NE(std::string(d["error"]["message"].GetString()).find(mentions),
              std::string::npos)
        << d["error"]["message"].GetString();
  }
  SynthContext ctx;
  for (auto [fault, status, type] :
       {std::tuple{FaultType::k429, 429, "rate_limit_error"},
        std::tuple{FaultType::k500, 500, "api_error"},
        std::tuple{FaultType::k503, 503, "overloaded_error"},
        std::tuple{FaultType::kTimeout, 504, "timeout_error"}}) {
    ctx.forced_fault = fault;
    SynthPlan p = s.Plan(Post("/v1/messages", kStreamMessage), ctx);
    EXPECT_EQ(p.response.status, status);
    EXPECT_EQ(p.fault, fault);
    EXPECT_STREQ(Json(p.response.Body())["error"]["type"].GetString(), type);
  }
  EXPECT_EQ(s.Plan(Post("/v1/messages/batches", "{}"), {}).response.status,
            404);
}

TEST(Anthropic, StreamFaultsBreakTheStream) {
  Synthesizer s(Options());
  const std::string body =
      R"({"model":"m","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"a b c d e f g h"}]})";
  SynthContext ctx;
  ctx.seed = 4;
  const SynthPlan clean = s.Plan(Post("/v1/messages", body), ctx);
  ctx.forced_fault = FaultType::kDrop;
  SynthPlan p = s.Plan(Post("/v1/messages", body), ctx);
  EXPECT_TRUE(p.abort);
  EXPECT_LT(p.response.chunks.size(), clean.response.chunks.size());
  ctx.forced_fault = FaultType::kStall;
  p = s.Plan(Post("/v1/messages", body), ctx);
  EXPECT_EQ(p.response.chunks.back().offset_us,
            clean.response.chunks.back().offset_us + 1000000);
  ctx.forced_fault = FaultType::kGarbage;
  p = s.Plan(Post("/v1/messages", body), ctx);
  int malformed = 0;
  for (const SseEvent& e : Events(p.response)) {
    rapidjson::Document d;
    d.Parse(e.data.c_str());
    malformed += d.HasParseError();
  }
  EXPECT_EQ(malformed, 1);
}

TEST(Anthropic, SameSeedSameBytes) {
  SynthOptions o = Options("random");
  o.ttft = Distribution::Parse("normal:100,30").value();
  o.itl = Distribution::Parse("uniform:5..20").value();
  Synthesizer s(o);
  SynthContext ctx;
  ctx.seed = 77;
  const SynthPlan a = s.Plan(Post("/v1/messages", kStreamMessage), ctx);
  const SynthPlan b = s.Plan(Post("/v1/messages", kStreamMessage), ctx);
  EXPECT_EQ(a.response.Body(), b.response.Body());
  for (size_t i = 0; i < a.response.chunks.size(); ++i) {
    EXPECT_EQ(a.response.chunks[i].offset_us, b.response.chunks[i].offset_us);
  }
  ctx.seed = 78;
  EXPECT_NE(s.Plan(Post("/v1/messages", kStreamMessage), ctx).response.Body(),
            a.response.Body());
}

// ---------------------------------------------------------------- Ollama

TEST(Ollama, ChatStreamsNdjsonWithDoneAndTimings) {
  Synthesizer s(Options());
  SynthContext ctx;
  ctx.created = 1700000000;
  SynthPlan p =
      s.Plan(Post("/api/chat", kOllamaChat), ctx);  // streams by default
  ASSERT_EQ(p.response.status, 200) << p.response.Body();
  EXPECT_TRUE(p.response.chunked);
  EXPECT_EQ(FindHeader(p.response.headers, "Content-Type"),
            "application/x-ndjson");
  ASSERT_EQ(p.response.chunks.size(), 5u);  // 4 tokens and the last object
  std::string text;
  for (size_t i = 0; i < p.response.chunks.size(); ++i) {
    const std::string& line = p.response.chunks[i].data;
    ASSERT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1);  // one object per line
    rapidjson::Document d = Json(line);
    EXPECT_STREQ(d["model"].GetString(), "llama3.2");
    EXPECT_STREQ(d["message"]["role"].GetString(), "assistant");
    text += d["message"]["content"].GetString();
    const bool last = i + 1 == p.response.chunks.size();
    EXPECT_EQ(d["done"].GetBool(), last);
    EXPECT_EQ(d.HasMember("done_reason"), last);
    if (last) {
      EXPECT_STREQ(d["done_reason"].GetString(), "stop");
      EXPECT_EQ(d["total_duration"].GetInt64(), 130000000);  // ns
      EXPECT_EQ(d["load_duration"].GetInt64(), 0);
      EXPECT_EQ(d["prompt_eval_count"].GetInt(), 4);
      EXPECT_EQ(d["prompt_eval_duration"].GetInt64(), 100000000);
      EXPECT_EQ(d["eval_count"].GetInt(), 4);
      EXPECT_EQ(d["eval_duration"].GetInt64(), 30000000);
      EXPECT_STREQ(d["created_at"].GetString(), "2023-11-14T22:13:20.130000Z");
    }
  }
  EXPECT_EQ(text, "tell me three words");
  EXPECT_EQ(p.response.chunks[0].offset_us, 100000);
  EXPECT_STREQ(Json(p.response.chunks[0].data)["created_at"].GetString(),
               "2023-11-14T22:13:20.100000Z");
}

TEST(Ollama, StreamFalseAndGenerateAndLength) {
  Synthesizer s(Options("static:one two three four"));
  SynthPlan p = s.Plan(
      Post(
          "/api/chat",
          R"({"model":"m","stream":false,"options":{"num_predict":2},"messages":[{"role":"user","content":"x"}]})"),
      {});
  ASSERT_EQ(p.response.status, 200);
  EXPECT_FALSE(p.response.chunked);
  EXPECT_EQ(FindHeader(p.response.headers, "Content-Type"),
            "application/json; charset=utf-8");
  ASSERT_EQ(p.response.chunks.size(), 1u);
  rapidjson::Document d = Json(p.response.Body());
  EXPECT_STREQ(d["message"]["content"].GetString(), "one two");
  EXPECT_TRUE(d["done"].GetBool());
  EXPECT_STREQ(d["done_reason"].GetString(), "length");
  EXPECT_EQ(d["eval_count"].GetInt(), 2);

  p = s.Plan(
      Post(
          "/api/generate",
          R"({"model":"m","prompt":"say","stream":false,"options":{"stop":[" three"]}})"),
      {});
  d = Json(p.response.Body());
  EXPECT_STREQ(d["response"].GetString(), "one two");
  EXPECT_STREQ(d["done_reason"].GetString(), "stop");
  EXPECT_FALSE(d.HasMember("message"));

  p = s.Plan(Post("/api/generate", R"({"model":"m","prompt":"say"})"), {});
  EXPECT_TRUE(p.response.chunked);
  std::string text;
  for (const Chunk& c : p.response.chunks)
    text += Json(c.data)["response"].GetString();
  EXPECT_EQ(text, "one two three four");

  // No messages, or no prompt: the model is "loaded".
  for (const char* body :
       {R"({"model":"m","messages":[]})", R"({"model":"m"})"}) {
    const std::string path =
        std::string(body).find("messages") != std::string::npos
            ? "/api/chat"
            : "/api/generate";
    d = Json(s.Plan(Post(path, body), {}).response.Body());
    EXPECT_STREQ(d["done_reason"].GetString(), "load") << body;
    EXPECT_TRUE(d["done"].GetBool());
  }
}

TEST(Ollama, ToolCallsWithObjectArguments) {
  Synthesizer s(Options());
  const rapidjson::Document schema = Json(WeatherSchema());
  const std::string tools =
      std::string(
          R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":)") +
      WeatherSchema() + "}}]";
  SynthPlan p =
      s.Plan(Post("/api/chat",
                  R"({"model":"m","stream":false,)" + tools +
                      R"(,"messages":[{"role":"user","content":"weather?"}]})"),
             {});
  rapidjson::Document d = Json(p.response.Body());
  ASSERT_TRUE(d["message"].HasMember("tool_calls")) << p.response.Body();
  const auto& call = d["message"]["tool_calls"][0]["function"];
  EXPECT_STREQ(call["name"].GetString(), "get_weather");
  ExpectFits(schema, call["arguments"], "arguments");
  EXPECT_STREQ(d["message"]["content"].GetString(), "");

  // Streamed: one object carries the whole call, then the last object.
  p = s.Plan(Post("/api/chat",
                  R"({"model":"m",)" + tools +
                      R"(,"messages":[{"role":"user","content":"weather?"}]})"),
             {});
  ASSERT_EQ(p.response.chunks.size(), 2u);
  EXPECT_TRUE(
      Json(p.response.chunks[0].data)["message"].HasMember("tool_calls"));
  EXPECT_TRUE(Json(p.response.chunks[1].data)["done"].GetBool());

  // After a tool message: text.
  d = Json(
      s.Plan(
           Post(
               "/api/chat",
               R"({"model":"m","stream":false,)" + tools +
                   R"(,"messages":[{"role":"user","content":"weather?"},{"role":"tool","content":"sunny"}]})"),
           {})
          .response.Body());
  EXPECT_FALSE(d["message"].HasMember("tool_calls"));
  EXPECT_STREQ(d["message"]["content"].GetString(), "weather?");
}

TEST(Ollama, BadRequestsFaultsAndUnknownPaths) {
  Synthesizer s(Options());
  for (const char* body :
       {"{", R"({"messages":[]})", R"({"model":"m","stream":"yes"})",
        R"({"model":"m","messages":{}})"}) {
    SynthPlan p = s.Plan(Post("/api/chat", body), {});
    EXPECT_EQ(p.response.status, 400) << body;
    rapidjson::Document d = Json(p.response.Body());
    ASSERT_TRUE(d["error"].IsString()) << p.response.Body();
  }
  EXPECT_STREQ(Json(s.Plan(Post("/api/chat", R"({"messages":[]})"), {})
                        .response.Body())["error"]
                   .GetString(),
               "model is required");
  SynthContext ctx;
  ctx.forced_fault = FaultType::k429;
  SynthPlan p = s.Plan(Post("/api/chat", kOllamaChat), ctx);
  EXPECT_EQ(p.response.status, 429);
  EXPECT_STREQ(Json(p.response.Body())["error"].GetString(),
               "Rate limit reached (injected by rewind)");
  ctx.forced_fault = FaultType::kGarbage;
  p = s.Plan(Post("/api/chat", kOllamaChat), ctx);
  int malformed = 0;
  for (const Chunk& c : p.response.chunks) {
    rapidjson::Document d;
    d.Parse(c.data.c_str());
    malformed += d.HasParseError();
  }
  EXPECT_EQ(malformed, 1);
  ctx.forced_fault = FaultType::kDrop;
  p = s.Plan(
      Post(
          "/api/chat",
          R"({"model":"m","stream":false,"messages":[{"role":"user","content":"a b"}]})"),
      ctx);
  EXPECT_TRUE(p.abort);
  EXPECT_GT(p.content_length, p.response.Body().size());
  p = s.Plan(Post("/api/pull", "{}"), {});
  EXPECT_EQ(p.response.status, 404);
  EXPECT_TRUE(Json(p.response.Body())["error"].IsString());
}

TEST(Ollama, TagsListTheModel) {
  SynthOptions o = Options();
  o.model = "tiny";
  rapidjson::Document d = Json(OllamaTagsBody(o));
  ASSERT_EQ(d["models"].Size(), 1u);
  EXPECT_STREQ(d["models"][0]["name"].GetString(), "tiny:latest");
  EXPECT_STREQ(d["models"][0]["model"].GetString(), "tiny:latest");
  EXPECT_EQ(std::string(d["models"][0]["digest"].GetString()).size(), 64u);
  EXPECT_TRUE(d["models"][0]["details"].IsObject());
}

// ---------------------------------------------------------------- over HTTP

ServerOptions ServeOptions() {
  ServerOptions o;
  o.mode = ServerMode::kServe;
  o.synth.output = OutputMode::Parse("echo", nullptr).value();
  o.synth.deterministic_created = true;
  return o;
}

TEST(DialectsOverHttp, ServeAnswersAnthropicAndOllama) {
  ServerOptions o = ServeOptions();
  o.synth.ttft = Distribution::Parse("fixed:120").value();
  InProcessRewind serve(o);
  auto started = std::chrono::steady_clock::now();
  RawResponse a = RawExchange(
      serve.port(), RequestText("POST", "/v1/messages", kStreamMessage));
  const double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - started)
                        .count();
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_GE(ms, 120);  // the TTFT applies
  EXPECT_EQ(HeaderOf(a, "X-Rewind"), "synth");
  EXPECT_EQ(HeaderOf(a, "Content-Type"), "text/event-stream; charset=utf-8");
  std::vector<SseEvent> events = EventsOf(a.body);
  ASSERT_EQ(events.size(), 10u) << a.body;
  EXPECT_EQ(events.front().name, "message_start");
  EXPECT_EQ(events.back().name, "message_stop");

  RawResponse c =
      RawExchange(serve.port(), RequestText("POST", "/api/chat", kOllamaChat));
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(HeaderOf(c, "Content-Type"), "application/x-ndjson");
  std::vector<std::string> lines = Lines(c.body);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_TRUE(Json(lines.back())["done"].GetBool());

  RawResponse tags =
      RawExchange(serve.port(), RequestText("GET", "/api/tags", ""));
  EXPECT_EQ(tags.status, 200);
  EXPECT_STREQ(Json(tags.body)["models"][0]["name"].GetString(),
               "rewind-dummy:latest");

  RawResponse g = RawExchange(
      serve.port(),
      RequestText("POST", "/api/generate",
                  R"({"model":"m","prompt":"hello there","stream":false})"));
  EXPECT_STREQ(Json(g.body)["response"].GetString(), "hello there");

  // Unknown paths answer in their dialect.
  RawResponse pull =
      RawExchange(serve.port(), RequestText("POST", "/api/pull", "{}"));
  EXPECT_EQ(pull.status, 404);
  EXPECT_TRUE(Json(pull.body)["error"].IsString()) << pull.body;
  RawResponse count = RawExchange(
      serve.port(), RequestText("POST", "/v1/messages/count_tokens", "{}"));
  EXPECT_EQ(count.status, 404);
  EXPECT_STREQ(Json(count.body)["error"]["type"].GetString(),
               "not_found_error");

  // A forced fault and a bad fault name.
  RawResponse f = RawExchange(
      serve.port(),
      RequestText("POST", "/v1/messages", kMessage, "X-Rewind-Fault: 503\r\n"));
  EXPECT_EQ(f.status, 503);
  EXPECT_STREQ(Json(f.body)["error"]["type"].GetString(), "overloaded_error");
  RawResponse bad =
      RawExchange(serve.port(), RequestText("POST", "/api/chat", kOllamaChat,
                                            "X-Rewind-Fault: bogus\r\n"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(std::string(Json(bad.body)["error"].GetString()).find("bogus"),
            std::string::npos);

  // The engine's metrics count the dialects' tokens.
  RawResponse metrics =
      RawExchange(serve.port(), RequestText("GET", "/metrics", ""));
  EXPECT_NE(metrics.body.find(
                "vllm:generation_tokens_total{model_name=\"rewind-dummy\"} 10"),
            std::string::npos)
      << metrics.body;
}

TEST(DialectsOverHttp, AtCapacityThe429IsInTheDialect) {
  ServerOptions o = ServeOptions();
  // The slow request holds the one slot for 2 s; the others are sent
  // once the engine says it is running (not after a guessed sleep: under
  // a sanitizer on a loaded machine its arrival took over 600 ms).
  o.synth.ttft = Distribution::Parse("fixed:2000").value();
  o.synth.max_concurrency = 1;
  o.synth.max_queue = 0;
  InProcessRewind serve(o);
  std::thread slow([&] {
    RawExchange(serve.port(), RequestText("POST", "/v1/messages", kMessage));
  });
  const std::string running =
      "vllm:num_requests_running{model_name=\"rewind-dummy\"} 1\n";
  bool admitted = false;
  for (int i = 0; i < 500 && !admitted; ++i) {
    admitted = RawExchange(serve.port(), RequestText("GET", "/metrics", ""))
                   .body.find(running) != std::string::npos;
    if (!admitted) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!admitted) {
    slow.join();
    FAIL() << "the slow request was never running";
  }
  RawResponse a =
      RawExchange(serve.port(), RequestText("POST", "/v1/messages", kMessage));
  RawResponse c =
      RawExchange(serve.port(), RequestText("POST", "/api/chat", kOllamaChat));
  slow.join();
  EXPECT_EQ(a.status, 429);
  EXPECT_STREQ(Json(a.body)["error"]["type"].GetString(), "rate_limit_error");
  EXPECT_NE(std::string(Json(a.body)["error"]["message"].GetString())
                .find("at capacity"),
            std::string::npos);
  EXPECT_EQ(c.status, 429);
  EXPECT_NE(std::string(Json(c.body)["error"].GetString()).find("at capacity"),
            std::string::npos);
}

TEST(DialectsOverHttp, ReplayMissesSpeakTheRequestsDialect) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  // Record one exchange per dialect from rewind serve.
  InProcessRewind serve(ServeOptions());
  {
    ServerOptions ro;
    ro.mode = ServerMode::kRecord;
    ro.store = store.get();
    ro.upstream.backend = "http://127.0.0.1:" + std::to_string(serve.port());
    InProcessRewind rec(ro);
    EXPECT_EQ(
        RawExchange(rec.port(), RequestText("POST", "/v1/messages", kMessage))
            .status,
        200);
    EXPECT_EQ(
        RawExchange(rec.port(), RequestText("POST", "/api/chat", kOllamaChat))
            .status,
        200);
  }
  ServerOptions po;
  po.mode = ServerMode::kReplay;
  po.store = store.get();
  po.replay.latency = LatencyModel::Parse("none").value();
  InProcessRewind replay(po);
  EXPECT_EQ(
      RawExchange(replay.port(), RequestText("POST", "/v1/messages", kMessage))
          .status,
      200);

  const std::string other_message =
      R"({"model":"claude-test","max_tokens":64,"messages":[{"role":"user","content":"something else"}]})";
  RawResponse a = RawExchange(
      replay.port(), RequestText("POST", "/v1/messages", other_message));
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(HeaderOf(a, "X-Rewind"), "miss");
  rapidjson::Document d = Json(a.body);
  EXPECT_STREQ(d["type"].GetString(), "error");
  EXPECT_STREQ(d["error"]["type"].GetString(), "not_found_error");
  EXPECT_STREQ(d["error"]["code"].GetString(), "rewind_miss");
  EXPECT_NE(std::string(d["error"]["message"].GetString())
                .find("no recorded response"),
            std::string::npos);
  EXPECT_EQ(std::string(d["error"]["key"].GetString()),
            HeaderOf(a, "X-Rewind-Key"));
  EXPECT_EQ(d["error"]["nearest"]["id"].GetInt(), 1);
  EXPECT_STREQ(d["error"]["nearest"]["differences"][0].GetString(),
               "messages[0].content");

  const std::string other_chat =
      R"({"model":"llama3.2","messages":[{"role":"user","content":"something else"}]})";
  RawResponse c =
      RawExchange(replay.port(), RequestText("POST", "/api/chat", other_chat));
  EXPECT_EQ(c.status, 404);
  d = Json(c.body);
  ASSERT_TRUE(d["error"].IsString()) << c.body;
  EXPECT_NE(std::string(d["error"].GetString()).find("nearest recording is #2"),
            std::string::npos);
  EXPECT_STREQ(d["code"].GetString(), "rewind_miss");
  EXPECT_EQ(std::string(d["key"].GetString()), HeaderOf(c, "X-Rewind-Key"));
  EXPECT_EQ(d["nearest"]["id"].GetInt(), 2);

  // OpenAI paths keep rewind's shape.
  RawResponse o = RawExchange(
      replay.port(), RequestText("POST", "/v1/chat/completions", "{}"));
  EXPECT_EQ(o.status, 404);
  EXPECT_STREQ(Json(o.body)["error"]["type"].GetString(), "rewind_miss");
  // A bad latency header is an error in the dialect too.
  RawResponse l =
      RawExchange(replay.port(), RequestText("POST", "/api/chat", kOllamaChat,
                                             "X-Rewind-Latency: warp\r\n"));
  EXPECT_EQ(l.status, 400);
  EXPECT_TRUE(Json(l.body)["error"].IsString()) << l.body;
}

TEST(DialectsOverHttp, BackendDown502InTheDialect) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  int dead_port;
  {
    BackgroundServer gone;
    gone.Start();
    dead_port = gone.port();
  }
  ServerOptions ro;
  ro.mode = ServerMode::kRecord;
  ro.store = store.get();
  ro.upstream.backend = "http://127.0.0.1:" + std::to_string(dead_port);
  InProcessRewind rec(ro);
  RawResponse a =
      RawExchange(rec.port(), RequestText("POST", "/v1/messages", kMessage));
  EXPECT_EQ(a.status, 502);
  rapidjson::Document d = Json(a.body);
  EXPECT_STREQ(d["error"]["type"].GetString(), "api_error");
  EXPECT_STREQ(d["error"]["code"].GetString(), "rewind_backend_unavailable");
  EXPECT_NE(
      std::string(d["error"]["message"].GetString()).find("did not answer"),
      std::string::npos);
  RawResponse c =
      RawExchange(rec.port(), RequestText("POST", "/api/chat", kOllamaChat));
  EXPECT_EQ(c.status, 502);
  d = Json(c.body);
  ASSERT_TRUE(d["error"].IsString()) << c.body;
  EXPECT_NE(std::string(d["error"].GetString()).find("did not answer"),
            std::string::npos);
}

TEST(DialectsOverHttp, ReplayOnMissSynthesizeAnswersTheDialects) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  ServerOptions po;
  po.mode = ServerMode::kReplay;
  po.store = store.get();
  po.replay.on_miss = MissPolicy::kSynthesize;
  po.synth.output = OutputMode::Parse("echo", nullptr).value();
  InProcessRewind replay(po);
  RawResponse a =
      RawExchange(replay.port(), RequestText("POST", "/v1/messages", kMessage));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(HeaderOf(a, "X-Rewind"), "synth");
  EXPECT_STREQ(Json(a.body)["content"][0]["text"].GetString(),
               "tell me three words");
  RawResponse c =
      RawExchange(replay.port(), RequestText("POST", "/api/chat", kOllamaChat));
  EXPECT_EQ(c.status, 200);
  EXPECT_EQ(Lines(c.body).size(), 5u);
}

}  // namespace
}  // namespace rwd
