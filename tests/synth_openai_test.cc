// The dummy engine's newer OpenAI surfaces, planned without HTTP: the
// Responses API, tool calls, structured output, logprobs, n > 1 and
// continuous usage in streams, embeddings, several models, /tokenize.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "rewind/synth.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

Request Post(const std::string& path, const std::string& body) {
  Request r;
  r.method = "POST";
  r.path = path;
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

SynthContext Seed(uint64_t seed) {
  SynthContext c;
  c.seed = seed;
  c.created = 1234;
  return c;
}

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

std::string Dump(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return b.GetString();
}

// An SSE event of the Responses API: its "event:" name and JSON data.
struct Event {
  std::string name;
  rapidjson::Document data;
  int64_t offset_us = 0;
};

std::vector<Event> ResponsesEvents(const Response& r) {
  std::vector<Event> out;
  for (const Chunk& c : r.chunks) {
    Event e;
    EXPECT_EQ(c.data.rfind("event: ", 0), 0u) << c.data;
    const size_t nl = c.data.find('\n');
    e.name = c.data.substr(7, nl - 7);
    EXPECT_EQ(c.data.compare(nl + 1, 6, "data: "), 0) << c.data;
    EXPECT_EQ(c.data.substr(c.data.size() - 2), "\n\n");
    const std::string json = c.data.substr(nl + 7, c.data.size() - nl - 9);
    e.data.Parse(json.c_str());
    EXPECT_FALSE(e.data.HasParseError()) << json;
    e.offset_us = c.offset_us;
    out.push_back(std::move(e));
  }
  return out;
}

// The JSON payloads of a chat/completions stream, without [DONE].
std::vector<rapidjson::Document> ChatEvents(const Response& r) {
  std::vector<rapidjson::Document> out;
  for (const Chunk& c : r.chunks) {
    EXPECT_EQ(c.data.rfind("data: ", 0), 0u) << c.data;
    const std::string payload = c.data.substr(6, c.data.size() - 8);
    if (payload == "[DONE]") continue;
    out.push_back(Json(payload));
  }
  return out;
}

const char kWeatherTool[] =
    R"({"type":"function","function":{"name":"get_weather","description":"Weather now",
        "parameters":{"type":"object","additionalProperties":false,
          "required":["city","unit","days","where"],
          "properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]},
            "days":{"type":"integer","minimum":1,"maximum":7},
            "where":{"type":"object","required":["lat","lon"],
              "properties":{"lat":{"type":"number","minimum":-90,"maximum":90},
                            "lon":{"type":"number","minimum":-180,"maximum":180}}},
            "hours":{"type":"array","items":{"type":"integer","minimum":0,"maximum":23},
                     "minItems":1,"maxItems":3}}}}})";
const char kTimeTool[] =
    R"({"type":"function","function":{"name":"get_time","parameters":{"type":"object",
        "properties":{"zone":{"type":"string"}},"required":["zone"]}}})";

std::string ChatWithTools(const std::string& extra,
                          const std::string& tools = "") {
  return R"({"model":"m","messages":[{"role":"user","content":"what is the weather"}],"tools":[)" +
         (tools.empty() ? std::string(kWeatherTool) + "," + kTimeTool : tools) +
         "]" + extra + "}";
}

// Checks get_weather's arguments against its schema.
void ExpectWeatherArguments(const std::string& arguments) {
  rapidjson::Document a = Json(arguments);
  ASSERT_TRUE(a.IsObject()) << arguments;
  ASSERT_TRUE(a.HasMember("city") && a["city"].IsString()) << arguments;
  ASSERT_TRUE(a.HasMember("unit") && a["unit"].IsString()) << arguments;
  EXPECT_TRUE(std::string(a["unit"].GetString()) == "c" ||
              std::string(a["unit"].GetString()) == "f");
  ASSERT_TRUE(a["days"].IsInt());
  EXPECT_GE(a["days"].GetInt(), 1);
  EXPECT_LE(a["days"].GetInt(), 7);
  ASSERT_TRUE(a["where"].IsObject());
  ASSERT_TRUE(a["where"]["lat"].IsNumber() && a["where"]["lon"].IsNumber());
  EXPECT_LE(std::fabs(a["where"]["lat"].GetDouble()), 90);
  if (a.HasMember("hours")) {
    ASSERT_TRUE(a["hours"].IsArray());
    EXPECT_GE(a["hours"].Size(), 1u);
    EXPECT_LE(a["hours"].Size(), 3u);
    for (const auto& h : a["hours"].GetArray())
      EXPECT_TRUE(h.IsInt() && h.GetInt() <= 23);
  }
  for (const auto& m : a.GetObject()) {
    const std::string name = m.name.GetString();
    EXPECT_TRUE(name == "city" || name == "unit" || name == "days" ||
                name == "where" || name == "hours")
        << "additionalProperties is false: " << name;
  }
}

// ---------------------------------------------------------------- Responses

TEST(ResponsesApi, NonStreamedResponseObject) {
  Synthesizer s(Options());
  SynthPlan p = s.Plan(
      Post("/v1/responses",
           R"({"model":"m","input":"one two three","instructions":"be brief",
                                "previous_response_id":"resp_prev","metadata":{"k":"v"},
                                "temperature":0.5})"),
      Seed(7));
  ASSERT_EQ(p.response.status, 200);
  ASSERT_EQ(p.response.chunks.size(), 1u);
  // TTFT 100 ms, then two more tokens 10 ms apart.
  EXPECT_EQ(p.response.chunks[0].offset_us, 120000);
  rapidjson::Document d = Json(p.response.chunks[0].data);
  EXPECT_EQ(std::string(d["id"].GetString()).rfind("resp_", 0), 0u);
  EXPECT_STREQ(d["object"].GetString(), "response");
  EXPECT_EQ(d["created_at"].GetInt(), 1234);
  EXPECT_STREQ(d["status"].GetString(), "completed");
  EXPECT_STREQ(d["model"].GetString(), "m");
  EXPECT_STREQ(d["instructions"].GetString(), "be brief");
  EXPECT_STREQ(d["previous_response_id"].GetString(), "resp_prev");
  EXPECT_STREQ(d["metadata"]["k"].GetString(), "v");
  EXPECT_EQ(d["temperature"].GetDouble(), 0.5);
  ASSERT_EQ(d["output"].Size(), 1u);
  const auto& item = d["output"][0];
  EXPECT_STREQ(item["type"].GetString(), "message");
  EXPECT_STREQ(item["role"].GetString(), "assistant");
  EXPECT_STREQ(item["status"].GetString(), "completed");
  EXPECT_EQ(std::string(item["id"].GetString()).rfind("msg_", 0), 0u);
  EXPECT_STREQ(item["content"][0]["type"].GetString(), "output_text");
  EXPECT_STREQ(item["content"][0]["text"].GetString(), "one two three");
  EXPECT_TRUE(item["content"][0]["annotations"].IsArray());
  // Usage counts the instructions and the input.
  EXPECT_EQ(d["usage"]["input_tokens"].GetInt(), 5);
  EXPECT_EQ(d["usage"]["output_tokens"].GetInt(), 3);
  EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 8);
  EXPECT_EQ(d["usage"]["input_tokens_details"]["cached_tokens"].GetInt(), 0);
  EXPECT_EQ(d["usage"]["output_tokens_details"]["reasoning_tokens"].GetInt(),
            0);
}

