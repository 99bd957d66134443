// rewind check and rewind load against real servers on 127.0.0.1.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <mutex>
#include <sstream>

#include "cli/commands.h"
#include "cli/compare.h"
#include "testutil/fake_clock.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using namespace std::chrono_literals;
using testing::BackgroundServer;
using testing::OpenTestStore;
using testing::TempDir;

// A chat backend whose answer can change: its content, its id/created,
// and how a stream is cut into chunks.
class Backend {
 public:
  std::atomic<int> calls{0};
  std::string content = "Paris.";
  bool rechunk = false;

  Backend() {
    server_.server().Post(
        "/v1/chat/completions",
        [this](const httplib::Request& req, httplib::Response& res) {
          const int n = ++calls;
          const std::string id = "chatcmpl-" + std::to_string(n);
          if (req.body.find("\"stream\":true") == std::string::npos) {
            res.set_content("{\"id\":\"" + id + "\",\"created\":" +
                                std::to_string(1700000000 + n) +
                                ",\"object\":\"chat.completion\",\"choices\":[{"
                                "\"index\":0,\"message\":"
                                "{\"role\":\"assistant\",\"content\":\"" +
                                content +
                                "\"},\"finish_reason\":\"stop\"}],\"usage\":{"
                                "\"prompt_tokens\":3,"
                                "\"completion_tokens\":2,\"total_tokens\":5}}",
                            "application/json");
            return;
          }
          std::vector<std::string> events;
          auto event = [&](const std::string& delta, const char* finish) {
            return "data: {\"id\":\"" + id +
                   "\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
                   delta + "\"},\"finish_reason\":" + finish + "}]}\n\n";
          };
          events = {event("Par", "null"), event("is.", "null"),
                    event("", "\"stop\""), "data: [DONE]\n\n"};
          const bool whole = rechunk;
          res.set_chunked_content_provider(
              "text/event-stream",
              [events, whole](size_t, httplib::DataSink& sink) {
                if (whole) {
                  std::string all;
                  for (const auto& e : events) all += e;
                  sink.write(all.data(), all.size());
                } else {
                  for (const auto& e : events) {
                    sink.write(e.data(), e.size());
                    std::this_thread::sleep_for(5ms);
                  }
                }
                sink.done();
                return true;
              });
        });
    server_.Start();
  }
  std::string url() const { return server_.url(); }

 private:
  BackgroundServer server_;
};

// Records one plain and one streamed chat through rewind record.
void Record(Store* store, Backend* backend) {
  ServerOptions o;
  o.mode = ServerMode::kRecord;
  o.store = store;
  o.upstream.backend = backend->url();
  o.front.quiet = true;
  testing::InProcessRewind rec(o);
  auto c = rec.Client();
  ASSERT_TRUE(c->Post(
      "/v1/chat/completions",
      R"({"messages":[{"role":"user","content":"capital of France?"}]})",
      "application/json"));
  ASSERT_TRUE(c->Post(
      "/v1/chat/completions",
      R"({"stream":true,"messages":[{"role":"user","content":"capital of France?"}]})",
      "application/json"));
}

CheckFlags Flags(const Backend& b) {
  CheckFlags f;
  f.target = b.url();
  f.concurrency = 2;
  return f;
}

TEST(Check, PassesAgainstTheRecordedBackendIgnoringIdAndCreated) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Record(store.get(), &backend);
  // Every answer now carries a new id and created: still a pass.
  std::ostringstream out, err;
  EXPECT_EQ(RunCheck(store.get(), Flags(backend), out, err), kExitOk)
      << out.str() << err.str();
  EXPECT_NE(out.str().find("2 passed, 0 changed, 0 failed"), std::string::npos)
      << out.str();
}

