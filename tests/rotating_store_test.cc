// RotatingStore: a capture written as rec.sqlite, rec-0002.sqlite, ...;
// no exchange lost or split while files change under concurrent appends;
// --rotate-every's parsing.
#include "store/rotating_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "cli/server_commands.h"
#include "store/memory_store.h"
#include "testutil/fake_clock.h"
#include "testutil/faulty_store.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::FakeClock;
using testing::OpenTestStore;
using testing::TempDir;

Exchange Numbered(int n, size_t body = 1000) {
  Exchange e;
  e.key_hex = HashBytes("k" + std::to_string(n)).ToHex();
  e.request.method = "POST";
  e.request.path = "/v1/chat/completions";
  e.request.body = "{\"n\":" + std::to_string(n) + "}";
  e.response.status = 200;
  e.response.headers = {{"Content-Type", "application/json"}};
  e.response.chunks = {{100, std::string(body, 'x')}};
  return e;
}

std::unique_ptr<Store> Rotating(const std::string& path,
                                RotationOptions rotation) {
  StoreOptions o;
  o.path = path;
  o.create_if_missing = true;
  Result<std::unique_ptr<Store>> first = Store::Open(o);
  EXPECT_TRUE(first.ok()) << first.status().ToString();
  if (!first.ok()) return nullptr;
  Result<std::unique_ptr<Store>> s =
      RotatingStore::Wrap(std::move(first.value()), o, std::move(rotation));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s.value()) : nullptr;
}

// The capture's files, in order: rec.sqlite, rec-0002.sqlite, ...
std::vector<std::string> Files(const std::string& path) {
  std::vector<std::string> files;
  if (std::filesystem::exists(path)) files.push_back(path);
  for (int n = 2; n < 10000; ++n) {
    const std::string p = RotatedPath(path, n);
    if (!std::filesystem::exists(p)) break;
    files.push_back(p);
  }
  return files;
}

// The request bodies of every file, and checks each is settled and whole.
std::multiset<std::string> Bodies(const std::vector<std::string>& files) {
  std::multiset<std::string> bodies;
  for (const std::string& f : files) {
    EXPECT_FALSE(std::filesystem::exists(f + "-wal")) << f << " not settled";
    SQLite::Database db(f, SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("PRAGMA integrity_check").getString(), "ok") << f;
    SQLite::Statement st(db,
                         "SELECT CAST(request_body AS TEXT) FROM exchanges");
    while (st.executeStep()) bodies.insert(st.getColumn(0).getString());
  }
  return bodies;
}

// Which file of the capture "store" writes to: 1 for the first, N for
// RotatedPath(first, N).
int CurrentNumber(Store* store, const std::string& first) {
  const std::string current =
      static_cast<RotatingStore*>(store)->current_path();
  for (int n = 2; n < 10000; ++n) {
    if (current == RotatedPath(first, n)) return n;
  }
  return 1;
}

