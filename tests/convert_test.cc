// One recording, streamed or not (src/modes/convert.h), and replay
// --on-miss convert over real HTTP, recording through rewind record.
#include "modes/convert.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <sstream>

#include "rewind/server.h"
#include "testutil/raw_http.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::HeaderOf;
using testing::InProcessRewind;
using testing::OpenTestStore;
using testing::RawExchange;
using testing::RawResponse;
using testing::RequestText;
using testing::TempDir;

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

// The JSON payloads of an SSE body, without [DONE].
std::vector<std::string> Payloads(const std::string& body,
                                  bool* done = nullptr) {
  std::vector<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    if (line == "data: [DONE]") {
      if (done) *done = true;
      continue;
    }
    out.push_back(line.substr(6));
  }
  return out;
}

Response Sse(std::vector<std::pair<int64_t, std::string>> events) {
  Response r;
  r.status = 200;
  r.chunked = true;
  r.headers = {{"Content-Type", "text/event-stream"}, {"X-Request-Id", "abc"}};
  r.headers_us = 1000;
  for (auto& [at, data] : events)
    r.chunks.push_back({at, "data: " + data + "\n\n"});
  return r;
}

TEST(StreamRequest, ReadsStreamAndIncludeUsage) {
  EXPECT_FALSE(StreamRequest::Of(R"({"messages":[]})").stream);
  EXPECT_TRUE(StreamRequest::Of(R"({"stream":true})").stream);
  EXPECT_FALSE(StreamRequest::Of(R"({"stream":false})").stream);
  EXPECT_TRUE(StreamRequest::Of(
                  R"({"stream":true,"stream_options":{"include_usage":true}})")
                  .include_usage);
  EXPECT_FALSE(StreamRequest::Of("not json").stream);
}

TEST(Convert, StreamAssembledIntoOneChatCompletion) {
  const std::string head =
      R"("id":"chatcmpl-7","object":"chat.completion.chunk","created":1700000001,"model":"gpt-x","system_fingerprint":"fp_1")";
  Response s = Sse({
      {100000,
       "{" + head +
           R"(,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})"},
      {120000,
       "{" + head +
           R"(,"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":{"content":[{"token":"Hello","logprob":-0.1}]},"finish_reason":null}]})"},
      {140000,
       "{" + head +
           R"(,"choices":[{"index":0,"delta":{"content":" world"},"logprobs":{"content":[{"token":" world","logprob":-0.2}]},"finish_reason":null}]})"},
      {150000,
       "{" + head +
           R"(,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]})"},
      {150000,
       "{" + head +
           R"(,"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})"},
      {150000, "[DONE]"},
  });
  Result<Response> c = StreamToCompletion(s, /*chat=*/true);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->chunked);
  EXPECT_EQ(FindHeader(c->headers, "Content-Type"), "application/json");
  EXPECT_EQ(FindHeader(c->headers, "X-Request-Id"), "abc");
  EXPECT_EQ(FindHeader(c->headers, "Cache-Control"), "");
  // The whole answer when the recorded stream's last byte came.
  EXPECT_EQ(c->headers_us, 150000);
  ASSERT_EQ(c->chunks.size(), 1u);
  EXPECT_EQ(c->chunks[0].offset_us, 150000);
  rapidjson::Document d = Json(c->Body());
  EXPECT_STREQ(d["id"].GetString(), "chatcmpl-7");
  EXPECT_STREQ(d["object"].GetString(), "chat.completion");
  EXPECT_EQ(d["created"].GetInt64(), 1700000001);
  EXPECT_STREQ(d["model"].GetString(), "gpt-x");
  EXPECT_STREQ(d["system_fingerprint"].GetString(), "fp_1");
  ASSERT_EQ(d["choices"].Size(), 1u);
  const auto& ch = d["choices"][0];
  EXPECT_STREQ(ch["message"]["role"].GetString(), "assistant");
  EXPECT_STREQ(ch["message"]["content"].GetString(), "Hello world");
  EXPECT_STREQ(ch["finish_reason"].GetString(), "stop");
  ASSERT_EQ(ch["logprobs"]["content"].Size(), 2u);
  EXPECT_STREQ(ch["logprobs"]["content"][1]["token"].GetString(), " world");
  EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 7);
}