TEST(Check, FailsWithAPreciseFieldDiffWhenOneFieldChanges) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Record(store.get(), &backend);
  backend.content = "Paris, France.";
  CheckFlags f = Flags(backend);
  f.junit_path = dir.File("check.xml");
  f.json_path = dir.File("check.json");
  std::ostringstream out, err;
  EXPECT_EQ(RunCheck(store.get(), f, out, err), kExitFindings);
  EXPECT_NE(out.str().find(
                "choices[0].message.content: \"Paris.\" -> \"Paris, France.\""),
            std::string::npos)
      << out.str();
  // The unchanged stream ("Paris.") still passes.
  EXPECT_NE(out.str().find("1 passed, 1 changed"), std::string::npos)
      << out.str();
  // JUnit XML: well-formed, one testcase per exchange, one failure.
  const std::string xml = testing::ReadFile(f.junit_path);
  EXPECT_EQ(
      std::system(
          ("/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as E; "
           "s = E.parse(sys.argv[1]).getroot().find('testsuite'); "
           "assert s.get('tests') == '2' and s.get('failures') == '1', "
           "s.attrib; "
           "assert len(s.findall('testcase')) == 2; "
           "assert len(s.findall('testcase/failure')) == 1\" " +
           f.junit_path)
              .c_str()),
      0)
      << xml;
  rapidjson::Document d;
  d.Parse(testing::ReadFile(f.json_path).c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_EQ(d["changed"].GetInt(), 1);
  EXPECT_TRUE(d["timing"].IsArray());
}

TEST(Check, AReChunkedStreamWithTheSameContentIsEqual) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Record(store.get(), &backend);
  backend.rechunk = true;  // one piece instead of four
  std::ostringstream out, err;
  EXPECT_EQ(RunCheck(store.get(), Flags(backend), out, err), kExitOk)
      << out.str();
}

TEST(Check, NoAnswerIsExitTwo) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Record(store.get(), &backend);
  CheckFlags f = Flags(backend);
  f.target = "http://127.0.0.1:1";
  std::ostringstream out, err;
  EXPECT_EQ(RunCheck(store.get(), f, out, err), kExitError);
  EXPECT_NE(out.str().find("2 failed to answer"), std::string::npos)
      << out.str();
}

TEST(Compare, StreamsCompareByContentToolCallsAndFloatsWithinTolerance) {
  Response a, b;
  a.headers = b.headers = {{"Content-Type", "text/event-stream"}};
  a.chunks = {
      {0,
       "data: "
       "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
       "\"id\":\"call_1\","
       "\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"a\\\":\"}}]}}]}"
       "\n\n"},
      {5,
       "data: "
       "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
       "\"function\":{\"arguments\":\"1}\"}}]},\"finish_reason\":\"tool_"
       "calls\"}]}\n\ndata: [DONE]\n\n"}};
  b.chunks = {
      {0,
       "data: "
       "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
       "\"id\":\"call_9\","
       "\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
       "\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n"}};
  EXPECT_TRUE(CompareResponses(a, b, {}).empty())
      << CompareResponses(a, b, {})[0].path;
  Response x, y;
  x.chunks = {{0, R"({"score":0.5001,"label":"a"})"}};
  y.chunks = {{0, R"({"score":0.5002,"label":"a"})"}};
  EXPECT_EQ(CompareResponses(x, y, {}).size(), 1u);
  CompareOptions loose;
  loose.float_tolerance = 0.001;
  EXPECT_TRUE(CompareResponses(x, y, loose).empty());
  CompareOptions ignore;
  ignore.ignore_fields = {"score"};
  EXPECT_TRUE(CompareResponses(x, y, ignore).empty());
  Response p, q;
  p.chunks = {{0, "plain bytes"}};
  q.chunks = {{0, "plain bytez"}};
  ASSERT_EQ(CompareResponses(p, q, {}).size(), 1u);
  EXPECT_EQ(CompareResponses(p, q, {})[0].path, "body");
}