// Waits (at most "ms") until "store" writes to the capture's file "number"
// or a later one.
bool WaitForFile(Store* store, const std::string& first, int number,
                 int ms = 10'000) {
  for (int i = 0; i < ms / 10; ++i) {
    if (CurrentNumber(store, first) >= number) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(RotatingStore, NamesTheFilesAfterTheFirst) {
  EXPECT_EQ(RotatedPath("rec.sqlite", 2), "rec-0002.sqlite");
  EXPECT_EQ(RotatedPath("/data/pod-0.sqlite", 13), "/data/pod-0-0013.sqlite");
  EXPECT_EQ(RotatedPath("rec", 3), "rec-0003");
  EXPECT_EQ(RotatedPath("./dir.d/rec", 2), "./dir.d/rec-0002");
  EXPECT_EQ(RotatedPath(".hidden", 2), ".hidden-0002");
}

TEST(RotatingStore, GoesOnIntoTheNextFileOnceTheCurrentOneIsLarge) {
  TempDir dir;
  const std::string path = dir.File("rec.sqlite");
  RotationOptions rotation;
  rotation.every_bytes = 64 << 10;
  std::vector<std::string> said;
  std::mutex said_mu;
  rotation.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(said_mu);
    said.push_back(line);
  };
  int n = 0;
  {
    auto store = Rotating(path, rotation);
    ASSERT_TRUE(store);
    // Exchanges go on into each file until the next one is open (the
    // rotator opens it while they do); three rotations, at most 5,000
    // exchanges of 2 KB.
    for (int file = 2; file <= 4; ++file) {
      while (CurrentNumber(store.get(), path) < file && n < 5000) {
        Result<int64_t> id =
            store->WaitCommitted(store->Append(Numbered(n++, 2000)));
        ASSERT_TRUE(id.ok()) << id.status().ToString();
      }
    }
    ASSERT_EQ(CurrentNumber(store.get(), path), 4);
    // The last file gets one (a file given nothing is removed at the end).
    ASSERT_TRUE(store->WaitCommitted(store->Append(Numbered(n++, 2000))).ok());
    ASSERT_TRUE(store->Flush().ok());
    const Store::WriterStats w = store->writer_stats();
    EXPECT_EQ(w.written, static_cast<uint64_t>(n)) << "all files counted";
    EXPECT_GT(w.bytes, static_cast<uint64_t>(n) * 2000);
  }
  const std::vector<std::string> files = Files(path);
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(Bodies(files).size(), static_cast<size_t>(n));
  for (size_t i = 0; i + 1 < files.size(); ++i) {
    // Closed once it had passed the size.
    EXPECT_GE(std::filesystem::file_size(files[i]), 64u << 10) << files[i];
  }
  std::lock_guard<std::mutex> lock(said_mu);
  ASSERT_EQ(said.size(), 3u);
  EXPECT_EQ(said[0], "rotated: " + path + " is closed; recording into " +
                         RotatedPath(path, 2));
}

TEST(RotatingStore, GoesOnIntoTheNextFileOnceTheCurrentOneIsOld) {
  TempDir dir;
  const std::string path = dir.File("rec.sqlite");
  FakeClock clock;
  RotationOptions rotation;
  rotation.every_us = 3'600'000'000;  // an hour
  rotation.clock = &clock;
  auto store = Rotating(path, rotation);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->WaitCommitted(store->Append(Numbered(1))).ok());
  clock.Advance(3'599'000'000);
  ASSERT_TRUE(store->WaitCommitted(store->Append(Numbered(2))).ok());
  EXPECT_EQ(static_cast<RotatingStore*>(store.get())->current_path(), path);
  clock.Advance(2'000'000);
  // Due: this one still goes to the first file, the next file is opened.
  ASSERT_TRUE(store->WaitCommitted(store->Append(Numbered(3))).ok());
  ASSERT_TRUE(WaitForFile(store.get(), path, 2));
  ASSERT_TRUE(store->WaitCommitted(store->Append(Numbered(4))).ok());
  // No traffic, no empty files: an hour more with nothing appended.
  clock.Advance(7'200'000'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(std::filesystem::exists(RotatedPath(path, 3)));
  store.reset();
  ASSERT_EQ(Files(path).size(), 2u);
  EXPECT_EQ(Bodies({path}), (std::multiset<std::string>{
                                "{\"n\":1}", "{\"n\":2}", "{\"n\":3}"}));
  EXPECT_EQ(Bodies({RotatedPath(path, 2)}),
            (std::multiset<std::string>{"{\"n\":4}"}));
}

TEST(RotatingStore, ConcurrentAppendsWhileFilesChangeLoseNothing) {
  TempDir dir;
  const std::string path = dir.File("rec.sqlite");
  RotationOptions rotation;
  rotation.every_bytes = 48 << 10;
  const int threads = 8;
  std::atomic<int> appended{0};
  std::atomic<int> failed{0};
  std::atomic<bool> enough{false};
  {
    auto store = Rotating(path, rotation);
    ASSERT_TRUE(store);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        // Until four rotations happened under the load (a slow disk opens
        // files slowly: a millisecond between appends, at most 10,000
        // each, about 20 s).
        for (int i = 0; i < 10000 && !enough; ++i) {
          appended++;
          if (!store->WaitCommitted(store->Append(Numbered(t * 10000 + i, 800)))
                   .ok()) {
            failed++;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      });
    }
    enough = WaitForFile(store.get(), path, 5, 30'000);
    for (std::thread& th : pool) th.join();
    EXPECT_TRUE(enough.load()) << "fewer than four rotations";
    // The last file gets one (a file given nothing is removed at the end).
    appended++;
    EXPECT_TRUE(store->WaitCommitted(store->Append(Numbered(-1, 800))).ok());
    EXPECT_EQ(store->writer_stats().written,
              static_cast<uint64_t>(appended.load()));
  }
  EXPECT_EQ(failed.load(), 0);
  const std::vector<std::string> files = Files(path);
  EXPECT_GE(files.size(), 5u);
  const std::multiset<std::string> bodies = Bodies(files);
  EXPECT_EQ(bodies.size(), static_cast<size_t>(appended.load()));
  EXPECT_EQ(std::set<std::string>(bodies.begin(), bodies.end()).size(),
            bodies.size())
      << "an exchange stored twice";
}

TEST(RotatingStore, NumbersGoOnAfterTheFilesOfAnEarlierCapture) {
  TempDir dir;
  const std::string path = dir.File("rec.sqlite");
  OpenTestStore(RotatedPath(path, 2)).reset();
  OpenTestStore(RotatedPath(path, 3)).reset();
  RotationOptions rotation;
  rotation.every_bytes = 1;
  {
    auto store = Rotating(path, rotation);
    ASSERT_TRUE(store->WaitCommitted(store->Append(Numbered(1))).ok());
    ASSERT_TRUE(WaitForFile(store.get(), path, 4));
    ASSERT_TRUE(store->WaitCommitted(store->Append(Numbered(2))).ok());
  }
  EXPECT_EQ(Bodies({RotatedPath(path, 2), RotatedPath(path, 3)}).size(), 0u);
  EXPECT_EQ(Bodies({RotatedPath(path, 4)}).size(), 1u);
}

TEST(RotatingStore, EveryFileHasTheFirstOnesRules) {
  TempDir dir;
  const std::string path = dir.File("rec.sqlite");
  StoreOptions o;
  o.path = path;
  o.create_if_missing = true;
  o.rules = KeyRules{{"user", "trace_id"}, {"X-Tenant"}};
  Result<std::unique_ptr<Store>> first = Store::Open(o);
  ASSERT_TRUE(first.ok());
  RotationOptions rotation;
  rotation.every_bytes = 1;
  {
    auto store =
        RotatingStore::Wrap(std::move(first.value()), o, rotation).value();
    ASSERT_TRUE(store->WaitCommitted(store->Append(Numbered(1))).ok());
    ASSERT_TRUE(WaitForFile(store.get(), path, 2));
    ASSERT_TRUE(store->WaitCommitted(store->Append(Numbered(2))).ok());
  }
  StoreOptions read;
  read.path = RotatedPath(path, 2);
  read.read_only = true;
  Result<std::unique_ptr<Store>> second = Store::Open(read);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second.value()->rules().ignore_fields, o.rules->ignore_fields);
  EXPECT_EQ(second.value()->rules().match_headers, o.rules->match_headers);
}

TEST(RotatingStore, ALiveRecordingIsAppendedAsSuchToTheCurrentFile) {
  TempDir dir;
  MemoryStore memory;
  auto spy = std::make_unique<testing::FaultyStore>(&memory);
  testing::FaultyStore* first = spy.get();
  StoreOptions o;
  o.path = dir.File("rec.sqlite");
  RotationOptions rotation;
  rotation.every_us = 3'600'000'000;
  auto store = RotatingStore::Wrap(std::move(spy), o, rotation).value();
  ASSERT_TRUE(store->WaitCommitted(store->AppendRecorded(Numbered(1))).ok());
  ASSERT_TRUE(store->WaitCommitted(store->Append(Numbered(2))).ok());
  // The file's store adds its writer's wait to a live recording's own time.
  EXPECT_EQ(first->recorded_appends.load(), 1);
  EXPECT_EQ(memory.Count().value(), 2);
}

TEST(RotateEvery, TakesADurationOrASizeWithItsUnit) {
  struct Case {
    const char* spec;
    int64_t us;
    uint64_t bytes;
  };
  for (const Case& c :
       {Case{"90s", 90'000'000, 0}, Case{"30m", 1'800'000'000, 0},
        Case{"1h", 3'600'000'000, 0}, Case{"2d", 172'800'000'000, 0},
        Case{"64K", 0, 64u << 10}, Case{"500M", 0, 500ull << 20},
        Case{"500MB", 0, 500ull << 20}, Case{"1GiB", 0, 1ull << 30},
        Case{"2G", 0, 2ull << 30}, Case{"4096B", 0, 4096}}) {
    RotationOptions o;
    Status s = ParseRotateEvery(c.spec, &o);
    ASSERT_TRUE(s.ok()) << c.spec << ": " << s.message();
    EXPECT_EQ(o.every_us, c.us) << c.spec;
    EXPECT_EQ(o.every_bytes, c.bytes) << c.spec;
  }
  for (const char* bad : {"", "1000", "0s", "0M", "m", "5x", "1.5h", "-1h",
                          "30 minutes", "99999999999d", "h1"}) {
    RotationOptions o;
    Status s = ParseRotateEvery(bad, &o);
    EXPECT_FALSE(s.ok()) << "\"" << bad << "\" was taken";
    EXPECT_NE(s.message().find("--rotate-every"), std::string::npos)
        << s.message();
  }
  RotationOptions o;
  EXPECT_NE(ParseRotateEvery("1000", &o).message().find("give a unit"),
            std::string::npos);
}

}  // namespace
}  // namespace rwd
