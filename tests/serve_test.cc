// The dummy engine over real HTTP on 127.0.0.1.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <sstream>

#include "rewind/server.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::InProcessRewind;
using Steady = std::chrono::steady_clock;

ServerOptions Serve(const std::string& output = "echo", uint64_t seed = 0) {
  ServerOptions o;
  o.mode = ServerMode::kServe;
  o.synth.output = OutputMode::Parse(output, nullptr).value();
  o.synth.seed = seed;
  o.synth.deterministic_created = true;
  return o;
}

struct Answer {
  int status = 0;
  std::string body;
  std::string rewind;  // X-Rewind
  bool ok = false;     // the client read a complete response
  double first_ms = -1;
};

Answer Post(int port, const std::string& path, const std::string& body,
            httplib::Headers headers = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  Answer a;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.headers = headers;
  auto start = Steady::now();
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    if (a.first_ms < 0) {
      a.first_ms =
          std::chrono::duration<double, std::milli>(Steady::now() - start)
              .count();
    }
    a.body.append(d, n);
    return true;
  };
  httplib::Response res;
  httplib::Error error;
  a.ok = c.send(req, res, error);
  a.status = res.status;
  a.rewind = res.get_header_value("X-Rewind");
  return a;
}

const char kStreamChat[] =
    R"({"model":"demo","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"tell me three words"}]})";
const char kChat[] =
    R"({"model":"demo","messages":[{"role":"user","content":"tell me three words"}]})";

TEST(Serve, StreamsTheOpenAIEventFormat) {
  InProcessRewind serve(Serve());
  Answer a = Post(serve.port(), "/v1/chat/completions", kStreamChat);
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.rewind, "synth");
  std::istringstream in(a.body);
  std::string line, text, id;
  int events = 0;
  bool done = false, usage = false, finished = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ASSERT_EQ(line.rfind("data: ", 0), 0u) << line;
    ASSERT_FALSE(done) << "an event after [DONE]";
    std::string payload = line.substr(6);
    ++events;
    if (payload == "[DONE]") {
      done = true;
      continue;
    }
    rapidjson::Document d;
    d.Parse(payload.c_str());
    ASSERT_FALSE(d.HasParseError()) << payload;
    if (id.empty()) id = d["id"].GetString();
    EXPECT_EQ(id, d["id"].GetString());
    if (d["choices"].Empty()) {
      usage = true;
      EXPECT_EQ(d["usage"]["completion_tokens"].GetInt(), 4);
      continue;
    }
    const auto& choice = d["choices"][0];
    if (choice["delta"].HasMember("content"))
      text += choice["delta"]["content"].GetString();
    if (choice["finish_reason"].IsString()) finished = true;
  }
  EXPECT_TRUE(done && usage && finished);
  EXPECT_EQ(text, "tell me three words");
  EXPECT_EQ(events, 8);  // role, 4 tokens, finish, usage, [DONE]
}

TEST(Serve, ModelsHealthAndUnknownPaths) {
  InProcessRewind serve(Serve());
  auto c = serve.Client();
  auto models = c->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_NE(models->body.find("\"rewind-dummy\""), std::string::npos);
  auto health = c->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto other = c->Get("/v1/embeddings");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  EXPECT_NE(other->body.find("\"invalid_request_error\""), std::string::npos);
  Answer bad = Post(serve.port(), "/v1/chat/completions", "{not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("\"error\""), std::string::npos);
}

// Request values (tool schemas, Anthropic and Ollama fields) are written
// back by recursive code: a body nested deeper than kMaxJsonDepth is a 400
// in every dialect, and the engine lives (a million levels killed it).
TEST(Serve, RequestsNestedTooDeepAreRefusedInEveryDialect) {
  InProcessRewind serve(Serve());
  const std::string deep =
      std::string(1000000, '[') + std::string(1000000, ']');
  const std::string tools =
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"required",)"
      R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object",)"
      R"("properties":{"a":{"const":)" +
      deep + R"(}},"required":["a"]}}}]})";
  const std::string anthropic =
      R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],)"
      R"("tool_choice":{"type":"any"},"tools":[{"name":"f","input_schema":{"type":"object",)"
      R"("properties":{"a":{"const":)" +
      deep + R"(}},"required":["a"]}}]})";
  const std::string ollama =
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"format":)" +
      deep + "}";
  for (const auto& [path, body] :
       std::vector<std::pair<std::string, std::string>>{
           {"/v1/chat/completions", tools},
           {"/v1/completions",
            R"({"model":"m","prompt":"hi","x":)" + deep + "}"},
           {"/v1/messages", anthropic},
           {"/api/chat", ollama},
           {"/api/generate",
            R"({"model":"m","prompt":"hi","format":)" + deep + "}"},
           {"/v1/responses",
            R"({"model":"m","input":"hi","metadata":)" + deep + "}"},
           {"/v1/embeddings", R"({"model":"m","input":)" + deep + "}"},
           {"/tokenize", R"({"model":"m","prompt":"hi","x":)" + deep + "}"}}) {
    Answer a = Post(serve.port(), path, body);
    EXPECT_EQ(a.status, 400) << path;
    EXPECT_NE(a.body.find("deeper than 256 levels"), std::string::npos)
        << path << a.body;
  }
  EXPECT_EQ(Post(serve.port(), "/v1/chat/completions", kChat).status, 200);
}