// Bodies nested deeper than kMaxJsonDepth are compared as bytes: no crash
// on a million levels, and no difference lost below the limit.
TEST(Compare, BodiesTooDeepForJsonAreComparedAsBytes) {
  auto nest = [](int n, const std::string& inner) {
    return std::string(n, '[') + inner + std::string(n, ']');
  };
  Response x, y;
  x.chunks = {{0, R"({"a":)" + nest(1000000, "") + R"(,"b":1})"}};
  y.chunks = {{0, R"({"a":1,"b":1})"}};
  std::vector<Difference> d = CompareResponses(x, y, {});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].path, "body");
  EXPECT_TRUE(CompareResponses(x, x, {}).empty());
  Response p, q;
  p.chunks = {{0, nest(300, "1")}};
  q.chunks = {{0, nest(300, "2")}};
  ASSERT_EQ(CompareResponses(p, q, {}).size(), 1u);
  EXPECT_EQ(CompareResponses(p, q, {})[0].path, "body");
  // An SSE event too deep to read is compared by its data, as text.
  Response s, t;
  s.headers = t.headers = {{"Content-Type", "text/event-stream"}};
  s.chunks = {
      {0,
       "data: "
       "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"x\":" +
           nest(1000000, "") + "}\n\ndata: [DONE]\n\n"}};
  t.chunks = {
      {0,
       "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
       "data: [DONE]\n\n"}};
  EXPECT_FALSE(CompareResponses(s, t, {}).empty());
  EXPECT_TRUE(CompareResponses(s, s, {}).empty());
}

// An Ollama-style backend: /api/chat streams NDJSON whose created_at and
// durations differ on every call.
class OllamaBackend {
 public:
  std::vector<std::string> words = {"Par", "is."};

  OllamaBackend() {
    server_.server().Post("/api/chat", [this](const httplib::Request&,
                                              httplib::Response& res) {
      const auto now = std::chrono::system_clock::now().time_since_epoch();
      const std::string at = std::to_string(
          std::chrono::duration_cast<std::chrono::microseconds>(now).count());
      std::string body;
      for (const std::string& w : words) {
        body += R"({"model":"llama3.2","created_at":"2026-11-29T00:00:00.)" +
                at + R"(Z","message":{"role":"assistant","content":")" + w +
                R"("},"done":false})"
                "\n";
      }
      body +=
          R"({"model":"llama3.2","created_at":"2026-11-29T00:00:00.)" + at +
          R"(Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":)" +
          at + R"(,"load_duration":)" + at +
          R"(,"prompt_eval_count":3,"prompt_eval_duration":)" + at +
          R"(,"eval_count":2,"eval_duration":)" + at + "}\n";
      res.set_chunked_content_provider("application/x-ndjson",
                                       [body](size_t, httplib::DataSink& sink) {
                                         sink.write(body.data(), body.size());
                                         sink.done();
                                         return true;
                                       });
    });
    server_.Start();
  }
  std::string url() const { return server_.url(); }

 private:
  BackgroundServer server_;
};

