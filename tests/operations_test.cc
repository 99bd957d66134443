// Operations: /metrics, access logs, config files, immutable replicas,
// signals. Real servers and processes on 127.0.0.1.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

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

const char kChat[] =
    R"({"model":"m","messages":[{"role":"user","content":"hello"}]})";

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
    server.server().Post("/v1/chat/completions", [](const httplib::Request&,
                                                    httplib::Response& res) {
      res.set_content("{\"answer\":\"hi\"}", "application/json");
    });
    server.server().Post(
        "/slow", [](const httplib::Request&, httplib::Response& res) {
          res.set_chunked_content_provider(
              "text/plain", [](size_t, httplib::DataSink& sink) {
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
  o.front.quiet = true;
  o.front.max_connections = 500;  // room for 500 * 4 + 64 = 2,064
  const long need = 500 * 4 + 64;
  InProcessRewind serve(o);
  ASSERT_NE(serve.port(), 0);
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  if (limit.rlim_max != RLIM_INFINITY &&
      limit.rlim_max < static_cast<rlim_t>(need)) {
    GTEST_SKIP() << "hard open-file limit " << limit.rlim_max << " is below "
                 << need;
  }
  EXPECT_GE(now.rlim_cur, static_cast<rlim_t>(need));
  EXPECT_GE(DescriptorTableSize(), need);
}

// A paced stream holds a connection and no worker: connections may far
// outnumber the workers, each taking a descriptor, so the soft limit goes to
// the hard one whatever --max-connections says.
TEST(Operations, ServerRaisesTheSoftOpenFileLimitToTheHardOne) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max == RLIM_INFINITY || limit.rlim_max <= 1024) {
    GTEST_SKIP() << "hard open-file limit " << limit.rlim_max;
  }
  rlimit lowered = limit;
  lowered.rlim_cur = 1024;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  ServerOptions o;
  o.mode = ServerMode::kServe;
  o.front.quiet = true;
  o.front.max_connections = 16;
  InProcessRewind serve(o);
  ASSERT_NE(serve.port(), 0);
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, limit.rlim_max);
}

TEST(Operations, MetricsCountRequestsAndTheWriterInRecordAndReplay) {
  TempDir dir;
  Backend backend;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  {
    ServerOptions o;
    o.mode = ServerMode::kRecord;
    o.store = store.get();
    o.upstream.backend = backend.server.url();
    o.front.quiet = true;
    InProcessRewind rec(o);
    auto c = rec.Client();
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(c->Post("/v1/chat/completions", kChat, "application/json"));
    // A request is counted when the server releases it, just after the
    // client has read the last byte: wait for that, briefly.
    const std::string recorded =
        "rewind_requests_total{mode=\"record\",outcome=\"record\",code="
        "\"200\"}";
    auto m = Scrape(*c);
    for (int i = 0; i < 100 && m[recorded] < 3; ++i) {
      std::this_thread::sleep_for(10ms);
      m = Scrape(*c);
    }
    EXPECT_EQ((m["rewind_requests_total{mode=\"record\",outcome=\"record\","
                 "code=\"200\"}"]),
              3);
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
  o.replay.latency = LatencyModel::Parse("none").value();
  o.front.quiet = true;
  InProcessRewind replay(o);
  auto c = replay.Client();
  auto before = Scrape(*c);
  ASSERT_TRUE(c->Post("/v1/chat/completions", kChat, "application/json"));
  ASSERT_TRUE(c->Post("/v1/other", "{}", "application/json"));
  auto after = Scrape(*c);
  EXPECT_EQ((after["rewind_requests_total{mode=\"replay\",outcome=\"hit\",code="
                   "\"200\"}"]),
            1);
  EXPECT_EQ((after["rewind_requests_total{mode=\"replay\",outcome=\"miss\","
                   "code=\"404\"}"]),
            1);
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
    o.upstream.backend = backend.server.url();
    o.front.log_path = log;
    o.front.log_json = true;
    InProcessRewind rec(o);
    auto c = rec.Client();
    httplib::Headers h = {{"Authorization", "Bearer sk-LOG-SECRET"}};
    ASSERT_TRUE(c->Post("/v1/chat/completions?api_key=QUERY-SECRET", h, kChat,
                        "application/json"));
    ASSERT_TRUE(
        c->Post("/v1/nowhere?token=QUERY-SECRET", h, "{}", "application/json"));
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
      EXPECT_TRUE(d.HasMember("time") && d.HasMember("path") &&
                  d.HasMember("outcome") && d.HasMember("total_ms") &&
                  d.HasMember("key"));
    }
  }
  EXPECT_EQ(access, 2);
}