TEST(Serve, SameSeedGivesIdenticalBytesOnTwoServers) {
  std::vector<std::string> bodies[2];
  for (int server = 0; server < 2; ++server) {
    InProcessRewind serve(Serve("random", 1234));
    for (int i = 0; i < 10; ++i) {
      const std::string body =
          std::string(
              R"({"model":"m","max_tokens":12,"messages":[{"role":"user","content":"q)") +
          std::to_string(i % 3) + "\"}]" + (i % 2 ? ",\"stream\":true}" : "}");
      bodies[server].push_back(
          Post(serve.port(), "/v1/chat/completions", body).body);
    }
  }
  EXPECT_EQ(bodies[0], bodies[1]);
  std::set<std::string> distinct(bodies[0].begin(), bodies[0].end());
  EXPECT_EQ(distinct.size(), 10u) << "repeats of a request draw new answers";
}

TEST(Serve, TtftAndItlAreHonoured) {
  ServerOptions o = Serve();
  o.synth.ttft = Distribution::Parse("fixed:120").value();
  o.synth.itl = Distribution::Parse("fixed:30").value();
  InProcessRewind serve(o);
  auto start = Steady::now();
  Answer a = Post(serve.port(), "/v1/chat/completions", kStreamChat);
  double total =
      std::chrono::duration<double, std::milli>(Steady::now() - start).count();
  EXPECT_GE(a.first_ms, 119.0);
  EXPECT_LT(a.first_ms, 250.0);
  // 4 tokens: 120 + 3 × 30 = 210 ms.
  EXPECT_GE(total, 209.0);
  EXPECT_LT(total, 400.0);
  // Non-streaming answers take TTFT + ITL × (tokens - 1) before any byte.
  start = Steady::now();
  Answer b = Post(serve.port(), "/v1/chat/completions", kChat);
  EXPECT_GE(b.first_ms, 209.0);
}

TEST(Serve, FaultRateOverManyRequestsIsNearItsTarget) {
  ServerOptions o = Serve("echo", 99);
  o.synth.faults = FaultSpec::Parse("rate=0.3,types=500").value();
  InProcessRewind serve(o);
  int failed = 0;
  auto c = serve.Client();
  for (int i = 0; i < 300; ++i) {
    const std::string body = R"({"messages":[{"role":"user","content":"n)" +
                             std::to_string(i) + "\"}]}";
    auto r = c->Post("/v1/chat/completions", body, "application/json");
    ASSERT_TRUE(r);
    if (r->status == 500) {
      ++failed;
      EXPECT_NE(r->body.find("\"server_error\""), std::string::npos);
    } else {
      EXPECT_EQ(r->status, 200);
    }
  }
  // Binomial(300, 0.3): mean 90, sd 7.9; ±4.5 sd.
  EXPECT_GT(failed, 54);
  EXPECT_LT(failed, 126);
}

TEST(Serve, ForcedDropBreaksTheStream) {
  InProcessRewind serve(Serve());
  Answer a = Post(serve.port(), "/v1/chat/completions", kStreamChat,
                  {{"X-Rewind-Fault", "drop"}});
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.body.find("[DONE]"), std::string::npos);
  Answer bad = Post(serve.port(), "/v1/chat/completions", kStreamChat,
                    {{"X-Rewind-Fault", "gremlins"}});
  EXPECT_EQ(bad.status, 400);
}

