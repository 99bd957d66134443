#include <gtest/gtest.h>

#include <chrono>

#include "rewind/replay.h"
#include "store/memory_store.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

const RequestKey kA{1, 2};
const RequestKey kB{3, 4};

std::vector<int64_t> Draw(ReplayIndex* index, const RequestKey& key, int n) {
  std::vector<int64_t> ids;
  for (int i = 0; i < n; ++i) {
    auto pick = index->Select(key);
    ids.push_back(pick ? pick->id : -1);
  }
  return ids;
}

void AddThree(ReplayIndex* index) {
  index->Add(kA, 10, "POST", "/x");
  index->Add(kB, 11, "POST", "/x");
  index->Add(kA, 12, "POST", "/x");
  index->Add(kA, 13, "GET", "/y");
}

TEST(ReplayIndex, KeepsTheIdsOfIncompleteRecordingsItLeavesOut) {
  MemoryStore store;
  for (int i = 0; i < 3; ++i) {
    Exchange e;
    e.request.method = "POST";
    e.request.path = "/x";
    e.key_hex = (i == 1 ? kB : kA).ToHex();
    e.complete = i != 2;
    store.Append(e);
  }
  ReplayIndex index(RepeatPolicy::kSequence, 0);
  ASSERT_EQ(index.Load(&store, false).value(), 2u);
  EXPECT_EQ(index.Incomplete(kA), (std::vector<int64_t>{3}));
  EXPECT_TRUE(index.Incomplete(kB).empty());
  ReplayIndex all(RepeatPolicy::kSequence, 0);
  ASSERT_EQ(all.Load(&store, true).value(), 3u);
  EXPECT_TRUE(all.Incomplete(kA).empty());
}

TEST(ReplayIndex, SequenceStaysOnTheLast) {
  ReplayIndex index(RepeatPolicy::kSequence, 0);
  AddThree(&index);
  EXPECT_EQ(Draw(&index, kA, 5), (std::vector<int64_t>{10, 12, 13, 13, 13}));
  EXPECT_EQ(Draw(&index, kB, 2), (std::vector<int64_t>{11, 11}));
}

TEST(ReplayIndex, CycleWrapsAround) {
  ReplayIndex index(RepeatPolicy::kCycle, 0);
  AddThree(&index);
  EXPECT_EQ(Draw(&index, kA, 5), (std::vector<int64_t>{10, 12, 13, 10, 12}));
}

TEST(ReplayIndex, FirstAlwaysAnswersWithTheFirst) {
  ReplayIndex index(RepeatPolicy::kFirst, 0);
  AddThree(&index);
  EXPECT_EQ(Draw(&index, kA, 3), (std::vector<int64_t>{10, 10, 10}));
}

TEST(ReplayIndex, RandomIsSeededAndCoversTheRecordings) {
  ReplayIndex a(RepeatPolicy::kRandom, 7), b(RepeatPolicy::kRandom, 7);
  ReplayIndex c(RepeatPolicy::kRandom, 8);
  AddThree(&a);
  AddThree(&b);
  AddThree(&c);
  std::vector<int64_t> da = Draw(&a, kA, 60);
  EXPECT_EQ(da, Draw(&b, kA, 60));
  EXPECT_NE(da, Draw(&c, kA, 60));
  for (int64_t id : {10, 12, 13}) {
    EXPECT_NE(std::find(da.begin(), da.end(), id), da.end()) << id;
  }
}

TEST(ReplayIndex, ResetRestartsSequencesAndCountsOccurrences) {
  ReplayIndex index(RepeatPolicy::kSequence, 0);
  AddThree(&index);
  EXPECT_EQ(index.Select(kA)->occurrence, 0u);
  EXPECT_EQ(index.Select(kA)->occurrence, 1u);
  index.Reset();
  auto pick = index.Select(kA);
  EXPECT_EQ(pick->id, 10);
  EXPECT_EQ(pick->occurrence, 0u);
}

