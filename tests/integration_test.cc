// End-to-end tests: real servers on 127.0.0.1, ephemeral ports, real HTTP.
#include <SQLiteCpp/SQLiteCpp.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>

#include "rewind/server.h"
#include "rewind/store.h"
#include "testutil/fake_clock.h"
#include "testutil/raw_http.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using namespace std::chrono_literals;
using testing::BackgroundServer;
using testing::Connect;
using testing::CountOf;
using testing::HeaderOf;
using testing::InProcessRewind;
using testing::OpenTestStore;
using testing::RawExchange;
using testing::RawResponse;
using testing::ReadFile;
using testing::RequestText;
using testing::RewindProcess;
using testing::TempDir;

using Steady = std::chrono::steady_clock;

double MsSince(Steady::time_point t) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t).count();
}

// Uneven gaps between SSE events, 5 to 50 ms: 20 events, 500 ms in all.
const std::vector<int> kGapsMs = {20, 5,  50, 12, 30, 7,  45, 18, 25, 9,
                                  40, 15, 35, 6,  28, 11, 48, 22, 33, 41};

const char kGzipBody[] =
    "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\xca\x48\xcd\xc9\xc9\x57"
    "\xb2\x52\x4a\xce\xcf\x2d\x28\x4a\x2d\x2e\x4e\x4d\x51\x28\xcf\x2f\xca\x49"
    "\x51\xaa\x05\x00\x86\x2f\x3b\x1a\x1c\x00\x00\x00";

std::string SseEvent(int i) {
  return "data: {\"choices\":[{\"delta\":{\"content\":\"tok" +
         std::to_string(i) + "\"}}]}\n\n";
}

// The backend every test records from.
class Backend {
 public:
  Backend() {
    httplib::Server& s = bg_.server();
    s.Post("/v1/chat/completions", [this](const httplib::Request& req,
                                          httplib::Response& res) {
      calls_++;
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_authorization_ = req.get_header_value("Authorization");
        if (req.has_header("REWIND_START_US")) saw_internal_header_ = true;
      }
      rapidjson::Document d;
      d.Parse(req.body.c_str());
      std::string content = "?";
      if (!d.HasParseError() && d.HasMember("messages")) {
        content = d["messages"][0]["content"].GetString();
      }
      std::string body = "{\"id\":\"chatcmpl-" + std::to_string(calls_) +
                         "\",\"object\":\"chat.completion\",\"choices\":[{"
                         "\"message\":{\"role\":\"assistant\",\"content\":\"" +
                         content + " " + std::string(900, 'x') + "\"}}]}";
      res.set_header("Set-Cookie", "session=SECRETCOOKIE");
      res.set_header("X-Backend", "yes");
      res.set_content(body, "application/json");
    });
    s.Post("/sse", [](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider(
          "text/event-stream", [](size_t, httplib::DataSink& sink) {
            auto start = Steady::now();
            auto at = start;
            for (size_t i = 0; i < kGapsMs.size(); ++i) {
              at += std::chrono::milliseconds(kGapsMs[i]);
              std::this_thread::sleep_until(at);
              std::string e = SseEvent(static_cast<int>(i));
              if (!sink.write(e.data(), e.size())) return false;
            }
            sink.done();
            return true;
          });
    });
    s.Post("/endless", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider(
          "text/event-stream", [this](size_t, httplib::DataSink& sink) {
            for (int i = 0; i < 500; ++i) {
              std::string e = SseEvent(i);
              if (!sink.write(e.data(), e.size())) {
                endless_broke_ = Steady::now();
                endless_broken_ = true;
                return false;
              }
              std::this_thread::sleep_for(10ms);
            }
            sink.done();
            return true;
          });
    });
    s.Post("/reset-midstream", [](const httplib::Request&,
                                  httplib::Response& res) {
      res.set_chunked_content_provider(
          "text/event-stream", [](size_t, httplib::DataSink& sink) {
            for (int i = 0; i < 3; ++i) {
              std::string e = SseEvent(i);
              sink.write(e.data(), e.size());
              std::this_thread::sleep_for(5ms);
            }
            return false;  // breaks the connection without the last chunk
          });
    });
    s.Post("/short-body", [](const httplib::Request&, httplib::Response& res) {
      res.set_content_provider(
          100, "application/json", [](size_t, size_t, httplib::DataSink& sink) {
            sink.write("{\"partial\":\"forty bytes of a hundred...\"", 40);
            return false;  // closes with 60 of the 100 bytes never sent
          });
    });
    s.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(2500ms);
      res.set_content("{}", "application/json");
    });
    s.Get("/status/503", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content("{\"error\":\"overloaded\"}", "application/json");
    });
    s.Get("/binary", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string("\0\x01\x02\xff\xfe binary", 12),
                      "application/octet-stream");
    });
    s.Get("/gzip", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Content-Encoding", "gzip");
      res.set_content(std::string(kGzipBody, sizeof(kGzipBody) - 1),
                      "application/json");
    });
    bg_.Start();
  }
  std::string url() const { return bg_.url(); }
  void Stop() { bg_.Stop(); }
  int calls() const { return calls_; }
  std::string last_authorization() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_authorization_;
  }
  bool endless_broken() const { return endless_broken_; }
  bool saw_internal_header() const { return saw_internal_header_; }
  Steady::time_point endless_broke() const { return endless_broke_; }

 private:
  BackgroundServer bg_;
  std::atomic<int> calls_{0};
  std::mutex mu_;
  std::string last_authorization_;
  std::atomic<bool> endless_broken_{false};
  std::atomic<bool> saw_internal_header_{false};
  Steady::time_point endless_broke_;
};

ServerOptions RecordOptions(Store* store, const std::string& backend) {
  ServerOptions o;
  o.mode = ServerMode::kRecord;
  o.store = store;
  o.upstream.backend = backend;
  return o;
}

ServerOptions ReplayOptions(Store* store, const std::string& latency = "none") {
  ServerOptions o;
  o.mode = ServerMode::kReplay;
  o.store = store;
  o.replay.latency = LatencyModel::Parse(latency).value();
  return o;
}

const std::string kChat =
    R"({"model":"demo","messages":[{"role":"user","content":"What is the capital of France?"}]})";