TEST(Operations, SighupReopensTheLogFile) {
  TempDir dir;
  const std::string log = dir.File("rewind.log");
  const std::string sample =
      std::string(REWIND_SOURCE_DIR) + "/recordings/sample.sqlite";
  RewindProcess replay(
      {"replay", "--db", sample, "--listen", "127.0.0.1:0", "--log-file", log});
  ASSERT_GT(replay.port(), 0);
  httplib::Client c("127.0.0.1", replay.port());
  c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
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
  const std::string sample =
      std::string(REWIND_SOURCE_DIR) + "/recordings/sample.sqlite";
  const std::string cfg = dir.File("rewind.json");
  std::ofstream(cfg)
      << R"({"latency":"scaled:0.25","seed":7,"quiet":true,"redact-header":["X-A","X-B"]})";
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
  EXPECT_EQ(
      testing::RunRewind("replay --db " + sample + " --config " + cfg, &out),
      2);
  EXPECT_NE(out.find("unknown key \"latencyy\""), std::string::npos) << out;
}

TEST(Operations, ImmutableReplicasShareOneReadOnlyFileUnderLoad) {
  TempDir dir;
  const std::string db = dir.File("shared.sqlite");
  std::filesystem::copy_file(
      std::string(REWIND_SOURCE_DIR) + "/recordings/sample.sqlite", db);
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
      httplib::Client c("127.0.0.1",
                        replicas[static_cast<size_t>(t % 3)]->port());
      c.set_read_timeout(
          60, 0);  // sanitizer builds are slow; a miss is still a failure
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
  c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
  ASSERT_TRUE(c.Post("/v1/chat/completions", kChat, "application/json"));
  std::thread slow([&] {
    httplib::Client s("127.0.0.1", rec.port());
    s.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    s.Post("/slow", "{}", "application/json");  // 5 s stream; cut short
  });
  std::this_thread::sleep_for(300ms);
  const auto start = std::chrono::steady_clock::now();
  rec.Signal(SIGTERM);
  EXPECT_EQ(rec.Wait(), 0);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_GT(secs, 0.9);
  EXPECT_LT(secs, 3.0);
  slow.join();
  SQLite::Database check(dir.File("rec.sqlite"), SQLite::OPEN_READONLY);
  EXPECT_EQ(check.execAndGet("PRAGMA integrity_check").getString(), "ok");
  EXPECT_GE(
      check.execAndGet("SELECT count(*) FROM exchanges WHERE complete = 1")
          .getInt(),
      1);
}

