// replay --on-miss nearest over real HTTP on 127.0.0.1: a chat recorded
// through rewind record and replayed with a changed temperature by the
// real binary (X-Rewind: near, X-Rewind-Near, the journal, the stats, the
// metrics, the access log, --strict), an agent's traffic (tools in another
// order, a streamed request, an extra JSON-RPC ping) replayed the same way,
// tools re-keyed as a set by rekey, and the bound, X-Rewind-Match and the
// flags in process.
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

// An agent's chat with two tools, in the order given.
std::string AgentChat(const std::string& first, const std::string& second,
                      const std::string& extra = "") {
  auto tool = [](const std::string& name) {
    return R"({"type":"function","function":{"name":")" + name +
           R"(","description":"about )" + name +
           R"(","parameters":{"type":"object","properties":{}}}})";
  };
  return R"({"model":"demo")" + extra +
         R"(,"messages":[{"role":"user","content":"Weather in Rome?"}],"tools":[)" +
         tool(first) + "," + tool(second) + "]}";
}

const char kToolAnswer[] =
    R"({"id":"c2","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Sunny."},"finish_reason":"stop"}]})";

TEST(Nearest, AnAgentsTrafficKeepsItsShapeOverHttp) {
  TempDir dir;
  const std::string db = dir.File("agent.sqlite");
  BackgroundServer backend;
  backend.server().Post(kPath,
                        [&](const httplib::Request&, httplib::Response& res) {
                          res.set_content(kToolAnswer, "application/json");
                        });
  backend.server().Post(
      "/mcp", [&](const httplib::Request&, httplib::Response& res) {
        res.set_content(R"({"jsonrpc":"2.0","id":1,"result":{"tools":[]}})",
                        "application/json");
      });
  backend.Start();
  {
    RewindProcess rec({"record", "--db", db, "--backend", backend.url(),
                       "--listen", "127.0.0.1:0", "--quiet"});
    ASSERT_GT(rec.port(), 0) << rec.first_line();
    httplib::Client client("127.0.0.1", rec.port());
    client.set_read_timeout(60, 0);
    auto chat = client.Post(kPath, AgentChat("get_weather", "search"),
                            "application/json");
    ASSERT_TRUE(chat);
    EXPECT_EQ(chat->get_header_value("X-Rewind"), "record");
    auto list =
        client.Post("/mcp", R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})",
                    "application/json");
    ASSERT_TRUE(list);
    EXPECT_EQ(list->get_header_value("X-Rewind"), "record");
    rec.Signal(SIGTERM);
    EXPECT_EQ(rec.Wait(), 0);
  }
  backend.Stop();

  const std::string err_path = dir.File("stderr.txt");
  RewindProcess replay({"replay", "--db", db, "--listen", "127.0.0.1:0",
                        "--latency", "none", "--on-miss", "nearest",
                        "--near-max-fields", "10", "--strict", "--strict-near"},
                       err_path);
  ASSERT_GT(replay.port(), 0) << replay.first_line();
  httplib::Client client("127.0.0.1", replay.port());
  client.set_read_timeout(60, 0);
  // The tools in the other order: the same request.
  auto reordered = client.Post(kPath, AgentChat("search", "get_weather"),
                               "application/json");
  ASSERT_TRUE(reordered);
  EXPECT_EQ(reordered->get_header_value("X-Rewind"), "hit");
  EXPECT_EQ(reordered->body, kToolAnswer);
  // Streamed: the recorded answer is not, so no near answer; the miss
  // names the recording, the field and why.
  auto streamed =
      client.Post(kPath, AgentChat("search", "get_weather", ",\"stream\":true"),
                  "application/json");
  ASSERT_TRUE(streamed);
  EXPECT_EQ(streamed->status, 404) << streamed->body;
  EXPECT_EQ(streamed->get_header_value("X-Rewind"), "miss");
  EXPECT_NE(streamed->body.find(
                "nearest recording is #1, which differs in: stream; stream: "
                "recorded nothing sent true; #1 cannot answer it: it "
                "differs in stream"),
            std::string::npos)
      << streamed->body;
  // An extra JSON-RPC ping: never the recorded tools/list.
  auto ping = client.Post("/mcp", R"({"jsonrpc":"2.0","id":2,"method":"ping"})",
                          "application/json");
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->status, 404) << ping->body;
  EXPECT_NE(ping->body.find("method: recorded \\\"tools/list\\\" sent "
                            "\\\"ping\\\""),
            std::string::npos)
      << ping->body;
  EXPECT_NE(ping->body.find("it differs in JSON-RPC method"), std::string::npos)
      << ping->body;
  // A tool described otherwise: one difference, named by the tool.
  std::string changed = AgentChat("search", "get_weather");
  changed.replace(changed.find("about get_weather"), 17, "about the weather");
  auto near = client.Post(kPath, changed, "application/json");
  ASSERT_TRUE(near);
  EXPECT_EQ(near->get_header_value("X-Rewind"), "near") << near->body;
  EXPECT_EQ(near->get_header_value("X-Rewind-Near"),
            "#1; differs in: tools[get_weather].function.description");
  EXPECT_EQ(near->body, kToolAnswer);

  replay.Signal(SIGTERM);
  EXPECT_NE(replay.Wait(), 0);  // --strict: two misses
  const std::string err = testing::ReadFile(err_path);
  EXPECT_NE(err.find("rewind: 4 requests, 1 hit, 1 near answer, 2 misses"),
            std::string::npos)
      << err;
  // The near answer on a line of its own, with what it differs in.
  EXPECT_NE(err.find("rewind: 1 near answer:\nrewind:   request 4: POST " +
                     std::string(kPath) +
                     " answered from #1, which differs in: "
                     "tools[get_weather].function.description\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("rewind: failed: 2 misses (--strict) and 1 near answer "
                     "(--strict-near)"),
            std::string::npos)
      << err;
}