// A raw HTTP/1.1 exchange over a socket, so tests see the exact framing:
// Content-Length or chunked, and each chunk as the sender framed it.
int CountExchanges(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  return db.execAndGet("SELECT count(*) FROM exchanges").getInt();
}

struct Captured {
  std::string name;
  std::string request;
  RawResponse response = {};
};

std::vector<Captured> Requests() {
  return {
      {"chat", RequestText("POST", "/v1/chat/completions", kChat,
                           "Authorization: Bearer sk-test-SECRET-1\r\n"
                           "Cookie: session=CLIENTSECRET\r\n")},
      {"sse", RequestText("POST", "/sse", "{\"stream\":true}")},
      {"503", RequestText("GET", "/status/503", "")},
      {"binary", RequestText("GET", "/binary", "")},
      {"gzip", RequestText("GET", "/gzip", "", "Accept-Encoding: gzip\r\n")},
  };
}

TEST(RecordReplay, ReplaysByteIdenticalResponsesWithTheBackendGone) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  std::vector<Captured> live = Requests();
  {
    Backend backend;
    auto store = OpenTestStore(db);
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    for (Captured& c : live) {
      c.response = RawExchange(rec.port(), c.request);
      ASSERT_TRUE(c.response.complete) << c.name;
      EXPECT_EQ(HeaderOf(c.response, "X-Rewind"), "record") << c.name;
    }
    EXPECT_EQ(backend.last_authorization(), "Bearer sk-test-SECRET-1");
    EXPECT_FALSE(backend.saw_internal_header())
        << "rewind's pseudo-header was forwarded";
    ASSERT_TRUE(rec.Stop().ok());
    backend.Stop();
  }
  EXPECT_EQ(live[0].response.status, 200);
  EXPECT_EQ(HeaderOf(live[0].response, "X-Backend"), "yes");
  EXPECT_EQ(live[1].response.chunks.size(), kGapsMs.size());
  EXPECT_TRUE(live[1].response.chunked);
  EXPECT_EQ(live[2].response.status, 503);
  EXPECT_EQ(live[3].response.body,
            std::string("\0\x01\x02\xff\xfe binary", 12));
  // Encoded bodies pass through untouched and are not compressed again.
  EXPECT_EQ(live[4].response.body,
            std::string(kGzipBody, sizeof(kGzipBody) - 1));
  EXPECT_EQ(CountOf(live[4].response, "Content-Encoding"), 1);
  EXPECT_EQ(CountExchanges(db), 5);

  auto store = OpenTestStore(db, /*create=*/false);
  InProcessRewind replay(ReplayOptions(store.get()));
  for (const Captured& c : live) {
    RawResponse r = RawExchange(replay.port(), c.request);
    EXPECT_EQ(r.status, c.response.status) << c.name;
    EXPECT_EQ(r.body, c.response.body) << c.name;
    EXPECT_EQ(r.chunked, c.response.chunked) << c.name;
    EXPECT_EQ(r.chunks, c.response.chunks) << c.name;
    EXPECT_EQ(HeaderOf(r, "Content-Type"), HeaderOf(c.response, "Content-Type"))
        << c.name;
    EXPECT_EQ(HeaderOf(r, "Content-Encoding"),
              HeaderOf(c.response, "Content-Encoding"))
        << c.name;
    EXPECT_EQ(HeaderOf(r, "X-Rewind"), "hit") << c.name;
    EXPECT_EQ(HeaderOf(r, "X-Rewind-Key"), HeaderOf(c.response, "X-Rewind-Key"))
        << c.name;
  }
}

TEST(RecordReplay, SecretsNeverReachTheRecording) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  {
    auto store = OpenTestStore(db);
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    RawResponse r = RawExchange(rec.port(), Requests()[0].request);
    ASSERT_EQ(r.status, 200);
    // The client still gets the backend's cookie; only the disk must not.
    EXPECT_EQ(HeaderOf(r, "Set-Cookie"), "session=SECRETCOOKIE");
    ASSERT_TRUE(rec.Stop().ok());
  }
  std::string bytes = ReadFile(db) + ReadFile(db + "-wal");
  EXPECT_EQ(bytes.find("sk-test-SECRET"), std::string::npos);
  EXPECT_EQ(bytes.find("CLIENTSECRET"), std::string::npos);
  EXPECT_EQ(bytes.find("SECRETCOOKIE"), std::string::npos);
  EXPECT_NE(bytes.find("[REDACTED]"), std::string::npos);
  EXPECT_EQ(bytes.find("REWIND_START_US"), std::string::npos)
      << "an internal header reached the recording";
}

TEST(RecordReplay, RedactHeaderAddsToTheSecrets) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  {
    auto store = OpenTestStore(db);
    ServerOptions o = RecordOptions(store.get(), backend.url());
    o.record.redact_headers = {"X-Tenant-Token"};
    InProcessRewind rec(o);
    RawResponse r = RawExchange(
        rec.port(), RequestText("POST", "/v1/chat/completions", kChat,
                                "x-tenant-token: tenant-PLANTED-secret\r\n"));
    ASSERT_EQ(r.status, 200);
    ASSERT_TRUE(rec.Stop().ok());
  }
  std::string bytes = ReadFile(db) + ReadFile(db + "-wal");
  EXPECT_EQ(bytes.find("tenant-PLANTED-secret"), std::string::npos);
}

TEST(RecordReplay, BackendTimeoutGets504AndRecordsNothing) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  auto store = OpenTestStore(db);
  ServerOptions o = RecordOptions(store.get(), backend.url());
  o.upstream.backend_timeout_s = 1;
  InProcessRewind rec(o);
  RawResponse r = RawExchange(rec.port(), RequestText("GET", "/slow", ""));
  EXPECT_EQ(r.status, 504);
  EXPECT_NE(r.body.find("rewind_backend_timeout"), std::string::npos) << r.body;
  ASSERT_TRUE(rec.Stop().ok());
  EXPECT_EQ(CountExchanges(db), 0);
}