// Waits (at most 10 s) until the engine's /metrics holds "line", e.g.
// vllm:num_requests_running{model_name="rewind-dummy"} 1.
bool WaitForMetric(InProcessRewind& serve, const std::string& line) {
  for (int i = 0; i < 500; ++i) {
    auto m = serve.Client()->Get("/metrics");
    if (m && m->body.find(line + "\n") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(Serve, BeyondTheQueueAnswers429AndQueueWaitCountsInTtft) {
  ServerOptions o = Serve();
  o.synth.ttft = Distribution::Parse("fixed:300").value();
  o.synth.max_concurrency = 1;
  o.synth.max_queue = 1;
  InProcessRewind serve(o);
  // Each request is sent once the engine reports the one before it
  // running, then waiting (guessed sleeps lost this race on a loaded
  // machine).
  std::vector<Answer> answers(3);
  const auto t0 = Steady::now();
  std::thread first(
      [&] { answers[0] = Post(serve.port(), "/v1/chat/completions", kChat); });
  const bool running = WaitForMetric(
      serve, "vllm:num_requests_running{model_name=\"rewind-dummy\"} 1");
  double second_sent_ms = 0;
  std::thread second([&] {
    second_sent_ms =
        std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
    answers[1] = Post(serve.port(), "/v1/chat/completions", kChat);
  });
  const bool waiting = WaitForMetric(
      serve, "vllm:num_requests_waiting{model_name=\"rewind-dummy\"} 1");
  answers[2] = Post(serve.port(), "/v1/chat/completions", kChat);
  first.join();
  second.join();
  ASSERT_TRUE(running);
  ASSERT_TRUE(waiting);
  EXPECT_EQ(answers[0].status, 200);
  EXPECT_EQ(answers[1].status, 200);
  EXPECT_EQ(answers[2].status, 429);
  EXPECT_NE(answers[2].body.find("rate_limit_exceeded"), std::string::npos);
  // The second waited for the first, admitted after t0 and holding the
  // slot 300 ms, then had its own 300 ms to the first token.
  EXPECT_GE(answers[1].first_ms, 600.0 - second_sent_ms - 1.0)
      << "second sent at " << second_sent_ms << " ms";
}

TEST(Serve, MetricsMoveWithRequests) {
  InProcessRewind serve(Serve());
  for (int i = 0; i < 3; ++i) Post(serve.port(), "/v1/chat/completions", kChat);
  auto m = serve.Client()->Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  std::map<std::string, double> values;
  std::istringstream in(m->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    values[line.substr(0, line.find('{'))] += std::stod(line.substr(space + 1));
  }
  EXPECT_EQ(values["vllm:request_success_total"], 3);
  EXPECT_EQ(values["vllm:prompt_tokens_total"], 12);
  EXPECT_EQ(values["vllm:generation_tokens_total"], 12);
  EXPECT_EQ(values["vllm:time_to_first_token_seconds_count"], 3);
  EXPECT_EQ(values["vllm:num_requests_running"], 0);
}

TEST(Serve, ReplaySynthesizesMisses) {
  testing::TempDir dir;
  auto store = testing::OpenTestStore(dir.File("rec.sqlite"));
  ServerOptions o = Serve("static:synthesized");
  o.mode = ServerMode::kReplay;
  o.store = store.get();
  o.replay.on_miss = MissPolicy::kSynthesize;
  InProcessRewind replay(o);
  Answer a = Post(replay.port(), "/v1/chat/completions", kChat);
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.rewind, "synth");
  EXPECT_NE(a.body.find("\"synthesized\""), std::string::npos);
  Answer other = Post(replay.port(), "/v1/other", "{}");
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(other.rewind, "miss");
}

// ---- The Responses API, tools, structured output, logprobs, embeddings,
// several models and /tokenize, over HTTP.

// The "event:" names and JSON data of a Responses API stream.
std::vector<std::pair<std::string, std::string>> SseEvents(
    const std::string& body) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(body);
  std::string line, name;
  while (std::getline(in, line)) {
    if (line.rfind("event: ", 0) == 0) name = line.substr(7);
    if (line.rfind("data: ", 0) == 0) out.emplace_back(name, line.substr(6));
  }
  return out;
}

TEST(Serve, ResponsesApiStreamedAndNot) {
  ServerOptions o = Serve("echo", 3);
  o.synth.ttft = Distribution::Parse("fixed:120").value();
  InProcessRewind serve(o);
  Answer plain = Post(serve.port(), "/v1/responses",
                      R"({"model":"m","input":"hello there"})");
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(plain.rewind, "synth");
  rapidjson::Document d;
  d.Parse(plain.body.c_str());
  ASSERT_FALSE(d.HasParseError()) << plain.body;
  EXPECT_STREQ(d["object"].GetString(), "response");
  EXPECT_STREQ(d["output"][0]["content"][0]["text"].GetString(), "hello there");
  EXPECT_GE(plain.first_ms, 119.0);

  Answer streamed =
      Post(serve.port(), "/v1/responses",
           R"({"model":"m","input":"hello there","stream":true})");
  ASSERT_TRUE(streamed.ok);
  auto events = SseEvents(streamed.body);
  ASSERT_EQ(events.size(), 10u) << streamed.body;
  EXPECT_EQ(events.front().first, "response.created");
  EXPECT_EQ(events.back().first, "response.completed");
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    rapidjson::Document e;
    e.Parse(events[i].second.c_str());
    ASSERT_FALSE(e.HasParseError()) << events[i].second;
    EXPECT_EQ(events[i].first, e["type"].GetString());
    EXPECT_EQ(e["sequence_number"].GetInt(), static_cast<int>(i));
    if (events[i].first == "response.output_text.delta")
      text += e["delta"].GetString();
  }
  EXPECT_EQ(text, "hello there");
  // response.created arrives at once; the text after the TTFT.
  EXPECT_LT(streamed.first_ms, 100.0);
}

