// MemoryStore against the Store contract: every test here runs on the
// in-memory store and on the SQLite store, and expects the same answers.
#include "store/memory_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "rewind/store.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

Exchange Sample(int n, const std::string& body) {
  Exchange e;
  e.key_hex = HashBytes("k" + std::to_string(n)).ToHex();
  e.request.method = n % 2 ? "GET" : "POST";
  e.request.path = "/v1/chat/completions";
  e.request.query = "n=" + std::to_string(n);
  e.request.headers = {{"Content-Type", "application/json"},
                       {"Authorization", "[REDACTED]"}};
  e.request.body = body;
  e.response.status = 200 + n;
  e.response.headers = {{"Content-Type", "text/event-stream"}};
  e.response.chunked = true;
  e.response.headers_us = 1500;
  e.response.chunks = {{20000, "data: a\n\n"},
                       {35000, std::string("bin\0ary\xff", 7)},
                       {36000 + n, "data: [DONE]\n\n"}};
  e.started_at_us = 1700000000000000 + n;
  e.arrival_offset_us = n * 1000;
  e.complete = n % 3 != 0;
  e.error = e.complete ? "" : "backend: Read";
  return e;
}

Exchange Sample(int n) {
  return Sample(n, "{\"model\":\"m" + std::to_string(n) + "\"}");
}

// A fresh store of the kind the test is run with.
class StoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      store_ = std::make_unique<MemoryStore>();
    } else {
      store_ = testing::OpenTestStore(dir_.File("r.sqlite"));
    }
    ASSERT_TRUE(store_);
  }

  int64_t Add(Exchange e) {
    Result<int64_t> id = store_->WaitCommitted(store_->Append(std::move(e)));
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? id.value() : -1;
  }

  std::vector<ExchangeSummary> Scanned() {
    std::vector<ExchangeSummary> rows;
    EXPECT_TRUE(
        store_->Scan([&](const ExchangeSummary& s) { rows.push_back(s); })
            .ok());
    return rows;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContract, GetReturnsTheAppendedExchange) {
  const Exchange in = Sample(3);
  const int64_t id = Add(in);
  Result<Exchange> out = store_->Get(id);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->id, id);
  EXPECT_EQ(out->key_hex, in.key_hex);
  EXPECT_EQ(out->request.method, in.request.method);
  EXPECT_EQ(out->request.path, in.request.path);
  EXPECT_EQ(out->request.query, in.request.query);
  EXPECT_EQ(out->request.headers, in.request.headers);
  EXPECT_EQ(out->request.body, in.request.body);
  EXPECT_EQ(out->response.status, in.response.status);
  EXPECT_EQ(out->response.headers, in.response.headers);
  EXPECT_EQ(out->response.chunked, in.response.chunked);
  EXPECT_EQ(out->response.headers_us, in.response.headers_us);
  ASSERT_EQ(out->response.chunks.size(), in.response.chunks.size());
  for (size_t i = 0; i < in.response.chunks.size(); ++i) {
    EXPECT_EQ(out->response.chunks[i].offset_us,
              in.response.chunks[i].offset_us);
    EXPECT_EQ(out->response.chunks[i].data, in.response.chunks[i].data);
  }
  EXPECT_EQ(out->started_at_us, in.started_at_us);
  EXPECT_EQ(out->arrival_offset_us, in.arrival_offset_us);
  EXPECT_EQ(out->complete, in.complete);
  EXPECT_EQ(out->error, in.error);
  EXPECT_TRUE(store_->Get(id + 1).status().IsNotFound());
}

TEST_P(StoreContract, GivesIdsAsAutoincrementDoes) {
  EXPECT_EQ(Add(Sample(1)), 1);
  EXPECT_EQ(Add(Sample(2)), 2);
  Exchange kept = Sample(3);
  kept.id = 10;
  EXPECT_EQ(Add(kept), 10);
  EXPECT_EQ(Add(Sample(4)), 11);
  // A deleted id is never given again, nor one below the largest used.
  ASSERT_TRUE(store_->Delete({11}).ok());
  EXPECT_EQ(Add(Sample(5)), 12);
  Exchange low = Sample(6);
  low.id = 5;
  EXPECT_EQ(Add(low), 5);
  EXPECT_EQ(Add(Sample(7)), 13);
}

TEST_P(StoreContract, ATakenIdFailsAndIsReportedUntilTheNextCommit) {
  ASSERT_EQ(Add(Sample(1)), 1);
  Exchange taken = Sample(2);
  taken.id = 1;
  Result<int64_t> id = store_->WaitCommitted(store_->Append(taken));
  EXPECT_FALSE(id.ok());
  EXPECT_FALSE(store_->WriteHealth().ok());
  EXPECT_FALSE(store_->Flush().ok());
  EXPECT_EQ(store_->writer_stats().failures, 1u);
  Result<Exchange> first = store_->Get(1);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->request.query, "n=1");

  EXPECT_EQ(Add(Sample(3)), 2);
  EXPECT_TRUE(store_->WriteHealth().ok());
  EXPECT_TRUE(store_->Flush().ok());
  EXPECT_EQ(store_->writer_stats().written, 2u);
  EXPECT_EQ(store_->writer_stats().queued, 0u);
}

