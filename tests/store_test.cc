#include "rewind/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::OpenTestStore;
using testing::ReadFile;
using testing::TempDir;

Exchange Sample(int n) {
  Exchange e;
  e.key_hex = HashBytes("k" + std::to_string(n)).ToHex();
  e.request.method = "POST";
  e.request.path = "/v1/chat/completions";
  e.request.query = "n=" + std::to_string(n);
  e.request.headers = {{"Content-Type", "application/json"},
                       {"Authorization", "[REDACTED]"}};
  e.request.body = "{\"n\":" + std::to_string(n) + "}";
  e.response.status = 200;
  e.response.headers = {{"Content-Type", "text/event-stream"}};
  e.response.chunked = true;
  e.response.headers_us = 1500;
  e.response.chunks = {{20000, "data: a\n\n"},
                       {35000, std::string("bin\0ary\xff", 7)},
                       {36000, "data: [DONE]\n\n"}};
  e.started_at_us = 1700000000000000 + n;
  e.arrival_offset_us = n * 1000;
  return e;
}

TEST(Store, RoundTripsAnExchangeExactly) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  ASSERT_TRUE(store);
  Exchange in = Sample(7);
  in.complete = false;
  in.error = "backend: Read";
  Result<int64_t> id = store->WaitCommitted(store->Append(in));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  Result<Exchange> out = store->Get(id.value());
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->id, id.value());
  EXPECT_EQ(out->key_hex, in.key_hex);
  EXPECT_EQ(out->request.method, in.request.method);
  EXPECT_EQ(out->request.path, in.request.path);
  EXPECT_EQ(out->request.query, in.request.query);
  EXPECT_EQ(out->request.headers, in.request.headers);
  EXPECT_EQ(out->request.body, in.request.body);
  EXPECT_EQ(out->response.status, 200);
  EXPECT_EQ(out->response.headers, in.response.headers);
  EXPECT_TRUE(out->response.chunked);
  EXPECT_EQ(out->response.headers_us, 1500);
  ASSERT_EQ(out->response.chunks.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out->response.chunks[i].offset_us,
              in.response.chunks[i].offset_us);
    EXPECT_EQ(out->response.chunks[i].data, in.response.chunks[i].data);
  }
  EXPECT_EQ(out->started_at_us, in.started_at_us);
  EXPECT_EQ(out->arrival_offset_us, in.arrival_offset_us);
  EXPECT_FALSE(out->complete);
  EXPECT_EQ(out->error, "backend: Read");
  EXPECT_TRUE(store->Get(999).status().IsNotFound());
}

TEST(Store, KeepsRulesAndRefusesDifferentOnes) {
  TempDir dir;
  const std::string path = dir.File("r.sqlite");
  {
    StoreOptions o;
    o.path = path;
    o.create_if_missing = true;
    o.rules = KeyRules{{"user", "x.y"}, {"x-model"}};
    ASSERT_TRUE(Store::Open(o).ok());
  }
  StoreOptions o;
  o.path = path;
  Result<std::unique_ptr<Store>> same = Store::Open(o);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same.value()->rules().ignore_fields,
            (std::vector<std::string>{"user", "x.y"}));
  same.value().reset();
  o.rules = KeyRules{{"user"}, {}};
  Result<std::unique_ptr<Store>> other = Store::Open(o);
  ASSERT_FALSE(other.ok());
  EXPECT_TRUE(other.status().IsInvalidArgument());
  EXPECT_NE(other.status().message().find("key rules"), std::string::npos);
}

TEST(Store, NewRecordingIsPrivateToItsOwner) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  struct stat st;
  ASSERT_EQ(stat(dir.File("r.sqlite").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST(Store, MissingFileIsNotFoundUnlessCreating) {
  TempDir dir;
  StoreOptions o;
  o.path = dir.File("absent.sqlite");
  Result<std::unique_ptr<Store>> s = Store::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsNotFound());
  EXPECT_FALSE(std::filesystem::exists(o.path));
}

// Refusals must leave the file byte-for-byte as it was.
void ExpectRefusedUnchanged(const std::string& path, const std::string& words) {
  const std::string before = ReadFile(path);
  StoreOptions o;
  o.path = path;
  Result<std::unique_ptr<Store>> s = Store::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsCorruption()) << s.status().ToString();
  EXPECT_NE(s.status().message().find(words), std::string::npos)
      << s.status().message();
  EXPECT_EQ(ReadFile(path), before);
}