TEST(Serve, ToolCallsStructuredOutputLogprobsOverHttp) {
  ServerOptions o = Serve("random", 5);
  InProcessRewind serve(o);
  Answer tool = Post(serve.port(), "/v1/chat/completions",
                     R"({"model":"m","stream":true,"tool_choice":"required",
                         "messages":[{"role":"user","content":"weather in Paris?"}],
                         "tools":[{"type":"function","function":{"name":"get_weather",
                           "parameters":{"type":"object","required":["city"],
                             "properties":{"city":{"type":"string"}}}}}]})");
  ASSERT_TRUE(tool.ok);
  std::string name, arguments, finish;
  std::istringstream in(tool.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data: {", 0) != 0) continue;
    rapidjson::Document e;
    e.Parse(line.c_str() + 6);
    const auto& c = e["choices"][0];
    if (c["finish_reason"].IsString()) finish = c["finish_reason"].GetString();
    if (!c["delta"].HasMember("tool_calls")) continue;
    const auto& call = c["delta"]["tool_calls"][0]["function"];
    if (call.HasMember("name")) name = call["name"].GetString();
    arguments += call["arguments"].GetString();
  }
  EXPECT_EQ(name, "get_weather");
  EXPECT_EQ(finish, "tool_calls");
  rapidjson::Document args;
  args.Parse(arguments.c_str());
  ASSERT_FALSE(args.HasParseError()) << arguments;
  EXPECT_TRUE(args["city"].IsString());

  Answer structured = Post(serve.port(), "/v1/chat/completions",
                           R"({"messages":[{"role":"user","content":"x"}],
                               "response_format":{"type":"json_schema","json_schema":{"name":"n",
                                 "schema":{"type":"object","properties":{"n":{"type":"integer",
                                 "minimum":1,"maximum":3}},"required":["n"]}}}})");
  rapidjson::Document sd;
  sd.Parse(structured.body.c_str());
  rapidjson::Document content;
  content.Parse(sd["choices"][0]["message"]["content"].GetString());
  ASSERT_TRUE(content.IsObject()) << structured.body;
  EXPECT_GE(content["n"].GetInt(), 1);
  EXPECT_LE(content["n"].GetInt(), 3);

  Answer lp =
      Post(serve.port(), "/v1/chat/completions",
           R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,
                       "top_logprobs":2,"max_tokens":4})");
  rapidjson::Document ld;
  ld.Parse(lp.body.c_str());
  ASSERT_TRUE(ld["choices"][0]["logprobs"]["content"].IsArray()) << lp.body;
  EXPECT_EQ(ld["choices"][0]["logprobs"]["content"][0]["top_logprobs"].Size(),
            2u);

  // The Responses API, as the AI SDK's logprobs option asks for them.
  Answer rlp = Post(serve.port(), "/v1/responses",
                    R"({"input":"x","top_logprobs":2,"max_output_tokens":4,
                        "include":["message.output_text.logprobs"]})");
  rapidjson::Document rd;
  rd.Parse(rlp.body.c_str());
  ASSERT_FALSE(rd.HasParseError()) << rlp.body;
  const auto& rcontent = rd["output"][0]["content"][0];
  ASSERT_TRUE(rcontent["logprobs"].IsArray()) << rlp.body;
  ASSERT_EQ(rcontent["logprobs"].Size(),
            Tokenize(rcontent["text"].GetString()).size());
  EXPECT_EQ(rcontent["logprobs"][0]["top_logprobs"].Size(), 2u) << rlp.body;
}

