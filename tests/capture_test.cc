// Capturing long-running traffic over real HTTP: what record stores
// (--sample, --record-path, --skip-path, --max-per-key), its caps
// (--max-exchanges, --max-db-bytes) and rotation (--rotate-every), its
// counters in /__rewind/stats, /__rewind/health and /metrics, and the
// flags' usage errors.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "rewind/server.h"
#include "rewind/store.h"
#include "store/rotating_store.h"
#include "testutil/faulty_store.h"
#include "testutil/raw_http.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::BackgroundServer;
using testing::InProcessRewind;
using testing::OpenTestStore;
using testing::RawExchange;
using testing::RawResponse;
using testing::RequestText;
using testing::RewindProcess;
using testing::RunRewind;
using testing::TempDir;

// A backend that answers every POST and GET with a small JSON body naming
// the path, and counts what it answered.
class EchoBackend {
 public:
  EchoBackend() {
    auto answer = [this](const httplib::Request& req, httplib::Response& res) {
      calls++;
      res.set_content("{\"path\":\"" + req.path + "\",\"echo\":" +
                          (req.body.empty() ? std::string("null") : req.body) +
                          "}",
                      "application/json");
    };
    // A stream of 5 events, 5 ms apart: relayed piece by piece.
    bg_.server().Get(
        "/sse", [this](const httplib::Request&, httplib::Response& res) {
          calls++;
          res.set_chunked_content_provider(
              "text/event-stream", [](size_t, httplib::DataSink& sink) {
                for (int i = 0; i < 5; ++i) {
                  const std::string e =
                      "data: {\"i\":" + std::to_string(i) + "}\n\n";
                  if (!sink.write(e.data(), e.size())) return false;
                  std::this_thread::sleep_for(std::chrono::milliseconds(5));
                }
                sink.done();
                return true;
              });
        });
    bg_.server().Post(".*", answer);
    bg_.server().Get(".*", answer);
    bg_.Start();
  }
  std::string url() const { return bg_.url(); }
  std::atomic<int> calls{0};

 private:
  BackgroundServer bg_;
};

ServerOptions Recording(Store* store, const std::string& backend) {
  ServerOptions o;
  o.mode = ServerMode::kRecord;
  o.store = store;
  o.upstream.backend = backend;
  o.front.quiet = true;
  return o;
}

int64_t CountExchanges(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  return db.execAndGet("SELECT count(*) FROM exchanges").getInt64();
}

std::string Get(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  auto r = c.Get(path.c_str());
  return r ? r->body : std::string();
}

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

uint64_t NotRecorded(int port, const char* reason) {
  rapidjson::Document d = Json(Get(port, "/__rewind/stats"));
  if (!d.IsObject() || !d.HasMember("not_recorded")) return ~0ull;
  return d["not_recorded"][reason].GetUint64();
}

// The value of one sample line of /metrics ("" when it is missing).
std::string MetricLine(int port, const std::string& name) {
  const std::string text = Get(port, "/metrics");
  const size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return "";
  const size_t start = at + 1 + name.size() + 1;
  return text.substr(start, text.find('\n', start) - start);
}

// Sends "n" distinct chat requests from "threads" threads; returns the
// indices of those record answered with X-Rewind: record. Every request
// must get its 200.
std::set<int> SendDistinct(int port, int n, int threads) {
  std::mutex mu;
  std::set<int> recorded;
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(30, 0);
      for (int i = next++; i < n; i = next++) {
        const std::string body =
            "{\"model\":\"m\",\"messages\":[{\"role\":"
            "\"user\",\"content\":\"question " +
            std::to_string(i) + "\"}]}";
        auto r = c.Post("/v1/chat/completions", body, "application/json");
        if (!r || r->status != 200 ||
            r->body.find("question " + std::to_string(i)) ==
                std::string::npos) {
          failures++;
          continue;
        }
        const std::string outcome = r->get_header_value("X-Rewind");
        if (outcome == "record") {
          std::lock_guard<std::mutex> lock(mu);
          recorded.insert(i);
        } else if (outcome != "passthrough") {
          failures++;
        }
      }
    });
  }
  for (std::thread& t : pool) t.join();
  EXPECT_EQ(failures.load(), 0);
  return recorded;
}

