// A recording as a file: a clean close leaves one self-contained file that
// every command reads on read-only storage; a file left mid-write is named
// as such and can be settled.
//
// Tests run as root here, and root writes through file modes, so a
// read-only location is made honestly: a read-only bind mount in a private
// mount namespace (unshare -m), else the command runs as nobody on a 0555
// directory (forced with REWIND_TEST_NO_UNSHARE=1), else the test is
// skipped saying why.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "rewind/store.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::BackgroundServer;
using testing::OpenTestStore;
using testing::ReadFile;
using testing::TempDir;

namespace fs = std::filesystem;

Exchange Sample(int n) {
  Exchange e;
  e.request.method = "POST";
  e.request.path = "/v1/chat/completions";
  e.request.body = "{\"n\":" + std::to_string(n) + "}";
  e.key_hex = Canonicalizer(KeyRules{DefaultIgnoredFields(), {}})
                  .Key(e.request)
                  .ToHex();
  e.response.status = 200;
  e.response.headers = {{"Content-Type", "application/json"}};
  e.response.chunks = {{1000, "{\"answer\":" + std::to_string(n) + "}"}};
  return e;
}

// The files in "dir", sorted.
std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Bytes 18 and 19 of an SQLite header: 1 in rollback-journal mode, 2 in WAL.
int JournalVersion(const std::string& path) {
  const std::string bytes = ReadFile(path);
  return bytes.size() >= 100 ? bytes[18] : -1;
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs commands with one directory read-only to them.
class ReadOnlyDir {
 public:
  explicit ReadOnlyDir(std::string dir) : dir_(std::move(dir)) {
    // A probe: a file the command cannot create there proves the location
    // is read-only to it, whatever its privileges.
    const std::string probe =
        "sh -c 'touch \"$0\"/probe 2>/dev/null && echo writable || echo "
        "read-only' " +
        Quote(dir_);
    if (geteuid() != 0) {
      fs::permissions(dir_, fs::perms(0555));
      prefix_ = "";
    } else if (getenv("REWIND_TEST_NO_UNSHARE") == nullptr &&
               Run("unshare -m sh -c 'mount --bind -o ro \"$0\" \"$0\" && "
                   "exec \"$@\"' " +
                   Quote(dir_) + " " + probe) == "read-only\n") {
      prefix_ =
          "unshare -m sh -c 'mount --bind -o ro \"$0\" \"$0\" && exec "
          "\"$@\"' " +
          Quote(dir_) + " ";
    } else {
      fs::permissions(dir_, fs::perms(0555));
      // Recordings are created 0600 in a 0700 temporary directory: nobody
      // must be able to reach and read them.
      fs::permissions(fs::path(dir_).parent_path(), fs::perms::others_exec,
                      fs::perm_options::add);
      for (const auto& entry : fs::directory_iterator(dir_)) {
        fs::permissions(entry.path(), fs::perms(0444));
      }
      if (Run("setpriv --reuid=65534 --regid=65534 --clear-groups " + probe) ==
          "read-only\n") {
        prefix_ = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
      } else {
        why_not_ =
            "neither a private read-only mount (unshare -m) nor "
            "running as nobody (setpriv) works here";
      }
    }
    if (!why_not_.empty()) return;
    // The probe must have created nothing.
    EXPECT_FALSE(fs::exists(dir_ + "/probe"));
  }
  ~ReadOnlyDir() {
    std::error_code ec;
    fs::permissions(dir_, fs::perms(0755), ec);
  }
  // Empty when commands can be run with the directory read-only.
  const std::string& why_not() const { return why_not_; }

  // Runs rewind "args" with the directory read-only; returns the exit code
  // and, in "out", stdout and stderr together.
  int Rewind(const std::string& args, std::string* out) const {
    return testing::RunShell(prefix_ + Quote(REWIND_BINARY) + " " + args, out);
  }

  // The argv that runs rewind "args" with the directory read-only.
  std::vector<std::string> Argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {
        "/bin/sh", "-c", "exec " + prefix_ + "\"$0\" \"$@\"", REWIND_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

 private:
  static std::string Run(const std::string& cmd) {
    FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
    std::string out;
    char buf[256];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
  }

  std::string dir_;
  std::string prefix_;
  std::string why_not_;
};

std::vector<std::string> RewindArgv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {REWIND_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

class RecordingFile : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_.server().Post(
        "/v1/chat/completions",
        [](const httplib::Request& req, httplib::Response& res) {
          res.set_content("{\"echo\":" + req.body + "}", "application/json");
        });
    backend_.Start();
  }

  // Records "n" exchanges through the real binary in "db"; stops it with
  // "sig" and returns its exit code.
  int Record(const std::string& db, int n, int sig) {
    testing::ChildProcess rec(
        RewindArgv({"record", "--backend", backend_.url(), "--db", db,
                    "--listen", "127.0.0.1:0", "--quiet"}));
    EXPECT_GT(rec.port(), 0) << rec.first_line();
    httplib::Client c("127.0.0.1", rec.port());
    c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    for (int i = 0; i < n; ++i) {
      auto r = c.Post("/v1/chat/completions",
                      "{\"n\":" + std::to_string(i) + "}", "application/json");
      EXPECT_TRUE(r && r->status == 200);
    }
    rec.Signal(sig);
    return rec.Wait();
  }

  BackgroundServer backend_;
};

TEST_F(RecordingFile, CleanRecordLeavesOneFileThatEveryCommandReadsReadOnly) {
  TempDir tmp;
  const std::string dir = tmp.File("recordings");
  fs::create_directory(dir);
  const std::string db = dir + "/rec.sqlite";
  ASSERT_EQ(Record(db, 3, SIGTERM), 0);
  EXPECT_EQ(Files(dir), std::vector<std::string>{"rec.sqlite"});
  EXPECT_EQ(JournalVersion(db), 1)
      << "a cleanly closed recording stays in WAL mode";

  ReadOnlyDir ro(dir);
  if (!ro.why_not().empty()) GTEST_SKIP() << ro.why_not();
  std::string out;
  EXPECT_EQ(ro.Rewind("ls --db " + Quote(db), &out), 0) << out;
  EXPECT_NE(out.find("/v1/chat/completions"), std::string::npos) << out;
  EXPECT_EQ(ro.Rewind("verify --db " + Quote(db), &out), 0) << out;
  EXPECT_NE(out.find("3 exchanges; integrity ok"), std::string::npos) << out;
  EXPECT_EQ(ro.Rewind("show --db " + Quote(db) + " 1 --raw", &out), 0) << out;
  EXPECT_NE(out.find("{\"echo\":{\"n\":0}}"), std::string::npos) << out;
  EXPECT_EQ(ro.Rewind("stats --db " + Quote(db), &out), 0) << out;
  EXPECT_EQ(ro.Rewind("export --db " + Quote(db) + " --out -", &out), 0) << out;
  EXPECT_NE(out.find("\"schema_version\""), std::string::npos) << out;

  testing::ChildProcess replay(
      ro.Argv({"replay", "--db", db, "--listen", "127.0.0.1:0", "--latency",
               "none", "--quiet"}));
  ASSERT_GT(replay.port(), 0) << replay.first_line();
  httplib::Client c("127.0.0.1", replay.port());
  c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
  auto r = c.Post("/v1/chat/completions", "{\"n\":2}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"echo\":{\"n\":2}}");
  replay.Signal(SIGTERM);
  EXPECT_EQ(replay.Wait(), 0);
  EXPECT_EQ(Files(dir), std::vector<std::string>{"rec.sqlite"});
}

TEST_F(RecordingFile, KilledRecordIsReportedMidWriteAndSettles) {
  TempDir tmp;
  const std::string dir = tmp.File("recordings");
  fs::create_directory(dir);
  const std::string db = dir + "/rec.sqlite";
  ASSERT_EQ(Record(db, 3, SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(fs::exists(db + "-wal"));
  ASSERT_GT(fs::file_size(db + "-wal"), 0u);

  std::string out;
  EXPECT_EQ(testing::RunRewind("verify --db " + Quote(db), &out),
            kExitFindings);
  EXPECT_NE(out.find("3 exchanges; integrity ok"), std::string::npos) << out;
  EXPECT_NE(out.find("left mid-write"), std::string::npos) << out;
  EXPECT_NE(out.find("rewind verify --settle"), std::string::npos) << out;
  // An immutable open would not see the log: refused.
  EXPECT_EQ(testing::RunRewind("replay --immutable --db " + Quote(db), &out),
            2);
  EXPECT_NE(out.find("left mid-write"), std::string::npos) << out;

  // Read-only, without its -shm file, SQLite cannot read the log: said so.
  {
    fs::remove(db + "-shm");
    ReadOnlyDir ro(dir);
    if (ro.why_not().empty()) {
      EXPECT_EQ(ro.Rewind("ls --db " + Quote(db), &out), 2) << out;
      EXPECT_NE(out.find("left mid-write"), std::string::npos) << out;
      EXPECT_NE(out.find("verify --settle"), std::string::npos) << out;
    }
  }

  EXPECT_EQ(testing::RunRewind("verify --settle --db " + Quote(db), &out),
            kExitOk)
      << out;
  EXPECT_NE(out.find("3 exchanges; integrity ok"), std::string::npos) << out;
  EXPECT_EQ(Files(dir), std::vector<std::string>{"rec.sqlite"});
  EXPECT_EQ(JournalVersion(db), 1);
}

TEST_F(RecordingFile, SettleRefusesWhileARecorderHasTheFileOpen) {
  TempDir tmp;
  const std::string db = tmp.File("rec.sqlite");
  testing::ChildProcess rec(
      RewindArgv({"record", "--backend", backend_.url(), "--db", db, "--listen",
                  "127.0.0.1:0", "--quiet"}));
  ASSERT_GT(rec.port(), 0) << rec.first_line();
  httplib::Client c("127.0.0.1", rec.port());
  c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
  ASSERT_TRUE(c.Post("/v1/chat/completions", "{}", "application/json"));
  std::string out;
  EXPECT_EQ(testing::RunRewind("verify --settle --db " + Quote(db), &out), 2);
  EXPECT_NE(out.find("another process has it open"), std::string::npos) << out;
  // The failed settle may have copied the log in; either way the file is
  // not settled while its recorder runs.
  EXPECT_EQ(testing::RunRewind("verify --db " + Quote(db), &out),
            kExitFindings);
  EXPECT_NE(out.find("recorder is still running"), std::string::npos) << out;
  rec.Signal(SIGTERM);
  EXPECT_EQ(rec.Wait(), 0);
  EXPECT_EQ(JournalVersion(db), 1);
  EXPECT_EQ(testing::RunRewind("verify --db " + Quote(db), &out), kExitOk)
      << out;
}

// A file still in WAL mode with no -wal beside it (an older rewind closed
// it) is opened immutable on read-only storage and reported as not settled.
TEST_F(RecordingFile, WalModeFileOnReadOnlyStorageOpensImmutable) {
  TempDir tmp;
  const std::string dir = tmp.File("recordings");
  fs::create_directory(dir);
  const std::string db = dir + "/old.sqlite";
  {
    auto store = OpenTestStore(db);
    ASSERT_TRUE(store->WaitCommitted(store->Append(Sample(1))).ok());
  }
  {
    SQLite::Database sql(db, SQLite::OPEN_READWRITE);
    sql.exec("PRAGMA journal_mode=WAL");
  }
  ASSERT_EQ(Files(dir), std::vector<std::string>{"old.sqlite"});
  ASSERT_EQ(JournalVersion(db), 2);
  ReadOnlyDir ro(dir);
  if (!ro.why_not().empty()) GTEST_SKIP() << ro.why_not();
  std::string out;
  EXPECT_EQ(ro.Rewind("ls --db " + Quote(db), &out), 0) << out;
  EXPECT_NE(out.find("/v1/chat/completions"), std::string::npos) << out;
  EXPECT_EQ(ro.Rewind("verify --db " + Quote(db), &out), kExitFindings) << out;
  EXPECT_NE(out.find("1 exchanges; integrity ok"), std::string::npos) << out;
  EXPECT_NE(out.find("not closed cleanly"), std::string::npos) << out;
  EXPECT_EQ(ro.Rewind("prune --incomplete --db " + Quote(db), &out), 2) << out;
  EXPECT_NE(out.find("cannot write"), std::string::npos) << out;
  EXPECT_EQ(Files(dir), std::vector<std::string>{"old.sqlite"});
}

TEST(RecordingStore, CloseSettlesIntoOneFileAndSettleStopsWrites) {
  TempDir dir;
  const std::string db = dir.File("r.sqlite");
  auto store = OpenTestStore(db);
  ASSERT_TRUE(store->WaitCommitted(store->Append(Sample(1))).ok());
  EXPECT_EQ(JournalVersion(db), 2) << "a store writes in WAL mode";
  ASSERT_TRUE(store->Settle().ok());
  EXPECT_EQ(JournalVersion(db), 1);
  EXPECT_FALSE(fs::exists(db + "-wal"));
  EXPECT_FALSE(fs::exists(db + "-shm"));
  EXPECT_FALSE(store->WaitCommitted(store->Append(Sample(2))).ok());
  Result<Exchange> e = store->Get(1);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->request.body, "{\"n\":1}");
  store.reset();

  // Reopened for writing it is WAL again until closed.
  store = OpenTestStore(db, false);
  ASSERT_TRUE(store->WaitCommitted(store->Append(Sample(2))).ok());
  EXPECT_EQ(JournalVersion(db), 2);
  store.reset();
  EXPECT_EQ(JournalVersion(db), 1);
  EXPECT_FALSE(fs::exists(db + "-wal"));

  StoreOptions o;
  o.path = db;
  o.read_only = true;
  Result<std::unique_ptr<Store>> ro = Store::Open(o);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ(ro.value()->Count().value(), 2);
  EXPECT_FALSE(ro.value()->file_state().wal_mode);
  EXPECT_EQ(ro.value()->file_state().wal_bytes, 0);
  std::ostringstream verify, err;
  EXPECT_EQ(RunVerify(ro.value().get(), verify, err), kExitOk) << verify.str();
}

TEST(RecordingStore, CloseLeavesWalWhileAnotherConnectionReads) {
  TempDir dir;
  const std::string db = dir.File("r.sqlite");
  auto store = OpenTestStore(db);
  ASSERT_TRUE(store->WaitCommitted(store->Append(Sample(1))).ok());
  {
    SQLite::Database reader(db, SQLite::OPEN_READONLY);
    EXPECT_EQ(reader.execAndGet("SELECT count(*) FROM exchanges").getInt(), 1);
    Status s = store->Settle();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("another process has it open"),
              std::string::npos)
        << s.message();
    EXPECT_EQ(JournalVersion(db), 2);
    EXPECT_EQ(reader.execAndGet("SELECT count(*) FROM exchanges").getInt(), 1);
  }
  store.reset();
  SQLite::Database sql(db, SQLite::OPEN_READONLY);
  EXPECT_EQ(sql.execAndGet("PRAGMA integrity_check").getString(), "ok");
  EXPECT_EQ(sql.execAndGet("SELECT count(*) FROM exchanges").getInt(), 1);
}

}  // namespace
}  // namespace rwd