TEST(RecordReplay, RecordingAndReplayingWithAnotherApiKeyStillHits) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  auto store = OpenTestStore(db);
  {
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    RawExchange(rec.port(), Requests()[0].request);
  }
  InProcessRewind replay(ReplayOptions(store.get()));
  RawResponse r = RawExchange(
      replay.port(), RequestText("POST", "/v1/chat/completions", kChat,
                                 "Authorization: Bearer sk-other-key\r\n"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(HeaderOf(r, "X-Rewind"), "hit");
}

TEST(RecordReplay, MissNamesTheNearestRecordingAndTheFieldsThatDiffer) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  {
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    RawExchange(rec.port(), Requests()[0].request);
  }
  InProcessRewind replay(ReplayOptions(store.get()));
  const std::string changed =
      R"({"model":"demo","temperature":0.3,"messages":[{"role":"user","content":"What is the capital of Italy?"}]})";
  RawResponse r = RawExchange(
      replay.port(), RequestText("POST", "/v1/chat/completions", changed));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(HeaderOf(r, "X-Rewind"), "miss");
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  ASSERT_FALSE(d.HasParseError()) << r.body;
  const auto& err = d["error"];
  EXPECT_STREQ(err["type"].GetString(), "rewind_miss");
  EXPECT_EQ(std::string(err["key"].GetString()), HeaderOf(r, "X-Rewind-Key"));
  ASSERT_TRUE(err["nearest"].IsObject()) << r.body;
  EXPECT_EQ(err["nearest"]["id"].GetInt(), 1);
  std::vector<std::string> diffs;
  for (const auto& v : err["nearest"]["differences"].GetArray())
    diffs.push_back(v.GetString());
  EXPECT_EQ(diffs,
            (std::vector<std::string>{"messages[0].content", "temperature"}));

  RawResponse other =
      RawExchange(replay.port(), RequestText("GET", "/nothing", ""));
  EXPECT_EQ(other.status, 404);
  EXPECT_NE(other.body.find("\"nearest\":null"), std::string::npos)
      << other.body;
}

TEST(RecordReplay, BackendDownGets502AndRecordsNothing) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  int dead_port;
  {
    BackgroundServer gone;
    gone.Start();
    dead_port = gone.port();
  }
  auto store = OpenTestStore(db);
  InProcessRewind rec(RecordOptions(
      store.get(), "http://127.0.0.1:" + std::to_string(dead_port)));
  RawResponse r = RawExchange(rec.port(), Requests()[0].request);
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("rewind_backend_unavailable"), std::string::npos)
      << r.body;
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/json");
  ASSERT_TRUE(rec.Stop().ok());
  EXPECT_EQ(CountExchanges(db), 0);
}

TEST(RecordReplay, SequenceOfIdenticalRequestsAndReset) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  std::vector<std::string> recorded;
  {
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    for (int i = 0; i < 2; ++i) {
      recorded.push_back(RawExchange(rec.port(), Requests()[0].request).body);
    }
  }
  ASSERT_NE(recorded[0], recorded[1]);  // chatcmpl-1 vs chatcmpl-2
  InProcessRewind replay(ReplayOptions(store.get()));
  auto ask = [&] {
    return RawExchange(replay.port(), Requests()[0].request).body;
  };
  EXPECT_EQ(ask(), recorded[0]);
  EXPECT_EQ(ask(), recorded[1]);
  EXPECT_EQ(ask(), recorded[1]);
  RawResponse reset =
      RawExchange(replay.port(), RequestText("POST", "/__rewind/reset", ""));
  EXPECT_EQ(reset.status, 200);
  EXPECT_EQ(ask(), recorded[0]);
}

TEST(RecordReplay, MissPassthroughForwardsWithoutRecording) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  auto store = OpenTestStore(db);
  ServerOptions o = ReplayOptions(store.get());
  o.replay.on_miss = MissPolicy::kPassthrough;
  o.upstream.backend = backend.url();
  InProcessRewind replay(o);
  RawResponse r = RawExchange(replay.port(), Requests()[0].request);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(HeaderOf(r, "X-Rewind"), "passthrough");
  EXPECT_EQ(backend.calls(), 1);
  ASSERT_TRUE(replay.Stop().ok());
  EXPECT_EQ(CountExchanges(db), 0);
}

TEST(RecordReplay, MissRecordGrowsTheRecording) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  auto store = OpenTestStore(db);
  ServerOptions o = ReplayOptions(store.get());
  o.replay.on_miss = MissPolicy::kRecord;
  o.upstream.backend = backend.url();
  InProcessRewind replay(o);
  RawResponse first = RawExchange(replay.port(), Requests()[0].request);
  EXPECT_EQ(HeaderOf(first, "X-Rewind"), "record");
  RawResponse second = RawExchange(replay.port(), Requests()[0].request);
  EXPECT_EQ(HeaderOf(second, "X-Rewind"), "hit");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(backend.calls(), 1);
  ASSERT_TRUE(replay.Stop().ok());
  EXPECT_EQ(CountExchanges(db), 1);
}

TEST(RecordReplay, OversizedBodyGets413WithJsonAndIsNotRecorded) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  auto store = OpenTestStore(db);
  ServerOptions o = RecordOptions(store.get(), backend.url());
  o.front.max_body_bytes = 1024;
  InProcessRewind rec(o);
  RawResponse r = RawExchange(
      rec.port(),
      RequestText("POST", "/v1/chat/completions", std::string(4096, 'x')));
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("\"error\""), std::string::npos) << r.body;
  EXPECT_EQ(backend.calls(), 0);
  ASSERT_TRUE(rec.Stop().ok());
  EXPECT_EQ(CountExchanges(db), 0);
}

// Record passes a stream through as it arrives instead of buffering it.
TEST(Streaming, RecordRelaysEachEventAsItArrives) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  InProcessRewind rec(RecordOptions(store.get(), backend.url()));
  auto client = rec.Client();
  std::vector<double> arrivals;
  auto start = Steady::now();
  httplib::Headers headers = {{"Accept-Encoding", "gzip, deflate"}};
  auto res = client->Post("/sse", headers, "{}", "application/json");
  ASSERT_TRUE(res);
  // Post() buffers; measure with a receiver instead.
  httplib::Request req;
  req.method = "POST";
  req.path = "/sse";
  req.body = "{}";
  req.headers = headers;
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
    arrivals.push_back(MsSince(start));
    return true;
  };
  start = Steady::now();
  httplib::Response out;
  httplib::Error error;
  ASSERT_TRUE(client->send(req, out, error)) << httplib::to_string(error);
  EXPECT_FALSE(out.has_header("Content-Encoding"));
  ASSERT_GE(arrivals.size(), 2u);
  // The first event is sent at 20 ms, the last at 500 ms.
  EXPECT_LT(arrivals.front(), 150.0);
  EXPECT_GT(arrivals.back(), 450.0);
}