TEST(Capture, SampleRecordsASeededShareWithinABinomialBoundAndRepeatsIt) {
  EchoBackend backend;
  TempDir dir;
  const int n = 2000;
  const double p = 0.3;
  // Binomial(2000, 0.3): sigma = sqrt(n p (1 - p)) = 20.5.
  const double sigma = std::sqrt(n * p * (1 - p));
  std::set<int> first;
  for (int run = 0; run < 2; ++run) {
    const std::string db = dir.File("run" + std::to_string(run) + ".sqlite");
    uint64_t sampled_out = 0;
    std::string metric;
    std::set<int> recorded;
    {
      auto store = OpenTestStore(db);
      ServerOptions o = Recording(store.get(), backend.url());
      o.record.sample = p;
      o.seed = 42;
      InProcessRewind rec(o);
      // Concurrent, so the arrival order differs between the runs.
      recorded = SendDistinct(rec.port(), n, 4);
      sampled_out = NotRecorded(rec.port(), "sampled_out");
      metric = MetricLine(
          rec.port(), "rewind_record_skipped_total{reason=\"sampled_out\"}");
      ASSERT_TRUE(rec.Stop().ok());
    }
    const double k = static_cast<double>(recorded.size());
    EXPECT_LE(std::abs(k - n * p), 4 * sigma) << k << " of " << n;
    EXPECT_EQ(CountExchanges(db), static_cast<int64_t>(recorded.size()));
    EXPECT_EQ(sampled_out, static_cast<uint64_t>(n) - recorded.size());
    EXPECT_EQ(metric, std::to_string(n - recorded.size()));
    if (run == 0) {
      first = recorded;
    } else {
      // The same seed picks the very same requests.
      EXPECT_EQ(recorded, first);
    }
  }
  EXPECT_EQ(backend.calls.load(), 2 * n) << "every request reached the backend";

  // Another seed, another share.
  auto store = OpenTestStore(dir.File("other.sqlite"));
  ServerOptions o = Recording(store.get(), backend.url());
  o.record.sample = p;
  o.seed = 43;
  InProcessRewind rec(o);
  const std::set<int> other = SendDistinct(rec.port(), 400, 4);
  std::set<int> first_400(first.begin(), first.lower_bound(400));
  EXPECT_NE(other, first_400);
}

TEST(Capture, PathGlobsChooseTheEndpointsRecordedAndASkipWins) {
  EchoBackend backend;
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  {
    auto store = OpenTestStore(db);
    ServerOptions o = Recording(store.get(), backend.url());
    o.record.record_paths = {"/v1/chat/*", "/v1/embeddings"};
    o.record.skip_paths = {"/v1/chat/internal*"};
    InProcessRewind rec(o);
    httplib::Client c("127.0.0.1", rec.port());
    c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    struct Case {
      const char* path;
      const char* outcome;
    };
    for (const Case& k : {Case{"/v1/chat/completions?x=1", "record"},
                          Case{"/v1/embeddings", "record"},
                          Case{"/v1/completions", "passthrough"},
                          Case{"/v1/chat/internal-debug", "passthrough"},
                          Case{"/health", "passthrough"}}) {
      auto r = c.Post(k.path, "{\"q\":1}", "application/json");
      ASSERT_TRUE(r) << k.path;
      EXPECT_EQ(r->status, 200) << k.path;
      EXPECT_EQ(r->get_header_value("X-Rewind"), k.outcome) << k.path;
    }
    EXPECT_EQ(NotRecorded(rec.port(), "path"), 3u);
    EXPECT_EQ(
        MetricLine(rec.port(), "rewind_record_skipped_total{reason=\"path\"}"),
        "3");
    ASSERT_TRUE(rec.Stop().ok());
  }
  EXPECT_EQ(backend.calls.load(), 5);
  SQLite::Database check(db, SQLite::OPEN_READONLY);
  SQLite::Statement st(check, "SELECT path FROM exchanges ORDER BY id");
  std::vector<std::string> paths;
  while (st.executeStep()) paths.push_back(st.getColumn(0).getString());
  EXPECT_EQ(paths, (std::vector<std::string>{"/v1/chat/completions",
                                             "/v1/embeddings"}));
}