TEST(ResponsesApi, StreamedEventSequence) {
  Synthesizer s(Options());
  SynthContext ctx = Seed(3);
  ctx.admitted_us = 2000;
  SynthPlan p = s.Plan(
      Post("/v1/responses", R"({"input":"alpha beta gamma","stream":true})"),
      ctx);
  ASSERT_EQ(p.response.status, 200);
  ASSERT_TRUE(p.response.chunked);
  EXPECT_EQ(FindHeader(p.response.headers, "Content-Type"),
            "text/event-stream");
  std::vector<Event> events = ResponsesEvents(p.response);
  std::vector<std::string> names;
  for (const Event& e : events) names.push_back(e.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "response.created", "response.in_progress",
                "response.output_item.added", "response.content_part.added",
                "response.output_text.delta", "response.output_text.delta",
                "response.output_text.delta", "response.output_text.done",
                "response.content_part.done", "response.output_item.done",
                "response.completed"}));
  std::string deltas, item_id;
  for (size_t i = 0; i < events.size(); ++i) {
    const rapidjson::Document& d = events[i].data;
    EXPECT_EQ(events[i].name, d["type"].GetString());
    EXPECT_EQ(d["sequence_number"].GetInt(), static_cast<int>(i));
    if (d.HasMember("item_id")) {
      if (item_id.empty()) item_id = d["item_id"].GetString();
      EXPECT_EQ(item_id, d["item_id"].GetString());
      EXPECT_EQ(d["output_index"].GetInt(), 0);
      EXPECT_EQ(d["content_index"].GetInt(), 0);
    }
    if (events[i].name == "response.output_text.delta")
      deltas += d["delta"].GetString();
  }
  EXPECT_EQ(deltas, "alpha beta gamma");
  EXPECT_STREQ(events[0].data["response"]["status"].GetString(), "in_progress");
  EXPECT_TRUE(events[0].data["response"]["output"].Empty());
  EXPECT_TRUE(events[0].data["response"]["usage"].IsNull());
  EXPECT_STREQ(events[2].data["item"]["status"].GetString(), "in_progress");
  EXPECT_EQ(item_id, events[2].data["item"]["id"].GetString());
  EXPECT_STREQ(events[3].data["part"]["text"].GetString(), "");
  EXPECT_STREQ(events[7].data["text"].GetString(), "alpha beta gamma");
  EXPECT_STREQ(events[8].data["part"]["text"].GetString(), "alpha beta gamma");
  EXPECT_STREQ(events[9].data["item"]["content"][0]["text"].GetString(),
               "alpha beta gamma");
  const auto& final = events[10].data["response"];
  EXPECT_STREQ(final["status"].GetString(), "completed");
  EXPECT_EQ(final["id"], events[0].data["response"]["id"]);
  EXPECT_EQ(final["usage"]["output_tokens"].GetInt(), 3);
  EXPECT_STREQ(final["output"][0]["content"][0]["text"].GetString(),
               "alpha beta gamma");
  // Created at once; the first token at 2 ms queue + 100 ms TTFT; 10 ms apart.
  EXPECT_EQ(p.response.headers_us, 2000);
  EXPECT_EQ(events[0].offset_us, 2000);
  EXPECT_EQ(events[4].offset_us, 102000);
  EXPECT_EQ(events[6].offset_us, 122000);
  EXPECT_EQ(events[10].offset_us, 122000);
}

TEST(ResponsesApi, InputMessagesAndMaxOutputTokens) {
  Synthesizer s(Options());
  SynthPlan p =
      s.Plan(Post("/v1/responses",
                  R"({"input":[{"role":"developer","content":"sys words"},
                        {"type":"message","role":"user","content":[{"type":"input_text","text":"a b c d e"}]},
                        {"role":"assistant","content":[{"type":"output_text","text":"ok"}]}],
               "max_output_tokens":2})"),
             Seed(1));
  rapidjson::Document d = Json(p.response.Body());
  EXPECT_STREQ(d["status"].GetString(), "incomplete");
  EXPECT_STREQ(d["incomplete_details"]["reason"].GetString(),
               "max_output_tokens");
  EXPECT_STREQ(d["output"][0]["content"][0]["text"].GetString(),
               "a b");  // echo of the user
  EXPECT_EQ(d["usage"]["input_tokens"].GetInt(), 8);
  EXPECT_EQ(d["max_output_tokens"].GetInt(), 2);
  SynthPlan streamed = s.Plan(
      Post("/v1/responses",
           R"({"input":"a b c d e","max_output_tokens":2,"stream":true})"),
      Seed(1));
  std::vector<Event> events = ResponsesEvents(streamed.response);
  EXPECT_EQ(events.back().name, "response.incomplete");
  EXPECT_STREQ(events.back().data["response"]["status"].GetString(),
               "incomplete");
}

TEST(ResponsesApi, FunctionCallsStreamTheirArguments) {
  SynthOptions o = Options();
  Synthesizer s(o);
  const std::string body =
      R"({"input":"weather please","tool_choice":"required","stream":true,"tools":[
          {"type":"web_search"},
          {"type":"function","name":"get_weather","parameters":)" +
      std::string(Json(kWeatherTool)["function"]["parameters"].IsObject()
                      ? Dump(Json(kWeatherTool)["function"]["parameters"])
                      : "") +
      "}]}";
  for (uint64_t seed = 0; seed < 20; ++seed) {
    SynthPlan p = s.Plan(Post("/v1/responses", body), Seed(seed));
    ASSERT_EQ(p.response.status, 200) << p.response.Body();
    std::vector<Event> events = ResponsesEvents(p.response);
    ASSERT_GE(events.size(), 6u);
    EXPECT_EQ(events[2].name, "response.output_item.added");
    const auto& added = events[2].data["item"];
    EXPECT_STREQ(added["type"].GetString(), "function_call");
    EXPECT_STREQ(added["name"].GetString(), "get_weather");
    EXPECT_STREQ(added["arguments"].GetString(), "");
    const std::string item_id = added["id"].GetString();
    EXPECT_EQ(item_id.rfind("fc_", 0), 0u);
    EXPECT_EQ(std::string(added["call_id"].GetString()).rfind("call_", 0), 0u);
    std::string arguments;
    size_t i = 3;
    for (; events[i].name == "response.function_call_arguments.delta"; ++i) {
      EXPECT_EQ(item_id, events[i].data["item_id"].GetString());
      arguments += events[i].data["delta"].GetString();
    }
    EXPECT_GT(i, 4u) << "the arguments arrive in several pieces";
    EXPECT_EQ(events[i].name, "response.function_call_arguments.done");
    EXPECT_EQ(arguments, events[i].data["arguments"].GetString());
    EXPECT_EQ(events[i + 1].name, "response.output_item.done");
    EXPECT_EQ(arguments, events[i + 1].data["item"]["arguments"].GetString());
    EXPECT_STREQ(events[i + 1].data["item"]["status"].GetString(), "completed");
    EXPECT_EQ(events[i + 2].name, "response.completed");
    const auto& output = events[i + 2].data["response"]["output"];
    ASSERT_EQ(output.Size(), 1u);
    EXPECT_EQ(arguments, output[0]["arguments"].GetString());
    ExpectWeatherArguments(arguments);
  }
}

