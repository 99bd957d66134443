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

#include <cstdint>
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
    // The exchange is in the recording: its place stays taken.
    void Stored() { stored_ = true; }

   private:
    friend class CapturePolicy;
    Admission(CapturePolicy* policy, const RequestKey& key, bool keyed)
        : policy_(policy), key_(key), keyed_(keyed) {}
    CapturePolicy* const policy_;
    const RequestKey key_;
    const bool keyed_;  // holds a place under --max-per-key
    bool stored_ = false;
  };

  // "store" must outlive the policy.
  CapturePolicy(CaptureRules rules, Store* store)
      : rules_(std::move(rules)), store_(store) {}

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

 private:
  void Release(const RequestKey& key);

  const CaptureRules rules_;
  Store* const store_;
  std::mutex mu_;
  // Recordings of each key, stored or on their way; guarded by mu_. Only
  // with --max-per-key.
  std::unordered_map<RequestKey, uint64_t, RequestKeyHash> per_key_;
};

}  // namespace rwd

#endif  // REWIND_SRC_MODES_CAPTURE_POLICY_H_