struct Timed {
  double first_ms = 0;
  double total_ms = 0;
  std::string body;
  size_t pieces = 0;
};

Timed TimedPost(int port, const std::string& path, const std::string& body,
                httplib::Headers headers = {}) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  Timed t;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.headers = headers;
  auto start = Steady::now();
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    if (t.pieces++ == 0) t.first_ms = MsSince(start);
    t.body.append(d, n);
    return true;
  };
  httplib::Response res;
  httplib::Error error;
  client.send(req, res, error);
  t.total_ms = MsSince(start);
  return t;
}

TEST(Streaming, ReplayFollowsTheRecordedTimelineAndItsScale) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  {
    Backend backend;
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    TimedPost(rec.port(), "/sse", "{}");
  }
  Result<Exchange> e = store->Get(1);
  ASSERT_TRUE(e.ok());
  const double recorded_first = e->response.chunks.front().offset_us / 1000.0;
  const double recorded_total = e->response.TotalMicros() / 1000.0;
  ASSERT_EQ(e->response.chunks.size(), kGapsMs.size());
  ASSERT_GT(recorded_total, 490.0);

  for (double scale : {1.0, 0.5}) {
    InProcessRewind replay(
        ReplayOptions(store.get(), scale == 1.0 ? "recorded" : "scaled:0.5"));
    Timed t = TimedPost(replay.port(), "/sse", "{}");
    EXPECT_EQ(t.body, e->response.Body());
    EXPECT_GE(t.first_ms, recorded_first * scale - 1.0) << "scale " << scale;
    EXPECT_NEAR(t.total_ms, recorded_total * scale,
                recorded_total * scale * 0.15)
        << "scale " << scale;
  }
}

TEST(Streaming, LatencyHeaderOverridesTheServerModelPerRequest) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  {
    Backend backend;
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    TimedPost(rec.port(), "/sse", "{}");
  }
  InProcessRewind replay(ReplayOptions(store.get(), "recorded"));
  Timed fast =
      TimedPost(replay.port(), "/sse", "{}", {{"X-Rewind-Latency", "none"}});
  Timed slow = TimedPost(replay.port(), "/sse", "{}");
  EXPECT_LT(fast.total_ms, 100.0);
  EXPECT_GT(slow.total_ms, 450.0);
  EXPECT_EQ(fast.body, slow.body);
  RawResponse bad = RawExchange(
      replay.port(),
      RequestText("POST", "/sse", "{}", "X-Rewind-Latency: soon\r\n"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("rewind_bad_latency"), std::string::npos);
}

// An exchange for "POST path" with body "{}", keyed as "store" keys it;
// the caller fills in the response.
Exchange KeyedPost(const Store& store, const std::string& path) {
  Exchange e;
  e.request.method = "POST";
  e.request.path = path;
  e.request.body = "{}";
  e.key_hex = Canonicalizer(store.rules()).Key(e.request).ToHex();
  return e;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Recording stores how much of each answer's time was rewind's own, and
// "recorded-net" replays the rest: the backend's time alone.
TEST(Streaming, RecordMeasuresItsOwnTimeAndRecordedNetReplaysTheBackendsAlone) {
  constexpr auto kDelay = 30ms;
  BackgroundServer backend;
  backend.server().Post(
      "/delayed", [&](const httplib::Request&, httplib::Response& res) {
        std::this_thread::sleep_for(kDelay);
        res.set_content("{\"text\":\"" + std::string(1000, 'x') + "\"}",
                        "application/json");
      });
  backend.Start();
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  constexpr int kRequests = 5;
  auto body = [](int i) { return "{\"n\":" + std::to_string(i) + "}"; };
  {
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    for (int i = 0; i < kRequests; ++i) {
      Timed t = TimedPost(rec.port(), "/delayed", body(i));
      ASSERT_EQ(t.body.size(), 1011u);
    }
  }
  const int64_t delay_us = std::chrono::microseconds(kDelay).count();
  for (int64_t id = 1; id <= kRequests; ++id) {
    Result<Exchange> e = store->Get(id);
    ASSERT_TRUE(e.ok());
    const Response& r = e->response;
    // Measured, and a small part of the answer's time: the backend's
    // delay is in the offsets, not in rewind's share.
    EXPECT_GT(r.own_before_us, 0) << id;
    EXPECT_LT(r.own_before_us, delay_us) << id;
    EXPECT_GE(r.own_after_us, 0) << id;
    EXPECT_LT(r.own_after_us, delay_us) << id;
    EXPECT_GE(r.headers_us - r.own_before_us, delay_us) << id;
  }

  InProcessRewind replay(ReplayOptions(store.get(), "recorded"));
  std::vector<double> recorded, net;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kRequests; ++i) {
      recorded.push_back(
          TimedPost(replay.port(), "/delayed", body(i)).first_ms);
      net.push_back(TimedPost(replay.port(), "/delayed", body(i),
                              {{"X-Rewind-Latency", "recorded-net"}})
                        .first_ms);
    }
  }
  // Still paced by the backend's time, and not later than "recorded"
  // (which adds rewind's own); the machine is shared, so generously.
  EXPECT_GE(Median(net), 29.0);
  EXPECT_LE(Median(net), Median(recorded) + 2.0)
      << "recorded-net " << Median(net) << " ms, recorded " << Median(recorded)
      << " ms";
}

