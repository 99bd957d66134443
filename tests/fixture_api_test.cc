// rewind as a test fixture, over real HTTP on 127.0.0.1: scopes (the
// /__scope/NAME/ prefix and X-Rewind-Scope), the journal
// (GET /__rewind/requests), GET /__rewind/unused, scoped resets, and
// replay's verdict at exit (--strict, --require-all, --report) through the
// real binary.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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
using testing::TempDir;

rapidjson::Document Json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << body;
  return d;
}

std::string Chat(const std::string& content) {
  return R"({"model":"m","messages":[{"role":"user","content":")" + content +
         R"("}]})";
}

const std::string kChatPath = "/v1/chat/completions";

// A recorded answer to a chat request: "answer" as its body.
Exchange Answered(const Canonicalizer& keys, const std::string& content,
                  const std::string& answer) {
  Exchange e =
      testing::Recorded(testing::Post(kChatPath, Chat(content)), keys, 0, {0});
  e.response.chunks[0].data = answer;
  return e;
}

ServerOptions ReplayOf(Store* store) {
  ServerOptions o;
  o.mode = ServerMode::kReplay;
  o.store = store;
  o.replay.latency = LatencyModel::Parse("none").value();
  return o;
}

RawResponse Ask(int port, const std::string& path, const std::string& content,
                const std::string& headers = "") {
  return RawExchange(port, RequestText("POST", path, Chat(content), headers));
}

RawResponse Admin(int port, const std::string& method, const std::string& path,
                  const std::string& headers = "") {
  return RawExchange(port, RequestText(method, path, "", headers));
}

// Two recordings of one request ("first", "second") and one of another.
struct ThreeRecordings {
  ThreeRecordings() {
    const Canonicalizer keys(store.rules());
    store.Append(Answered(keys, "hi", "first"));
    store.Append(Answered(keys, "hi", "second"));
    store.Append(Answered(keys, "bye", "goodbye"));
  }
  MemoryStore store;
};

TEST(Scopes, ParallelScopesRepeatingARequestEachGetTheFirstRecording) {
  ThreeRecordings r;
  InProcessRewind replay(ReplayOf(&r.store));
  constexpr int kScopes = 8;
  std::vector<std::vector<std::string>> seen(kScopes);
  std::vector<std::thread> tests;
  for (int t = 0; t < kScopes; ++t) {
    tests.emplace_back([&, t] {
      const std::string name = "test_" + std::to_string(t);
      for (int i = 0; i < 3; ++i) {
        // Half name their scope by the base URL, half by the header.
        RawResponse a =
            t % 2 ? Ask(replay.port(), "/__scope/" + name + kChatPath, "hi")
                  : Ask(replay.port(), kChatPath, "hi",
                        "X-Rewind-Scope: " + name + "\r\n");
        seen[t].push_back(HeaderOf(a, "X-Rewind") + ":" + a.body);
      }
    });
  }
  for (std::thread& t : tests) t.join();
  for (int t = 0; t < kScopes; ++t) {
    EXPECT_EQ(seen[t], (std::vector<std::string>{"hit:first", "hit:second",
                                                 "hit:second"}))
        << "scope " << t;
  }
  // The server's own sequence (no scope) was not moved by any of them.
  EXPECT_EQ(Ask(replay.port(), kChatPath, "hi").body, "first");
}

