// MemoryStore: a Store held in memory, for fuzzers and tests that need the
// interface without a file. Writes commit at once.
#ifndef REWIND_TESTS_TESTUTIL_MEMORY_STORE_H_
#define REWIND_TESTS_TESTUTIL_MEMORY_STORE_H_

#include <algorithm>
#include <map>
#include <mutex>

#include "rewind/store.h"

namespace rwd::testing {

class MemoryStore final : public Store {
 public:
  explicit MemoryStore(KeyRules rules = KeyRules{DefaultIgnoredFields(), {}})
      : rules_(std::move(rules)) {}

  const KeyRules& rules() const override { return rules_; }

  std::shared_ptr<Ticket> Append(Exchange e) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto t = std::make_shared<Ticket>();
    t->done = true;
    if (e.id == 0) e.id = exchanges_.empty() ? 1 : exchanges_.rbegin()->first + 1;
    if (exchanges_.count(e.id)) {
      t->status = Status::IOError("id " + std::to_string(e.id) + " is taken");
      return t;
    }
    t->id = e.id;
    exchanges_[e.id] = std::move(e);
    return t;
  }
  Result<int64_t> WaitCommitted(const std::shared_ptr<Ticket>& t) override {
    if (!t->status.ok()) return t->status;
    return t->id;
  }
  Status Flush() override { return Status::Ok(); }
  Status WriteHealth() const override { return Status::Ok(); }
  Result<Exchange> Get(int64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = exchanges_.find(id);
    if (it == exchanges_.end()) return Status::NotFound("no exchange " + std::to_string(id));
    return it->second;
  }
  Status Scan(const std::function<void(const ExchangeSummary&)>& fn) override {
    std::vector<ExchangeSummary> rows;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, e] : exchanges_) {
        ExchangeSummary s;
        s.id = id;
        s.key_hex = e.key_hex;
        s.method = e.request.method;
        s.path = e.request.path;
        s.query = e.request.query;
        s.status = e.response.status;
        s.complete = e.complete;
        s.started_at_us = e.started_at_us;
        s.headers_us = e.response.headers_us;
        s.total_us = e.response.TotalMicros();
        s.response_bytes = static_cast<int64_t>(e.response.Body().size());
        s.chunks = static_cast<int64_t>(e.response.chunks.size());
        rows.push_back(s);
      }
    }
    for (const auto& r : rows) fn(r);
    return Status::Ok();
  }
  Result<int64_t> Count() override {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int64_t>(exchanges_.size());
  }
  Status SetRules(const KeyRules& rules) override {
    rules_ = rules;
    return Status::Ok();
  }
  Status UpdateKeys(const std::vector<std::pair<int64_t, std::string>>& keys) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, key] : keys) exchanges_[id].key_hex = key;
    return Status::Ok();
  }
  Status Delete(const std::vector<int64_t>& ids) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (int64_t id : ids) exchanges_.erase(id);
    return Status::Ok();
  }
  Result<std::string> IntegrityCheck() override { return std::string("ok"); }

 private:
  KeyRules rules_;
  std::mutex mu_;
  std::map<int64_t, Exchange> exchanges_;  // guarded by mu_
};

}  // namespace rwd::testing

#endif  // REWIND_TESTS_TESTUTIL_MEMORY_STORE_H_
