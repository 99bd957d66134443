// Operations: /metrics, access logs, config files, immutable replicas,
// signals. Real servers and processes on 127.0.0.1.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <sys/resource.h>

#include "rewind/server.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using namespace std::chrono_literals;
using testing::BackgroundServer;
using testing::InProcessRewind;
using testing::OpenTestStore;
using testing::ReadFile;
using testing::RewindProcess;
using testing::TempDir;

const char kChat[] = R"({"model":"m","messages":[{"role":"user","content":"hello"}]})";

// name{labels} -> value, from Prometheus text.
std::map<std::string, double> Scrape(httplib::Client& c) {
  std::map<std::string, double> out;
  auto r = c.Get("/metrics");
  EXPECT_TRUE(r);
  if (!r) return out;
  EXPECT_EQ(r->status, 200);
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

struct Backend {
  BackgroundServer server;
  Backend() {
    server.server().Post("/v1/chat/completions",
                         [](const httplib::Request&, httplib::Response& res) {
                           res.set_content("{\"answer\":\"hi\"}", "application/json");
                         });
    server.server().Post("/slow", [](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
        for (int i = 0; i < 50; ++i) {
          if (!sink.write("x", 1)) return false;
          std::this_thread::sleep_for(100ms);
        }
        sink.done();
        return true;
      });
    });
    server.Start();
  }
};

// The kernel's descriptor table, as /proc/self/status reports it.
long DescriptorTableSize() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("FDSize:", 0) == 0) return std::stol(line.substr(7));
  }
  return -1;
}

// Growing the table while threads run stalls all of them for an RCU grace
// period (a stream's first chunk came ~5 ms late at 256 descriptors); the
// server grows it once, before any connection.
TEST(Operations, ServerMakesRoomForItsConnectionsDescriptorsUpFront) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  ServerOptions o;
  o.mode = ServerMode::kServe;
  o.quiet = true;
  o.max_connections = 500;  // room for 500 * 4 + 64 = 2,064
  const long need = 500 * 4 + 64;
  InProcessRewind serve(o);
  ASSERT_NE(serve.port(), 0);
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < static_cast<rlim_t>(need)) {
    GTEST_SKIP() << "hard open-file limit " << limit.rlim_max << " is below " << need;
  }
  EXPECT_GE(now.rlim_cur, static_cast<rlim_t>(need));
  EXPECT_GE(DescriptorTableSize(), need);
}

TEST(Operations, MetricsCountRequestsAndTheWriterInRecordAndReplay) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  {
    ServerOptions o;
    o.mode = ServerMode::kRecord;
    o.store = store.get();
    o.backend = backend.server.url();
    o.quiet = true;
    InProcessRewind rec(o);
    auto c = rec.Client();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->Post("/v1/chat/completions", kChat, "application/json"));
    // A request is counted when the server releases it, just after the
    // client has read the last byte: wait for that, briefly.
    const std::string recorded = "rewind_requests_total{mode=\"record\",outcome=\"record\",code=\"200\"}";
    auto m = Scrape(*c);
    for (int i = 0; i < 100 && m[recorded] < 3; ++i) {
      std::this_thread::sleep_for(10ms);
      m = Scrape(*c);
    }
    EXPECT_EQ((m["rewind_requests_total{mode=\"record\",outcome=\"record\",code=\"200\"}"]), 3);
    EXPECT_EQ(m["rewind_store_exchanges_written_total"], 3);
    EXPECT_GE(m["rewind_store_commits_total"], 1);
    // Every counted request, the scrapes included, is in the histograms.
    double requests = 0;
    for (const auto& [name, value] : m) {
      if (name.rfind("rewind_requests_total{", 0) == 0) requests += value;
    }
    EXPECT_EQ(m["rewind_response_seconds_count{mode=\"record\"}"], requests);
    EXPECT_GE(requests, 3);
    EXPECT_EQ(m["rewind_workers"], 64);
    EXPECT_GE(m["rewind_connections{state=\"active\"}"], 1);  // this scrape
  }
  ServerOptions o;
  o.mode = ServerMode::kReplay;
  o.store = store.get();
  o.latency = LatencyModel::Parse("none").value();
  o.quiet = true;
  InProcessRewind replay(o);
  auto c = replay.Client();
  auto before = Scrape(*c);
  ASSERT_TRUE(c->Post("/v1/chat/completions", kChat, "application/json"));
  ASSERT_TRUE(c->Post("/v1/other", "{}", "application/json"));
  auto after = Scrape(*c);
  EXPECT_EQ((after["rewind_requests_total{mode=\"replay\",outcome=\"hit\",code=\"200\"}"]), 1);
  EXPECT_EQ((after["rewind_requests_total{mode=\"replay\",outcome=\"miss\",code=\"404\"}"]), 1);
  EXPECT_GT(after["rewind_response_bytes_total{mode=\"replay\"}"],
            before["rewind_response_bytes_total{mode=\"replay\"}"]);
}