TEST(Store, RefusesANewerSchemaWithoutTouchingIt) {
  TempDir dir;
  const std::string path = dir.File("r.sqlite");
  OpenTestStore(path).reset();
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("PRAGMA user_version = 99");
    db.exec("PRAGMA journal_mode = DELETE");
  }
  ExpectRefusedUnchanged(path, "schema version 99");
}

TEST(Store, UpgradesASchemaOneFileWhenOpenedForWriting) {
  TempDir dir;
  const std::string path = dir.File("r.sqlite");
  {
    auto store = OpenTestStore(path);
    store->Append(Sample(1));
    ASSERT_TRUE(store->Flush().ok());
  }
  {  // What a version 1 file looks like: no covering index, no own time.
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("DROP INDEX exchanges_by_key_cover");
    db.exec("ALTER TABLE exchanges DROP COLUMN own_before_us");
    db.exec("ALTER TABLE exchanges DROP COLUMN own_after_us");
    db.exec("PRAGMA user_version = 1");
  }
  {  // Read-only: used as it is.
    StoreOptions o;
    o.path = path;
    o.read_only = true;
    auto ro = Store::Open(o);
    ASSERT_TRUE(ro.ok()) << ro.status().ToString();
    int n = 0;
    ASSERT_TRUE(
        ro.value()->ScanKeys([&](const ExchangeSummary&) { ++n; }).ok());
    EXPECT_EQ(n, 1);
  }
  SQLite::Database before(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(before.execAndGet("PRAGMA user_version").getInt(), 1);
  OpenTestStore(path, false).reset();
  SQLite::Database after(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(after.execAndGet("PRAGMA user_version").getInt(), kSchemaVersion);
  EXPECT_TRUE(after
                  .execAndGet("SELECT count(*) FROM sqlite_master WHERE name = "
                              "'exchanges_by_key_cover'")
                  .getInt() == 1);
}

TEST(Store, RoundTripsRewindsOwnTimeAndKeepsUnknownAsUnknown) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  Exchange measured = Sample(1);
  measured.response.own_before_us = 210;
  measured.response.own_after_us = 55;
  Exchange unknown = Sample(2);  // -1, -1: imported without it
  Exchange half = Sample(3);
  half.response.own_before_us = 0;
  ASSERT_TRUE(store->WaitCommitted(store->Append(measured)).ok());
  ASSERT_TRUE(store->WaitCommitted(store->Append(unknown)).ok());
  ASSERT_TRUE(store->WaitCommitted(store->Append(half)).ok());
  EXPECT_EQ(store->Get(1)->response.own_before_us, 210);
  EXPECT_EQ(store->Get(1)->response.own_after_us, 55);
  EXPECT_EQ(store->Get(2)->response.own_before_us, -1);
  EXPECT_EQ(store->Get(2)->response.own_after_us, -1);
  EXPECT_EQ(store->Get(3)->response.own_before_us, 0);
  EXPECT_EQ(store->Get(3)->response.own_after_us, -1);
  store.reset();
  SQLite::Database db(dir.File("r.sqlite"), SQLite::OPEN_READONLY);
  EXPECT_TRUE(db.execAndGet("SELECT own_after_us FROM exchanges WHERE id = 2")
                  .isNull());
}

TEST(Store, AppendRecordedAddsTheWaitForTheWriterAndAppendDoesNot) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  Exchange live = Sample(1);
  live.response.own_after_us = 40;
  Exchange imported = Sample(2);
  imported.response.own_after_us = 40;
  Exchange unknown = Sample(3);  // not measured: stays so
  ASSERT_TRUE(store->WaitCommitted(store->AppendRecorded(live)).ok());
  ASSERT_TRUE(store->WaitCommitted(store->Append(imported)).ok());
  ASSERT_TRUE(store->WaitCommitted(store->AppendRecorded(unknown)).ok());
  EXPECT_GT(store->Get(1)->response.own_after_us, 40);  // waking the writer
  EXPECT_LT(store->Get(1)->response.own_after_us, 10'000'000);
  EXPECT_EQ(store->Get(2)->response.own_after_us, 40);
  EXPECT_EQ(store->Get(3)->response.own_after_us, -1);
}