TEST(Nearest, RekeyTurnsToolSetsOnForARecordingMadeWithout) {
  TempDir dir;
  const std::string db = dir.File("old.sqlite");
  const std::string recorded = AgentChat("search", "get_weather");
  {
    StoreOptions o;
    o.path = db;
    o.create_if_missing = true;
    o.rules = KeyRules{DefaultIgnoredFields(), {}};
    o.rules->tool_sets = false;  // as made before the rule
    Result<std::unique_ptr<Store>> store = Store::Open(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    Exchange e = testing::Recorded(testing::Post(kPath, recorded),
                                   Canonicalizer(*o.rules), 0, {0});
    e.response.chunks[0].data = kToolAnswer;
    store.value()->Append(e);
    ASSERT_TRUE(store.value()->Flush().ok());
  }
  auto ask = [&](const std::string& body) {
    RewindProcess replay(
        {"replay", "--db", db, "--listen", "127.0.0.1:0", "--latency", "none"});
    EXPECT_GT(replay.port(), 0) << replay.first_line();
    httplib::Client client("127.0.0.1", replay.port());
    client.set_read_timeout(60, 0);
    auto r = client.Post(kPath, body, "application/json");
    replay.Signal(SIGTERM);
    replay.Wait();
    return r ? r->get_header_value("X-Rewind") : std::string("(none)");
  };
  const std::string reordered = AgentChat("get_weather", "search");
  // Its keys stay as made: the order is part of them.
  EXPECT_EQ(ask(recorded), "hit");
  EXPECT_EQ(ask(reordered), "miss");
  std::string said;
  ASSERT_EQ(RunRewind("rekey --db " + db, &said), 0) << said;
  EXPECT_EQ(ask(reordered), "miss");  // no rule flag: its own rules
  ASSERT_EQ(RunRewind("rekey --db " + db + " --tool-sets", &said), 0) << said;
  EXPECT_EQ(ask(reordered), "hit");
  EXPECT_EQ(ask(recorded), "hit");
  EXPECT_EQ(RunRewind("rekey --help", &said), 0);
  EXPECT_NE(said.find("--no-tool-sets"), std::string::npos) << said;
}

}  // namespace
}  // namespace rwd