TEST(Convert, StreamedToolCallsAndSeveralChoices) {
  const std::string head =
      R"("id":"c","object":"chat.completion.chunk","created":1,"model":"m")";
  Response s = Sse({
      {10,
       "{" + head +
           R"(,"choices":[{"index":1,"delta":{"role":"assistant","content":"B"},"finish_reason":null}]})"},
      {10,
       "{" + head +
           R"(,"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get","arguments":""}}]},"finish_reason":null}]})"},
      {20,
       "{" + head +
           R"(,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]},"finish_reason":null}]})"},
      {30,
       "{" + head +
           R"(,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":"tool_calls"}]})"},
      {30,
       "{" + head +
           R"(,"choices":[{"index":1,"delta":{},"finish_reason":"length"}]})"},
      {30, "[DONE]"},
  });
  Result<Response> c = StreamToCompletion(s, true);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  rapidjson::Document d = Json(c->Body());
  ASSERT_EQ(d["choices"].Size(), 2u);
  const auto& tool = d["choices"][0];
  EXPECT_EQ(tool["index"].GetInt(), 0);
  EXPECT_TRUE(tool["message"]["content"].IsNull());
  EXPECT_STREQ(tool["message"]["tool_calls"][0]["id"].GetString(), "call_1");
  EXPECT_STREQ(tool["message"]["tool_calls"][0]["function"]["name"].GetString(),
               "get");
  EXPECT_STREQ(
      tool["message"]["tool_calls"][0]["function"]["arguments"].GetString(),
      "{\"a\":1}");
  EXPECT_STREQ(tool["finish_reason"].GetString(), "tool_calls");
  EXPECT_STREQ(d["choices"][1]["message"]["content"].GetString(), "B");
  EXPECT_STREQ(d["choices"][1]["finish_reason"].GetString(), "length");
  EXPECT_FALSE(d.HasMember("usage"));
}

TEST(Convert, CompletionsStreamAndRefusals) {
  const std::string head =
      R"("id":"cmpl-1","object":"text_completion","created":1,"model":"m")";
  Response s = Sse({
      {10,
       "{" + head +
           R"(,"choices":[{"index":0,"text":"Hi","logprobs":null,"finish_reason":null}]})"},
      {20,
       "{" + head +
           R"(,"choices":[{"index":0,"text":" there","logprobs":null,"finish_reason":"stop"}]})"},
      {20, "[DONE]"},
  });
  Result<Response> c = StreamToCompletion(s, /*chat=*/false);
  ASSERT_TRUE(c.ok());
  rapidjson::Document d = Json(c->Body());
  EXPECT_STREQ(d["object"].GetString(), "text_completion");
  EXPECT_STREQ(d["choices"][0]["text"].GetString(), "Hi there");
  EXPECT_TRUE(d["choices"][0]["logprobs"].IsNull());
  // A chat stream is not a completions stream, and garbage is no stream.
  EXPECT_FALSE(StreamToCompletion(s, true).ok());
  EXPECT_FALSE(StreamToCompletion(Sse({{1, "{oops"}}), true).ok());
  EXPECT_FALSE(StreamToCompletion(Sse({{1, "[DONE]"}}), true).ok());
  Response gz = s;
  gz.headers.emplace_back("Content-Encoding", "gzip");
  EXPECT_FALSE(StreamToCompletion(gz, false).ok());
}

Response Completion(const std::string& body, int64_t at) {
  Response r;
  r.status = 200;
  r.headers = {{"Content-Type", "application/json"}, {"X-Request-Id", "abc"}};
  r.headers_us = at;
  r.chunks = {{at, body}};
  return r;
}

TEST(Convert, CompletionReplayedAsAStreamOverItsTotalTime) {
  Response c = Completion(
      R"({"id":"chatcmpl-9","object":"chat.completion","created":1700000002,"model":"gpt-x","choices":[{"index":0,"message":{"role":"assistant","content":"one two three"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":3,"total_tokens":7}})",
      400000);
  Result<Response> s =
      CompletionToStream(c, /*chat=*/true, /*include_usage=*/true);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->chunked);
  EXPECT_EQ(FindHeader(s->headers, "Content-Type"), "text/event-stream");
  EXPECT_EQ(FindHeader(s->headers, "X-Request-Id"), "abc");
  bool done = false;
  std::vector<std::string> events = Payloads(s->Body(), &done);
  EXPECT_TRUE(done);
  // role, 3 tokens, finish, usage
  ASSERT_EQ(events.size(), 6u);
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    rapidjson::Document d = Json(events[i]);
    EXPECT_STREQ(d["id"].GetString(), "chatcmpl-9");
    EXPECT_STREQ(d["object"].GetString(), "chat.completion.chunk");
    EXPECT_EQ(d["created"].GetInt64(), 1700000002);
    if (i == 0) {
      EXPECT_STREQ(d["choices"][0]["delta"]["role"].GetString(), "assistant");
    }
    if (i < 4) {
      text += d["choices"][0]["delta"]["content"].GetString();
      EXPECT_TRUE(d["choices"][0]["finish_reason"].IsNull());
    }
    if (i == 4) {
      EXPECT_STREQ(d["choices"][0]["finish_reason"].GetString(), "stop");
    }
    if (i == 5) {
      EXPECT_TRUE(d["choices"].Empty());
      EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 7);
    }
  }
  EXPECT_EQ(text, "one two three");
  // Four steps (role and three tokens) spread evenly; the end as recorded.
  EXPECT_EQ(s->headers_us, 100000);
  EXPECT_EQ(s->chunks[0].offset_us, 100000);
  EXPECT_EQ(s->chunks[1].offset_us, 200000);
  EXPECT_EQ(s->chunks[3].offset_us, 400000);
  EXPECT_EQ(s->chunks.back().offset_us, 400000);
  EXPECT_EQ(s->TotalMicros(), c.TotalMicros());
  // Without include_usage: no usage chunk.
  EXPECT_EQ(Payloads(CompletionToStream(c, true, false)->Body()).size(), 5u);
}