TEST(ResponsesApi, AFunctionCallOutputGetsAText) {
  SynthOptions o = Options("static:It is sunny.");
  o.tool_rate = 1;
  Synthesizer s(o);
  const std::string tools =
      R"("tools":[{"type":"function","name":"get_time","parameters":{"type":"object"}}])";
  SynthPlan first = s.Plan(
      Post("/v1/responses", "{\"input\":\"time?\"," + tools + "}"), Seed(1));
  rapidjson::Document d = Json(first.response.Body());
  ASSERT_STREQ(d["output"][0]["type"].GetString(), "function_call");
  const std::string call_id = d["output"][0]["call_id"].GetString();
  SynthPlan second = s.Plan(
      Post(
          "/v1/responses",
          R"({"previous_response_id":"resp_x","input":[{"role":"user","content":"time?"},
               {"type":"function_call","call_id":")" +
              call_id +
              R"(","name":"get_time","arguments":"{}"},
               {"type":"function_call_output","call_id":")" +
              call_id + R"(","output":"12:00"}],)" + tools + "}"),
      Seed(1));
  rapidjson::Document e = Json(second.response.Body());
  EXPECT_STREQ(e["output"][0]["type"].GetString(), "message");
  EXPECT_STREQ(e["output"][0]["content"][0]["text"].GetString(),
               "It is sunny.");
}

TEST(ResponsesApi, TextFormatJsonSchema) {
  Synthesizer s(Options());
  for (uint64_t seed = 0; seed < 30; ++seed) {
    SynthPlan p = s.Plan(
        Post(
            "/v1/responses",
            R"({"input":"x","text":{"format":{"type":"json_schema","name":"p","strict":true,
                 "schema":{"type":"object","properties":{"n":{"type":"integer","minimum":3,
                 "maximum":4}},"required":["n"],"additionalProperties":false}}}})"),
        Seed(seed));
    rapidjson::Document d = Json(p.response.Body());
    EXPECT_STREQ(d["text"]["format"]["type"].GetString(), "json_schema");
    rapidjson::Document out =
        Json(d["output"][0]["content"][0]["text"].GetString());
    ASSERT_TRUE(out.IsObject());
    EXPECT_EQ(out.MemberCount(), 1u);
    EXPECT_TRUE(out["n"].GetInt() == 3 || out["n"].GetInt() == 4);
  }
}

TEST(ResponsesApi, BadRequestsAndFaults) {
  Synthesizer s(Options());
  for (const char* body :
       {"{", R"({"model":"m"})", R"({"input":3})", R"({"input":[3]})",
        R"({"input":"x","max_output_tokens":0})",
        R"({"input":"x","tool_choice":"sometimes"})",
        R"({"input":"x","tools":[{"type":"function"}]})",
        R"({"input":"x","text":{"format":{"type":"xml"}}})"}) {
    SynthPlan p = s.Plan(Post("/v1/responses", body), {});
    EXPECT_EQ(p.response.status, 400) << body;
    EXPECT_NE(p.response.Body().find("\"invalid_request_error\""),
              std::string::npos);
  }
  SynthContext ctx;
  ctx.forced_fault = FaultType::k429;
  EXPECT_EQ(
      s.Plan(Post("/v1/responses", R"({"input":"x"})"), ctx).response.status,
      429);
  ctx.forced_fault = FaultType::kDrop;
  SynthPlan dropped = s.Plan(
      Post("/v1/responses", R"({"input":"a b c d","stream":true})"), ctx);
  EXPECT_TRUE(dropped.abort);
  EXPECT_EQ(dropped.response.Body().find("response.completed"),
            std::string::npos);
}

// ---------------------------------------------------------------- Tool calls

TEST(ToolCalls, RequiredAndNamedAlwaysCallNoneNever) {
  SynthOptions o = Options();
  o.tool_rate = 0;  // "auto" would never call
  Synthesizer s(o);
  std::set<std::string> names;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    rapidjson::Document d =
        Json(s.Plan(Post("/v1/chat/completions",
                         ChatWithTools(R"(,"tool_choice":"required")")),
                    Seed(seed))
                 .response.Body());
    const auto& choice = d["choices"][0];
    EXPECT_STREQ(choice["finish_reason"].GetString(), "tool_calls");
    EXPECT_TRUE(choice["message"]["content"].IsNull());
    ASSERT_EQ(choice["message"]["tool_calls"].Size(), 1u);
    const auto& call = choice["message"]["tool_calls"][0];
    EXPECT_STREQ(call["type"].GetString(), "function");
    EXPECT_EQ(std::string(call["id"].GetString()).rfind("call_", 0), 0u);
    const std::string name = call["function"]["name"].GetString();
    names.insert(name);
    if (name == "get_weather")
      ExpectWeatherArguments(call["function"]["arguments"].GetString());
    d = Json(
        s.Plan(
             Post(
                 "/v1/chat/completions",
                 ChatWithTools(
                     R"(,"tool_choice":{"type":"function","function":{"name":"get_time"}})")),
             Seed(seed))
            .response.Body());
    EXPECT_STREQ(d["choices"][0]["message"]["tool_calls"][0]["function"]["name"]
                     .GetString(),
                 "get_time");
    o.tool_rate = 1;
    d = Json(Synthesizer(o)
                 .Plan(Post("/v1/chat/completions",
                            ChatWithTools(R"(,"tool_choice":"none")")),
                       Seed(seed))
                 .response.Body());
    o.tool_rate = 0;
    EXPECT_FALSE(d["choices"][0]["message"].HasMember("tool_calls"));
    EXPECT_STREQ(d["choices"][0]["finish_reason"].GetString(), "stop");
  }
  EXPECT_EQ(names, (std::set<std::string>{"get_time", "get_weather"}))
      << "a seeded choice of tool";
}