TEST(Check, NdjsonStreamsCompareLineByLineAsJson) {
  TempDir dir;
  OllamaBackend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  {
    ServerOptions o;
    o.mode = ServerMode::kRecord;
    o.store = store.get();
    o.upstream.backend = backend.url();
    o.front.quiet = true;
    testing::InProcessRewind rec(o);
    for (const char* q : {"capital of France?", "capital of Italy?"}) {
      auto r = rec.Client()->Post(
          "/api/chat",
          std::string(
              R"({"model":"llama3.2","messages":[{"role":"user","content":")") +
              q + "\"}]}",
          "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200);
    }
  }
  std::this_thread::sleep_for(2ms);  // created_at and the durations change
  CheckFlags f;
  f.target = backend.url();
  f.ignore_fields = {"created_at"};
  std::ostringstream out, err;
  EXPECT_EQ(RunCheck(store.get(), f, out, err), kExitOk)
      << out.str() << err.str();
  EXPECT_NE(out.str().find("2 passed, 0 changed, 0 failed"), std::string::npos)
      << out.str();
  // created_at and Ollama's durations are volatile by default too.
  f.ignore_fields.clear();
  std::ostringstream out2;
  EXPECT_EQ(RunCheck(store.get(), f, out2, err), kExitOk) << out2.str();

  // One changed line is named by its index and field.
  backend.words = {"Par", "is!"};
  std::ostringstream out3;
  EXPECT_EQ(RunCheck(store.get(), f, out3, err), kExitFindings);
  EXPECT_NE(out3.str().find("stream[1].message.content: \"is.\" -> \"is!\""),
            std::string::npos)
      << out3.str();
  // --ignore-field applies to every line.
  f.ignore_fields = {"message.content"};
  std::ostringstream out4;
  EXPECT_EQ(RunCheck(store.get(), f, out4, err), kExitOk) << out4.str();
  // A line more is a difference too.
  backend.words = {"Par", "is", "."};
  f.ignore_fields.clear();
  std::ostringstream out5;
  EXPECT_EQ(RunCheck(store.get(), f, out5, err), kExitFindings);
  EXPECT_NE(out5.str().find("stream[3]: (absent)"), std::string::npos)
      << out5.str();
}

TEST(Compare, NdjsonLinesThatAreNotJsonStayText) {
  EXPECT_EQ(NdjsonArray("{\"a\":1}\n\nnot json\r\n[2]\n"),
            R"([{"a":1},"not json",[2]])");
  EXPECT_EQ(NdjsonArray(""), "[]");
  Response a, b;
  a.headers = b.headers = {{"Content-Type", "application/x-ndjson"}};
  a.chunks = {{0, "{\"x\":1,\"created_at\":\"t1\"}\n"}, {5, "oops\n"}};
  b.chunks = {{0, "{\"x\":1,\"created_at\":\"t2\"}\noops\n"}};
  EXPECT_TRUE(CompareResponses(a, b, {}).empty());
  b.chunks = {{0, "{\"x\":2}\noops\n"}};
  ASSERT_EQ(CompareResponses(a, b, {}).size(), 1u);
  EXPECT_EQ(CompareResponses(a, b, {})[0].path, "stream[0].x");
}

// A target that notes when each request arrives.
class Stopwatch {
 public:
  Stopwatch() {
    server_.server().Post(
        ".*", [this](const httplib::Request&, httplib::Response& res) {
          std::lock_guard<std::mutex> lock(mu_);
          arrivals_.push_back(std::chrono::steady_clock::now());
          res.set_content("{}", "application/json");
        });
    server_.Start();
  }
  std::string url() const { return server_.url(); }
  std::vector<double> GapsMs() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<double> gaps;
    for (size_t i = 1; i < arrivals_.size(); ++i) {
      gaps.push_back(std::chrono::duration<double, std::milli>(arrivals_[i] -
                                                               arrivals_[i - 1])
                         .count());
    }
    return gaps;
  }

 private:
  BackgroundServer server_;
  std::mutex mu_;
  std::vector<std::chrono::steady_clock::time_point> arrivals_;
};

// Wall-clock bounds allow for a sanitizer build: under ASan or TSan each
// thread hand-off and connect costs several times what it does in the
// release build (in CI, a planned 20 ms gap arrived as 37 ms under one).
// The exact schedule is asserted on a FakeClock below; here, that real
// sends follow it.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr double kWallSlack = 3.0;
#else
constexpr double kWallSlack = 1.0;
#endif

TEST(Load, ReplaysTheRecordedArrivalPatternTimesSpeed) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  // A burst with uneven gaps: 0, 200, 260, 560, 600 ms.
  const std::vector<int64_t> at_ms = {0, 200, 260, 560, 600};
  for (size_t i = 0; i < at_ms.size(); ++i) {
    Exchange e;
    e.request.method = "POST";
    e.request.path = "/v1/chat/completions";
    e.request.body = "{\"n\":" + std::to_string(i) + "}";
    e.key_hex = Canonicalizer(store->rules()).Key(e.request).ToHex();
    e.response.status = 200;
    e.response.chunks = {{1000, "{}"}};
    e.started_at_us = 1700000000000000 + at_ms[i] * 1000;
    store->Append(e);
  }
  ASSERT_TRUE(store->Flush().ok());
  Stopwatch target;
  LoadFlags f;
  f.target = target.url();
  f.speed = 2;
  f.json_path = dir.File("load.json");
  std::ostringstream out, err;
  ASSERT_EQ(RunLoad(store.get(), f, out, err), kExitOk) << err.str();
  std::vector<double> gaps = target.GapsMs();
  ASSERT_EQ(gaps.size(), 4u) << out.str();
  const std::vector<double> expected = {100, 30, 150, 20};  // recorded / 2
  for (size_t i = 0; i < gaps.size(); ++i) {
    EXPECT_NEAR(gaps[i], expected[i], 15.0 * kWallSlack) << "gap " << i;
  }
  rapidjson::Document d;
  d.Parse(testing::ReadFile(f.json_path).c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_EQ(d["requests"].GetInt(), 5);
  EXPECT_LT(d["send_lag_ms"]["p99"].GetDouble(), 15.0 * kWallSlack);
}