TEST(Operations, AccessLogIsOneJsonLinePerRequestWithoutSecrets) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  const std::string log = dir.File("access.log");
  {
    ServerOptions o;
    o.mode = ServerMode::kRecord;
    o.store = store.get();
    o.backend = backend.server.url();
    o.log_path = log;
    o.log_json = true;
    InProcessRewind rec(o);
    auto c = rec.Client();
    httplib::Headers h = {{"Authorization", "Bearer sk-LOG-SECRET"}};
    ASSERT_TRUE(c->Post("/v1/chat/completions?api_key=QUERY-SECRET", h, kChat, "application/json"));
    ASSERT_TRUE(c->Post("/v1/nowhere?token=QUERY-SECRET", h, "{}", "application/json"));
  }
  const std::string text = ReadFile(log);
  EXPECT_EQ(text.find("SECRET"), std::string::npos) << text;
  std::istringstream in(text);
  std::string line;
  int access = 0;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    ASSERT_FALSE(d.HasParseError()) << line;
    if (d.HasMember("status")) {
      ++access;
      EXPECT_TRUE(d.HasMember("time") && d.HasMember("path") && d.HasMember("outcome") &&
                  d.HasMember("total_ms") && d.HasMember("key"));
    }
  }
  EXPECT_EQ(access, 2);
}

TEST(Operations, SighupReopensTheLogFile) {
  TempDir dir;
  const std::string log = dir.File("rewind.log");
  const std::string sample = std::string(REWIND_SOURCE_DIR) + "/recordings/sample.sqlite";
  RewindProcess replay({"replay", "--db", sample, "--listen", "127.0.0.1:0", "--log-file", log});
  ASSERT_GT(replay.port(), 0);
  httplib::Client c("127.0.0.1", replay.port());
  ASSERT_TRUE(c.Get("/first"));
  std::filesystem::rename(log, log + ".1");  // what logrotate does
  replay.Signal(SIGHUP);
  std::string fresh;
  for (int i = 0; i < 100 && fresh.find("/second") == std::string::npos; ++i) {
    ASSERT_TRUE(c.Get("/second"));
    std::this_thread::sleep_for(20ms);
    fresh = ReadFile(log);
  }
  EXPECT_NE(fresh.find("/second"), std::string::npos);
  EXPECT_NE(ReadFile(log + ".1").find("/first"), std::string::npos);
  replay.Signal(SIGTERM);
  EXPECT_EQ(replay.Wait(), 0);
}