TEST(ToolCalls, AutoCallsAtTheToolRate) {
  SynthOptions o = Options();
  o.tool_rate = 0.3;
  Synthesizer s(o);
  int calls = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    rapidjson::Document d =
        Json(s.Plan(Post("/v1/chat/completions", ChatWithTools("")), Seed(seed))
                 .response.Body());
    calls += d["choices"][0]["message"].HasMember("tool_calls");
  }
  // Binomial(400, 0.3): mean 120, sd 9.2; ±4.5 sd.
  EXPECT_GT(calls, 79);
  EXPECT_LT(calls, 161);
}

TEST(ToolCalls, AToolResultGetsATextAnswer) {
  SynthOptions o = Options("static:Sunny, 21 degrees.");
  o.tool_rate = 1;
  Synthesizer s(o);
  const std::string body =
      R"({"messages":[{"role":"user","content":"weather?"},
          {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
           "function":{"name":"get_time","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"call_1","content":"{\"t\":1}"}],
         "tools":[)" +
      std::string(kTimeTool) + "]}";
  for (uint64_t seed = 0; seed < 20; ++seed) {
    rapidjson::Document d = Json(
        s.Plan(Post("/v1/chat/completions", body), Seed(seed)).response.Body());
    EXPECT_STREQ(d["choices"][0]["message"]["content"].GetString(),
                 "Sunny, 21 degrees.");
    EXPECT_STREQ(d["choices"][0]["finish_reason"].GetString(), "stop");
  }
}

TEST(ToolCalls, StreamedAsToolCallDeltas) {
  SynthOptions o = Options();
  Synthesizer s(o);
  SynthPlan p = s.Plan(
      Post("/v1/chat/completions",
           ChatWithTools(R"(,"stream":true,"tool_choice":{"type":"function",
                                "function":{"name":"get_weather"}})")),
      Seed(5));
  std::vector<rapidjson::Document> events = ChatEvents(p.response);
  ASSERT_GE(events.size(), 5u);
  EXPECT_STREQ(events[0]["choices"][0]["delta"]["role"].GetString(),
               "assistant");
  const auto& head = events[1]["choices"][0]["delta"]["tool_calls"][0];
  EXPECT_EQ(head["index"].GetInt(), 0);
  EXPECT_EQ(std::string(head["id"].GetString()).rfind("call_", 0), 0u);
  EXPECT_STREQ(head["type"].GetString(), "function");
  EXPECT_STREQ(head["function"]["name"].GetString(), "get_weather");
  EXPECT_STREQ(head["function"]["arguments"].GetString(), "");
  std::string arguments;
  size_t i = 2;
  for (; i + 1 < events.size(); ++i) {
    const auto& delta = events[i]["choices"][0]["delta"]["tool_calls"][0];
    EXPECT_FALSE(delta.HasMember("id"));
    EXPECT_FALSE(delta["function"].HasMember("name"));
    EXPECT_EQ(delta["index"].GetInt(), 0);
    arguments += delta["function"]["arguments"].GetString();
  }
  EXPECT_GT(i, 3u);
  EXPECT_STREQ(events.back()["choices"][0]["finish_reason"].GetString(),
               "tool_calls");
  ExpectWeatherArguments(arguments);
  // One token per event, TTFT then ITL.
  EXPECT_EQ(p.response.chunks[1].offset_us, 100000);
  EXPECT_EQ(p.response.chunks[2].offset_us, 110000);
  EXPECT_EQ(p.completion_tokens, static_cast<int>(events.size()) - 2);
}

TEST(ToolCalls, RulesReturnAGivenCall) {
  testing::TempDir dir;
  const std::string path = dir.File("rules.json");
  std::ofstream(path) << R"({"rules":[
      {"pattern":"weather","tool_call":{"name":"get_weather","arguments":{"city":"Paris","days":2}}},
      {"pattern":"both","tool_calls":[{"name":"get_time","arguments":"{\"zone\":\"UTC\"}"},
                                      {"name":"get_weather"}]},
      {"pattern":"weather|both","reply":"No tools here."}],"default":"?"})";
  Result<OutputMode> rules = OutputMode::Parse("rules:" + path, nullptr);
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  SynthOptions o = Options();
  o.output = rules.value();
  o.tool_rate = 0;  // rules decide, not the rate
  Synthesizer s(o);
  rapidjson::Document d =
      Json(s.Plan(Post("/v1/chat/completions", ChatWithTools("")), Seed(1))
               .response.Body());
  const auto& call = d["choices"][0]["message"]["tool_calls"][0]["function"];
  EXPECT_STREQ(call["name"].GetString(), "get_weather");
  EXPECT_STREQ(call["arguments"].GetString(),
               R"({"city": "Paris", "days": 2})");
  // Parallel calls from one rule.
  std::string both = ChatWithTools("");
  both.replace(both.find("what is the weather"), 19, "both please");
  d = Json(s.Plan(Post("/v1/chat/completions", both), Seed(1)).response.Body());
  ASSERT_EQ(d["choices"][0]["message"]["tool_calls"].Size(), 2u);
  EXPECT_STREQ(
      d["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
          .GetString(),
      R"({"zone": "UTC"})");
  EXPECT_STREQ(
      d["choices"][0]["message"]["tool_calls"][1]["function"]["arguments"]
          .GetString(),
      "{}");
  // Without the tool on offer, the next rule's reply.
  d = Json(s.Plan(Post("/v1/chat/completions", ChatWithTools("", kTimeTool)),
                  Seed(1))
               .response.Body());
  EXPECT_STREQ(d["choices"][0]["message"]["content"].GetString(),
               "No tools here.");
  // And none at all without tools.
  d = Json(s.Plan(Post("/v1/chat/completions",
                       R"({"messages":[{"role":"user","content":"weather"}]})"),
                  Seed(1))
               .response.Body());
  EXPECT_STREQ(d["choices"][0]["message"]["content"].GetString(),
               "No tools here.");
  std::ofstream(path)
      << R"({"rules":[{"pattern":"x","tool_call":{"arguments":{}}}]})";
  EXPECT_FALSE(OutputMode::Parse("rules:" + path, nullptr).ok());
  std::ofstream(path) << R"({"rules":[{"pattern":"x"}]})";
  EXPECT_FALSE(OutputMode::Parse("rules:" + path, nullptr).ok());
}