TEST(Scopes, ThePrefixAndTheHeaderNeverReachTheKeyTheBackendOrTheRecording) {
  BackgroundServer backend;
  std::mutex mu;
  std::vector<std::string> targets;
  bool saw_scope_header = false;
  backend.server().Post(
      ".*", [&](const httplib::Request& req, httplib::Response& res) {
        std::lock_guard<std::mutex> lock(mu);
        targets.push_back(req.target);
        if (req.has_header("X-Rewind-Scope")) saw_scope_header = true;
        res.set_content("{\"answer\":" + std::to_string(targets.size()) + "}",
                        "application/json");
      });
  backend.Start();
  MemoryStore store;
  ServerOptions o;
  o.mode = ServerMode::kRecord;
  o.store = &store;
  o.upstream.backend = backend.url();
  {
    InProcessRewind record(o);
    RawResponse a = Ask(record.port(), "/__scope/t1" + kChatPath + "?v=1", "hi",
                        "X-Rewind-Scope: t1\r\n");
    EXPECT_EQ(a.status, 200);
    EXPECT_EQ(HeaderOf(a, "X-Rewind"), "record");
    RawResponse plain = Ask(record.port(), kChatPath + "?v=1", "hi");
    // The same request: the same key, scoped or not.
    EXPECT_EQ(HeaderOf(a, "X-Rewind-Key"), HeaderOf(plain, "X-Rewind-Key"));
    // The journal works in record mode too, the path as served.
    rapidjson::Document j =
        Json(Admin(record.port(), "GET", "/__rewind/requests?scope=t1").body);
    ASSERT_EQ(j["requests"].Size(), 1u);
    EXPECT_STREQ(j["requests"][0]["path"].GetString(), kChatPath.c_str());
    EXPECT_STREQ(j["requests"][0]["outcome"].GetString(), "record");
    EXPECT_TRUE(j["requests"][0]["exchange"].IsNull());
  }
  EXPECT_EQ(targets,
            (std::vector<std::string>{kChatPath + "?v=1", kChatPath + "?v=1"}));
  EXPECT_FALSE(saw_scope_header);
  ASSERT_TRUE(store.Flush().ok());
  Result<Exchange> stored = store.Get(1);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->request.path, kChatPath);
  for (const auto& [name, value] : stored->request.headers) {
    EXPECT_FALSE(HeaderNameEquals(name, "X-Rewind-Scope")) << name;
  }
  // What was recorded in a scope replays in any, or none.
  InProcessRewind replay(ReplayOf(&store));
  EXPECT_EQ(Ask(replay.port(), kChatPath + "?v=1", "hi").body,
            "{\"answer\":1}");
  EXPECT_EQ(
      Ask(replay.port(), "/__scope/other" + kChatPath + "?v=1", "hi").body,
      "{\"answer\":1}");
}

TEST(Scopes, TheDummyEngineAnswersUnderAScopedBaseUrl) {
  ServerOptions o;
  o.mode = ServerMode::kServe;
  o.synth.output = OutputMode::Parse("static:hello", nullptr).value();
  InProcessRewind serve(o);
  RawResponse models = Admin(serve.port(), "GET", "/__scope/t/v1/models");
  EXPECT_EQ(models.status, 200);
  EXPECT_NE(models.body.find("\"object\":\"list\""), std::string::npos);
  RawResponse chat = Ask(serve.port(), "/__scope/t" + kChatPath, "x");
  EXPECT_EQ(chat.status, 200);
  EXPECT_NE(chat.body.find("hello"), std::string::npos) << chat.body;
  RawResponse health = Admin(serve.port(), "GET", "/__scope/t/__rewind/health");
  EXPECT_EQ(health.status, 200);
}