TEST(Serve, EmbeddingsAreDeterministicUnitVectors) {
  ServerOptions o = Serve("echo", 8);
  o.synth.embedding_dimensions = 16;
  o.synth.ttft = Distribution::Parse("fixed:80").value();
  InProcessRewind serve(o);
  const std::string body = R"({"model":"emb","input":["same text","other"]})";
  Answer a = Post(serve.port(), "/v1/embeddings", body);
  Answer b = Post(serve.port(), "/v1/embeddings", body);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.rewind, "synth");
  EXPECT_EQ(a.body, b.body) << "the same input, the same vectors";
  EXPECT_GE(a.first_ms, 79.0);
  rapidjson::Document d;
  d.Parse(a.body.c_str());
  double norm = 0;
  for (const auto& x : d["data"][0]["embedding"].GetArray())
    norm += x.GetDouble() * x.GetDouble();
  EXPECT_NEAR(norm, 1.0, 1e-5);
  Answer b64 = Post(
      serve.port(), "/v1/embeddings",
      R"({"input":"same text","encoding_format":"base64","dimensions":4})");
  rapidjson::Document e;
  e.Parse(b64.body.c_str());
  EXPECT_EQ(std::string(e["data"][0]["embedding"].GetString()).size(),
            24u);  // 16 bytes
  Answer forced =
      Post(serve.port(), "/v1/embeddings", body, {{"X-Rewind-Fault", "429"}});
  EXPECT_EQ(forced.status, 429);
}

TEST(Serve, SeveralModelsAdaptersUnknownModelAndTokenize) {
  ServerOptions o = Serve();
  o.synth.models = {"base", "small"};
  o.synth.model = "base";
  o.synth.adapters = {{"base-sql", "base"}};
  InProcessRewind serve(o);
  auto c = serve.Client();
  auto models = c->Get("/v1/models");
  ASSERT_TRUE(models);
  rapidjson::Document m;
  m.Parse(models->body.c_str());
  ASSERT_EQ(m["data"].Size(), 3u) << models->body;
  EXPECT_STREQ(m["data"][2]["id"].GetString(), "base-sql");
  EXPECT_STREQ(m["data"][2]["parent"].GetString(), "base");
  for (const auto& [path, body] :
       std::vector<std::pair<std::string, std::string>>{
           {"/v1/chat/completions",
            R"({"model":"gpt-4o","messages":[{"role":"user","content":"x"}]})"},
           {"/v1/responses", R"({"model":"gpt-4o","input":"x","stream":true})"},
           {"/v1/embeddings", R"({"model":"gpt-4o","input":"x"})"},
           {"/tokenize", R"({"model":"gpt-4o","prompt":"x"})"}}) {
    Answer a = Post(serve.port(), path, body);
    EXPECT_EQ(a.status, 404) << path;
    EXPECT_NE(a.body.find("\"code\":\"model_not_found\""), std::string::npos)
        << a.body;
  }
  Answer ok = Post(
      serve.port(), "/v1/chat/completions",
      R"({"model":"base-sql","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(ok.status, 200);
  Answer t = Post(serve.port(), "/tokenize",
                  R"({"model":"small","prompt":"one two three"})");
  ASSERT_EQ(t.status, 200) << t.body;
  rapidjson::Document td;
  td.Parse(t.body.c_str());
  EXPECT_EQ(td["count"].GetInt(), 3);
  rapidjson::StringBuffer ids;
  rapidjson::Writer<rapidjson::StringBuffer> w(ids);
  td["tokens"].Accept(w);
  Answer back = Post(serve.port(), "/detokenize",
                     std::string(R"({"tokens":)") + ids.GetString() + "}");
  EXPECT_EQ(back.status, 200);
  EXPECT_EQ(back.body, R"({"prompt":"one two three"})");
}

TEST(Serve, NewEndpointsSameSeedIdenticalBytesAndMetrics) {
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"/v1/responses", R"({"model":"m","input":"a b","stream":true})"},
      {"/v1/responses", R"({"model":"m","input":"a b","tool_choice":"required",
                           "tools":[{"type":"function","name":"f","parameters":{"type":"object",
                           "properties":{"x":{"type":"number"}},"required":["x"]}}]})"},
      {"/v1/chat/completions",
       R"({"model":"m","n":2,"stream":true,"logprobs":true,
                                  "messages":[{"role":"user","content":"q"}],
                                  "stream_options":{"include_usage":true,"continuous_usage_stats":true}})"},
      {"/v1/embeddings", R"({"model":"m","input":"a b"})"}};
  std::vector<std::string> bodies[2];
  for (int server = 0; server < 2; ++server) {
    InProcessRewind serve(Serve("random", 4321));
    for (int round = 0; round < 2; ++round) {
      for (const auto& [path, body] : requests)
        bodies[server].push_back(Post(serve.port(), path, body).body);
    }
    if (server == 1) {
      auto m = serve.Client()->Get("/metrics");
      ASSERT_TRUE(m);
      EXPECT_NE(
          m->body.find(
              "vllm:request_success_total{model_name=\"rewind-dummy\"} 8"),
          std::string::npos)
          << m->body;
    }
  }
  EXPECT_EQ(bodies[0], bodies[1]);
  EXPECT_NE(bodies[0][0], bodies[0][4]) << "a repeat draws a new answer";
  EXPECT_EQ(bodies[0][3], bodies[0][7]) << "an embedding does not change";
}

