// FaultyStore: a Store that hands every call to another one, counts the
// live appends, and can be told to throw from its writes or from
// writer_stats(): internal errors for the tests of record --fail-open.
#ifndef REWIND_TESTS_TESTUTIL_FAULTY_STORE_H_
#define REWIND_TESTS_TESTUTIL_FAULTY_STORE_H_

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rewind/store.h"

namespace rwd::testing {

class FaultyStore final : public Store {
 public:
  // "inner" must outlive this store.
  explicit FaultyStore(Store* inner) : inner_(inner) {}

  // Append() and AppendRecorded() throw while set.
  std::atomic<bool> throw_on_append{false};
  // writer_stats() throws while set.
  std::atomic<bool> throw_on_stats{false};
  // AppendRecorded() calls so far.
  std::atomic<int> recorded_appends{0};

  const KeyRules& rules() const override { return inner_->rules(); }
  std::shared_ptr<Ticket> Append(Exchange exchange) override {
    if (throw_on_append) throw std::runtime_error("injected: append");
    return inner_->Append(std::move(exchange));
  }
  std::shared_ptr<Ticket> AppendRecorded(Exchange exchange) override {
    if (throw_on_append) throw std::runtime_error("injected: append");
    recorded_appends++;
    return inner_->AppendRecorded(std::move(exchange));
  }
  Result<int64_t> WaitCommitted(const std::shared_ptr<Ticket>& t) override {
    return inner_->WaitCommitted(t);
  }
  Status Flush() override { return inner_->Flush(); }
  Status WriteHealth() const override { return inner_->WriteHealth(); }
  WriterStats writer_stats() const override {
    if (throw_on_stats) throw std::runtime_error("injected: writer stats");
    return inner_->writer_stats();
  }
  Status Settle() override { return inner_->Settle(); }
  Result<Exchange> Get(int64_t id) override { return inner_->Get(id); }
  Result<std::vector<StoredRequest>> GetRequests(
      const std::vector<int64_t>& ids, size_t max_body) override {
    return inner_->GetRequests(ids, max_body);
  }
  Status Scan(const std::function<void(const ExchangeSummary&)>& fn) override {
    return inner_->Scan(fn);
  }
  Status ScanKeys(
      const std::function<void(const ExchangeSummary&)>& fn) override {
    return inner_->ScanKeys(fn);
  }
  Result<int64_t> Count() override { return inner_->Count(); }
  Status SetRules(const KeyRules& rules) override {
    return inner_->SetRules(rules);
  }
  Status UpdateKeys(
      const std::vector<std::pair<int64_t, std::string>>& keys) override {
    return inner_->UpdateKeys(keys);
  }
  Status Delete(const std::vector<int64_t>& ids) override {
    return inner_->Delete(ids);
  }
  Result<std::string> IntegrityCheck() override {
    return inner_->IntegrityCheck();
  }

 private:
  Store* const inner_;
};

}  // namespace rwd::testing

#endif  // REWIND_TESTS_TESTUTIL_FAULTY_STORE_H_