// The names in "dir", sorted.
std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Cli, AUsageErrorOrAFailedStartLeavesNoFileBehind) {
  TempDir dir;
  const std::string d = dir.File("");
  {
    std::ofstream notjson(d + "in.json");
    notjson << "this is not JSON\n";
  }
  const std::string sample =
      std::string(REWIND_SOURCE_DIR) + "/recordings/sample.sqlite";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"record --db " + d + "a.sqlite --backend localhost:8000",
       "not an http:// or https:// URL"},
      {"record --db " + d +
           "b.sqlite --backend http://127.0.0.1:9 --log-file " + d +
           "no/such/dir/x.log",
       "does not exist"},
      {"record --db " + d +
           "c.sqlite --backend http://127.0.0.1:9 --max-connections 0",
       "--max-connections"},
      {"record --db " + d +
           "c.sqlite --backend http://127.0.0.1:9 --listen 192.0.2.1:8080",
       "cannot listen"},
      {"replay --db " + d +
           "e.sqlite --on-miss record --backend http://127.0.0.1:9 "
           "--latency sometimes",
       "unknown latency model"},
      {"replay --db " + d +
           "e.sqlite --on-miss record --backend http://127.0.0.1:9 "
           "--listen 192.0.2.1:8080",
       "cannot listen"},
      {"import --db " + d + "f.sqlite --in " + d + "missing.json",
       "no such file"},
      {"import --db " + d + "f.sqlite --in " + d + "in.json",
       "not a rewind JSON export"},
      {"import --db " + d + "f.sqlite --in " + d + "in.json --format yaml",
       "yaml"},
      {"merge --db " + d + "g.sqlite " + d + "missing.sqlite", "no such file"},
      {"merge --db " + d + "g.sqlite " + d + "in.json",
       "not a readable rewind recording"},
      {"export --db " + sample + " --out " + d + "x.json --format yaml",
       "yaml"},
  };
  for (const auto& [args, says] : cases) {
    std::string out;
    EXPECT_EQ(testing::RunRewind(args, &out), 2) << args << "\n" << out;
    EXPECT_NE(out.find(says), std::string::npos) << args << "\n" << out;
    EXPECT_EQ(Listing(d), std::vector<std::string>{"in.json"}) << args;
  }
  // --print-config starts nothing, so it leaves nothing either.
  std::string out;
  EXPECT_EQ(testing::RunRewind("record --db " + d +
                                   "h.sqlite --backend http://127.0.0.1:9 "
                                   "--print-config",
                               &out),
            0)
      << out;
  EXPECT_EQ(Listing(d), std::vector<std::string>{"in.json"});
  // A recording that existed is never removed, even when the start fails.
  std::filesystem::copy_file(sample, d + "kept.sqlite");
  EXPECT_EQ(testing::RunRewind("record --db " + d +
                                   "kept.sqlite --backend http://127.0.0.1:9 "
                                   "--listen 192.0.2.1:8080",
                               &out),
            2)
      << out;
  EXPECT_TRUE(std::filesystem::exists(d + "kept.sqlite"));
}

TEST(Cli, ADbThatIsADirectoryOrADanglingLinkIsSaidPlainly) {
  TempDir dir;
  std::filesystem::create_directory(dir.File("recs"));
  std::filesystem::create_symlink("nowhere/x.sqlite", dir.File("dangling"));
  for (const std::string cmd :
       {"ls", "verify", "record --backend http://127.0.0.1:9", "replay",
        "import --in -"}) {
    std::string out;
    EXPECT_EQ(testing::RunRewind(
                  cmd + " --db " + dir.File("recs") + " </dev/null", &out),
              2)
        << cmd;
    EXPECT_NE(out.find("--db " + dir.File("recs") + " is a directory"),
              std::string::npos)
        << cmd << "\n"
        << out;
    EXPECT_EQ(testing::RunRewind(
                  cmd + " --db " + dir.File("dangling") + " </dev/null", &out),
              2)
        << cmd;
    EXPECT_NE(
        out.find(
            "is a symbolic link to nowhere/x.sqlite, which does not exist"),
        std::string::npos)
        << cmd << "\n"
        << out;
  }
  std::string out;
  EXPECT_EQ(testing::RunRewind("record --backend http://127.0.0.1:9 --db " +
                                   dir.File("no/dir/r.sqlite"),
                               &out),
            2);
  EXPECT_NE(out.find("directory " + dir.File("no/dir") + " does not exist"),
            std::string::npos)
      << out;
  EXPECT_FALSE(std::filesystem::exists(dir.File("recs/x")));
}