TEST(Operations, ConfigFileFlagsOverrideItAndUnknownKeysAreErrors) {
  TempDir dir;
  const std::string sample = std::string(REWIND_SOURCE_DIR) + "/recordings/sample.sqlite";
  const std::string cfg = dir.File("rewind.json");
  std::ofstream(cfg) << R"({"latency":"scaled:0.25","seed":7,"quiet":true,"redact-header":["X-A","X-B"]})";
  std::string out;
  ASSERT_EQ(testing::RunRewind("replay --db " + sample + " --config " + cfg +
                                   " --seed 9 --print-config 2>/dev/null",
                               &out),
            0)
      << out;
  rapidjson::Document d;
  d.Parse(out.c_str());
  ASSERT_FALSE(d.HasParseError()) << out;
  EXPECT_STREQ(d["latency"].GetString(), "scaled:0.25");
  EXPECT_EQ(d["seed"].GetInt(), 9);  // the command line wins
  EXPECT_TRUE(d["quiet"].GetBool());
  EXPECT_NE(out.find("\"X-B\""), std::string::npos);
  std::ofstream(cfg) << R"({"latencyy":"none"})";
  EXPECT_EQ(testing::RunRewind("replay --db " + sample + " --config " + cfg, &out), 2);
  EXPECT_NE(out.find("unknown key \"latencyy\""), std::string::npos) << out;
}

TEST(Operations, ImmutableReplicasShareOneReadOnlyFileUnderLoad) {
  TempDir dir;
  const std::string db = dir.File("shared.sqlite");
  std::filesystem::copy_file(std::string(REWIND_SOURCE_DIR) + "/recordings/sample.sqlite", db);
  std::filesystem::permissions(db, std::filesystem::perms::owner_read |
                                       std::filesystem::perms::group_read |
                                       std::filesystem::perms::others_read);
  std::vector<std::unique_ptr<RewindProcess>> replicas;
  for (int i = 0; i < 3; ++i) {
    replicas.push_back(std::make_unique<RewindProcess>(std::vector<std::string>{
        "replay", "--db", db, "--immutable", "--latency", "none", "--quiet",
        "--listen", "127.0.0.1:0"}));
    ASSERT_GT(replicas.back()->port(), 0) << replicas.back()->first_line();
  }
  const std::string body =
      R"({"model":"demo-model","stream":false,"messages":[{"role":"user","content":"What is the capital of France?"}]})";
  std::atomic<int> hits{0}, other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", replicas[static_cast<size_t>(t % 3)]->port());
      c.set_read_timeout(60, 0);  // sanitizer builds are slow; a miss is still a failure
      for (int i = 0; i < 100; ++i) {
        auto r = c.Post("/v1/chat/completions", body, "application/json");
        if (r && r->status == 200 && r->get_header_value("X-Rewind") == "hit") {
          hits++;
        } else {
          other++;
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(hits.load(), 600);
  EXPECT_EQ(other.load(), 0);
  EXPECT_FALSE(std::filesystem::exists(db + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(db + "-shm"));
}

TEST(Operations, SigtermGivesUpOnStreamsAfterTheDrainTimeout) {
  TempDir dir;
  Backend backend;
  RewindProcess rec({"record", "--backend", backend.server.url(), "--db",
                     dir.File("rec.sqlite"), "--listen", "127.0.0.1:0",
                     "--drain-timeout", "1", "--quiet"});
  ASSERT_GT(rec.port(), 0);
  httplib::Client c("127.0.0.1", rec.port());
  ASSERT_TRUE(c.Post("/v1/chat/completions", kChat, "application/json"));
  std::thread slow([&] {
    httplib::Client s("127.0.0.1", rec.port());
    s.Post("/slow", "{}", "application/json");  // 5 s stream; cut short
  });
  std::this_thread::sleep_for(300ms);
  const auto start = std::chrono::steady_clock::now();
  rec.Signal(SIGTERM);
  EXPECT_EQ(rec.Wait(), 0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(secs, 0.9);
  EXPECT_LT(secs, 3.0);
  slow.join();
  SQLite::Database check(dir.File("rec.sqlite"), SQLite::OPEN_READONLY);
  EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
  EXPECT_GE(check.execAndGet("SELECT count(*) FROM exchanges WHERE complete = 1").getInt(), 1);
}

}  // namespace
}  // namespace rwd