TEST(Convert, RoundTripsToolCallsAndCompletions) {
  Response c = Completion(
      R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"celsius\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}]})",
      50000);
  Result<Response> s = CompletionToStream(c, true, false);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Result<Response> back = StreamToCompletion(s.value(), true);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  rapidjson::Document a = Json(c.Body()), b = Json(back->Body());
  EXPECT_EQ(a["choices"], b["choices"]) << back->Body();

  Response t = Completion(
      R"({"id":"t","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"x y","logprobs":null,"finish_reason":"length"},{"index":1,"text":"z","logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}})",
      30000);
  s = CompletionToStream(t, false, true);
  ASSERT_TRUE(s.ok());
  back = StreamToCompletion(s.value(), false);
  ASSERT_TRUE(back.ok());
  a = Json(t.Body());
  b = Json(back->Body());
  EXPECT_EQ(a["choices"], b["choices"]) << back->Body();
  EXPECT_EQ(a["usage"], b["usage"]);
  EXPECT_EQ(back->TotalMicros(), 30000);

  EXPECT_FALSE(CompletionToStream(Completion("{}", 1), true, false).ok());
  EXPECT_FALSE(CompletionToStream(Completion("[1]", 1), true, false).ok());
  EXPECT_FALSE(CompletionToStream(t, /*chat=*/true, false).ok());
}

// ---------------------------------------------------------------- over HTTP

const char kChatNoStream[] =
    R"({"model":"demo","messages":[{"role":"user","content":"one two three four"}]})";
const char kChatStream[] =
    R"({"model":"demo","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three four"}]})";
const char kCompletionNoStream[] =
    R"({"model":"demo","prompt":"alpha beta gamma"})";
const char kCompletionStream[] =
    R"({"model":"demo","prompt":"alpha beta gamma","stream":true})";