// On a FakeClock the schedule is exact: each send waits on the clock until
// its planned time (recorded offsets / --speed) and no later, however many
// senders there are.
TEST(Load, PacesItsSendsOnItsClock) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  const std::vector<int64_t> at_ms = {0, 200, 260, 560, 600};
  for (size_t i = 0; i < at_ms.size(); ++i) {
    Exchange e;
    e.request.method = "POST";
    e.request.path = "/v1/chat/completions";
    e.request.body = "{\"n\":" + std::to_string(i) + "}";
    e.key_hex = Canonicalizer(store->rules()).Key(e.request).ToHex();
    e.response.status = 200;
    e.response.chunks = {{1000, "{}"}};
    e.started_at_us = 1700000000000000 + at_ms[i] * 1000;
    store->Append(e);
  }
  ASSERT_TRUE(store->Flush().ok());
  Stopwatch target;
  testing::FakeClock clock;
  const int64_t t0 = clock.NowMicros();
  LoadFlags f;
  f.target = target.url();
  f.speed = 2;
  f.clock = &clock;
  f.json_path = dir.File("load.json");
  std::ostringstream out, err;
  ASSERT_EQ(RunLoad(store.get(), f, out, err), kExitOk) << err.str();
  EXPECT_EQ(target.GapsMs().size(), 4u);
  const std::vector<int64_t> sleeps = clock.sleeps();
  ASSERT_FALSE(sleeps.empty());
  for (int64_t planned_ms : {100, 130, 280, 300}) {
    EXPECT_NE(std::find(sleeps.begin(), sleeps.end(), t0 + planned_ms * 1000),
              sleeps.end())
        << planned_ms;
  }
  EXPECT_TRUE(std::is_sorted(sleeps.begin(), sleeps.end()));
  EXPECT_EQ(sleeps.back(), t0 + 300000);
  EXPECT_NE(out.str().find("5 requests in 0.3 s"), std::string::npos)
      << out.str();
  rapidjson::Document d;
  d.Parse(testing::ReadFile(f.json_path).c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_EQ(d["requests"].GetInt(), 5);
  EXPECT_EQ(d["seconds"].GetDouble(), 0.3);
}

TEST(Load, StopsAtTheCountInClosedLoopAndCountsErrors) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Exchange e;
  e.request.method = "POST";
  e.request.path = "/x";
  e.key_hex = "00000000000000000000000000000000";
  e.response.status = 200;
  store->Append(e);
  ASSERT_TRUE(store->Flush().ok());
  Stopwatch target;
  LoadFlags f;
  f.target = target.url();
  f.concurrency = 4;
  f.count = 200;
  std::ostringstream out, err;
  ASSERT_EQ(RunLoad(store.get(), f, out, err), kExitOk);
  EXPECT_NE(out.str().find("200 requests"), std::string::npos) << out.str();
  EXPECT_EQ(target.GapsMs().size(), 199u);
  LoadFlags dead = f;
  dead.target = "http://127.0.0.1:1";
  dead.count = 3;
  std::ostringstream out2;
  ASSERT_EQ(RunLoad(store.get(), dead, out2, err), kExitOk);
  EXPECT_NE(out2.str().find("connection: 3"), std::string::npos) << out2.str();
  LoadFlags both = f;
  both.rate = 10;
  EXPECT_EQ(RunLoad(store.get(), both, out2, err), kExitError);
}

