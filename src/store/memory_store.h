// MemoryStore: a Store held in memory, without a file, for unit tests of
// the modes and for fuzzers. Internal to rewind (src/store/).
//
// It keeps the Store contract as the SQLite store does, bar durability:
// Append() commits at once (its ticket is done when it returns), ids come
// as SQLite's AUTOINCREMENT gives them (one past the largest ever used, so
// a deleted id is never given again), an exchange whose id is taken fails
// and makes WriteHealth() report the failure until the next commit, and
// the stored copy is the one Get() returns. Its writer_stats().bytes sums
// ExchangeBytes() of what it holds. Scan()'s summary "model" is the
// JSON request body's top-level "model" when it is a string, else "".
//
// Thread-safety: all methods are safe for concurrent use; "fn" of Scan()
// and ScanKeys() runs without the store's lock held, so it may call the
// store.
#ifndef REWIND_SRC_STORE_MEMORY_STORE_H_
#define REWIND_SRC_STORE_MEMORY_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "rewind/store.h"

namespace rwd {

class MemoryStore final : public Store {
 public:
  // A recording made with "rules" (default: the default rules).
  explicit MemoryStore(KeyRules rules = KeyRules{DefaultIgnoredFields(), {}});

  const KeyRules& rules() const override { return rules_; }

  std::shared_ptr<Ticket> Append(Exchange exchange) override;
  Result<int64_t> WaitCommitted(const std::shared_ptr<Ticket>& ticket) override;
  Status Flush() override;
  Status WriteHealth() const override;
  WriterStats writer_stats() const override;

  Result<Exchange> Get(int64_t id) override;
  Status Scan(const std::function<void(const ExchangeSummary&)>& fn) override;
  Status ScanKeys(
      const std::function<void(const ExchangeSummary&)>& fn) override;
  Result<int64_t> Count() override;

  Status SetRules(const KeyRules& rules) override;
  Status UpdateKeys(
      const std::vector<std::pair<int64_t, std::string>>& keys) override;
  Status Delete(const std::vector<int64_t>& ids) override;
  Result<std::string> IntegrityCheck() override { return std::string("ok"); }

 private:
  KeyRules rules_;
  mutable std::mutex mu_;
  std::map<int64_t, Exchange> exchanges_;  // guarded by mu_
  int64_t last_id_ = 0;                    // guarded by mu_
  Status write_health_;                    // guarded by mu_
  WriterStats stats_;                      // guarded by mu_
};

}  // namespace rwd

#endif  // REWIND_SRC_STORE_MEMORY_STORE_H_