// A schema 2 file (before rewind's own time was stored): read as it is
// read-only, its exchanges' own time not known; upgraded when opened for
// writing, its rows kept, new ones with their own time.
TEST(Store, ReadsASchemaTwoFileAndUpgradesItWhenOpenedForWriting) {
  TempDir dir;
  const std::string path = dir.File("r.sqlite");
  {
    auto store = OpenTestStore(path);
    store->Append(Sample(1));
    ASSERT_TRUE(store->Flush().ok());
  }
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("ALTER TABLE exchanges DROP COLUMN own_before_us");
    db.exec("ALTER TABLE exchanges DROP COLUMN own_after_us");
    db.exec("PRAGMA user_version = 2");
    db.exec("PRAGMA journal_mode = DELETE");
  }
  const std::string bytes = ReadFile(path);
  {
    StoreOptions o;
    o.path = path;
    o.read_only = true;
    auto ro = Store::Open(o);
    ASSERT_TRUE(ro.ok()) << ro.status().ToString();
    Result<Exchange> e = ro.value()->Get(1);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(e->request.query, "n=1");
    EXPECT_EQ(e->response.chunks.size(), 3u);
    EXPECT_EQ(e->response.own_before_us, -1);
    EXPECT_EQ(e->response.own_after_us, -1);
  }
  EXPECT_EQ(ReadFile(path), bytes);  // reading changed nothing
  {
    auto store = OpenTestStore(path, false);
    ASSERT_TRUE(store);
    Exchange measured = Sample(2);
    measured.response.own_before_us = 120;
    measured.response.own_after_us = 30;
    ASSERT_TRUE(store->WaitCommitted(store->Append(measured)).ok());
    EXPECT_EQ(store->Get(1)->response.own_before_us, -1);
    EXPECT_EQ(store->Get(1)->request.query, "n=1");
    EXPECT_EQ(store->Get(2)->response.own_before_us, 120);
    EXPECT_EQ(store->Get(2)->response.own_after_us, 30);
  }
  SQLite::Database after(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(after.execAndGet("PRAGMA user_version").getInt(), kSchemaVersion);
  EXPECT_EQ(kSchemaVersion, 3);
}

TEST(Store, RefusesAnUnrelatedSqliteDatabase) {
  TempDir dir;
  const std::string path = dir.File("other.sqlite");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE notes (t TEXT)");
  }
  ExpectRefusedUnchanged(path, "not a rewind recording");
}

TEST(Store, RefusesAFileThatIsNotSqlite) {
  TempDir dir;
  const std::string path = dir.File("garbage.sqlite");
  {
    std::ofstream out(path);
    for (int i = 0; i < 200; ++i) out << "this is not a database file\n";
  }
  ExpectRefusedUnchanged(path, "not a readable rewind recording");
}

TEST(Store, RefusesAnotherCanonicalizer) {
  TempDir dir;
  const std::string path = dir.File("r.sqlite");
  OpenTestStore(path).reset();
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(
        "UPDATE meta SET value = 'rewind.json-v0' WHERE name = "
        "'canonicalizer'");
  }
  StoreOptions o;
  o.path = path;
  Result<std::unique_ptr<Store>> s = Store::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("rewind.json-v0"), std::string::npos);
}

TEST(Store, ConcurrentReadersSeeCommittedExchangesWhileWriting) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  ASSERT_TRUE(store);
  std::atomic<int64_t> committed{0};
  std::atomic<bool> writing{true};
  std::atomic<int> read_failures{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      uint64_t x = static_cast<uint64_t>(t) + 1;
      while (writing.load() || reads.load() < 100) {
        int64_t max = committed.load();
        if (max == 0) continue;
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int64_t id =
            1 + static_cast<int64_t>((x >> 33) % static_cast<uint64_t>(max));
        Result<Exchange> e = store->Get(id);
        if (!e.ok() || e->response.chunks.size() != 3) read_failures++;
        reads++;
      }
    });
  }
  for (int batch = 0; batch < 20; ++batch) {
    std::vector<std::shared_ptr<Store::Ticket>> tickets;
    for (int i = 0; i < 50; ++i)
      tickets.push_back(store->Append(Sample(batch * 50 + i)));
    for (auto& t : tickets) {
      Result<int64_t> id = store->WaitCommitted(t);
      ASSERT_TRUE(id.ok());
      int64_t prev = committed.load();
      while (id.value() > prev &&
             !committed.compare_exchange_weak(prev, id.value())) {
      }
    }
  }
  writing = false;
  for (auto& r : readers) r.join();
  EXPECT_EQ(read_failures.load(), 0);
  EXPECT_GE(reads.load(), 100);
  int count = 0;
  ASSERT_TRUE(store->Scan([&](const ExchangeSummary&) { ++count; }).ok());
  EXPECT_EQ(count, 1000);
}