// recorded-net over real HTTP, on an exchange whose own time is large
// enough to see through a loaded machine's jitter.
TEST(Streaming, RecordedNetStartsEarlierByRewindsOwnTime) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Exchange e = KeyedPost(*store, "/chat");
  e.response.status = 200;
  e.response.headers = {{"Content-Type", "application/json"}};
  e.response.headers_us = 200'000;
  e.response.chunks = {{200'100, "{\"a\":1}"}};
  e.response.own_before_us = 150'000;
  ASSERT_TRUE(store->WaitCommitted(store->Append(e)).ok());
  InProcessRewind replay(ReplayOptions(store.get(), "recorded-net"));
  Timed net = TimedPost(replay.port(), "/chat", "{}");
  Timed recorded = TimedPost(replay.port(), "/chat", "{}",
                             {{"X-Rewind-Latency", "recorded"}});
  EXPECT_EQ(net.body, "{\"a\":1}");
  EXPECT_EQ(recorded.body, net.body);
  EXPECT_GE(net.first_ms, 49.0);
  EXPECT_LT(net.first_ms, 150.0);
  EXPECT_GE(recorded.first_ms, 199.0);
}

// With an injected clock the pacer's deadlines are exact: start + offset for
// every piece, never an accumulation of sleeps.
TEST(Streaming, PacerSleepsUntilAbsoluteDeadlines) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Exchange e = KeyedPost(*store, "/sse");
  e.response.status = 200;
  e.response.chunked = true;
  e.response.headers = {{"Content-Type", "text/event-stream"}};
  e.response.headers_us = 1000;
  e.response.chunks = {{40000, "a"}, {45000, "b"}, {90000, "c"}};
  ASSERT_TRUE(store->WaitCommitted(store->Append(e)).ok());

  testing::FakeClock clock(5'000'000);
  ServerOptions o = ReplayOptions(store.get(), "scaled:2");
  o.clock = &clock;
  InProcessRewind replay(o);
  RawResponse r = RawExchange(replay.port(), RequestText("POST", "/sse", "{}"));
  EXPECT_EQ(r.chunks, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(clock.sleeps(),
            (std::vector<int64_t>{5'002'000, 5'080'000, 5'090'000, 5'180'000}));
}

// More streams than worker threads: the extra connections wait for a free
// worker instead of failing, and every stream completes.
TEST(Streaming, ConnectionsBeyondCapacityWaitAndComplete) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  {
    Backend backend;
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    TimedPost(rec.port(), "/sse", "{}");
  }
  ServerOptions o = ReplayOptions(store.get(), "scaled:0.2");
  o.front.max_connections = 2;
  InProcessRewind replay(o);
  const std::string expected = store->Get(1)->response.Body();
  std::vector<std::thread> clients;
  std::atomic<int> complete{0};
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&] {
      RawResponse r =
          RawExchange(replay.port(), RequestText("POST", "/sse", "{}"));
      if (r.complete && r.body == expected) complete++;
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(complete.load(), 6);
}

TEST(Streaming, ClientDisconnectCancelsTheUpstreamRequest) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  auto store = OpenTestStore(db);
  InProcessRewind rec(RecordOptions(store.get(), backend.url()));
  int fd = Connect(rec.port());
  ASSERT_GE(fd, 0);
  std::string request = RequestText("POST", "/endless", "{}");
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  char buf[4096];
  ASSERT_GT(recv(fd, buf, sizeof(buf), 0), 0);
  close(fd);
  auto closed = Steady::now();
  for (int i = 0; i < 300 && !backend.endless_broken(); ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(backend.endless_broken()) << "the backend kept streaming";
  const double cancel_ms = std::chrono::duration<double, std::milli>(
                               backend.endless_broke() - closed)
                               .count();
  EXPECT_LT(cancel_ms, 1000.0);
  ASSERT_TRUE(rec.Stop().ok());
  SQLite::Database sql(db, SQLite::OPEN_READONLY);
  SQLite::Statement st(sql, "SELECT complete, error FROM exchanges");
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(st.getColumn(0).getInt(), 0);
  EXPECT_EQ(st.getColumn(1).getString(), "client disconnected");
}

// The recording at "db" holds one exchange, stored incomplete with an error
// that blames the backend.
void ExpectStoredIncompleteByTheBackend(const std::string& db) {
  SQLite::Database sql(db, SQLite::OPEN_READONLY);
  SQLite::Statement st(sql, "SELECT complete, error FROM exchanges");
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(st.getColumn(0).getInt(), 0);
  EXPECT_NE(st.getColumn(1).getString().find("backend"), std::string::npos);
  EXPECT_FALSE(st.executeStep()) << "one exchange expected";
}

TEST(Streaming, BackendResetTruncatesTheClientAndIsStoredIncomplete) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  auto store = OpenTestStore(db);
  {
    Backend backend;
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    RawResponse r =
        RawExchange(rec.port(), RequestText("POST", "/reset-midstream", "{}"));
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.complete) << "a broken stream must not look complete";
    EXPECT_EQ(r.body, SseEvent(0) + SseEvent(1) + SseEvent(2));
  }
  ExpectStoredIncompleteByTheBackend(db);
  {
    InProcessRewind replay(ReplayOptions(store.get()));
    EXPECT_EQ(RawExchange(replay.port(),
                          RequestText("POST", "/reset-midstream", "{}"))
                  .status,
              404);
  }
  ServerOptions o = ReplayOptions(store.get());
  o.replay.include_incomplete = true;
  InProcessRewind replay(o);
  RawResponse r =
      RawExchange(replay.port(), RequestText("POST", "/reset-midstream", "{}"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, SseEvent(0) + SseEvent(1) + SseEvent(2));
}

// A miss whose key was recorded only incomplete names that recording and
// the flag that serves it, instead of "nothing was recorded".
TEST(RecordReplay, MissOnAKeyRecordedOnlyIncompleteSaysHowToServeIt) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Exchange broken = KeyedPost(*store, "/v1/chat/completions");
  broken.response.status = 200;
  broken.response.chunked = true;
  broken.response.chunks = {{1000, "data: {}\n\n"}};
  broken.complete = false;
  broken.error = "backend reset the connection";
  store->Append(broken);
  ASSERT_TRUE(store->Flush().ok());
  InProcessRewind replay(ReplayOptions(store.get()));
  RawResponse r = RawExchange(
      replay.port(), RequestText("POST", "/v1/chat/completions", "{}"));
  EXPECT_EQ(r.status, 404);
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  ASSERT_FALSE(d.HasParseError()) << r.body;
  const std::string message = d["error"]["message"].GetString();
  EXPECT_NE(message.find("exchange #1 recorded this request but is incomplete"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("--include-incomplete"), std::string::npos) << message;
  EXPECT_EQ(message.find("nothing was recorded"), std::string::npos) << message;
  ASSERT_TRUE(d["error"]["incomplete"].IsArray()) << r.body;
  ASSERT_EQ(d["error"]["incomplete"].Size(), 1u);
  EXPECT_EQ(d["error"]["incomplete"][0].GetInt(), 1);
  // Another request on that path was never recorded at all.
  RawResponse other = RawExchange(
      replay.port(), RequestText("POST", "/v1/chat/completions", R"({"x":1})"));
  EXPECT_EQ(other.status, 404);
  EXPECT_NE(other.body.find("nothing was recorded"), std::string::npos)
      << other.body;
  EXPECT_EQ(other.body.find("incomplete"), std::string::npos) << other.body;
}

