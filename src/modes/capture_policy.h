// CapturePolicy: which of the answers record mode relays it also stores.
//
//   paths       --record-path GLOB / --skip-path GLOB (each repeatable):
//               a request is recorded when its path (without the query)
//               matches a --record-path, or none is given, and matches no
//               --skip-path (a skip wins). Globs are fnmatch(3)'s without
//               FNM_PATHNAME, as `rewind ls --path`: `*` matches `/` too.
//   sample      --sample P: the request whose key is K is recorded when
//               XXH3-64 of K seeded with --seed, read as a fraction of
//               2^64, is below P. The decision is a function of the key and
//               the seed alone: the same request gets the same one however
//               often, in whatever order and concurrency it comes, and
//               another seed draws another share. P is thus the share of
//               distinct requests recorded (of all requests when they are
//               distinct, as prompts mostly are); --max-per-key bounds
//               those that repeat.
//   full        --max-exchanges N, --max-db-bytes B: caps on the whole
//               recording, what it held already included (its exchanges
//               counted at Start(), its size being the store's
//               writer_stats().bytes). Once one is reached the recording
//               is full for the rest of the run: nothing more is stored
//               (every request is still relayed), and "on_full" is told
//               once. A request is left out as full while the exchanges
//               stored and on their way reach N, and when storing its
//               exchange would take the recording beyond B (Fits(): its
//               ExchangeBytes() times how much the file grew per such
//               byte so far this run, plus the pages an insert can split:
//               kInsertSlack).
//   per key     --max-per-key K: at most K recordings of one key in the
//               recording, those it held already included.
//
// Admit() decides before the request is forwarded, in that order (the
// first reason that leaves a request out is the one counted), and reserves
// the request's place under the limits; the Admission it returns gives the
// place back when it goes without Stored() (the backend failed, the answer
// was too large, the store failed, ...).
//
// Thread-safety: all methods are safe for concurrent use.
#ifndef REWIND_SRC_MODES_CAPTURE_POLICY_H_
#define REWIND_SRC_MODES_CAPTURE_POLICY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "rewind/mode.h"
#include "rewind/request_key.h"
#include "rewind/status.h"
#include "rewind/store.h"

namespace rwd {

struct CaptureRules {
  // The share of requests recorded, in (0, 1]. Default: 1 (all).
  double sample = 1;
  // Seeds the --sample draw. Default: 0.
  uint64_t seed = 0;
  // Globs on the path; see above. Default: none (every path).
  std::vector<std::string> record_paths;
  std::vector<std::string> skip_paths;
  // Most recordings of one key; 0: no limit. Default: 0.
  uint64_t max_per_key = 0;
  // Most exchanges in the recording; 0: no cap. Default: 0.
  uint64_t max_exchanges = 0;
  // Largest recording, in bytes (Store::WriterStats::bytes); 0: no cap.
  // Default: 0.
  uint64_t max_db_bytes = 0;
};

class CapturePolicy {
 public:
  // One admitted request's reserved place.
  class Admission {
   public:
    Admission(const Admission&) = delete;
    Admission& operator=(const Admission&) = delete;
    // Gives the place back, unless Stored() was called.
    ~Admission();
    // Whether an exchange of "bytes" (ExchangeBytes()) still fits under
    // --max-db-bytes. When it does, its bytes count as on their way until
    // Stored() or the Admission goes; when it does not, the recording is
    // full. Call once, before appending the exchange.
    bool Fits(uint64_t bytes);
    // The exchange is in the recording (committed): its place stays taken.
    void Stored();

   private:
    friend class CapturePolicy;
    Admission(CapturePolicy* policy, const RequestKey& key, bool keyed,
              bool counted)
        : policy_(policy), key_(key), keyed_(keyed), counted_(counted) {}
    CapturePolicy* const policy_;
    const RequestKey key_;
    const bool keyed_;       // holds a place under --max-per-key
    const bool counted_;     // holds a place under --max-exchanges
    uint64_t bytes_ = 0;     // on their way under --max-db-bytes
    uint64_t estimate_ = 0;  // the exchange's ExchangeBytes()
    bool stored_ = false;
  };

  // "store" must outlive the policy. "on_full" is called once, with what
  // was reached ("--max-exchanges 100 reached"), when the recording
  // becomes full; it may be empty.
  CapturePolicy(CaptureRules rules, Store* store,
                std::function<void(const std::string&)> on_full = nullptr)
      : rules_(std::move(rules)), store_(store), on_full_(std::move(on_full)) {}

  // Counts what the recording holds already, for the limits that need it
  // (--max-per-key reads every stored key once). Call before Admit().
  Status Start();

  // Whether to record a request to "path" keyed "key": its Admission, or
  // null with "*why" set.
  std::shared_ptr<Admission> Admit(const std::string& path,
                                   const RequestKey& key, Skip* why);

  // The parts of Admit(), for tests: whether "path" is chosen, whether
  // "key" is in the sample.
  bool PathChosen(const std::string& path) const;
  bool Sampled(const RequestKey& key) const;

  const CaptureRules& rules() const { return rules_; }
  // Whether a cap was reached: nothing more is stored.
  bool full() const { return full_.load(); }

 private:
  void Finished(Admission* admission);
  // Pages one insert may add beyond its bytes: a split in the table and in
  // each of its indexes (4 pages of 4 KB).
  static constexpr uint64_t kInsertSlack = 16384;

  // The recording's size with what is on its way to it.
  uint64_t BytesUsed();  // REQUIRES: mu_ held
  // How much the file grew per byte of ExchangeBytes() stored this run
  // (1.25 before any), within [1, 4].
  double GrowthRatio();  // REQUIRES: mu_ held
  void SetFull(const std::string& what);

  const CaptureRules rules_;
  Store* const store_;
  const std::function<void(const std::string&)> on_full_;
  std::atomic<bool> full_{false};
  std::mutex mu_;
  // Recordings of each key, stored or on their way; guarded by mu_. Only
  // with --max-per-key.
  std::unordered_map<RequestKey, uint64_t, RequestKeyHash> per_key_;
  // Under --max-exchanges: exchanges in the recording, and admitted ones
  // on their way; guarded by mu_.
  uint64_t stored_ = 0;
  uint64_t reserved_ = 0;
  // Under --max-db-bytes: bytes of exchanges being appended; guarded by
  // mu_.
  uint64_t pending_bytes_ = 0;
  // The store's size at Start(), and the ExchangeBytes() of what was
  // stored since; guarded by mu_.
  uint64_t start_bytes_ = 0;
  uint64_t estimated_stored_ = 0;
};

}  // namespace rwd

#endif  // REWIND_SRC_MODES_CAPTURE_POLICY_H_