TEST(ReplayIndex, MissAndSamePath) {
  ReplayIndex index(RepeatPolicy::kSequence, 0);
  AddThree(&index);
  EXPECT_FALSE(index.Select(RequestKey{9, 9}).has_value());
  EXPECT_EQ(index.SamePath("POST", "/x", 10),
            (std::vector<int64_t>{10, 11, 12}));
  EXPECT_EQ(index.SamePath("POST", "/x", 2), (std::vector<int64_t>{11, 12}));
  EXPECT_TRUE(index.SamePath("GET", "/x", 10).empty());
  EXPECT_EQ(index.size(), 4u);
}

TEST(ReplayIndex, LoadSkipsIncompleteExchangesUnlessAsked) {
  testing::TempDir dir;
  auto store = testing::OpenTestStore(dir.File("r.sqlite"));
  ASSERT_TRUE(store);
  Exchange e;
  e.key_hex = kA.ToHex();
  e.request.method = "GET";
  e.request.path = "/a";
  store->Append(e);
  e.complete = false;
  store->Append(e);
  ASSERT_TRUE(store->Flush().ok());
  ReplayIndex complete_only(RepeatPolicy::kSequence, 0);
  EXPECT_EQ(complete_only.Load(store.get(), false).value(), 1u);
  ReplayIndex all(RepeatPolicy::kSequence, 0);
  EXPECT_EQ(all.Load(store.get(), true).value(), 2u);
}

// A chat request whose message is "content".
Request Chat(const std::string& content) {
  Request r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.headers = {{"Content-Type", "application/json"}};
  r.body = R"({"model":"m","messages":[{"role":"user","content":")" + content +
           R"("}]})";
  return r;
}

// 2,000 recordings on one path, "question N", and the index over them.
void RecordQuestions(Store* store, ReplayIndex* index,
                     const Canonicalizer& canon) {
  for (int i = 0; i < 2000; ++i) {
    Exchange e;
    e.request = Chat("question " + std::to_string(i));
    e.key_hex = canon.Key(e.request).ToHex();
    e.response.status = 200;
    e.response.chunks = {Chunk{1000, std::string(1000, 'x')}};
    store->Append(std::move(e));
  }
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(index->Load(store, false).ok());
}

// A miss costs the same whatever its size: a 20 MB request is explained
// within a bound (diffing it against 200 recordings took 15 s and more),
// and still names a recording; a small one names the one it is nearest.
TEST(FindNearest, ALargeMissIsExplainedWithinABound) {
  testing::TempDir dir;
  auto store = testing::OpenTestStore(dir.File("r.sqlite"));
  ASSERT_TRUE(store);
  Canonicalizer canon(store->rules());
  ReplayIndex index(RepeatPolicy::kSequence, 0);
  RecordQuestions(store.get(), &index, canon);

  const Request large = Chat(std::string(20u << 20, 'w'));
  const auto start = std::chrono::steady_clock::now();
  std::optional<NearestMatch> nearest =
      FindNearest(store.get(), index, canon, large);
  const double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  std::printf("nearest for a 20 MB miss among 2,000: %.1f ms\n", ms);
  EXPECT_LT(ms, 2000.0);
  ASSERT_TRUE(nearest.has_value());
  EXPECT_EQ(nearest->differences, std::vector<std::string>{"body"});

  Request small = Chat("question 1900");
  small.body.replace(small.body.find("\"m\""), 3, "\"other\"");
  nearest = FindNearest(store.get(), index, canon, small);
  ASSERT_TRUE(nearest.has_value());
  EXPECT_EQ(nearest->id, 1901);
  EXPECT_EQ(nearest->differences, std::vector<std::string>{"model"});
}