// A small Content-Length body is handed to the client whole once it has
// all arrived; one cut short must still reach the client cut short.
TEST(Streaming, BackendCutsALengthBodyShortAndTheClientSeesItBroken) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  auto store = OpenTestStore(db);
  {
    Backend backend;
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    RawResponse r =
        RawExchange(rec.port(), RequestText("POST", "/short-body", "{}"));
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.chunked);
    EXPECT_FALSE(r.complete) << "a body cut short must not look complete";
    EXPECT_EQ(r.body,
              std::string("{\"partial\":\"forty bytes of a hundred...\"", 40));
  }
  ExpectStoredIncompleteByTheBackend(db);
}

TEST(Process, SigkillDuringARecordingBurstLosesNoCompletedExchange) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  RewindProcess rec({"record", "--backend", backend.url(), "--db", db,
                     "--listen", "127.0.0.1:0"});
  ASSERT_GT(rec.port(), 0) << rec.first_line();
  std::mutex mu;
  std::vector<std::string> completed_keys;
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        std::string body = R"({"messages":[{"content":"client )" +
                           std::to_string(t) + " request " + std::to_string(i) +
                           "\"}]}";
        RawResponse r = RawExchange(
            rec.port(), RequestText("POST", "/v1/chat/completions", body));
        if (r.status == 200 && r.complete) {
          std::lock_guard<std::mutex> lock(mu);
          completed_keys.push_back(HeaderOf(r, "X-Rewind-Key"));
          done++;
        }
      }
    });
  }
  while (done < 300) std::this_thread::sleep_for(1ms);
  rec.Signal(SIGKILL);
  EXPECT_EQ(rec.Wait(), 128 + SIGKILL);
  stop = true;
  for (auto& c : clients) c.join();

  SQLite::Database sql(db, SQLite::OPEN_READONLY);
  EXPECT_EQ(sql.execAndGet("PRAGMA integrity_check").getString(), "ok");
  std::set<std::string> stored;
  SQLite::Statement st(sql, "SELECT request_key FROM exchanges");
  while (st.executeStep()) stored.insert(st.getColumn(0).getString());
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(completed_keys.size(), 300u);
  for (const std::string& key : completed_keys) {
    EXPECT_TRUE(stored.count(key)) << "lost " << key;
  }
}

TEST(Process, SigtermDrainsAndExitsZero) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  RewindProcess rec({"record", "--backend", backend.url(), "--db", db,
                     "--listen", "127.0.0.1:0"});
  ASSERT_GT(rec.port(), 0) << rec.first_line();
  EXPECT_EQ(rec.first_line(), "rewind record listening on http://127.0.0.1:" +
                                  std::to_string(rec.port()) + "\n");
  // A slow stream is in flight when the signal arrives; it must finish.
  std::thread slow([&] {
    RawResponse r = RawExchange(rec.port(), RequestText("POST", "/sse", "{}"));
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.chunks.size(), kGapsMs.size());
  });
  for (int i = 0; i < 10; ++i) {
    std::string body =
        R"({"messages":[{"content":"n)" + std::to_string(i) + "\"}]}";
    EXPECT_EQ(RawExchange(rec.port(),
                          RequestText("POST", "/v1/chat/completions", body))
                  .status,
              200);
  }
  rec.Signal(SIGTERM);
  slow.join();
  EXPECT_EQ(rec.Wait(), 0);
  EXPECT_EQ(CountExchanges(db), 11);
}

// The issue's reproduction: with --redact-field, a body nested deeper than
// kMaxJsonDepth killed record (a million levels on any build, 100k on
// some), and one of 300 levels was stored redacted under the key of its
// unredacted bytes, so `verify` failed on rewind's own file.
TEST(Process, RecordSurvivesDeepJsonAndNeverStoresASecretItCannotRedact) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  BackgroundServer backend;  // answers without parsing what it gets
  backend.server().Post(
      ".*", [](const httplib::Request& req, httplib::Response& res) {
        res.set_content("{\"bytes\":" + std::to_string(req.body.size()) + "}",
                        "application/json");
      });
  backend.Start();
  RewindProcess rec({"record", "--backend", backend.url(), "--db", db,
                     "--listen", "127.0.0.1:0", "--redact-field", "api_key"});
  ASSERT_GT(rec.port(), 0) << rec.first_line();
  auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  auto post = [&](const std::string& body) {
    return RawExchange(rec.port(),
                       RequestText("POST", "/v1/chat/completions", body));
  };
  // Too deep to redact and key alike, or not parseable: answered, not stored.
  for (int depth : {100000, 1000000, 300}) {
    const std::string body =
        R"({"api_key":"S3CRET-deep","x":)" + nest(depth) + "}";
    RawResponse r = post(body);
    EXPECT_EQ(r.status, 200) << depth;
    EXPECT_EQ(r.body, "{\"bytes\":" + std::to_string(body.size()) + "}");
    EXPECT_EQ(HeaderOf(r, "X-Rewind"), "passthrough") << depth;
  }
  EXPECT_EQ(HeaderOf(post(R"({"api_key":"S3CRET-nan","t":NaN})"), "X-Rewind"),
            "passthrough");
  // Recorded: too deep without a secret (keyed as bytes), a deep secret
  // (gone with its value), and a secret given twice.
  const std::string deep_plain = R"({"model":"m","x":)" + nest(300) + "}";
  EXPECT_EQ(HeaderOf(post(deep_plain), "X-Rewind"), "record");
  EXPECT_EQ(HeaderOf(post(R"({"api_key":["S3CRET-under",)" + nest(100000) +
                          R"(],"m":1})"),
                     "X-Rewind"),
            "record");
  EXPECT_EQ(HeaderOf(post(R"({"api_key":"x","api_key":"S3CRET-dup","m":2})"),
                     "X-Rewind"),
            "record");
  RawResponse metrics =
      RawExchange(rec.port(), RequestText("GET", "/metrics", ""));
  EXPECT_NE(metrics.body.find(
                "rewind_record_skipped_total{reason=\"unredactable\"} 4"),
            std::string::npos)
      << metrics.body;
  rec.Signal(SIGTERM);
  EXPECT_EQ(rec.Wait(), 0);

  const std::string bytes = ReadFile(db) + ReadFile(db + "-wal");
  EXPECT_EQ(bytes.find("S3CRET"), std::string::npos);
  EXPECT_EQ(CountExchanges(db), 3);
  std::string out;
  EXPECT_EQ(testing::RunRewind("verify --db " + db, &out), 0) << out;
  EXPECT_EQ(testing::RunRewind("show --db " + db + " 1 >/dev/null", &out), 0)
      << out;
  // Each replays, the secrets being other ones now.
  RewindProcess replay({"replay", "--db", db, "--listen", "127.0.0.1:0"});
  ASSERT_GT(replay.port(), 0) << replay.first_line();
  for (const std::string& body :
       {deep_plain, std::string(R"({"api_key":"another","m":1})"),
        std::string(R"({"api_key":"y","api_key":"another","m":2})")}) {
    RawResponse r = RawExchange(
        replay.port(), RequestText("POST", "/v1/chat/completions", body));
    EXPECT_EQ(HeaderOf(r, "X-Rewind"), "hit") << body.substr(0, 40);
  }
}

