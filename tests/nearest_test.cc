// replay --on-miss nearest over real HTTP on 127.0.0.1: a chat recorded
// through rewind record and replayed with a changed temperature by the
// real binary (X-Rewind: near, X-Rewind-Near, the journal, the stats, the
// metrics, the access log, --strict), and the bound, X-Rewind-Match and
// the flags in process.
#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <string>

#include "rewind/server.h"
#include "store/memory_store.h"
#include "testutil/mode_fixture.h"
#include "testutil/raw_http.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::BackgroundServer;
using testing::HeaderOf;
using testing::InProcessRewind;
using testing::RawExchange;
using testing::RawResponse;
using testing::RequestText;
using testing::RewindProcess;
using testing::RunRewind;
using testing::TempDir;

rapidjson::Document Json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << body;
  return d;
}

const char kPath[] = "/v1/chat/completions";

std::string Chat(const std::string& temperature,
                 const std::string& model = "demo") {
  return R"({"model":")" + model + R"(","temperature":)" + temperature +
         R"(,"messages":[{"role":"user","content":"Capital of Italy?"}]})";
}

const char kAnswer[] =
    R"({"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Rome."},"finish_reason":"stop"}]})";

TEST(Nearest, AChangedTemperatureIsAnsweredFromTheRecordingAndPassesStrict) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  BackgroundServer backend;
  int calls = 0;
  backend.server().Post(kPath,
                        [&](const httplib::Request&, httplib::Response& res) {
                          ++calls;
                          res.set_content(kAnswer, "application/json");
                        });
  backend.Start();
  {
    RewindProcess rec({"record", "--db", db, "--backend", backend.url(),
                       "--listen", "127.0.0.1:0", "--quiet"});
    ASSERT_GT(rec.port(), 0) << rec.first_line();
    httplib::Client client("127.0.0.1", rec.port());
    client.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    auto r = client.Post(kPath, Chat("0.2"), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("X-Rewind"), "record");
    rec.Signal(SIGTERM);
    EXPECT_EQ(rec.Wait(), 0);
  }
  backend.Stop();
  EXPECT_EQ(calls, 1);

  const std::string log = dir.File("access.log");
  const std::string err_path = dir.File("stderr.txt");
  RewindProcess replay(
      {"replay", "--db", db, "--listen", "127.0.0.1:0", "--latency", "none",
       "--on-miss", "nearest", "--strict", "--log-file", log},
      err_path);
  ASSERT_GT(replay.port(), 0) << replay.first_line();
  httplib::Client client("127.0.0.1", replay.port());
  client.set_read_timeout(60, 0);  // a sanitizer build under load is slow
  auto hit = client.Post(kPath, Chat("0.2"), "application/json");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->get_header_value("X-Rewind"), "hit");
  EXPECT_FALSE(hit->has_header("X-Rewind-Near"));

  auto near = client.Post(kPath, Chat("0.9"), "application/json");
  ASSERT_TRUE(near);
  EXPECT_EQ(near->status, 200) << near->body;
  EXPECT_EQ(near->body, kAnswer);
  EXPECT_EQ(near->get_header_value("X-Rewind"), "near");
  EXPECT_EQ(near->get_header_value("X-Rewind-Near"),
            "#1; differs in: temperature");
  const std::string key = near->get_header_value("X-Rewind-Key");
  EXPECT_EQ(key.size(), 32u);
  EXPECT_NE(key, hit->get_header_value("X-Rewind-Key"));

  // The journal: the near answer with the recording served and the field.
  auto requests = client.Get("/__rewind/requests");
  ASSERT_TRUE(requests);
  rapidjson::Document j = Json(requests->body);
  const rapidjson::Value& entries = j["requests"];
  ASSERT_EQ(entries.Size(), 2u) << requests->body;
  const rapidjson::Value& e = entries[1];
  EXPECT_STREQ(e["outcome"].GetString(), "near");
  EXPECT_EQ(e["status"].GetInt(), 200);
  EXPECT_EQ(e["exchange"].GetInt64(), 1);
  EXPECT_EQ(e["key"].GetString(), key);
  EXPECT_TRUE(e["explanation"].IsNull());
  EXPECT_EQ(e["nearest"]["id"].GetInt64(), 1);
  ASSERT_EQ(e["nearest"]["differences"].Size(), 1u);
  EXPECT_STREQ(e["nearest"]["differences"][0].GetString(), "temperature");
  // Served: not unused.
  auto unused = client.Get("/__rewind/unused");
  ASSERT_TRUE(unused);
  EXPECT_EQ(Json(unused->body)["unused"].Size(), 0u) << unused->body;
  // The counts.
  auto stats = client.Get("/__rewind/stats");
  ASSERT_TRUE(stats);
  rapidjson::Document s = Json(stats->body);
  EXPECT_EQ(s["hits"].GetUint64(), 1u);
  EXPECT_EQ(s["near"].GetUint64(), 1u);
  EXPECT_EQ(s["misses"].GetUint64(), 0u);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(
      metrics->body.find(
          R"(rewind_requests_total{mode="replay",outcome="near",code="200"} 1)"),
      std::string::npos)
      << metrics->body;
  auto config = client.Get("/__rewind/config");
  ASSERT_TRUE(config);
  rapidjson::Document c = Json(config->body);
  EXPECT_STREQ(c["on_miss"].GetString(), "nearest");
  EXPECT_EQ(c["near_max_fields"].GetUint64(), 3u);

  // A near answer is no miss: --strict passes, and says what happened.
  replay.Signal(SIGTERM);
  EXPECT_EQ(replay.Wait(), 0);
  const std::string err = testing::ReadFile(err_path);
  EXPECT_NE(err.find("rewind: 2 requests, 1 hit, 1 near answer, 0 misses, 0 "
                     "unused recordings\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("rewind: passed"), std::string::npos) << err;
  // The access line says near, with the recording.
  const std::string lines = testing::ReadFile(log);
  EXPECT_NE(lines.find(" POST /v1/chat/completions 200 near#1 "),
            std::string::npos)
      << lines;
  EXPECT_NE(lines.find(" POST /v1/chat/completions 200 hit "),
            std::string::npos)
      << lines;
}

// One recording of Chat("0.2"), replayed in process with --on-miss nearest.
struct NearReplay {
  explicit NearReplay(size_t max_fields = 3) {
    const Canonicalizer keys(store.rules());
    Exchange e =
        testing::Recorded(testing::Post(kPath, Chat("0.2")), keys, 0, {0});
    e.response.chunks[0].data = kAnswer;
    store.Append(e);
    options.mode = ServerMode::kReplay;
    options.store = &store;
    options.replay.latency = LatencyModel::Parse("none").value();
    options.replay.on_miss = MissPolicy::kNearest;
    options.replay.near_max_fields = max_fields;
  }
  RawResponse Ask(int port, const std::string& body,
                  const std::string& headers = "") {
    return RawExchange(port, RequestText("POST", kPath, body, headers));
  }
  MemoryStore store;
  ServerOptions options;
};

TEST(Nearest, ExactDemandsOtherModelsAndBadHeadersOverHttp) {
  NearReplay r;
  InProcessRewind replay(r.options);
  // X-Rewind-Match: exact: the miss as --on-miss error gives it.
  RawResponse exact =
      r.Ask(replay.port(), Chat("0.9"), "X-Rewind-Match: exact\r\n");
  EXPECT_EQ(exact.status, 404);
  EXPECT_EQ(HeaderOf(exact, "X-Rewind"), "miss");
  EXPECT_EQ(HeaderOf(exact, "X-Rewind-Near"), "");
  EXPECT_NE(exact.body.find("nearest recording is #1, which differs in: "
                            "temperature"),
            std::string::npos)
      << exact.body;
  // Another value: a 400 in the API's shape, naming the allowed one.
  RawResponse bad =
      r.Ask(replay.port(), Chat("0.9"), "X-Rewind-Match: loose\r\n");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(HeaderOf(bad, "X-Rewind"), "error");
  rapidjson::Document d = Json(bad.body);
  EXPECT_NE(bad.body.find("\"rewind_bad_match\""), std::string::npos)
      << bad.body;
  EXPECT_NE(std::string(d["error"]["message"].GetString())
                .find("the allowed value is \"exact\""),
            std::string::npos)
      << bad.body;
  // ...even for a request that would hit.
  EXPECT_EQ(
      r.Ask(replay.port(), Chat("0.2"), "X-Rewind-Match: loose\r\n").status,
      400);
  EXPECT_EQ(
      r.Ask(replay.port(), Chat("0.2"), "X-Rewind-Match: exact\r\n").status,
      200);
  // Another model: a miss naming it.
  RawResponse model = r.Ask(replay.port(), Chat("0.2", "other"));
  EXPECT_EQ(model.status, 404);
  EXPECT_NE(model.body.find("which differs in: model"), std::string::npos)
      << model.body;
  // Without the header, the same request is near.
  RawResponse near = r.Ask(replay.port(), Chat("0.9"));
  EXPECT_EQ(near.status, 200);
  EXPECT_EQ(HeaderOf(near, "X-Rewind"), "near");
  EXPECT_EQ(near.body, kAnswer);
}

TEST(Nearest, TheFieldBoundIsAFlag) {
  NearReplay one(1);
  InProcessRewind replay(one.options);
  const std::string two_fields =
      R"({"model":"demo","temperature":0.9,"seed":1,"messages":[{"role":"user","content":"Capital of Italy?"}]})";
  EXPECT_EQ(one.Ask(replay.port(), Chat("0.9")).status, 200);
  RawResponse miss = one.Ask(replay.port(), two_fields);
  EXPECT_EQ(miss.status, 404);
  EXPECT_NE(miss.body.find("which differs in: seed, temperature"),
            std::string::npos)
      << miss.body;

  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  ASSERT_NE(testing::OpenTestStore(db), nullptr);
  std::string out;
  for (const char* bad : {"0", "21"}) {
    EXPECT_EQ(RunRewind("replay --db " + db +
                            " --listen 127.0.0.1:0 --on-miss nearest "
                            "--near-max-fields " +
                            bad,
                        &out),
              2)
        << bad;
    EXPECT_NE(out.find("--near-max-fields must be between 1 and 20"),
              std::string::npos)
        << out;
  }
  EXPECT_EQ(RunRewind("replay --db " + db + " --on-miss closest", &out), 2);
  EXPECT_NE(out.find("use error, passthrough, record, synthesize, convert or "
                     "nearest"),
            std::string::npos)
      << out;
  EXPECT_EQ(RunRewind("replay --help", &out), 0);
  EXPECT_NE(out.find("--near-max-fields"), std::string::npos);
  EXPECT_NE(out.find("X-Rewind-Match: exact"), std::string::npos);
}

}  // namespace
}  // namespace rwd