TEST_P(StoreContract, ScanSummarizesEveryExchangeInIdOrder) {
  Exchange late = Sample(4);
  late.id = 9;
  Add(late);
  Add(Sample(0, "not json"));
  Add(Sample(1, "{\"model\":7}"));
  Add(Sample(2, "[{\"model\":\"m\"}]"));
  Add(Sample(3));
  std::vector<ExchangeSummary> rows = Scanned();
  ASSERT_EQ(rows.size(), 5u);
  const std::vector<int64_t> ids = {9, 10, 11, 12, 13};
  const std::vector<std::string> models = {"m4", "", "", "", "m3"};
  const std::vector<int> n = {4, 0, 1, 2, 3};
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(i);
    const Exchange e = Sample(n[i]);
    EXPECT_EQ(rows[i].id, ids[i]);
    EXPECT_EQ(rows[i].key_hex, e.key_hex);
    EXPECT_EQ(rows[i].method, e.request.method);
    EXPECT_EQ(rows[i].path, e.request.path);
    EXPECT_EQ(rows[i].query, e.request.query);
    EXPECT_EQ(rows[i].model, models[i]);
    EXPECT_EQ(rows[i].status, e.response.status);
    EXPECT_EQ(rows[i].complete, e.complete);
    EXPECT_EQ(rows[i].started_at_us, e.started_at_us);
    EXPECT_EQ(rows[i].headers_us, 1500);
    EXPECT_EQ(rows[i].total_us, 36000 + n[i]);
    EXPECT_EQ(rows[i].response_bytes,
              static_cast<int64_t>(e.response.Body().size()));
    EXPECT_EQ(rows[i].chunks, 3);
  }
}

TEST_P(StoreContract, ScanKeysFillsWhatAnIndexNeeds) {
  for (int i = 0; i < 4; ++i) Add(Sample(i));
  std::vector<ExchangeSummary> keys;
  ASSERT_TRUE(
      store_->ScanKeys([&](const ExchangeSummary& s) { keys.push_back(s); })
          .ok());
  std::sort(keys.begin(), keys.end(),
            [](const ExchangeSummary& a, const ExchangeSummary& b) {
              return a.id < b.id;
            });
  ASSERT_EQ(keys.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const Exchange e = Sample(i);
    EXPECT_EQ(keys[i].id, i + 1);
    EXPECT_EQ(keys[i].key_hex, e.key_hex);
    EXPECT_EQ(keys[i].method, e.request.method);
    EXPECT_EQ(keys[i].path, e.request.path);
    EXPECT_EQ(keys[i].status, e.response.status);
    EXPECT_EQ(keys[i].complete, e.complete);
  }
}

TEST_P(StoreContract, ScanCallbacksMayReadTheStore) {
  for (int i = 0; i < 3; ++i) Add(Sample(i));
  int read = 0;
  ASSERT_TRUE(store_
                  ->Scan([&](const ExchangeSummary& s) {
                    if (store_->Get(s.id).ok()) ++read;
                  })
                  .ok());
  EXPECT_EQ(read, 3);
}

TEST_P(StoreContract, GetRequestsReadsBodiesOnlyUpToTheLimit) {
  Add(Sample(1, std::string(50, 'a')));
  Add(Sample(2, std::string(200, 'b')));
  Result<std::vector<StoredRequest>> got = store_->GetRequests({2, 1, 99}, 100);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, 2);
  EXPECT_EQ((*got)[0].key_hex, Sample(2).key_hex);
  EXPECT_EQ((*got)[0].request.query, "n=2");
  EXPECT_EQ((*got)[0].request.headers, Sample(2).request.headers);
  EXPECT_EQ((*got)[0].body_bytes, 200);
  EXPECT_FALSE((*got)[0].body_loaded);
  EXPECT_EQ((*got)[0].request.body, "");
  EXPECT_EQ((*got)[1].id, 1);
  EXPECT_EQ((*got)[1].body_bytes, 50);
  EXPECT_TRUE((*got)[1].body_loaded);
  EXPECT_EQ((*got)[1].request.body, std::string(50, 'a'));
}

TEST_P(StoreContract, MaintenanceChangesOnlyWhatExists) {
  for (int i = 0; i < 3; ++i) Add(Sample(i));
  ASSERT_TRUE(store_->UpdateKeys({{2, "ab"}, {99, "cd"}}).ok());
  ASSERT_TRUE(store_->Delete({1, 98}).ok());
  EXPECT_EQ(store_->Count().value(), 2);
  EXPECT_TRUE(store_->Get(1).status().IsNotFound());
  EXPECT_TRUE(store_->Get(99).status().IsNotFound());
  EXPECT_EQ(store_->Get(2)->key_hex, "ab");
  EXPECT_EQ(store_->Get(3)->key_hex, Sample(2).key_hex);

  const KeyRules rules{{"user", "x.y"}, {"x-model"}};
  ASSERT_TRUE(store_->SetRules(rules).ok());
  EXPECT_EQ(store_->rules(), rules);
  EXPECT_EQ(store_->IntegrityCheck().value(), "ok");
}

TEST_P(StoreContract, ConcurrentAppendsGetDistinctIds) {
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        Result<int64_t> id = store_->WaitCommitted(store_->Append(Sample(i)));
        if (id.ok()) ids[t].push_back(id.value());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<int64_t> all;
  for (const auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(store_->Count().value(), kThreads * kEach);
  EXPECT_TRUE(store_->Flush().ok());
}

std::string StoreName(const ::testing::TestParamInfo<std::string>& param) {
  return param.param;
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreContract,
                         ::testing::Values("memory", "sqlite"), StoreName);

TEST(MemoryStore, KeepsTheRulesItWasMadeWith) {
  const KeyRules rules{{"user"}, {"x-model"}};
  MemoryStore store(rules);
  EXPECT_EQ(store.rules(), rules);
  EXPECT_EQ(MemoryStore().rules(), (KeyRules{DefaultIgnoredFields(), {}}));
  EXPECT_EQ(store.Count().value(), 0);
  EXPECT_TRUE(store.Flush().ok());
}

}  // namespace
}  // namespace rwd