TEST(Serve, ReplaySynthesizesResponsesAndEmbeddingsOnAMiss) {
  testing::TempDir dir;
  auto store = testing::OpenTestStore(dir.File("rec.sqlite"));
  ServerOptions o = Serve("static:synthesized");
  o.mode = ServerMode::kReplay;
  o.store = store.get();
  o.replay.on_miss = MissPolicy::kSynthesize;
  InProcessRewind replay(o);
  Answer r = Post(replay.port(), "/v1/responses", R"({"input":"x"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.rewind, "synth");
  EXPECT_NE(r.body.find("\"synthesized\""), std::string::npos);
  EXPECT_EQ(Post(replay.port(), "/v1/embeddings", R"({"input":"x"})").status,
            200);
}

TEST(Serve, ModelToolAndEmbeddingFlagsOfTheBinary) {
  std::string err;
  EXPECT_EQ(
      testing::RunRewind("serve --listen 127.0.0.1:0 --tool-rate 1.5", &err),
      2);
  EXPECT_NE(err.find("--tool-rate"), std::string::npos) << err;
  EXPECT_EQ(testing::RunRewind(
                "serve --listen 127.0.0.1:0 --model a --lora x=b", &err),
            2);
  EXPECT_NE(err.find("is not a --model"), std::string::npos) << err;
  EXPECT_EQ(testing::RunRewind(
                "serve --listen 127.0.0.1:0 --embedding-dimensions 0", &err),
            2);
  testing::RewindProcess serve({"serve", "--listen", "127.0.0.1:0", "--quiet",
                                "--model", "a", "--model", "b", "--lora",
                                "a-sql=a", "--tool-rate", "1",
                                "--embedding-dimensions", "3"});
  ASSERT_GT(serve.port(), 0) << serve.first_line();
  httplib::Client c("127.0.0.1", serve.port());
  c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_NE(
      models->body.find(
          R"("id":"a-sql","object":"model","created":0,"owned_by":"rewind","root":"a-sql","parent":"a")"),
      std::string::npos)
      << models->body;
  auto e = c.Post("/v1/embeddings", R"({"input":"x"})", "application/json");
  ASSERT_TRUE(e);
  rapidjson::Document d;
  d.Parse(e->body.c_str());
  EXPECT_EQ(d["data"][0]["embedding"].Size(), 3u) << e->body;
  EXPECT_STREQ(d["model"].GetString(), "a");
  auto t = c.Post("/v1/chat/completions",
                  R"({"model":"b","messages":[{"role":"user","content":"x"}],
                      "tools":[{"type":"function","function":{"name":"f"}}]})",
                  "application/json");
  ASSERT_TRUE(t);
  EXPECT_NE(t->body.find("\"tool_calls\""), std::string::npos) << t->body;
  auto config = c.Get("/__rewind/config");
  ASSERT_TRUE(config);
  EXPECT_NE(
      config->body.find(R"("models":["a","b","a-sql=a"],"tool_rate":1.0)"),
      std::string::npos)
      << config->body;
  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.Wait(), 0);
}

}  // namespace
}  // namespace rwd