TEST(ToolCalls, BadToolsAndChoicesAre400) {
  Synthesizer s(Options());
  for (
      const std::string& body :
      {ChatWithTools(
           R"(,"tool_choice":{"type":"function","function":{"name":"nope"}})"),
       std::string(
           R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required"})"),
       std::string(
           R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})"),
       std::string(
           R"({"messages":[{"role":"user","content":"x"}],"tools":{}})"),
       ChatWithTools(
           "",
           R"({"type":"function","function":{"name":"f","parameters":{"$ref":"http://x"}}})")}) {
    SynthPlan p = s.Plan(Post("/v1/chat/completions", body), {});
    EXPECT_EQ(p.response.status, 400) << body;
  }
}

// ---------------------------------------------------------- Structured output

TEST(StructuredOutput, JsonObject) {
  Synthesizer echo(Options());
  rapidjson::Document d = Json(
      echo.Plan(Post("/v1/chat/completions",
                     R"({"messages":[{"role":"user","content":"say \"hi\""}],
                         "response_format":{"type":"json_object"},"max_tokens":1})"),
                {})
          .response.Body());
  rapidjson::Document content =
      Json(d["choices"][0]["message"]["content"].GetString());
  EXPECT_STREQ(content["answer"].GetString(), "say \"hi\"");
  Synthesizer fixed(Options(R"(static:{"a":[1,2],"b":"c"})"));
  d = Json(fixed
               .Plan(Post("/v1/chat/completions",
                          R"({"messages":[{"role":"user","content":"x"}],
                               "response_format":{"type":"json_object"}})"),
                     {})
               .response.Body());
  EXPECT_STREQ(d["choices"][0]["message"]["content"].GetString(),
               R"({"a": [1, 2], "b": "c"})");
}

TEST(StructuredOutput, JsonSchemaStreamedAndNot) {
  Synthesizer s(Options("random"));
  const std::string format =
      R"("response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,
         "schema":{"type":"object","additionalProperties":false,"required":["name","age","tags"],
           "properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":9},
             "tags":{"type":"array","items":{"enum":["x","y"]},"minItems":1,"maxItems":2}}}}})";
  for (uint64_t seed = 0; seed < 30; ++seed) {
    for (bool stream : {false, true}) {
      const std::string body =
          R"({"messages":[{"role":"user","content":"who"}],"max_tokens":2,)" +
          format + (stream ? R"(,"stream":true})" : "}");
      SynthPlan p = s.Plan(Post("/v1/chat/completions", body), Seed(seed));
      std::string text;
      if (stream) {
        for (const auto& e : ChatEvents(p.response)) {
          const auto& delta = e["choices"][0]["delta"];
          if (delta.HasMember("content")) text += delta["content"].GetString();
        }
      } else {
        text = Json(p.response.Body())["choices"][0]["message"]["content"]
                   .GetString();
      }
      rapidjson::Document v = Json(text);
      ASSERT_TRUE(v.IsObject()) << text;
      EXPECT_EQ(v.MemberCount(), 3u) << text;
      EXPECT_TRUE(v["name"].IsString());
      EXPECT_TRUE(v["age"].IsInt() && v["age"].GetInt() >= 0 &&
                  v["age"].GetInt() <= 9);
      EXPECT_TRUE(v["tags"].IsArray() && v["tags"].Size() >= 1 &&
                  v["tags"].Size() <= 2);
    }
  }
  SynthPlan bad = s.Plan(Post("/v1/chat/completions",
                              R"({"messages":[{"role":"user","content":"x"}],
                                  "response_format":{"type":"json_schema","json_schema":{"schema":{"$ref":"#/nope"}}}})"),
                         {});
  EXPECT_EQ(bad.response.status, 400);
}

// ------------------------------------------------------------------ Logprobs

TEST(Logprobs, ChatNonStreamedAndStreamed) {
  Synthesizer s(Options());
  rapidjson::Document d = Json(
      s.Plan(
           Post(
               "/v1/chat/completions",
               R"({"messages":[{"role":"user","content":"the quick fox"}],"logprobs":true,
                      "top_logprobs":3})"),
           Seed(2))
          .response.Body());
  const auto& content = d["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.Size(), 3u);
  std::string joined;
  for (const auto& t : content.GetArray()) {
    joined += t["token"].GetString();
    EXPECT_LE(t["logprob"].GetDouble(), 0);
    ASSERT_EQ(t["top_logprobs"].Size(), 3u);
    EXPECT_EQ(t["top_logprobs"][0]["token"], t["token"]);
    EXPECT_GE(t["top_logprobs"][0]["logprob"].GetDouble(),
              t["top_logprobs"][1]["logprob"].GetDouble());
    EXPECT_GE(t["top_logprobs"][1]["logprob"].GetDouble(),
              t["top_logprobs"][2]["logprob"].GetDouble());
    const std::string token = t["token"].GetString();
    ASSERT_EQ(t["bytes"].Size(), token.size());
    for (size_t i = 0; i < token.size(); ++i) {
      EXPECT_EQ(t["bytes"][static_cast<rapidjson::SizeType>(i)].GetInt(),
                static_cast<unsigned char>(token[i]));
    }
  }
  EXPECT_EQ(joined, "the quick fox");
  std::vector<rapidjson::Document> events = ChatEvents(
      s.Plan(
           Post(
               "/v1/chat/completions",
               R"({"messages":[{"role":"user","content":"a b"}],"logprobs":true,"stream":true})"),
           Seed(2))
          .response);
  ASSERT_EQ(events.size(), 4u);  // role, 2 tokens, finish
  for (size_t i = 1; i <= 2; ++i) {
    const auto& lp = events[i]["choices"][0]["logprobs"]["content"];
    ASSERT_EQ(lp.Size(), 1u);
    EXPECT_EQ(lp[0]["token"], events[i]["choices"][0]["delta"]["content"]);
    EXPECT_EQ(lp[0]["top_logprobs"].Size(), 0u);
  }
  // Not asked: null.
  d = Json(s.Plan(Post("/v1/chat/completions",
                       R"({"messages":[{"role":"user","content":"a"}]})"),
                  {})
               .response.Body());
  EXPECT_TRUE(d["choices"][0]["logprobs"].IsNull());
  for (
      const char* body :
      {R"({"messages":[{"role":"user","content":"a"}],"top_logprobs":2})",
       R"({"messages":[{"role":"user","content":"a"}],"logprobs":true,"top_logprobs":21})",
       R"({"messages":[{"role":"user","content":"a"}],"logprobs":3})"}) {
    EXPECT_EQ(s.Plan(Post("/v1/chat/completions", body), {}).response.status,
              400)
        << body;
  }
}