// --json escapes what it writes: a recorded path may hold any byte.
TEST(Load, JsonReportEscapesPathsAndStaysValid) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Exchange e;
  e.request.method = "POST";
  e.request.path = "/v1/a\"b\\c";
  e.key_hex = "00000000000000000000000000000000";
  e.response.status = 200;
  store->Append(e);
  ASSERT_TRUE(store->Flush().ok());
  Stopwatch target;
  LoadFlags f;
  f.target = target.url();
  f.concurrency = 1;
  f.count = 2;
  f.json_path = dir.File("load.json");
  std::ostringstream out, err;
  ASSERT_EQ(RunLoad(store.get(), f, out, err), kExitOk) << err.str();
  rapidjson::Document d;
  d.Parse(testing::ReadFile(f.json_path).c_str());
  ASSERT_FALSE(d.HasParseError()) << testing::ReadFile(f.json_path);
  EXPECT_EQ(d["requests"].GetInt(), 2);
  ASSERT_EQ(d["endpoints"].Size(), 1u) << out.str();
  EXPECT_STREQ(d["endpoints"][0]["endpoint"].GetString(), "POST /v1/a\"b\\c");
  EXPECT_TRUE(d["endpoints"][0]["target"]["total_ms"]["p50"].IsNumber());

  LoadFlags unwritable = f;
  unwritable.json_path = dir.File("missing/load.json");
  std::ostringstream out2, err2;
  EXPECT_EQ(RunLoad(store.get(), unwritable, out2, err2), kExitError);
  EXPECT_NE(err2.str().find("cannot write --json"), std::string::npos)
      << err2.str();
}

// A target whose every answer is a slow stream: headers at once, then a
// byte every 50 ms for 10 s. It stops as soon as its client is gone.
class SlowStreams {
 public:
  std::atomic<int> started{0}, abandoned{0};
  SlowStreams() {
    server_.server().Post(
        ".*", [this](const httplib::Request&, httplib::Response& res) {
          ++started;
          res.set_chunked_content_provider(
              "text/plain", [this](size_t, httplib::DataSink& sink) {
                for (int i = 0; i < 200; ++i) {
                  if (!sink.write("x", 1)) {
                    ++abandoned;
                    return false;
                  }
                  std::this_thread::sleep_for(50ms);
                }
                sink.done();
                return true;
              });
        });
    server_.Start();
  }
  std::string url() const { return server_.url(); }

 private:
  BackgroundServer server_;
};

// Three POSTs recorded 100 ms apart.
void FillThree(Store* store) {
  for (int i = 0; i < 3; ++i) {
    Exchange e;
    e.request.method = "POST";
    e.request.path = "/v1/chat/completions";
    e.request.body = "{\"n\":" + std::to_string(i) + "}";
    e.key_hex = Canonicalizer(store->rules()).Key(e.request).ToHex();
    e.response.status = 200;
    e.response.chunks = {{1000, "{}"}};
    e.started_at_us = 1700000000000000 + i * 100000;
    store->Append(e);
  }
  ASSERT_TRUE(store->Flush().ok());
}

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
      .count();
}