TEST(Scopes, BadOrConflictingScopeNamesAre400sInTheApisShape) {
  ThreeRecordings r;
  InProcessRewind replay(ReplayOf(&r.store));
  struct Case {
    std::string path;
    std::string headers;
    std::string says;
  };
  const std::string long_name(129, 'a');
  const std::vector<Case> cases = {
      {"/__scope/a%20b" + kChatPath, "", "A-Z a-z 0-9 . _ ~ -"},
      {"/__scope/a!b" + kChatPath, "", "A-Z a-z 0-9 . _ ~ -"},
      {"/__scope//v1/chat/completions", "", "empty scope name"},
      {"/__scope/" + long_name + kChatPath, "", "at most 128"},
      {kChatPath, "X-Rewind-Scope: a/b\r\n", "X-Rewind-Scope"},
      {kChatPath, "X-Rewind-Scope: a\r\nX-Rewind-Scope: b\r\n", "two"},
      {"/__scope/a" + kChatPath, "X-Rewind-Scope: b\r\n",
       "names scope \"a\" and X-Rewind-Scope names \"b\""},
  };
  for (const Case& c : cases) {
    RawResponse a = Ask(replay.port(), c.path, "hi", c.headers);
    EXPECT_EQ(a.status, 400) << c.path << " " << c.headers;
    EXPECT_EQ(HeaderOf(a, "X-Rewind"), "error");
    EXPECT_NE(a.body.find("rewind_bad_scope"), std::string::npos) << a.body;
    rapidjson::Document d = Json(a.body);
    EXPECT_NE(std::string(d["error"]["message"].GetString()).find(c.says),
              std::string::npos)
        << a.body;
  }
  // An empty header names no scope (as an unset variable would leave it).
  EXPECT_EQ(
      HeaderOf(Ask(replay.port(), kChatPath, "hi", "X-Rewind-Scope: \r\n"),
               "X-Rewind"),
      "hit");
  // The same name in both is one scope.
  EXPECT_EQ(Ask(replay.port(), "/__scope/a" + kChatPath, "hi",
                "X-Rewind-Scope: a\r\n")
                .status,
            200);
  // Anthropic's path gets Anthropic's error shape.
  RawResponse anthropic = RawExchange(
      replay.port(), RequestText("POST", "/__scope/a!b/v1/messages", "{}"));
  EXPECT_EQ(anthropic.status, 400);
  EXPECT_EQ(anthropic.body.rfind("{\"type\":\"error\"", 0), 0u)
      << anthropic.body;
  // An admin query names a scope the same way.
  RawResponse bad_query =
      Admin(replay.port(), "GET", "/__rewind/requests?scope=a%20b");
  EXPECT_EQ(bad_query.status, 400);
  EXPECT_NE(bad_query.body.find("rewind_bad_scope"), std::string::npos);
  // None of them reached the journal.
  rapidjson::Document j =
      Json(Admin(replay.port(), "GET", "/__rewind/requests").body);
  EXPECT_EQ(j["requests"].Size(), 2u);
}

TEST(Journal, ListsEachRequestNewestLastWithItsOutcome) {
  ThreeRecordings r;
  InProcessRewind replay(ReplayOf(&r.store));
  RawResponse hit = Ask(replay.port(), kChatPath, "hi");
  RawResponse scoped = Ask(replay.port(), "/__scope/A" + kChatPath, "bye");
  RawResponse miss =
      Ask(replay.port(), "/__scope/B" + kChatPath + "?trace=1", "hello");
  ASSERT_EQ(miss.status, 404);
  Admin(replay.port(), "GET", "/__rewind/stats");  // admin: not journaled

  RawResponse all = Admin(replay.port(), "GET", "/__rewind/requests");
  EXPECT_EQ(all.status, 200);
  EXPECT_EQ(HeaderOf(all, "X-Rewind"), "admin");
  rapidjson::Document j = Json(all.body);
  EXPECT_EQ(j["dropped"].GetUint64(), 0u);
  const rapidjson::Value& entries = j["requests"];
  ASSERT_EQ(entries.Size(), 3u) << all.body;
  for (rapidjson::SizeType i = 0; i < 3; ++i) {
    EXPECT_EQ(entries[i]["seq"].GetUint64(), i + 1);
    EXPECT_STREQ(entries[i]["method"].GetString(), "POST");
    EXPECT_STREQ(entries[i]["path"].GetString(), kChatPath.c_str());
  }
  const rapidjson::Value& h = entries[0];
  EXPECT_TRUE(h["scope"].IsNull());
  EXPECT_EQ(h["key"].GetString(), HeaderOf(hit, "X-Rewind-Key"));
  EXPECT_STREQ(h["outcome"].GetString(), "hit");
  EXPECT_EQ(h["status"].GetInt(), 200);
  EXPECT_EQ(h["exchange"].GetInt64(), 1);
  EXPECT_TRUE(h["explanation"].IsNull());
  EXPECT_TRUE(h["nearest"].IsNull());
  EXPECT_STREQ(entries[1]["scope"].GetString(), "A");
  EXPECT_EQ(entries[1]["exchange"].GetInt64(), 3);
  const rapidjson::Value& m = entries[2];
  EXPECT_STREQ(m["scope"].GetString(), "B");
  EXPECT_STREQ(m["outcome"].GetString(), "miss");
  EXPECT_EQ(m["status"].GetInt(), 404);
  EXPECT_TRUE(m["exchange"].IsNull());
  EXPECT_EQ(m["key"].GetString(), HeaderOf(miss, "X-Rewind-Key"));
  rapidjson::Document miss_body = Json(miss.body);
  EXPECT_STREQ(m["explanation"].GetString(),
               miss_body["error"]["message"].GetString());
  // All three differ in two fields; the newest of them is named.
  EXPECT_EQ(m["nearest"]["id"].GetInt64(), 3);
  ASSERT_TRUE(m["nearest"]["differences"].IsArray());
  EXPECT_STREQ(m["nearest"]["differences"][0].GetString(), "query.trace");

  // One scope's view: by ?scope=, by its prefix, or by its header.
  for (const auto& [path, headers] :
       std::vector<std::pair<std::string, std::string>>{
           {"/__rewind/requests?scope=B", ""},
           {"/__scope/B/__rewind/requests", ""},
           {"/__rewind/requests", "X-Rewind-Scope: B\r\n"}}) {
    rapidjson::Document b =
        Json(Admin(replay.port(), "GET", path, headers).body);
    ASSERT_EQ(b["requests"].Size(), 1u) << path;
    EXPECT_EQ(b["requests"][0]["seq"].GetUint64(), 3u);
  }
  EXPECT_EQ(Json(Admin(replay.port(), "GET", "/__rewind/requests?scope=none")
                     .body)["requests"]
                .Size(),
            0u);
}