// Equal in length is not enough: the fields decide among what is diffed.
TEST(FindNearest, FieldsDecideAmongCandidatesOfEveryLength) {
  testing::TempDir dir;
  auto store = testing::OpenTestStore(dir.File("r.sqlite"));
  ASSERT_TRUE(store);
  Canonicalizer canon(store->rules());
  ReplayIndex index(RepeatPolicy::kSequence, 0);
  for (const std::string& content :
       {std::string("same words, then more of them"),
        std::string("other words")}) {
    Exchange e;
    e.request = Chat(content);
    e.request.body.insert(e.request.body.size() - 1, R"(,"temperature":0.5)");
    e.key_hex = canon.Key(e.request).ToHex();
    store->Append(std::move(e));
  }
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(index.Load(store.get(), false).ok());
  // Shorter than both; its length is nearer the second's.
  std::optional<NearestMatch> nearest = FindNearest(
      store.get(), index, canon, Chat("same words, then more of them"));
  ASSERT_TRUE(nearest.has_value());
  EXPECT_EQ(nearest->id, 1);
  EXPECT_EQ(nearest->differences, std::vector<std::string>{"temperature"});
}

TEST(RequestSeed, DependsOnEveryInput) {
  EXPECT_EQ(RequestSeed(1, kA, 0), RequestSeed(1, kA, 0));
  EXPECT_NE(RequestSeed(1, kA, 0), RequestSeed(2, kA, 0));
  EXPECT_NE(RequestSeed(1, kA, 0), RequestSeed(1, kB, 0));
  EXPECT_NE(RequestSeed(1, kA, 0), RequestSeed(1, kA, 1));
}

TEST(ReplayIndex, RepeatCountsOfAScopeLeaveTheIndexsOwnAlone) {
  ReplayIndex index(RepeatPolicy::kSequence, 0);
  AddThree(&index);
  RepeatCounts scope;
  EXPECT_EQ(index.Select(kA, &scope)->id, 10);
  EXPECT_EQ(index.Select(kA, &scope)->id, 12);
  EXPECT_EQ(index.Select(kA)->id, 10);
  EXPECT_EQ(index.Select(kA, &scope)->occurrence, 2u);
  scope.Reset();
  EXPECT_EQ(index.Select(kA, &scope)->id, 10);
  EXPECT_EQ(index.Select(kA)->id, 12);
  // A miss counts nothing.
  EXPECT_FALSE(index.Select(RequestKey{9, 9}, &scope));
  EXPECT_EQ(scope.Next(RequestKey{9, 9}), 0u);
}

TEST(ReplayIndex, RecordingsListsWhatLoadIndexedByIdWithMethodPathAndKey) {
  MemoryStore store;
  for (int i = 0; i < 5; ++i) {
    Exchange e;
    e.request.method = i == 3 ? "GET" : "POST";
    e.request.path = i == 3 ? "/y" : "/x";
    e.key_hex = (i % 2 ? kB : kA).ToHex();
    store.Append(e);
  }
  ReplayIndex index(RepeatPolicy::kSequence, 0);
  ASSERT_TRUE(index.Load(&store, false).ok());
  index.Add(kA, 99, "POST", "/x");  // added while serving: not listed
  size_t total = 0;
  std::vector<ReplayIndex::Recording> all =
      index.Recordings([](int64_t) { return false; }, 100, &total);
  EXPECT_EQ(total, 5u);
  ASSERT_EQ(all.size(), 5u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].id, static_cast<int64_t>(i + 1));
    EXPECT_EQ(all[i].key, i % 2 ? kB : kA);
    EXPECT_EQ(all[i].method, i == 3 ? "GET" : "POST");
    EXPECT_EQ(all[i].path, i == 3 ? "/y" : "/x");
  }
  std::vector<ReplayIndex::Recording> some =
      index.Recordings([](int64_t id) { return id == 2; }, 2, &total);
  EXPECT_EQ(total, 4u);
  ASSERT_EQ(some.size(), 2u);
  EXPECT_EQ(some[0].id, 1);
  EXPECT_EQ(some[1].id, 3);
}

}  // namespace
}  // namespace rwd