TEST(Store, FlushCommitsEverythingQueued) {
  TempDir dir;
  const std::string path = dir.File("r.sqlite");
  {
    auto store = OpenTestStore(path);
    for (int i = 0; i < 300; ++i) store->Append(Sample(i));
    ASSERT_TRUE(store->Flush().ok());
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("SELECT count(*) FROM exchanges").getInt(), 300);
  }
}

// Checkpoints run beside the writer; under a write load that never pauses
// the log must still start over instead of growing with the recording.
TEST(Store, ItsSizeCountsWhatWasThereAndIsTheFileOnceClosed) {
  TempDir dir;
  const std::string path = dir.File("r.sqlite");
  uint64_t written = 0;
  {
    auto store = OpenTestStore(path);
    const uint64_t empty = store->writer_stats().bytes;
    EXPECT_GT(empty, 0u);
    for (int i = 0; i < 50; ++i) store->Append(Sample(i));
    ASSERT_TRUE(store->Flush().ok());
    written = store->writer_stats().bytes;
    EXPECT_GT(written, empty);
  }
  EXPECT_EQ(std::filesystem::file_size(path), written);
  // Opened again: its size from the start.
  auto store = OpenTestStore(path, false);
  EXPECT_EQ(store->writer_stats().bytes, written);
}

TEST(Store, WriteAheadLogStaysBoundedUnderASteadyLoad) {
  TempDir dir;
  const std::string path = dir.File("r.sqlite");
  constexpr int kWriters = 4;
  constexpr int kEach = 1000;  // 4,000 exchanges of ~10 KB: ~40 MB
  std::atomic<bool> done{false};
  std::atomic<int64_t> peak_wal{0};
  {
    auto store = OpenTestStore(path);
    std::thread monitor([&] {
      while (!done) {
        struct stat st;
        if (::stat((path + "-wal").c_str(), &st) == 0 &&
            st.st_size > peak_wal) {
          peak_wal = st.st_size;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    std::vector<std::thread> writers;
    std::atomic<int> failed{0};
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; i < kEach; ++i) {
          Exchange e = Sample(w * kEach + i);
          e.response.chunks[0].data = std::string(10000, 'a' + (i % 26));
          if (!store->WaitCommitted(store->Append(std::move(e))).ok()) failed++;
        }
      });
    }
    for (auto& t : writers) t.join();
    done = true;
    monitor.join();
    EXPECT_EQ(failed, 0);
  }
  // The log starts over at 16 MB; one batch more may land before it does.
  EXPECT_LT(peak_wal, 24 << 20) << "peak -wal size " << peak_wal;
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("SELECT count(*) FROM exchanges").getInt(),
            kWriters * kEach);
  EXPECT_EQ(db.execAndGet("PRAGMA integrity_check").getString(), "ok");
}

// Requests come without their responses, and a body only when it is
// short enough: a miss can rank candidates by length without reading them.
TEST(Store, GetRequestsReadsBodiesOnlyUpToTheLimit) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Exchange big = Sample(1);
  big.request.body = std::string(5000, 'b');
  ASSERT_TRUE(store->WaitCommitted(store->Append(big)).ok());
  ASSERT_TRUE(store->WaitCommitted(store->Append(Sample(2))).ok());
  Result<std::vector<StoredRequest>> got = store->GetRequests({2, 1, 99}, 100);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u);
  const StoredRequest& small = (*got)[0];
  EXPECT_EQ(small.id, 2);
  EXPECT_EQ(small.key_hex, Sample(2).key_hex);
  EXPECT_EQ(small.request.method, "POST");
  EXPECT_EQ(small.request.query, "n=2");
  EXPECT_EQ(small.request.headers, Sample(2).request.headers);
  EXPECT_TRUE(small.body_loaded);
  EXPECT_EQ(small.request.body, Sample(2).request.body);
  const StoredRequest& large = (*got)[1];
  EXPECT_EQ(large.id, 1);
  EXPECT_FALSE(large.body_loaded);
  EXPECT_TRUE(large.request.body.empty());
  EXPECT_EQ(large.body_bytes, 5000);
}

TEST(Store, ReadOnlyStoreRefusesWrites) {
  TempDir dir;
  const std::string path = dir.File("r.sqlite");
  OpenTestStore(path).reset();
  StoreOptions o;
  o.path = path;
  o.read_only = true;
  Result<std::unique_ptr<Store>> s = Store::Open(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Result<int64_t> id = s.value()->WaitCommitted(s.value()->Append(Sample(1)));
  EXPECT_FALSE(id.ok());
}

}  // namespace
}  // namespace rwd