TEST(Journal, UnusedListsRecordingsNotServedSinceStartOrTheLastReset) {
  ThreeRecordings r;
  InProcessRewind replay(ReplayOf(&r.store));
  auto unused = [&](const std::string& query) {
    rapidjson::Document d =
        Json(Admin(replay.port(), "GET", "/__rewind/unused" + query).body);
    std::vector<int64_t> ids;
    for (const auto& u : d["unused"].GetArray())
      ids.push_back(u["id"].GetInt64());
    EXPECT_EQ(d["total"].GetUint64(), ids.size());
    return ids;
  };
  EXPECT_EQ(unused(""), (std::vector<int64_t>{1, 2, 3}));
  rapidjson::Document first =
      Json(Admin(replay.port(), "GET", "/__rewind/unused").body);
  const rapidjson::Value& u = first["unused"][2];
  EXPECT_STREQ(u["method"].GetString(), "POST");
  EXPECT_STREQ(u["path"].GetString(), kChatPath.c_str());
  EXPECT_EQ(u["key"].GetString(),
            HeaderOf(Ask(replay.port(), "/__scope/probe" + kChatPath, "bye"),
                     "X-Rewind-Key"));
  Ask(replay.port(), kChatPath, "hi");                 // #1, no scope
  Ask(replay.port(), "/__scope/A" + kChatPath, "hi");  // #1 in A
  Ask(replay.port(), "/__scope/A" + kChatPath, "hi");  // #2 in A
  EXPECT_EQ(unused(""), (std::vector<int64_t>{}));     // probe served #3
  EXPECT_EQ(unused("?scope=A"), (std::vector<int64_t>{3}));
  EXPECT_EQ(unused("?scope=B"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(Admin(replay.port(), "POST", "/__rewind/reset?scope=A").status,
            200);
  EXPECT_EQ(unused("?scope=A"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(unused(""), (std::vector<int64_t>{}));
  Admin(replay.port(), "POST", "/__rewind/reset");
  EXPECT_EQ(unused(""), (std::vector<int64_t>{1, 2, 3}));
}

TEST(Journal, AScopedResetRestartsThatScopeAlone) {
  ThreeRecordings r;
  InProcessRewind replay(ReplayOf(&r.store));
  auto ask = [&](const std::string& scope) {
    return Ask(replay.port(), "/__scope/" + scope + kChatPath, "hi").body;
  };
  auto journal = [&](const std::string& query) {
    return Json(Admin(replay.port(), "GET", "/__rewind/requests" + query)
                    .body)["requests"]
        .Size();
  };
  EXPECT_EQ(ask("A"), "first");
  EXPECT_EQ(ask("B"), "first");
  RawResponse reset = Admin(replay.port(), "POST", "/__rewind/reset?scope=A");
  EXPECT_EQ(reset.status, 200);
  rapidjson::Document d = Json(reset.body);
  EXPECT_TRUE(d["reset"].GetBool());
  EXPECT_STREQ(d["scope"].GetString(), "A");
  EXPECT_EQ(journal("?scope=A"), 0u);
  EXPECT_EQ(journal("?scope=B"), 1u);
  EXPECT_EQ(ask("A"), "first");
  EXPECT_EQ(ask("B"), "second");
  // Under its prefix, a reset resets its own scope.
  EXPECT_EQ(Admin(replay.port(), "POST", "/__scope/B/__rewind/reset").status,
            200);
  EXPECT_EQ(ask("B"), "first");
  EXPECT_EQ(journal("?scope=A"), 1u);
  // A plain reset resets all.
  Admin(replay.port(), "POST", "/__rewind/reset");
  EXPECT_EQ(journal(""), 0u);
  EXPECT_EQ(ask("A"), "first");
  EXPECT_EQ(ask("B"), "first");
}

TEST(Journal, TheAdminTokenGuardsTheNewEndpoints) {
  ThreeRecordings r;
  ServerOptions o = ReplayOf(&r.store);
  o.front.admin_token = "t0ken";
  InProcessRewind replay(o);
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{
           {"GET", "/__rewind/requests"},
           {"GET", "/__rewind/unused"},
           {"POST", "/__rewind/reset?scope=A"},
           {"GET", "/__scope/A/__rewind/requests"}}) {
    EXPECT_EQ(Admin(replay.port(), method, path).status, 401) << path;
    EXPECT_EQ(
        Admin(replay.port(), method, path, "Authorization: Bearer t0ken\r\n")
            .status,
        200)
        << path;
  }
}

// The verdict through the real binary.
class Verdict : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = dir_.File("rec.sqlite");
    auto store = testing::OpenTestStore(db_);
    ASSERT_NE(store, nullptr);
    const Canonicalizer keys(store->rules());
    store->Append(Answered(keys, "hi", "first"));
    store->Append(Answered(keys, "bye", "goodbye"));
    ASSERT_TRUE(store->Flush().ok());
  }
  // Runs replay with "flags", lets "use" talk to it, stops it with SIGTERM;
  // returns the exit code, its stderr in *err.
  int Run(const std::vector<std::string>& flags,
          const std::function<void(int port)>& use, std::string* err) {
    std::vector<std::string> args = {"replay",   "--db",        db_,
                                     "--listen", "127.0.0.1:0", "--latency",
                                     "none",     "--quiet"};
    args.insert(args.end(), flags.begin(), flags.end());
    const std::string err_path = dir_.File("stderr.txt");
    RewindProcess replay(args, err_path);
    EXPECT_GT(replay.port(), 0) << replay.first_line();
    if (replay.port() > 0) use(replay.port());
    replay.Signal(SIGTERM);
    const int code = replay.Wait();
    *err = testing::ReadFile(err_path);
    return code;
  }
  TempDir dir_;
  std::string db_;
};

TEST_F(Verdict, StrictFailsOnAMissWithItsExplanationAndReport) {
  const std::string report = dir_.File("report.json");
  std::string err;
  const int code = Run(
      {"--strict", "--report", report},
      [](int port) {
        Ask(port, kChatPath, "hi");
        Ask(port, "/__scope/t7" + kChatPath + "?api-key=SECRET", "hello");
        // A reset does not hide the miss from the verdict.
        Admin(port, "POST", "/__rewind/reset");
      },
      &err);
  EXPECT_EQ(code, 1) << err;
  EXPECT_NE(err.find("rewind: 2 requests, 1 hit, 1 miss, 1 unused recording\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("rewind: miss (request 2, scope t7): POST "
                     "/v1/chat/completions (key "),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("nearest recording is #"), std::string::npos) << err;
  EXPECT_NE(err.find("rewind: failed: 1 miss (--strict)"), std::string::npos)
      << err;
  rapidjson::Document d = Json(testing::ReadFile(report));
  EXPECT_EQ(d["requests"].GetUint64(), 2u);
  EXPECT_EQ(d["hits"].GetUint64(), 1u);
  ASSERT_EQ(d["misses"].Size(), 1u);
  const rapidjson::Value& m = d["misses"][0];
  EXPECT_STREQ(m["scope"].GetString(), "t7");
  EXPECT_STREQ(m["outcome"].GetString(), "miss");
  EXPECT_STREQ(m["path"].GetString(), kChatPath.c_str());
  EXPECT_NE(std::string(m["explanation"].GetString()).find("nearest recording"),
            std::string::npos);
  ASSERT_EQ(d["unused"].Size(), 1u);
  EXPECT_EQ(d["unused"][0]["id"].GetInt64(), 2);
  EXPECT_FALSE(d["passed"].GetBool());
  // The query (which can hold a secret) reaches neither stderr nor disk.
  EXPECT_EQ(err.find("SECRET"), std::string::npos) << err;
  EXPECT_EQ(testing::ReadFile(report).find("SECRET"), std::string::npos);
}

TEST_F(Verdict, StrictPassesWithoutAMiss) {
  std::string err;
  EXPECT_EQ(
      Run(
          {"--strict"}, [](int port) { Ask(port, kChatPath, "hi"); }, &err),
      0)
      << err;
  EXPECT_NE(
      err.find("rewind: 1 request, 1 hit, 0 misses, 1 unused recording\n"),
      std::string::npos)
      << err;
  EXPECT_NE(err.find("rewind: passed"), std::string::npos) << err;
}

TEST_F(Verdict, RequireAllFailsOnARecordingNeverServed) {
  std::string err;
  EXPECT_EQ(
      Run(
          {"--require-all"},
          [](int port) { Ask(port, "/__scope/a" + kChatPath, "hi"); }, &err),
      1);
  EXPECT_NE(err.find("rewind: unused: recording #2 POST /v1/chat/completions"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("failed: 1 unused recording (--require-all)"),
            std::string::npos)
      << err;
  // Served across scopes and resets, every recording counts as used.
  const std::string report = dir_.File("all.json");
  EXPECT_EQ(Run(
                {"--require-all", "--report", report},
                [](int port) {
                  Ask(port, "/__scope/a" + kChatPath, "hi");
                  Admin(port, "POST", "/__rewind/reset");
                  Ask(port, kChatPath, "bye", "X-Rewind-Scope: b\r\n");
                  Ask(port, kChatPath, "unrecorded");  // not --strict
                },
                &err),
            0)
      << err;
  rapidjson::Document d = Json(testing::ReadFile(report));
  EXPECT_TRUE(d["passed"].GetBool());
  EXPECT_EQ(d["unused"].Size(), 0u);
  EXPECT_EQ(d["misses"].Size(), 1u);
}

TEST_F(Verdict, AReportInAMissingDirectoryIsAUsageErrorAtStart) {
  std::string out;
  EXPECT_EQ(testing::RunRewind("replay --db " + db_ +
                                   " --listen 127.0.0.1:0 --report " +
                                   dir_.File("missing/report.json"),
                               &out),
            2);
  EXPECT_NE(out.find("--report"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir_.File("missing")));
}

TEST_F(Verdict, WithoutTheFlagsTheExitCodeIsUnchanged) {
  std::string err;
  EXPECT_EQ(Run(
                {}, [](int port) { Ask(port, kChatPath, "unrecorded"); }, &err),
            0);
  EXPECT_EQ(err.find("rewind: 1 request"), std::string::npos) << err;
}

}  // namespace
}  // namespace rwd