TEST(Cli, AMistypedCommandOrOptionIsNamedWithTheNearestOne) {
  std::string out;
  EXPECT_EQ(testing::RunRewind("recrod --db x.sqlite", &out), 2);
  EXPECT_NE(
      out.find("unknown command \"recrod\"; did you mean `rewind record`?"),
      std::string::npos)
      << out;
  EXPECT_EQ(testing::RunRewind("--bogus", &out), 2);
  EXPECT_NE(out.find("unknown option \"--bogus\""), std::string::npos) << out;
  EXPECT_NE(out.find("record, replay, serve"), std::string::npos) << out;
  EXPECT_EQ(testing::RunRewind("--replay", &out), 2);
  EXPECT_NE(out.find("did you mean `rewind replay`?"), std::string::npos)
      << out;
  EXPECT_EQ(testing::RunRewind("", &out), 2);
  EXPECT_NE(out.find("a command is required: record, replay"),
            std::string::npos)
      << out;
  EXPECT_EQ(testing::RunRewind(
                "record --db x.sqlite --bakend http://127.0.0.1:9", &out),
            2);
  EXPECT_NE(
      out.find(
          "`rewind record` has no option --bakend; did you mean --backend?"),
      std::string::npos)
      << out;
  // A value that looks like an option is the value, not an unknown option.
  EXPECT_EQ(testing::RunRewind(
                "check --db /nonexistent.sqlite --target http://127.0.0.1:9 "
                "--header --x-trace:1",
                &out),
            2);
  EXPECT_NE(out.find("no recording at /nonexistent.sqlite"), std::string::npos)
      << out;
  EXPECT_EQ(testing::RunRewind("help serve", &out), 0) << out;
  EXPECT_NE(out.find("--output"), std::string::npos) << out;
}

TEST(Cli, EachServerCommandListsAndTakesOnlyItsOwnFlags) {
  std::string serve, record, replay;
  ASSERT_EQ(testing::RunRewind("serve --help", &serve), 0);
  ASSERT_EQ(testing::RunRewind("record --help", &record), 0);
  ASSERT_EQ(testing::RunRewind("replay --help", &replay), 0);
  for (const char* flag : {"--backend-timeout", "--redact-header"}) {
    EXPECT_EQ(serve.find(flag), std::string::npos) << flag;
    EXPECT_NE(record.find(flag), std::string::npos) << flag;
    EXPECT_NE(replay.find(flag), std::string::npos) << flag;
  }
  for (const std::string* help : {&serve, &record, &replay}) {
    EXPECT_NE(help->find("--port-file"), std::string::npos);
  }
  std::string out;
  EXPECT_EQ(
      testing::RunRewind("serve --backend-timeout 5 --print-config", &out), 2);
  EXPECT_NE(out.find("`rewind serve` has no option --backend-timeout"),
            std::string::npos)
      << out;
}

TEST(Cli, PortFileHoldsTheBoundPortOnceListening) {
  TempDir dir;
  Backend backend;
  const std::string sample =
      std::string(REWIND_SOURCE_DIR) + "/recordings/sample.sqlite";
  const std::vector<std::vector<std::string>> commands = {
      {"record", "--backend", backend.server.url(), "--db",
       dir.File("rec.sqlite")},
      {"replay", "--db", sample},
      {"serve"},
  };
  for (std::vector<std::string> args : commands) {
    const std::string port_file = dir.File("port");
    args.insert(args.end(), {"--listen", "127.0.0.1:0", "--port-file",
                             port_file, "--quiet"});
    RewindProcess proc(args);
    ASSERT_GT(proc.port(), 0) << args[0] << ": " << proc.first_line();
    // Written before the "listening" line, whole: the number and a newline.
    EXPECT_EQ(ReadFile(port_file), std::to_string(proc.port()) + "\n")
        << args[0];
    httplib::Client c("127.0.0.1", std::stoi(ReadFile(port_file)));
    c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    auto health = c.Get("/__rewind/health");
    ASSERT_TRUE(health) << args[0];
    EXPECT_EQ(health->status, 200);
    proc.Signal(SIGTERM);
    EXPECT_EQ(proc.Wait(), 0) << args[0];
    EXPECT_FALSE(std::filesystem::exists(port_file))
        << args[0] << ": removed at exit";
    for (const std::string& name : Listing(dir.File(""))) {
      EXPECT_EQ(name.find("port.tmp"), std::string::npos) << name;
    }
  }
  std::string out;
  EXPECT_EQ(testing::RunRewind("serve --listen 127.0.0.1:0 --port-file " +
                                   dir.File("no/such/port"),
                               &out),
            2);
  EXPECT_NE(out.find("--port-file"), std::string::npos) << out;
}

}  // namespace
}  // namespace rwd