TEST(Logprobs, Completions) {
  Synthesizer s(Options());
  rapidjson::Document d =
      Json(s.Plan(Post("/v1/completions",
                       R"({"prompt":"one two three","logprobs":2})"),
                  Seed(4))
               .response.Body());
  const auto& lp = d["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].Size(), 3u);
  EXPECT_STREQ(lp["tokens"][1].GetString(), " two");
  EXPECT_EQ(lp["token_logprobs"].Size(), 3u);
  EXPECT_EQ(lp["text_offset"][0].GetInt(), 0);
  EXPECT_EQ(lp["text_offset"][1].GetInt(), 3);
  EXPECT_EQ(lp["text_offset"][2].GetInt(), 7);
  ASSERT_EQ(lp["top_logprobs"].Size(), 3u);
  EXPECT_EQ(lp["top_logprobs"][1].MemberCount(), 2u);
  EXPECT_EQ(lp["top_logprobs"][1][" two"], lp["token_logprobs"][1]);
  std::vector<rapidjson::Document> events = ChatEvents(
      s.Plan(Post("/v1/completions",
                  R"({"prompt":"one two","logprobs":0,"stream":true})"),
             Seed(4))
          .response);
  ASSERT_EQ(events.size(), 3u);  // 2 tokens, finish
  EXPECT_STREQ(events[1]["choices"][0]["logprobs"]["tokens"][0].GetString(),
               " two");
  EXPECT_EQ(events[1]["choices"][0]["logprobs"]["text_offset"][0].GetInt(), 3);
  EXPECT_EQ(
      s.Plan(Post("/v1/completions", R"({"prompt":"x","logprobs":true})"), {})
          .response.status,
      400);
}

// The Responses API gives logprobs when "include" asks for
// message.output_text.logprobs (as the AI SDK's logprobs option and
// OpenAI's clients send it), with "top_logprobs" alternatives: on the
// output_text part, on each output_text.delta and on output_text.done.
TEST(Logprobs, ResponsesWhenIncluded) {
  Synthesizer s(Options());
  // Checks one part's logprobs: one entry per token of "text", "top"
  // alternatives each, the chosen token first.
  auto expect_logprobs = [](const rapidjson::Value& lp, const std::string& text,
                            size_t top) {
    ASSERT_TRUE(lp.IsArray()) << Dump(lp);
    std::string joined;
    for (const auto& t : lp.GetArray()) {
      joined += t["token"].GetString();
      EXPECT_LE(t["logprob"].GetDouble(), 0);
      EXPECT_EQ(t["bytes"].Size(), t["token"].GetStringLength());
      ASSERT_EQ(t["top_logprobs"].Size(), top) << Dump(t);
      if (top > 0) {
        EXPECT_EQ(t["top_logprobs"][0]["token"], t["token"]);
        EXPECT_EQ(t["top_logprobs"][0]["logprob"], t["logprob"]);
      }
      if (top > 1) {
        EXPECT_GE(t["top_logprobs"][0]["logprob"].GetDouble(),
                  t["top_logprobs"][1]["logprob"].GetDouble());
      }
    }
    EXPECT_EQ(joined, text);
  };
  const std::string asked =
      R"({"input":"one two three","top_logprobs":2,"include":["message.output_text.logprobs"])";
  rapidjson::Document d =
      Json(s.Plan(Post("/v1/responses", asked + "}"), Seed(5)).response.Body());
  EXPECT_EQ(d["top_logprobs"].GetInt(), 2);
  expect_logprobs(d["output"][0]["content"][0]["logprobs"], "one two three", 2);

  std::vector<Event> events = ResponsesEvents(
      s.Plan(Post("/v1/responses", asked + R"(,"stream":true})"), Seed(5))
          .response);
  ASSERT_EQ(events.size(), 11u);
  size_t deltas = 0;
  for (const Event& e : events) {
    if (e.name == "response.output_text.delta") {
      ++deltas;
      ASSERT_EQ(e.data["logprobs"].Size(), 1u) << Dump(e.data);
      expect_logprobs(e.data["logprobs"], e.data["delta"].GetString(), 2);
    }
  }
  EXPECT_EQ(deltas, 3u);
  EXPECT_TRUE(
      events[3].data["part"]["logprobs"].Empty());  // content_part.added
  expect_logprobs(events[7].data["logprobs"], "one two three",
                  2);  // output_text.done
  expect_logprobs(events[8].data["part"]["logprobs"], "one two three",
                  2);  // content_part.done
  expect_logprobs(events[9].data["item"]["content"][0]["logprobs"],
                  "one two three", 2);
  expect_logprobs(
      events[10].data["response"]["output"][0]["content"][0]["logprobs"],
      "one two three", 2);
  EXPECT_EQ(events[10].data["response"]["top_logprobs"].GetInt(), 2);

  // "include" alone: the tokens' own logprobs, no alternatives.
  d = Json(
      s.Plan(
           Post(
               "/v1/responses",
               R"({"input":"a b","include":["message.output_text.logprobs"]})"),
           Seed(5))
          .response.Body());
  expect_logprobs(d["output"][0]["content"][0]["logprobs"], "a b", 0);
  // Not asked: empty, and top_logprobs alone does not ask.
  for (const char* body :
       {R"({"input":"a b"})", R"({"input":"a b","top_logprobs":3})",
        R"({"input":"a b","include":["reasoning.encrypted_content"]})"}) {
    d = Json(s.Plan(Post("/v1/responses", body), Seed(5)).response.Body());
    EXPECT_TRUE(d["output"][0]["content"][0]["logprobs"].Empty()) << body;
  }
  for (const char* body :
       {R"({"input":"a","top_logprobs":21})",
        R"({"input":"a","top_logprobs":-1})",
        R"({"input":"a","top_logprobs":"2"})", R"({"input":"a","include":"x"})",
        R"({"input":"a","include":[3]})"}) {
    SynthPlan p = s.Plan(Post("/v1/responses", body), {});
    EXPECT_EQ(p.response.status, 400) << body;
  }
}

// ------------------------------------------------- n > 1 and continuous usage

TEST(Streams, SeveralChoicesCarryTheirIndexes) {
  Synthesizer s(Options("random"));
  std::vector<rapidjson::Document> events = ChatEvents(
      s.Plan(
           Post(
               "/v1/chat/completions",
               R"({"messages":[{"role":"user","content":"x"}],"n":3,"stream":true,"max_tokens":6})"),
           Seed(11))
          .response);
  std::map<int, int> roles, finishes, tokens;
  for (const auto& e : events) {
    const auto& c = e["choices"][0];
    const int i = c["index"].GetInt();
    if (c["delta"].HasMember("role")) roles[i]++;
    if (c["finish_reason"].IsString()) finishes[i]++;
    if (c["delta"].HasMember("content") && !c["delta"].HasMember("role"))
      tokens[i]++;
  }
  EXPECT_EQ(roles, (std::map<int, int>{{0, 1}, {1, 1}, {2, 1}}));
  EXPECT_EQ(finishes, (std::map<int, int>{{0, 1}, {1, 1}, {2, 1}}));
  EXPECT_EQ(tokens.size(), 3u);
}

TEST(Streams, ContinuousUsageStatsAsVllm) {
  Synthesizer s(Options());
  const std::string body =
      R"({"messages":[{"role":"user","content":"a b c"}],"n":2,"stream":true,
          "stream_options":{"include_usage":true,"continuous_usage_stats":true}})";
  std::vector<rapidjson::Document> events =
      ChatEvents(s.Plan(Post("/v1/chat/completions", body), {}).response);
  std::map<int, int> last;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const auto& e = events[i];
    ASSERT_TRUE(e.HasMember("usage")) << Dump(e);
    const int index = e["choices"][0]["index"].GetInt();
    const int done = e["usage"]["completion_tokens"].GetInt();
    EXPECT_EQ(e["usage"]["prompt_tokens"].GetInt(), 3);
    EXPECT_EQ(e["usage"]["total_tokens"].GetInt(), 3 + done);
    EXPECT_GE(done, last[index]);
    last[index] = done;
  }
  EXPECT_EQ(last, (std::map<int, int>{{0, 3}, {1, 3}}));
  EXPECT_EQ(events.back()["usage"]["completion_tokens"].GetInt(), 6);
  EXPECT_TRUE(events.back()["choices"].Empty());
  // Only with include_usage, as vLLM.
  std::string no_usage = body;
  no_usage.replace(no_usage.find("\"include_usage\":true"), 20,
                   "\"include_usage\":false");
  for (const auto& e : ChatEvents(
           s.Plan(Post("/v1/chat/completions", no_usage), {}).response)) {
    EXPECT_FALSE(e.HasMember("usage"));
  }
  // Text completions too.
  for (
      const auto& e : ChatEvents(
          s.Plan(
               Post(
                   "/v1/completions",
                   R"({"prompt":"a b","stream":true,"stream_options":{"include_usage":true,
                           "continuous_usage_stats":true}})"),
               {})
              .response)) {
    EXPECT_TRUE(e.HasMember("usage"));
  }
}