TEST(Capture, MaxPerKeyKeepsKRecordingsOfARequestAcrossRuns) {
  EchoBackend backend;
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  for (int run = 0; run < 2; ++run) {
    auto store = OpenTestStore(db);
    ServerOptions o = Recording(store.get(), backend.url());
    o.record.max_per_key = 2;
    InProcessRewind rec(o);
    httplib::Client c("127.0.0.1", rec.port());
    c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    std::vector<std::string> outcomes;
    for (int i = 0; i < 4; ++i) {
      auto r = c.Post("/v1/chat/completions", "{\"q\":\"same\"}",
                      "application/json");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
      outcomes.push_back(r->get_header_value("X-Rewind"));
    }
    auto other = c.Post("/v1/chat/completions",
                        "{\"q\":\"other " + std::to_string(run) + "\"}",
                        "application/json");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->get_header_value("X-Rewind"), "record");
    if (run == 0) {
      EXPECT_EQ(outcomes,
                (std::vector<std::string>{"record", "record", "passthrough",
                                          "passthrough"}));
      EXPECT_EQ(NotRecorded(rec.port(), "max_per_key"), 2u);
    } else {
      // The two already in the recording count.
      EXPECT_EQ(outcomes, std::vector<std::string>(4, "passthrough"));
      EXPECT_EQ(NotRecorded(rec.port(), "max_per_key"), 4u);
    }
    EXPECT_EQ(MetricLine(rec.port(),
                         "rewind_record_skipped_total{reason=\"max_per_key\"}"),
              run == 0 ? "2" : "4");
    ASSERT_TRUE(rec.Stop().ok());
  }
  EXPECT_EQ(CountExchanges(db), 4);  // 2 of "same", one "other" per run
}

std::string HealthStatus(int port) {
  rapidjson::Document d = Json(Get(port, "/__rewind/health"));
  return d.IsObject() && d.HasMember("status") ? d["status"].GetString() : "";
}

// Posts "n" distinct requests with bodies of about "size" bytes; returns
// the X-Rewind of each. Every one must be answered by the backend.
std::vector<std::string> PostMany(int port, int from, int n, size_t size = 0) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  std::vector<std::string> outcomes;
  for (int i = from; i < from + n; ++i) {
    const std::string body = "{\"q\":" + std::to_string(i) + ",\"pad\":\"" +
                             std::string(size, 'p') + "\"}";
    auto r = c.Post("/v1/chat/completions", body, "application/json");
    EXPECT_TRUE(r && r->status == 200 &&
                r->body.find("\"q\":" + std::to_string(i)) != std::string::npos)
        << "request " << i << " was not answered by the backend";
    outcomes.push_back(r ? r->get_header_value("X-Rewind") : "");
  }
  return outcomes;
}

TEST(Capture, MaxExchangesKeepsProxyingReportsFullAndSaysSoOnce) {
  EchoBackend backend;
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  const std::string log = dir.File("rec.log");
  {
    auto store = OpenTestStore(db);
    ServerOptions o = Recording(store.get(), backend.url());
    o.record.max_exchanges = 3;
    o.front.log_path = log;
    InProcessRewind rec(o);
    EXPECT_EQ(HealthStatus(rec.port()), "ok");
    EXPECT_EQ(MetricLine(rec.port(), "rewind_record_full"), "0");
    EXPECT_EQ(PostMany(rec.port(), 0, 3),
              std::vector<std::string>(3, "record"));
    EXPECT_EQ(HealthStatus(rec.port()), "full");
    EXPECT_EQ(PostMany(rec.port(), 3, 5),
              std::vector<std::string>(5, "passthrough"));
    EXPECT_EQ(HealthStatus(rec.port()), "full");
    EXPECT_EQ(MetricLine(rec.port(), "rewind_record_full"), "1");
    EXPECT_EQ(
        MetricLine(rec.port(), "rewind_record_skipped_total{reason=\"full\"}"),
        "5");
    EXPECT_EQ(NotRecorded(rec.port(), "full"), 5u);
    ASSERT_TRUE(rec.Stop().ok());
  }
  EXPECT_EQ(backend.calls.load(), 8) << "every request reached the backend";
  EXPECT_EQ(CountExchanges(db), 3);
  const std::string text = testing::ReadFile(log);
  const std::string said = "the recording is full (--max-exchanges 3 reached)";
  const size_t at = text.find(said);
  EXPECT_NE(at, std::string::npos) << text;
  EXPECT_EQ(text.find(said, at + 1), std::string::npos) << "said twice:\n"
                                                        << text;
}