TEST(Process, ReplayHealthAndClearErrors) {
  TempDir dir;
  std::string out;
  EXPECT_EQ(testing::RunRewind("replay --db " + dir.File("none.sqlite"), &out),
            2);
  EXPECT_NE(out.find("no recording at"), std::string::npos) << out;
  {
    std::ofstream garbage(dir.File("garbage.sqlite"));
    for (int i = 0; i < 100; ++i) garbage << "not sqlite at all\n";
  }
  EXPECT_EQ(
      testing::RunRewind("replay --db " + dir.File("garbage.sqlite"), &out), 2);
  EXPECT_NE(out.find("not a readable rewind recording"), std::string::npos)
      << out;
  EXPECT_EQ(testing::RunRewind("replay --db x --latency sometimes", &out), 2);
  EXPECT_NE(out.find("unknown latency model"), std::string::npos) << out;
  EXPECT_EQ(testing::RunRewind("record --db x", &out), 2);
  EXPECT_NE(out.find("--backend"), std::string::npos) << out;

  const std::string sample =
      std::string(REWIND_SOURCE_DIR) + "/recordings/sample.sqlite";
  RewindProcess replay({"replay", "--db", sample, "--listen", "127.0.0.1:0"});
  ASSERT_GT(replay.port(), 0) << replay.first_line();
  RawResponse health =
      RawExchange(replay.port(), RequestText("GET", "/__rewind/health", ""));
  EXPECT_EQ(health.status, 200);
  EXPECT_NE(health.body.find("\"status\":\"ok\""), std::string::npos)
      << health.body;
  EXPECT_NE(health.body.find("\"mode\":\"replay\""), std::string::npos)
      << health.body;
}

}  // namespace
}  // namespace rwd

namespace rwd {
namespace {

// ---- Hardening: each bad input or fault gets a clear answer and loses
// nothing. ----

// A recording can come from elsewhere (import): a header line break in it
// must not let it write extra headers into a replayed response.
TEST(Hardening, RecordedHeaderWithALineBreakIsNotReplayed) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Exchange e = KeyedPost(*store, "/split");
  e.response.status = 200;
  e.response.headers = {{"Content-Type", "application/json"},
                        {"X-Fine", "yes"},
                        {"X-Split", "a\r\nX-Injected: 1"},
                        {"X-Bad\nName", "b"}};
  e.response.chunks = {{0, "{}"}};
  ASSERT_TRUE(store->WaitCommitted(store->Append(e)).ok());