// ---------------------------------------------------------------- Embeddings

std::vector<float> Floats(const rapidjson::Value& embedding) {
  std::vector<float> v;
  for (const auto& x : embedding.GetArray())
    v.push_back(static_cast<float>(x.GetDouble()));
  return v;
}

std::vector<float> FromBase64(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : 63;
  };
  std::string bytes;
  for (size_t i = 0; i + 3 < text.size(); i += 4) {
    const uint32_t n = value(text[i]) << 18 | value(text[i + 1]) << 12 |
                       (text[i + 2] == '=' ? 0 : value(text[i + 2]) << 6) |
                       (text[i + 3] == '=' ? 0 : value(text[i + 3]));
    bytes += static_cast<char>(n >> 16);
    if (text[i + 2] != '=') bytes += static_cast<char>(n >> 8);
    if (text[i + 3] != '=') bytes += static_cast<char>(n);
  }
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);  // little-endian host
  return v;
}

double Norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

TEST(Embeddings, SameInputSameUnitVector) {
  SynthOptions o = Options();
  o.embedding_dimensions = 64;
  o.seed = 5;
  Synthesizer s(o);
  SynthPlan p = s.Plan(
      Post("/v1/embeddings",
           R"({"model":"emb","input":["hello world","other","hello world"]})"),
      Seed(1));
  ASSERT_EQ(p.response.status, 200) << p.response.Body();
  EXPECT_EQ(p.response.chunks[0].offset_us, 100000);  // TTFT, no decoding
  rapidjson::Document d = Json(p.response.Body());
  EXPECT_STREQ(d["object"].GetString(), "list");
  EXPECT_STREQ(d["model"].GetString(), "emb");
  ASSERT_EQ(d["data"].Size(), 3u);
  for (rapidjson::SizeType i = 0; i < 3; ++i) {
    EXPECT_STREQ(d["data"][i]["object"].GetString(), "embedding");
    EXPECT_EQ(d["data"][i]["index"].GetUint(), i);
    EXPECT_EQ(d["data"][i]["embedding"].Size(), 64u);
    EXPECT_NEAR(Norm(Floats(d["data"][i]["embedding"])), 1.0, 1e-5);
  }
  EXPECT_EQ(Floats(d["data"][0]["embedding"]),
            Floats(d["data"][2]["embedding"]));
  EXPECT_NE(Floats(d["data"][0]["embedding"]),
            Floats(d["data"][1]["embedding"]));
  EXPECT_EQ(d["usage"]["prompt_tokens"].GetInt(), 5);
  EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 5);
  // Another request (another per-request seed), one string: the same vector.
  rapidjson::Document again = Json(
      s.Plan(Post("/v1/embeddings", R"({"model":"emb","input":"hello world"})"),
             Seed(99))
          .response.Body());
  EXPECT_EQ(Floats(again["data"][0]["embedding"]),
            Floats(d["data"][0]["embedding"]));
  // Fewer dimensions: the same direction cut and renormalized.
  rapidjson::Document small = Json(
      s.Plan(Post("/v1/embeddings",
                  R"({"model":"emb","input":"hello world","dimensions":8})"),
             {})
          .response.Body());
  std::vector<float> cut = Floats(small["data"][0]["embedding"]);
  ASSERT_EQ(cut.size(), 8u);
  std::vector<float> full = Floats(d["data"][0]["embedding"]);
  const double scale = cut[0] / full[0];
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(cut[i], full[i] * scale, 1e-5);
  // base64: the same float32s, little-endian.
  rapidjson::Document b64 = Json(
      s.Plan(
           Post(
               "/v1/embeddings",
               R"({"model":"emb","input":"hello world","encoding_format":"base64"})"),
           {})
          .response.Body());
  EXPECT_EQ(FromBase64(b64["data"][0]["embedding"].GetString()), full);
  // Token ids count as tokens.
  rapidjson::Document ids =
      Json(s.Plan(Post("/v1/embeddings", R"({"input":[[1,2,3],[4]]})"), {})
               .response.Body());
  EXPECT_EQ(ids["data"].Size(), 2u);
  EXPECT_EQ(ids["usage"]["prompt_tokens"].GetInt(), 4);
  // Another seed: other vectors.
  o.seed = 6;
  rapidjson::Document reseeded =
      Json(Synthesizer(o)
               .Plan(Post("/v1/embeddings",
                          R"({"model":"emb","input":"hello world"})"),
                     {})
               .response.Body());
  EXPECT_NE(Floats(reseeded["data"][0]["embedding"]), full);
}

TEST(Embeddings, BadRequestsAndFaults) {
  Synthesizer s(Options());
  for (const char* body :
       {"[]", R"({"model":"m"})", R"({"input":3})", R"({"input":[]})",
        R"({"input":[["a"]]})", R"({"input":"x","dimensions":0})",
        R"({"input":"x","encoding_format":"hex"})"}) {
    EXPECT_EQ(s.Plan(Post("/v1/embeddings", body), {}).response.status, 400)
        << body;
  }
  // At most 2,048 x 4,096 numbers in one answer.
  std::string many = R"({"dimensions":65536,"input":[)";
  for (int i = 0; i < 200; ++i) many += std::string(i ? "," : "") + "\"x\"";
  SynthPlan huge = s.Plan(Post("/v1/embeddings", many + "]}"), {});
  EXPECT_EQ(huge.response.status, 400);
  EXPECT_NE(huge.response.Body().find("dimensions"), std::string::npos);
  SynthContext ctx;
  ctx.forced_fault = FaultType::k503;
  EXPECT_EQ(
      s.Plan(Post("/v1/embeddings", R"({"input":"x"})"), ctx).response.status,
      503);
  ctx.forced_fault = FaultType::kDrop;
  SynthPlan dropped = s.Plan(Post("/v1/embeddings", R"({"input":"x"})"), ctx);
  EXPECT_TRUE(dropped.abort);
  EXPECT_GT(dropped.content_length, dropped.response.Body().size());
}

