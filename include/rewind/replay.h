// Replay: which recorded exchange answers a request, and what to say when
// none does.
//
// A ReplayIndex holds, in memory, the ids of the recorded exchanges for each
// request key (bodies stay on disk). Identical requests are answered
// according to a RepeatPolicy:
//   sequence  the n-th identical request gets the n-th recording, then stays
//             on the last (default)
//   cycle     wraps around
//   random    a seeded draw per request
//   first     always the first
// Reset() restarts every sequence. A scope (a test's own view of a shared
// server) counts its own sequences in a RepeatCounts of its own.
//
// Thread-safety: all methods are safe for concurrent use.
#ifndef REWIND_REPLAY_H_
#define REWIND_REPLAY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "rewind/request_key.h"
#include "rewind/status.h"
#include "rewind/store.h"

namespace rwd {

enum class RepeatPolicy { kSequence, kCycle, kRandom, kFirst };

Result<RepeatPolicy> ParseRepeatPolicy(const std::string& name);
const char* RepeatPolicyName(RepeatPolicy policy);

// How many times each key was asked, for one scope's repeat sequences
// (the index itself counts the requests of no scope). Bounded by the keys
// of the index it serves: only keys with recordings are counted.
// Thread-safety: safe for concurrent use.
class RepeatCounts {
 public:
  RepeatCounts() = default;
  RepeatCounts(const RepeatCounts&) = delete;
  RepeatCounts& operator=(const RepeatCounts&) = delete;

  // How many times "key" was asked before; counts this time.
  uint64_t Next(const RequestKey& key);
  // Starts every count over.
  void Reset();

 private:
  std::mutex mu_;
  std::unordered_map<RequestKey, uint64_t, RequestKeyHash> asked_;  // guarded
};

class ReplayIndex {
 public:
  struct Pick {
    int64_t id = 0;
    // How many times this key was asked before (0 for the first request).
    uint64_t occurrence = 0;
  };

  ReplayIndex(RepeatPolicy policy, uint64_t seed);
  ReplayIndex(const ReplayIndex&) = delete;
  ReplayIndex& operator=(const ReplayIndex&) = delete;

  // Indexes every exchange of "store" (incomplete ones only when
  // "include_incomplete"; otherwise only their ids are kept, to explain a
  // miss). Returns the number indexed.
  Result<size_t> Load(Store* store, bool include_incomplete);

  // Ids of the incomplete recordings of "key" that Load left out, oldest
  // first: a miss on such a key is explained by them.
  std::vector<int64_t> Incomplete(const RequestKey& key) const;
  // Whether "id" is an incomplete recording Load indexed (with
  // "include_incomplete").
  bool IsIncomplete(int64_t id) const;

  // Adds one exchange after the ones already known for its key.
  void Add(const RequestKey& key, int64_t id, const std::string& method,
           const std::string& path);

  // The exchange that answers "key" now, or nullopt on a miss. The
  // occurrence is counted in "counts" when given (a scope's), else by the
  // index.
  std::optional<Pick> Select(const RequestKey& key,
                             RepeatCounts* counts = nullptr);

  // Restarts every key's sequence.
  void Reset();

  // Whether "key" is recorded and "pred" holds for every id recorded for
  // it (false on a miss).
  bool EveryId(const RequestKey& key,
               const std::function<bool(int64_t)>& pred) const;

  // Ids recorded for "method" and "path", newest last, at most "limit" of
  // the newest. Used to explain a miss.
  std::vector<int64_t> SamePath(const std::string& method,
                                const std::string& path, size_t limit) const;

  size_t size() const;

  // One recording Load indexed.
  struct Recording {
    int64_t id = 0;
    RequestKey key;
    std::string method;
    std::string path;
  };
  // Those of the recordings Load indexed (not those added later by Add)
  // for which "skip" is false, by id, at most "limit" of them; "*total"
  // (when given) gets how many there are in all.
  std::vector<Recording> Recordings(const std::function<bool(int64_t id)>& skip,
                                    size_t limit,
                                    size_t* total = nullptr) const;

 private:
  struct Entry {
    std::vector<int64_t> ids;
    std::atomic<uint64_t> asked{0};
  };

