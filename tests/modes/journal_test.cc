#include "modes/journal.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace rwd {
namespace {

JournalEntry Entry(const char* outcome, int64_t exchange = 0,
                   std::shared_ptr<Scope> scope = nullptr) {
  JournalEntry e;
  e.scope = std::move(scope);
  e.method = "POST";
  e.path = "/v1/chat/completions";
  e.keyed = true;
  e.key = RequestKey{1, 2};
  e.outcome = outcome;
  e.status = std::string(outcome) == "miss" ? 404 : 200;
  e.exchange = exchange;
  return e;
}

TEST(Journal, NewestLastNumberedFromOne) {
  Journal j;
  j.Add(Entry("hit", 3));
  j.Add(Entry("miss"));
  Journal::View v = j.Entries();
  ASSERT_EQ(v.entries.size(), 2u);
  EXPECT_EQ(v.entries[0].seq, 1u);
  EXPECT_STREQ(v.entries[0].outcome, "hit");
  EXPECT_EQ(v.entries[0].exchange, 3);
  EXPECT_EQ(v.entries[1].seq, 2u);
  EXPECT_STREQ(v.entries[1].outcome, "miss");
  EXPECT_EQ(v.dropped, 0u);
}

TEST(Journal, BoundedTheOldestAreDroppedAndCounted) {
  Journal j(3);
  auto a = std::make_shared<Scope>("a");
  for (int i = 1; i <= 5; ++i) j.Add(Entry("hit", i, i <= 2 ? a : nullptr));
  Journal::View v = j.Entries();
  ASSERT_EQ(v.entries.size(), 3u);
  EXPECT_EQ(v.entries.front().seq, 3u);
  EXPECT_EQ(v.entries.back().seq, 5u);
  EXPECT_EQ(v.dropped, 2u);
  EXPECT_EQ(a->dropped.load(), 2u);
  // The run's totals are not bounded by the view.
  EXPECT_EQ(j.RunTotals().requests, 5u);
  EXPECT_EQ(j.RunTotals().served.size(), 5u);
}

TEST(Journal, AScopeSeesItsOwnEntriesAndResetsAlone) {
  Journal j;
  auto a = std::make_shared<Scope>("a");
  auto b = std::make_shared<Scope>("b");
  j.Add(Entry("hit", 1, a));
  j.Add(Entry("hit", 1, b));
  j.Add(Entry("miss", 0, a));
  j.Add(Entry("hit", 2));
  EXPECT_EQ(j.Entries("a").entries.size(), 2u);
  EXPECT_EQ(j.Entries("b").entries.size(), 1u);
  EXPECT_EQ(j.Entries("c").entries.size(), 0u);
  EXPECT_EQ(j.Entries().entries.size(), 4u);
  EXPECT_EQ(a->Served(), (std::unordered_set<int64_t>{1}));
  j.Reset("a");
  EXPECT_EQ(j.Entries("a").entries.size(), 0u);
  EXPECT_EQ(j.Entries("b").entries.size(), 1u);
  EXPECT_EQ(j.Entries().entries.size(), 2u);
}

TEST(Journal, ServedCountsOnlyAnswersFromARecording) {
  Journal j;
  j.Add(Entry("hit", 1));
  j.Add(Entry("converted", 2));
  j.Add(Entry("near", 3));
  j.Add(Entry("miss"));
  j.Add(Entry("record", 9));
  j.Add(Entry("synth"));
  EXPECT_EQ(j.Served(), (std::unordered_set<int64_t>{1, 2, 3}));
}

TEST(Journal, AResetClearsTheViewButNotTheRunsTotals) {
  Journal j;
  j.Add(Entry("hit", 1));
  j.Add(Entry("miss"));
  j.Reset();
  EXPECT_TRUE(j.Entries().entries.empty());
  EXPECT_TRUE(j.Served().empty());
  j.Add(Entry("hit", 2));
  Journal::Totals t = j.RunTotals();
  EXPECT_EQ(t.requests, 3u);
  EXPECT_EQ(t.hits, 2u);
  EXPECT_EQ(t.misses, 1u);
  ASSERT_EQ(t.missed.size(), 1u);
  EXPECT_EQ(t.missed[0].seq, 2u);
  EXPECT_EQ(t.served, (std::unordered_set<int64_t>{1, 2}));
  // Numbering goes on: seq says what came first across resets.
  EXPECT_EQ(j.Entries().entries[0].seq, 3u);
}

TEST(Journal, SafeForConcurrentUse) {
  Journal j(100);
  auto a = std::make_shared<Scope>("a");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&j, &a, t] {
      for (int i = 0; i < 1000; ++i)
        j.Add(Entry(i % 2 ? "hit" : "miss", i + 1, t % 2 ? a : nullptr));
    });
  }
  for (std::thread& t : threads) t.join();
  Journal::View v = j.Entries();
  EXPECT_EQ(v.entries.size(), 100u);
  EXPECT_EQ(v.dropped, 3900u);
  for (size_t i = 1; i < v.entries.size(); ++i)
    EXPECT_LT(v.entries[i - 1].seq, v.entries[i].seq);
  EXPECT_EQ(j.RunTotals().requests, 4000u);
  EXPECT_EQ(j.RunTotals().misses, 2000u);
  EXPECT_EQ(j.RunTotals().missed.size(), 100u);
}

}  // namespace
}  // namespace rwd