  InProcessRewind replay(ReplayOptions(store.get()));
  RawResponse r =
      RawExchange(replay.port(), RequestText("POST", "/split", "{}"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{}");
  EXPECT_NE(r.head.find("X-Fine: yes"), std::string::npos) << r.head;
  EXPECT_EQ(r.head.find("X-Injected"), std::string::npos) << r.head;
  EXPECT_EQ(r.head.find("X-Split"), std::string::npos) << r.head;
  EXPECT_EQ(r.head.find("X-Bad"), std::string::npos) << r.head;
}

TEST(Hardening, AbsoluteFormTargetIsRefusedAndNeverForwarded) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  InProcessRewind rec(RecordOptions(store.get(), backend.url()));
  RawResponse r =
      RawExchange(rec.port(),
                  "GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\n"
                  "Host: 169.254.169.254\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("rewind_bad_target"), std::string::npos) << r.body;
  EXPECT_EQ(backend.calls(), 0);
}

TEST(Hardening, AdminEndpointsNeedTheTokenWhenOneIsSet) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  ServerOptions o = ReplayOptions(store.get());
  o.front.admin_token = "let-me-in";
  InProcessRewind replay(o);
  EXPECT_EQ(
      RawExchange(replay.port(), RequestText("GET", "/__rewind/health", ""))
          .status,
      200);
  RawResponse denied =
      RawExchange(replay.port(), RequestText("GET", "/__rewind/config", ""));
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(
      RawExchange(replay.port(), RequestText("POST", "/__rewind/reset", ""))
          .status,
      401);
  RawResponse wrong = RawExchange(
      replay.port(), RequestText("GET", "/__rewind/config", "",
                                 "Authorization: Bearer let-me-out\r\n"));
  EXPECT_EQ(wrong.status, 401);
  RawResponse ok = RawExchange(
      replay.port(), RequestText("GET", "/__rewind/config", "",
                                 "Authorization: Bearer let-me-in\r\n"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body.find("let-me-in"), std::string::npos)
      << "config must not echo the token";
}

TEST(Hardening, RedactFieldKeepsBodySecretsOffDiskAndOutOfTheKey) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  StoreOptions so;
  so.path = db;
  so.create_if_missing = true;
  KeyRules rules{DefaultIgnoredFields(), {}};
  rules.ignore_fields.push_back("api_key");
  so.rules = rules;
  auto store = std::move(Store::Open(so).value());
  const std::string body =
      R"({"api_key":"sk-PLANTED-IN-BODY","messages":[{"role":"user","content":"hi"}]})";
  {
    ServerOptions o = RecordOptions(store.get(), backend.url());
    o.record.redact_fields = {"api_key"};
    InProcessRewind rec(o);
    ASSERT_EQ(RawExchange(rec.port(),
                          RequestText("POST", "/v1/chat/completions", body))
                  .status,
              200);
  }
  ASSERT_TRUE(store->Flush().ok());
  std::string bytes = ReadFile(db) + ReadFile(db + "-wal");
  EXPECT_EQ(bytes.find("sk-PLANTED-IN-BODY"), std::string::npos);
  EXPECT_NE(bytes.find("[REDACTED]"), std::string::npos);
  InProcessRewind replay(ReplayOptions(store.get()));
  const std::string other =
      R"({"api_key":"sk-another","messages":[{"role":"user","content":"hi"}]})";
  RawResponse r = RawExchange(
      replay.port(), RequestText("POST", "/v1/chat/completions", other));
  EXPECT_EQ(HeaderOf(r, "X-Rewind"), "hit");
  // A redact field the key does not ignore is refused up front.
  ServerOptions bad = RecordOptions(store.get(), backend.url());
  bad.record.redact_fields = {"password"};
  Result<std::unique_ptr<Server>> refused = Server::Create(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("left out of the key"),
            std::string::npos);
}

TEST(Hardening, MalformedJsonIsRecordedAndReplayedAsBytes) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  const std::string truncated =
      R"({"model":"m","messages":[{"role":"user","content":"hi"})";
  std::string recorded;
  {
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    RawResponse r = RawExchange(
        rec.port(), RequestText("POST", "/v1/chat/completions", truncated));
    EXPECT_EQ(r.status, 200);  // the backend answered; rewind passed it on
    recorded = r.body;
  }
  EXPECT_NE(store->Get(1)->request.body, "");
  InProcessRewind replay(ReplayOptions(store.get()));
  RawResponse r = RawExchange(
      replay.port(), RequestText("POST", "/v1/chat/completions", truncated));
  EXPECT_EQ(HeaderOf(r, "X-Rewind"), "hit");
  EXPECT_EQ(r.body, recorded);
}

TEST(Hardening, SlowClientHoldsNoWorkerAndIsCutAtClientTimeout) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  ServerOptions o = ReplayOptions(store.get());
  o.front.max_connections = 1;
  o.front.client_timeout_s = 1;
  InProcessRewind replay(o);
  const auto connected = Steady::now();
  int slow = Connect(replay.port());
  ASSERT_GE(slow, 0);
  const std::string partial =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le";
  send(slow, partial.data(), partial.size(), MSG_NOSIGNAL);
  std::this_thread::sleep_for(100ms);
  // A request still arriving holds no worker: the only one serves others.
  auto start = Steady::now();
  RawResponse r =
      RawExchange(replay.port(), RequestText("GET", "/__rewind/health", ""));
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(MsSince(start), 500.0);
  // The slow client is answered 408 once --client-timeout (1 s) is up.
  timeval tv{3, 0};
  setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[256] = {0};
  ssize_t n = recv(slow, buf, sizeof(buf) - 1, 0);
  const double cut = MsSince(connected);
  ASSERT_GT(n, 12);
  EXPECT_EQ(std::string(buf, 12), "HTTP/1.1 408") << buf;
  EXPECT_GT(cut, 900.0);
  EXPECT_LT(cut, 2500.0);
  close(slow);
}

TEST(Hardening, LockedDatabaseDegradesHealthButKeepsProxying) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  Backend backend;
  StoreOptions so;
  so.path = db;
  so.create_if_missing = true;
  so.busy_timeout_ms = 100;
  auto store = std::move(Store::Open(so).value());
  InProcessRewind rec(RecordOptions(store.get(), backend.url()));
  auto health = [&] {
    return RawExchange(rec.port(), RequestText("GET", "/__rewind/health", ""))
        .body;
  };
  {
    SQLite::Database other(db, SQLite::OPEN_READWRITE);
    other.exec("BEGIN EXCLUSIVE");
    RawResponse r = RawExchange(rec.port(), Requests()[0].request);
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.complete) << "the client still gets its answer";
    EXPECT_NE(health().find("\"degraded\""), std::string::npos) << health();
    other.exec("ROLLBACK");
  }
  RawResponse again = RawExchange(rec.port(), Requests()[0].request);
  EXPECT_EQ(again.status, 200);
  EXPECT_NE(health().find("\"ok\""), std::string::npos) << health();
  ASSERT_TRUE(rec.Stop().ok());
  EXPECT_EQ(CountExchanges(db), 1);
  SQLite::Database check(db, SQLite::OPEN_READONLY);
  EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
}

// A real full file system: a 512 KB tmpfs (needs root; skipped otherwise).
TEST(Hardening, FullDiskDegradesHealthButKeepsProxyingAndTheFileStaysValid) {
  TempDir dir;
  const std::string mnt = dir.File("small");
  std::filesystem::create_directories(mnt);
  const std::string mount =
      "mount -t tmpfs -o size=512k tmpfs " + mnt + " 2>/dev/null";
  if (std::system(mount.c_str()) != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here";
  struct Unmount {
    std::string dir;
    ~Unmount() { std::system(("umount " + dir).c_str()); }
  } unmount{mnt};
  const std::string db = mnt + "/rec.sqlite";
  Backend backend;
  bool degraded = false;
  int answered = 0;
  {
    StoreOptions so;
    so.path = db;
    so.create_if_missing = true;
    so.busy_timeout_ms = 100;
    auto store = std::move(Store::Open(so).value());
    InProcessRewind rec(RecordOptions(store.get(), backend.url()));
    for (int i = 0; i < 120 && !degraded; ++i) {
      const std::string body = R"({"messages":[{"content":")" +
                               std::to_string(i) + std::string(8000, 'p') +
                               "\"}]}";
      RawResponse r = RawExchange(
          rec.port(), RequestText("POST", "/v1/chat/completions", body));
      if (r.status == 200 && r.complete) ++answered;
      degraded =
          RawExchange(rec.port(), RequestText("GET", "/__rewind/health", ""))
              .body.find("degraded") != std::string::npos;
    }
    EXPECT_TRUE(degraded) << "512 KB never filled up";
    EXPECT_GT(answered, 5);
  }
  SQLite::Database check(db, SQLite::OPEN_READONLY);
  EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
  EXPECT_GT(check.execAndGet("SELECT count(*) FROM exchanges").getInt(), 0);
}

}  // namespace
}  // namespace rwd