  const RepeatPolicy policy_;
  const uint64_t seed_;
  mutable std::shared_mutex mu_;
  // Entries live in the map's nodes, which never move.
  std::unordered_map<RequestKey, Entry, RequestKeyHash> by_key_;   // guarded
  std::unordered_map<std::string, std::vector<int64_t>> by_path_;  // guarded
  std::unordered_map<RequestKey, std::vector<int64_t>, RequestKeyHash>
      incomplete_;                     // guarded
  size_t size_ = 0;                    // guarded
  std::unordered_set<int64_t> added_;  // guarded: ids given by Add
  // Incomplete ids Load indexed (with "include_incomplete").
  std::unordered_set<int64_t> indexed_incomplete_;  // guarded
};

// A bounded, least-recently-used cache of decoded exchanges in front of a
// Store, so that replaying a hot exchange costs no SQLite read and no decode.
// Exchanges come out ready to send: response headers that cannot be
// written as one line (IsWritableHeader), and rewind's own (IsRewindHeader,
// which replay sets itself), are dropped as they are loaded.
// Thread-safety: safe for concurrent use.
class ExchangeCache {
 public:
  // "store" must outlive the cache. "max_bytes" bounds the bodies held.
  ExchangeCache(Store* store, size_t max_bytes);
  ExchangeCache(const ExchangeCache&) = delete;
  ExchangeCache& operator=(const ExchangeCache&) = delete;

  Result<std::shared_ptr<const Exchange>> Get(int64_t id);
  // Whether Get("id") would answer from memory now, without the store.
  bool Contains(int64_t id);

 private:
  struct Slot {
    std::shared_ptr<const Exchange> exchange;
    std::list<int64_t>::iterator position;
    size_t bytes = 0;
  };
  Store* const store_;
  const size_t max_bytes_;
  std::mutex mu_;
  std::list<int64_t> lru_;  // guarded by mu_; most recent first
  std::unordered_map<int64_t, Slot> slots_;  // guarded by mu_
  size_t bytes_ = 0;                         // guarded
};

// The recorded request most like "request" on the same method and path.
struct NearestMatch {
  int64_t id = 0;
  std::string key_hex;
  std::vector<std::string> differences;  // field paths, see Canonicalizer::Diff
  // Whether the bodies were diffed field by field; false when the body was
  // too large to be and is named as differing as a whole ("body").
  bool diffed = false;
  // The first few differences (kShownDifferences) with excerpts of the
  // recorded ("a") and the sent ("b") value (Canonicalizer::DiffFields).
  std::vector<FieldDifference> shown;
  // The shape fields the two differ in ("model", "stream", "method",
  // "tools", "response_format"; src/modes/request_shape.h): a recording
  // of another shape never answers a near request.
  std::vector<std::string> shape;
};

// How many differences a miss explanation shows the values of.
constexpr size_t kShownDifferences = 3;

// Looks at up to "limit" of the newest exchanges recorded on the same method
// and path; nullopt when there are none. The nearest is the one a person
// would call closest: the same model first, then the same "stream", then
// the same shape otherwise, then the fewest differences, the newest among
// equals. Bounded in time and memory whatever the request's size:
// candidates are ranked by body length, and diffed
// field by field, closest first, only while both bodies are at most 1 MiB,
// the bodies diffed total at most 16 MiB and 100 ms have not passed (one
// diff always runs). With no candidate diffed, the closest in length is
// named, its other fields compared and its body named as differing.
std::optional<NearestMatch> FindNearest(Store* store, const ReplayIndex& index,
                                        const Canonicalizer& canonicalizer,
                                        const Request& request,
                                        size_t limit = 200);

// What FindNearestWithin found: what FindNearest returns, and the nearest
// of the candidates diffed field by field that a bound accepts.
struct NearestSearch {
  std::optional<NearestMatch> nearest;
  std::optional<NearestMatch> within;
};

// FindNearest, in the same bounds and at the same cost, also naming the
// nearest candidate diffed field by field for which "bound" is true
// (ranked as FindNearest ranks them).
NearestSearch FindNearestWithin(
    Store* store, const ReplayIndex& index, const Canonicalizer& canonicalizer,
    const Request& request,
    const std::function<bool(const NearestMatch&)>& bound, size_t limit = 200);

// Mixes a seed, a key and an occurrence into the seed of one request's
// random draws, so draws do not depend on the order requests arrive in.
uint64_t RequestSeed(uint64_t seed, const RequestKey& key, uint64_t occurrence);

}  // namespace rwd

#endif  // REWIND_REPLAY_H_