TEST(Load, StopsAtTheDurationAndCutsOffWhatIsStillInFlight) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  FillThree(store.get());
  SlowStreams target;
  // As reported: --duration with a --count it cannot reach in that time, and
  // answers that outlast it. It used to wait a whole --timeout more.
  LoadFlags f;
  f.target = target.url();
  f.duration_s = 1;
  f.count = 100000;
  f.timeout_s = 20;
  f.json_path = dir.File("load.json");
  std::ostringstream out, err;
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(RunLoad(store.get(), f, out, err), kExitOk) << err.str();
  double took = SecondsSince(start);
  EXPECT_GE(took, 0.95);
  EXPECT_LT(took, 1.6) << out.str();
  EXPECT_NE(out.str().find("stopped by --duration, "), std::string::npos)
      << out.str();
  rapidjson::Document d;
  d.Parse(testing::ReadFile(f.json_path).c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_STREQ(d["stopped_by"].GetString(), "duration");
  EXPECT_GE(d["cut_off"].GetInt(), 3);
  EXPECT_EQ(d["requests"].GetInt(), 0);
  EXPECT_TRUE(d["errors"].ObjectEmpty()) << "a request cut off is not an error";

  // Closed loop against a fast target: as many as fit in the duration.
  Stopwatch fast;
  LoadFlags closed;
  closed.target = fast.url();
  closed.concurrency = 2;
  closed.duration_s = 0.5;
  closed.count = 100000000;
  closed.timeout_s = 20;
  std::ostringstream out2;
  start = std::chrono::steady_clock::now();
  ASSERT_EQ(RunLoad(store.get(), closed, out2, err), kExitOk);
  took = SecondsSince(start);
  EXPECT_GE(took, 0.45);
  EXPECT_LT(took, 1.0) << out2.str();
  EXPECT_NE(out2.str().find("stopped by --duration"), std::string::npos)
      << out2.str();
}

TEST(Load, AStopSignalEndsTheRunWithAPartialReport) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  FillThree(store.get());
  SlowStreams target;
  std::atomic<int> signal{0};
  LoadFlags f;
  f.target = target.url();
  f.concurrency = 2;
  f.timeout_s = 20;
  f.stop_signal = &signal;
  std::thread stopper([&] {
    std::this_thread::sleep_for(300ms);
    signal = SIGINT;
  });
  std::ostringstream out, err;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(RunLoad(store.get(), f, out, err), kExitOk) << err.str();
  const double took = SecondsSince(start);
  stopper.join();
  EXPECT_LT(took, 0.8) << out.str();
  EXPECT_NE(out.str().find("0 requests in"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("stopped by SIGINT, 2 in flight cut off"),
            std::string::npos)
      << out.str();
}

// Runs the rewind binary with "args", sends it "sig" after "delay", and
// waits for it at most 10 s. Returns its exit code (-1 if it had to be
// killed) and what it wrote.
int RunAndSignal(const std::vector<std::string>& args,
                 std::chrono::milliseconds delay, int sig, std::string* output,
                 double* seconds_after_signal) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return -2;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<char*> argv;
    static std::string binary = REWIND_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0)
      output->append(buf, static_cast<size_t>(n));
  });
  std::this_thread::sleep_for(delay);
  kill(pid, sig);
  const auto signalled = std::chrono::steady_clock::now();
  int status = 0;
  int code = -1;
  while (SecondsSince(signalled) < 10) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  *seconds_after_signal = SecondsSince(signalled);
  if (code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  reader.join();
  close(pipe_fds[0]);
  return code;
}

TEST(Load, SigtermStopsTheRealCommandWithAPartialReport) {
  TempDir dir;
  {
    auto store = OpenTestStore(dir.File("rec.sqlite"));
    FillThree(store.get());
  }
  SlowStreams target;
  std::string out;
  double after = 0;
  const int code =
      RunAndSignal({"load", "--db", dir.File("rec.sqlite"), "--target",
                    target.url(), "--concurrency", "2", "--timeout", "60"},
                   500ms, SIGTERM, &out, &after);
  EXPECT_EQ(code, 0) << out;
  EXPECT_LT(after, 1.0) << out;
  EXPECT_NE(out.find("stopped by SIGTERM, 2 in flight cut off"),
            std::string::npos)
      << out;
  // Other commands end on SIGINT at once, as any program does.
  std::string check_out;
  const int check_code =
      RunAndSignal({"check", "--db", dir.File("rec.sqlite"), "--target",
                    target.url(), "--timeout", "60"},
                   500ms, SIGINT, &check_out, &after);
  EXPECT_EQ(check_code, 128 + SIGINT) << check_out;
  EXPECT_LT(after, 1.0);
}

}  // namespace
}  // namespace rwd