TEST(Capture, MaxDbBytesCountsTheFileItAppendsTo) {
  EchoBackend backend;
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  {
    auto store = OpenTestStore(db);
    InProcessRewind rec(Recording(store.get(), backend.url()));
    PostMany(rec.port(), 0, 40, 2000);
    ASSERT_TRUE(rec.Stop().ok());
  }
  const uint64_t before = std::filesystem::file_size(db);
  ASSERT_GT(before, 150'000u);
  {
    // Below the file's size: full from the start, nothing stored.
    auto store = OpenTestStore(db);
    ServerOptions o = Recording(store.get(), backend.url());
    o.record.max_db_bytes = before - 4096;
    InProcessRewind rec(o);
    EXPECT_EQ(HealthStatus(rec.port()), "full");
    EXPECT_EQ(PostMany(rec.port(), 100, 3, 2000),
              std::vector<std::string>(3, "passthrough"));
    ASSERT_TRUE(rec.Stop().ok());
  }
  EXPECT_EQ(CountExchanges(db), 40);
  {
    // Room for about 20 more exchanges of 2 KB.
    auto store = OpenTestStore(db);
    ServerOptions o = Recording(store.get(), backend.url());
    o.record.max_db_bytes = before + 100'000;
    InProcessRewind rec(o);
    EXPECT_EQ(HealthStatus(rec.port()), "ok");
    PostMany(rec.port(), 200, 80, 2000);
    EXPECT_EQ(HealthStatus(rec.port()), "full");
    ASSERT_TRUE(rec.Stop().ok());
  }
  const int64_t n = CountExchanges(db);
  EXPECT_GT(n, 40 + 10);
  EXPECT_LT(n, 40 + 40);
  EXPECT_LE(std::filesystem::file_size(db), before + 100'000)
      << "the settled file is within the cap";
  EXPECT_EQ(backend.calls.load(), 40 + 3 + 80);
}

TEST(Capture, RotationUnderConcurrentLoadLosesNoRequestAndMergeGetsAll) {
  EchoBackend backend;
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  const std::string err = dir.File("stderr.txt");
  const int threads = 8;
  std::atomic<int> sent{0};
  std::atomic<int> recorded{0};
  std::atomic<int> failures{0};
  std::atomic<bool> enough{false};
  {
    RewindProcess rec(
        {"record", "--backend", backend.url(), "--db", db, "--listen",
         "127.0.0.1:0", "--rotate-every", "64K", "--quiet"},
        err);
    ASSERT_GT(rec.port(), 0) << rec.first_line();
    auto send = [&](httplib::Client& c, int n) {
      sent++;
      const std::string id = std::to_string(n);
      auto r =
          c.Post("/v1/chat/completions",
                 "{\"n\":" + id + ",\"pad\":\"" + std::string(600, 'p') + "\"}",
                 "application/json");
      if (!r || r->status != 200 ||
          r->body.find("\"n\":" + id + ",") == std::string::npos) {
        failures++;
      } else if (r->get_header_value("X-Rewind") == "record") {
        recorded++;
      }
    };
    // 8 clients at once, at least 50 requests each, and on until three
    // rotations happened under the load (a slow disk opens files slowly:
    // at most 3,000 each).
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        httplib::Client c("127.0.0.1", rec.port());
        c.set_read_timeout(30, 0);
        for (int i = 0; i < 3000 && (i < 50 || !enough); ++i) {
          send(c, t * 10000 + i);
        }
      });
    }
    const std::string third = "recording into " + RotatedPath(db, 4);
    for (int i = 0; i < 2000 && !enough; ++i) {
      enough = testing::ReadFile(err).find(third) != std::string::npos;
      if (!enough) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (std::thread& th : pool) th.join();
    EXPECT_TRUE(enough.load()) << "fewer than three rotations\n"
                               << testing::ReadFile(err);
    // One more, so that the last file holds one (a file given nothing is
    // removed at the end).
    httplib::Client c("127.0.0.1", rec.port());
    c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    send(c, 99999);
    rec.Signal(SIGTERM);
    EXPECT_EQ(rec.Wait(), 0);
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(sent.load(), threads * 50);
  EXPECT_EQ(recorded.load(), sent.load());
  std::vector<std::string> files = {db};
  for (int n = 2; std::filesystem::exists(RotatedPath(db, n)); ++n) {
    files.push_back(RotatedPath(db, n));
  }
  EXPECT_GE(files.size(), 4u);
  int64_t sum = 0;
  std::string inputs;
  for (const std::string& f : files) {
    EXPECT_FALSE(std::filesystem::exists(f + "-wal")) << f << " not settled";
    sum += CountExchanges(f);
    inputs += " " + f;
  }
  EXPECT_EQ(sum, sent.load()) << "across " << files.size() << " files";
  const std::string log = testing::ReadFile(err);
  EXPECT_NE(log.find("rotated: " + db + " is closed; recording into " +
                     RotatedPath(db, 2)),
            std::string::npos)
      << log;

  const std::string all = dir.File("all.sqlite");
  std::string out;
  ASSERT_EQ(RunRewind("merge --db " + all + inputs, &out), 0) << out;
  EXPECT_EQ(CountExchanges(all), sent.load());
  SQLite::Database merged(all, SQLite::OPEN_READONLY);
  EXPECT_EQ(merged
                .execAndGet("SELECT count(DISTINCT CAST(request_body AS TEXT)) "
                            "FROM exchanges")
                .getInt64(),
            sent.load());
  EXPECT_EQ(RunRewind("verify --db " + all, &out), 0) << out;
}

const char kSseBody[] =
    "data: {\"i\":0}\n\ndata: {\"i\":1}\n\ndata: {\"i\":2}\n\n"
    "data: {\"i\":3}\n\ndata: {\"i\":4}\n\n";

TEST(Capture, FailOpenKeepsEveryAnswerWhenRecordingThrows) {
  EchoBackend backend;
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  const std::string log = dir.File("rec.log");
  {
    auto sqlite = OpenTestStore(db);
    testing::FaultyStore store(sqlite.get());
    ServerOptions o = Recording(&store, backend.url());
    o.record.fail_open = true;
    o.record.max_db_bytes = 1u << 30;  // admitting reads the store's size
    o.front.log_path = log;
    InProcessRewind rec(o);
    const std::string chat =
        RequestText("POST", "/v1/chat/completions", "{\"q\":\"hello\"}");
    const std::string sse = RequestText("GET", "/sse", "");
    // Storing throws: answers whole, a JSON body and a stream alike.
    store.throw_on_append = true;
    RawResponse a = RawExchange(rec.port(), chat);
    EXPECT_EQ(a.status, 200);
    EXPECT_TRUE(a.complete);
    EXPECT_EQ(a.body,
              "{\"path\":\"/v1/chat/completions\",\"echo\":"
              "{\"q\":\"hello\"}}");
    RawResponse s = RawExchange(rec.port(), sse);
    EXPECT_EQ(s.status, 200);
    EXPECT_TRUE(s.complete) << "the stream was broken off";
    EXPECT_EQ(s.body, kSseBody);
    store.throw_on_append = false;
    // Choosing throws, before anything is forwarded: relayed untouched.
    store.throw_on_stats = true;
    RawResponse b = RawExchange(rec.port(), chat);
    EXPECT_EQ(b.status, 200);
    EXPECT_EQ(testing::HeaderOf(b, "X-Rewind"), "passthrough");
    EXPECT_EQ(b.body, a.body);
    store.throw_on_stats = false;
    // And recording goes on once the store works.
    RawResponse c = RawExchange(rec.port(), chat);
    EXPECT_EQ(testing::HeaderOf(c, "X-Rewind"), "record");
    EXPECT_EQ(NotRecorded(rec.port(), "internal_error"), 3u);
    EXPECT_EQ(
        MetricLine(rec.port(),
                   "rewind_record_skipped_total{reason=\"internal_error\"}"),
        "3");
    ASSERT_TRUE(rec.Stop().ok());
  }
  EXPECT_EQ(backend.calls.load(), 4);
  EXPECT_EQ(CountExchanges(db), 1);
  const std::string text = testing::ReadFile(log);
  EXPECT_NE(text.find("recording POST /v1/chat/completions failed: injected: "
                      "append; the answer was relayed whole, not recorded "
                      "(--fail-open)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("failed: injected: writer stats; relayed, not recorded "
                      "(--fail-open)"),
            std::string::npos)
      << text;
}

TEST(Capture, WithoutFailOpenAnInternalErrorShowsInTheAnswer) {
  EchoBackend backend;
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  auto sqlite = OpenTestStore(db);
  testing::FaultyStore store(sqlite.get());
  ServerOptions o = Recording(&store, backend.url());
  o.record.max_db_bytes = 1u << 30;
  InProcessRewind rec(o);
  const std::string chat =
      RequestText("POST", "/v1/chat/completions", "{\"q\":\"hello\"}");
  store.throw_on_append = true;
  // An answer not yet begun: rewind's 500 in its place.
  RawResponse a = RawExchange(rec.port(), chat);
  EXPECT_EQ(a.status, 500);
  EXPECT_NE(a.body.find("rewind_record_failed"), std::string::npos) << a.body;
  // A stream: broken off before its end.
  RawResponse s = RawExchange(rec.port(), RequestText("GET", "/sse", ""));
  EXPECT_EQ(s.status, 200);
  EXPECT_FALSE(s.complete) << "a stream whose recording failed completed";
  store.throw_on_append = false;
  // Before forwarding: a 500, and the backend never sees the request.
  store.throw_on_stats = true;
  const int calls = backend.calls.load();
  RawResponse b = RawExchange(rec.port(), chat);
  EXPECT_EQ(b.status, 500);
  EXPECT_NE(b.body.find("rewind_record_failed"), std::string::npos) << b.body;
  EXPECT_EQ(backend.calls.load(), calls);
  store.throw_on_stats = false;
  EXPECT_EQ(NotRecorded(rec.port(), "internal_error"), 3u);
  // The process lives on and records.
  RawResponse c = RawExchange(rec.port(), chat);
  EXPECT_EQ(c.status, 200);
  EXPECT_EQ(testing::HeaderOf(c, "X-Rewind"), "record");
  ASSERT_TRUE(rec.Stop().ok());
}

TEST(Capture, BadCaptureFlagsAreUsageErrorsThatCreateNoFile) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  struct Case {
    std::string args;
    std::string message;
  };
  const std::string record = "record --backend http://127.0.0.1:9 --db " + db;
  for (const Case& c : std::vector<Case>{
           {record + " --sample 0", "--sample must be a share above 0"},
           {record + " --sample 1.5", "--sample must be a share above 0"},
           {record + " --sample -0.1", "--sample must be a share above 0"},
           {record + " --sample nan", "--sample"},
           {record + " --record-path ''", "--record-path needs a glob"},
           {record + " --skip-path ''", "--skip-path needs a glob"},
           {record + " --skip-path health", "can never match"},
           {record + " --max-per-key 0", "--max-per-key must be at least 1"},
           {record + " --max-exchanges 0",
            "--max-exchanges must be at least 1"},
           {record + " --max-db-bytes 0", "--max-db-bytes must be at least 1"},
           {record + " --max-db-bytes 12Q", "--max-db-bytes"},
           {record + " --max-db-bytes -5M", "--max-db-bytes"},
           {"replay --db " + db + " --max-exchanges 5",
            "apply to record and to replay --on-miss record"},
           {record + " --rotate-every 1000", "give a unit"},
           {record + " --rotate-every 0s", "--rotate-every"},
           {record + " --rotate-every 5x", "--rotate-every"},
           {"replay --db " + db + " --rotate-every 1h", "--rotate-every"},
           {"replay --db " + db + " --fail-open",
            "apply to record and to replay --on-miss record"},
           {"replay --db " + db + " --sample 0.5",
            "apply to record and to replay --on-miss record"},
       }) {
    std::string err;
    EXPECT_EQ(RunRewind(c.args, &err), 2) << c.args << "\n" << err;
    EXPECT_NE(err.find(c.message), std::string::npos) << c.args << "\n" << err;
    EXPECT_FALSE(std::filesystem::exists(db)) << c.args;
  }
  // Sizes take units, powers of 1024.
  std::string out;
  ASSERT_EQ(RunRewind(record + " --max-db-bytes 500M --max-exchanges 7 "
                               "--print-config",
                      &out),
            0)
      << out;
  EXPECT_NE(out.find("\"max_db_bytes\":524288000"), std::string::npos) << out;
  EXPECT_NE(out.find("\"max_exchanges\":7"), std::string::npos) << out;
  ASSERT_EQ(RunRewind(record + " --max-db-bytes 2G --print-config", &out), 0);
  EXPECT_NE(out.find("\"max_db_bytes\":2147483648"), std::string::npos) << out;
  ASSERT_EQ(RunRewind(record + " --rotate-every 30m --print-config", &out), 0);
  EXPECT_NE(out.find("\"rotate_every\":\"30m\""), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(db));
}

}  // namespace
}  // namespace rwd