TEST(ConvertOverHttp, RecordedOnceAnsweredStreamedOrNot) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  std::string streamed_text, whole_text;
  {
    // The backend: rewind serve with a visible TTFT and ITL.
    ServerOptions so;
    so.mode = ServerMode::kServe;
    so.synth.output = OutputMode::Parse("echo", nullptr).value();
    so.synth.ttft = Distribution::Parse("fixed:100").value();
    so.synth.itl = Distribution::Parse("fixed:40").value();
    so.synth.deterministic_created = true;
    InProcessRewind backend(so);
    ServerOptions ro;
    ro.mode = ServerMode::kRecord;
    ro.store = store.get();
    ro.upstream.backend = "http://127.0.0.1:" + std::to_string(backend.port());
    ro.front.quiet = true;
    InProcessRewind rec(ro);
    // Recorded: the chat as a stream, the completion whole.
    RawResponse s = RawExchange(
        rec.port(), RequestText("POST", "/v1/chat/completions", kChatStream));
    ASSERT_EQ(s.status, 200);
    RawResponse c = RawExchange(
        rec.port(),
        RequestText("POST", "/v1/completions", kCompletionNoStream));
    ASSERT_EQ(c.status, 200);
    for (const std::string& p : Payloads(s.body)) {
      rapidjson::Document d = Json(p);
      if (!d["choices"].Empty() &&
          d["choices"][0]["delta"].HasMember("content")) {
        streamed_text += d["choices"][0]["delta"]["content"].GetString();
      }
    }
    whole_text = Json(c.body)["choices"][0]["text"].GetString();
  }
  ASSERT_EQ(streamed_text, "one two three four");

  ServerOptions po;
  po.mode = ServerMode::kReplay;
  po.store = store.get();
  po.replay.on_miss = MissPolicy::kConvert;
  po.front.quiet = true;
  InProcessRewind replay(po);

  // The stream, asked for whole: one chat.completion, at the stream's end
  // (TTFT 100 + 3 gaps of 40 = 220 ms).
  auto t0 = std::chrono::steady_clock::now();
  RawResponse whole =
      RawExchange(replay.port(),
                  RequestText("POST", "/v1/chat/completions", kChatNoStream));
  const double whole_ms = std::chrono::duration<double, std::milli>(
                              std::chrono::steady_clock::now() - t0)
                              .count();
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(HeaderOf(whole, "X-Rewind"), "converted");
  EXPECT_EQ(HeaderOf(whole, "Content-Type"), "application/json");
  EXPECT_FALSE(whole.chunked);
  rapidjson::Document d = Json(whole.body);
  EXPECT_STREQ(d["object"].GetString(), "chat.completion");
  EXPECT_STREQ(d["choices"][0]["message"]["content"].GetString(),
               "one two three four");
  EXPECT_EQ(d["usage"]["completion_tokens"].GetInt(), 4);
  EXPECT_GE(whole_ms, 215);
  EXPECT_LT(whole_ms, 1000);

  // The completion, asked for as a stream: tokens spread over its time.
  t0 = std::chrono::steady_clock::now();
  RawResponse stream = RawExchange(
      replay.port(), RequestText("POST", "/v1/completions", kCompletionStream));
  const double stream_ms = std::chrono::duration<double, std::milli>(
                               std::chrono::steady_clock::now() - t0)
                               .count();
  EXPECT_EQ(stream.status, 200);
  EXPECT_EQ(HeaderOf(stream, "X-Rewind"), "converted");
  EXPECT_TRUE(stream.chunked);
  EXPECT_EQ(HeaderOf(stream, "Content-Type"), "text/event-stream");
  bool done = false;
  std::string text;
  for (const std::string& p : Payloads(stream.body, &done)) {
    text += Json(p)["choices"][0]["text"].GetString();
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(text, whole_text);
  EXPECT_GE(stream_ms, 175);  // 100 + 2 gaps of 40, as recorded
  EXPECT_LT(stream_ms, 1000);
  EXPECT_GT(stream.chunks.size(), 2u);  // arrived piece by piece

  // Asked the same way as recorded: an ordinary hit.
  EXPECT_EQ(HeaderOf(RawExchange(replay.port(),
                                 RequestText("POST", "/v1/chat/completions",
                                             kChatStream)),
                     "X-Rewind"),
            "hit");
  // Differing in more than stream: still a miss.
  RawResponse miss = RawExchange(
      replay.port(),
      RequestText(
          "POST", "/v1/chat/completions",
          R"({"model":"demo","messages":[{"role":"user","content":"other"}]})"));
  EXPECT_EQ(miss.status, 404);
  EXPECT_EQ(HeaderOf(miss, "X-Rewind"), "miss");
  // Counted apart from hits and misses.
  RawResponse stats =
      RawExchange(replay.port(), RequestText("GET", "/__rewind/stats", ""));
  rapidjson::Document st = Json(stats.body);
  EXPECT_EQ(st["converted"].GetInt(), 2);
  EXPECT_EQ(st["misses"].GetInt(), 1);
  EXPECT_EQ(st["hits"].GetInt(), 1);
  RawResponse metrics =
      RawExchange(replay.port(), RequestText("GET", "/metrics", ""));
  EXPECT_NE(metrics.body.find("outcome=\"converted\",code=\"200\"} 2"),
            std::string::npos)
      << metrics.body;
}

TEST(ConvertOverHttp, WithoutConvertTheFlippedRequestIsAMiss) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  {
    ServerOptions so;
    so.mode = ServerMode::kServe;
    so.synth.output = OutputMode::Parse("echo", nullptr).value();
    InProcessRewind backend(so);
    ServerOptions ro;
    ro.mode = ServerMode::kRecord;
    ro.store = store.get();
    ro.upstream.backend = "http://127.0.0.1:" + std::to_string(backend.port());
    ro.front.quiet = true;
    InProcessRewind rec(ro);
    ASSERT_EQ(
        RawExchange(rec.port(),
                    RequestText("POST", "/v1/chat/completions", kChatStream))
            .status,
        200);
  }
  ServerOptions po;
  po.mode = ServerMode::kReplay;
  po.store = store.get();
  po.front.quiet = true;
  InProcessRewind replay(po);
  RawResponse r =
      RawExchange(replay.port(),
                  RequestText("POST", "/v1/chat/completions", kChatNoStream));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("stream"), std::string::npos)
      << r.body;  // named as the difference
  EXPECT_TRUE(ParseMissPolicy("convert").ok());
  EXPECT_FALSE(ParseMissPolicy("convertx").ok());
}

}  // namespace
}  // namespace rwd