// ------------------------------------------------------------ Several models

TEST(Models, ListedWithAdaptersAndUnknownNamesAre404) {
  SynthOptions o = Options();
  o.models = {"base", "other"};
  o.model = "base";
  o.adapters = {{"base-lora", "base"}};
  Synthesizer s(o);
  rapidjson::Document list = Json(s.ModelsBody());
  ASSERT_EQ(list["data"].Size(), 3u);
  EXPECT_STREQ(list["data"][0]["id"].GetString(), "base");
  EXPECT_TRUE(list["data"][0]["parent"].IsNull());
  EXPECT_STREQ(list["data"][2]["id"].GetString(), "base-lora");
  EXPECT_STREQ(list["data"][2]["parent"].GetString(), "base");
  EXPECT_EQ(list["data"][0]["max_model_len"].GetInt(), 32768);
  for (const auto& [path, body] :
       std::vector<std::pair<std::string, std::string>>{
           {"/v1/chat/completions",
            R"({"model":"gpt-x","messages":[{"role":"user","content":"x"}]})"},
           {"/v1/completions", R"({"model":"gpt-x","prompt":"x"})"},
           {"/v1/responses", R"({"model":"gpt-x","input":"x"})"},
           {"/v1/embeddings", R"({"model":"gpt-x","input":"x"})"}}) {
    SynthPlan p = s.Plan(Post(path, body), {});
    EXPECT_EQ(p.response.status, 404) << path;
    rapidjson::Document e = Json(p.response.Body());
    EXPECT_STREQ(e["error"]["code"].GetString(), "model_not_found");
    EXPECT_STREQ(e["error"]["type"].GetString(), "invalid_request_error");
    EXPECT_NE(std::string(e["error"]["message"].GetString()).find("gpt-x"),
              std::string::npos);
  }
  for (const char* model : {"base", "other", "base-lora"}) {
    rapidjson::Document d = Json(
        s.Plan(Post("/v1/chat/completions",
                    std::string(R"({"model":")") + model +
                        R"(","messages":[{"role":"user","content":"x"}]})"),
               {})
            .response.Body());
    EXPECT_STREQ(d["model"].GetString(), model);
  }
  // No model named: the first.
  rapidjson::Document d =
      Json(s.Plan(Post("/v1/chat/completions",
                       R"({"messages":[{"role":"user","content":"x"}]})"),
                  {})
               .response.Body());
  EXPECT_STREQ(d["model"].GetString(), "base");
  // Without --model every name is answered.
  Synthesizer open(Options());
  EXPECT_EQ(
      open.Plan(
              Post(
                  "/v1/chat/completions",
                  R"({"model":"anything","messages":[{"role":"user","content":"x"}]})"),
              {})
          .response.status,
      200);
}

// ------------------------------------------------------- Tokenize/detokenize

TEST(Tokenizer, RoundTripsTheEnginesTokens) {
  SynthOptions o = Options();
  o.models = {"base"};
  Synthesizer s(o);
  Request r = Post(
      "/tokenize",
      R"({"model":"base","prompt":"Hello  big world!","return_token_strs":true})");
  std::optional<Synthesizer::Reply> t = s.Immediate(r);
  ASSERT_TRUE(t);
  ASSERT_EQ(t->status, 200) << t->body;
  rapidjson::Document d = Json(t->body);
  EXPECT_EQ(d["count"].GetInt(), 3);
  EXPECT_EQ(d["max_model_len"].GetInt(), 32768);
  ASSERT_EQ(d["tokens"].Size(), 3u);
  EXPECT_STREQ(d["token_strs"][1].GetString(), "  big");
  // Another engine (another run) gives the same ids.
  Synthesizer s2(o);
  EXPECT_EQ(Json(s2.Immediate(r)->body)["tokens"], d["tokens"]);
  std::optional<Synthesizer::Reply> back = s.Immediate(Post(
      "/detokenize", R"({"model":"base","tokens":)" + Dump(d["tokens"]) + "}"));
  ASSERT_EQ(back->status, 200) << back->body;
  EXPECT_STREQ(Json(back->body)["prompt"].GetString(), "Hello  big world!");
  // Chat messages.
  rapidjson::Document m =
      Json(s.Immediate(Post("/tokenize",
                            R"({"messages":[{"role":"system","content":"a b"},
                                                    {"role":"user","content":"c"}]})"))
               ->body);
  EXPECT_EQ(m["count"].GetInt(), 3);
  EXPECT_TRUE(m["token_strs"].IsNull());
  EXPECT_EQ(s.Immediate(Post("/detokenize", R"({"tokens":[12345]})"))->status,
            400);
  EXPECT_EQ(s.Immediate(Post("/tokenize", R"({"model":"nope","prompt":"x"})"))
                ->status,
            404);
  EXPECT_EQ(s.Immediate(Post("/tokenize", R"({"prompt":3})"))->status, 400);
  Request get;
  get.method = "GET";
  get.path = "/v1/models";
  EXPECT_EQ(s.Immediate(get)->status, 200);
  get.path = "/v1/other";
  EXPECT_FALSE(s.Immediate(get));
}

// -------------------------------------------------------------- Determinism

TEST(Determinism, SameSeedSameBytesOnEveryNewSurface) {
  SynthOptions o = Options("random");
  o.ttft = Distribution::Parse("normal:100,30").value();
  o.itl = Distribution::Parse("uniform:5..15").value();
  o.tool_rate = 0.5;
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"/v1/responses", R"({"input":"x","stream":true})"},
      {"/v1/responses",
       R"({"input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"a":{"type":"integer"}}}}]})"},
      {"/v1/chat/completions",
       ChatWithTools(R"(,"stream":true,"logprobs":true,"top_logprobs":2)")},
      {"/v1/embeddings", R"({"input":["a","b"]})"}};
  for (const auto& [path, body] : requests) {
    SynthPlan a = Synthesizer(o).Plan(Post(path, body), Seed(77));
    SynthPlan b = Synthesizer(o).Plan(Post(path, body), Seed(77));
    ASSERT_EQ(a.response.chunks.size(), b.response.chunks.size()) << path;
    for (size_t i = 0; i < a.response.chunks.size(); ++i) {
      EXPECT_EQ(a.response.chunks[i].data, b.response.chunks[i].data);
      EXPECT_EQ(a.response.chunks[i].offset_us, b.response.chunks[i].offset_us);
    }
  }
}

}  // namespace
}  // namespace rwd
