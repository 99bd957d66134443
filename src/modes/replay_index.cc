#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <random>
#include <tuple>

#include "modes/request_shape.h"
#include "rewind/replay.h"
#include "util/text.h"

namespace rwd {
namespace {

std::string PathKey(const std::string& method, const std::string& path) {
  return method + " " + path;
}

// The nearest-recording search behind a miss's 404 is bounded whatever
// the request: it ranks the candidates by body length (reading no body),
// then diffs them field by field, closest first, while both bodies are at
// most kMaxDiffedBody, the bodies diffed so far total at most
// kDiffedBytesBudget and kNearestBudget has not passed (one diff always
// runs). A 50 MB request against 20,000 recordings took 43 s of a core
// and 470 MB when it diffed 200 of them whole.
constexpr size_t kMaxDiffedBody = 1u << 20;
constexpr size_t kDiffedBytesBudget = 16u << 20;
constexpr auto kNearestBudget = std::chrono::milliseconds(100);
constexpr size_t kMaxDifferences = 50;

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

Result<RepeatPolicy> ParseRepeatPolicy(const std::string& name) {
  if (name == "sequence") return RepeatPolicy::kSequence;
  if (name == "cycle") return RepeatPolicy::kCycle;
  if (name == "random") return RepeatPolicy::kRandom;
  if (name == "first") return RepeatPolicy::kFirst;
  return Status::InvalidArgument("unknown repeat policy \"" + name +
                                 "\": use sequence, cycle, random or first");
}

const char* RepeatPolicyName(RepeatPolicy policy) {
  switch (policy) {
    case RepeatPolicy::kSequence:
      return "sequence";
    case RepeatPolicy::kCycle:
      return "cycle";
    case RepeatPolicy::kRandom:
      return "random";
    case RepeatPolicy::kFirst:
      return "first";
  }
  return "?";
}

uint64_t RequestSeed(uint64_t seed, const RequestKey& key,
                     uint64_t occurrence) {
  return Mix(Mix(seed ^ key.high) ^ Mix(key.low + occurrence));
}

ReplayIndex::ReplayIndex(RepeatPolicy policy, uint64_t seed)
    : policy_(policy), seed_(seed) {}

Result<size_t> ReplayIndex::Load(Store* store, bool include_incomplete) {
  Status bad;
  size_t loaded = 0;
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::string last_path;  // rows mostly share a few paths
  std::vector<int64_t>* path_ids = nullptr;
  Status s = store->ScanKeys([&](const ExchangeSummary& e) {
    Result<RequestKey> key = RequestKey::FromHex(e.key_hex);
    if (!key.ok()) {
      bad =
          Status::Corruption("exchange " + std::to_string(e.id) +
                             " has a malformed key " + QuotedBytes(e.key_hex));
      return;
    }
    if (!e.complete && !include_incomplete) {
      incomplete_[key.value()].push_back(e.id);
      return;
    }
    by_key_[key.value()].ids.push_back(e.id);
    if (!e.complete) indexed_incomplete_.insert(e.id);
    const size_t method_len = e.method.size();
    if (!path_ids || last_path.size() != method_len + 1 + e.path.size() ||
        last_path.compare(0, method_len, e.method) != 0 ||
        last_path.compare(method_len + 1, std::string::npos, e.path) != 0) {
      last_path = PathKey(e.method, e.path);
      path_ids = &by_path_[last_path];
    }
    path_ids->push_back(e.id);
    ++loaded;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  // The scan's order is unspecified; sequences follow recording order.
  for (auto& [k, entry] : by_key_)
    std::sort(entry.ids.begin(), entry.ids.end());
  for (auto& [p, ids] : by_path_) std::sort(ids.begin(), ids.end());
  for (auto& [k, ids] : incomplete_) std::sort(ids.begin(), ids.end());
  size_ += loaded;
  return loaded;
}

void ReplayIndex::Add(const RequestKey& key, int64_t id,
                      const std::string& method, const std::string& path) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  by_key_[key].ids.push_back(id);
  by_path_[PathKey(method, path)].push_back(id);
  added_.insert(id);
  ++size_;
}

uint64_t RepeatCounts::Next(const RequestKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  return asked_[key]++;
}

void RepeatCounts::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  asked_.clear();
}

std::optional<ReplayIndex::Pick> ReplayIndex::Select(const RequestKey& key,
                                                     RepeatCounts* counts) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  Entry& entry = it->second;
  const uint64_t n = entry.ids.size();
  const uint64_t asked =
      counts ? counts->Next(key)
             : entry.asked.fetch_add(1, std::memory_order_relaxed);
  uint64_t i = 0;
  switch (policy_) {
    case RepeatPolicy::kSequence:
      i = std::min(asked, n - 1);
      break;
    case RepeatPolicy::kCycle:
      i = asked % n;
      break;
    case RepeatPolicy::kFirst:
      i = 0;
      break;
    case RepeatPolicy::kRandom: {
      std::mt19937_64 rng(RequestSeed(seed_, key, asked));
      i = std::uniform_int_distribution<uint64_t>(0, n - 1)(rng);
      break;
    }
  }
  return Pick{entry.ids[i], asked};
}

std::vector<int64_t> ReplayIndex::Incomplete(const RequestKey& key) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = incomplete_.find(key);
  return it == incomplete_.end() ? std::vector<int64_t>{} : it->second;
}

bool ReplayIndex::IsIncomplete(int64_t id) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return indexed_incomplete_.count(id) > 0;
}

bool ReplayIndex::EveryId(const RequestKey& key,
                          const std::function<bool(int64_t)>& pred) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return false;
  for (int64_t id : it->second.ids) {
    if (!pred(id)) return false;
  }
  return true;
}

void ReplayIndex::Reset() {
  std::shared_lock<std::shared_mutex> lock(mu_);
  for (auto& [key, entry] : by_key_) entry.asked.store(0);
}

std::vector<int64_t> ReplayIndex::SamePath(const std::string& method,
                                           const std::string& path,
                                           size_t limit) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto it = by_path_.find(PathKey(method, path));
  if (it == by_path_.end()) return {};
  const std::vector<int64_t>& ids = it->second;
  size_t from = ids.size() > limit ? ids.size() - limit : 0;
  return std::vector<int64_t>(ids.begin() + static_cast<ptrdiff_t>(from),
                              ids.end());
}

size_t ReplayIndex::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return size_;
}

std::vector<ReplayIndex::Recording> ReplayIndex::Recordings(
    const std::function<bool(int64_t id)>& skip, size_t limit,
    size_t* total) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<std::pair<int64_t, const RequestKey*>> listed;
  for (const auto& [key, entry] : by_key_) {
    for (int64_t id : entry.ids) {
      if (!added_.count(id) && !skip(id)) listed.emplace_back(id, &key);
    }
  }
  if (total) *total = listed.size();
  const size_t n = std::min(limit, listed.size());
  std::partial_sort(listed.begin(), listed.begin() + static_cast<ptrdiff_t>(n),
                    listed.end());
  listed.resize(n);
  std::unordered_map<int64_t, size_t> at;  // id -> position in "out"
  std::vector<Recording> out(n);
  for (size_t i = 0; i < n; ++i) {
    out[i].id = listed[i].first;
    out[i].key = *listed[i].second;
    at.emplace(out[i].id, i);
  }
  // Method and path: from the "METHOD PATH" lists.
  for (const auto& [endpoint, ids] : by_path_) {
    const size_t space = endpoint.find(' ');
    for (int64_t id : ids) {
      auto it = at.find(id);
      if (it == at.end()) continue;
      out[it->second].method = endpoint.substr(0, space);
      out[it->second].path = endpoint.substr(space + 1);
    }
  }
  return out;
}

ExchangeCache::ExchangeCache(Store* store, size_t max_bytes)
    : store_(store), max_bytes_(max_bytes) {}

bool ExchangeCache::Contains(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_.count(id) > 0;
}

Result<std::shared_ptr<const Exchange>> ExchangeCache::Get(int64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = slots_.find(id);
    if (it != slots_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.position);
      return it->second.exchange;
    }
  }
  Result<Exchange> loaded = store_->Get(id);
  if (!loaded.ok()) return loaded.status();
  HeaderList& headers = loaded.value().response.headers;
  // Replay sets X-Rewind and X-Rewind-Key itself; recordings made through
  // another rewind before those were left out may hold its own.
  headers.erase(std::remove_if(headers.begin(), headers.end(),
                               [](const auto& h) {
                                 return !IsWritableHeader(h.first, h.second) ||
                                        IsRewindHeader(h.first);
                               }),
                headers.end());
  auto exchange = std::make_shared<const Exchange>(std::move(loaded.value()));
  size_t bytes = exchange->request.body.size() + sizeof(Exchange);
  for (const Chunk& c : exchange->response.chunks) {
    bytes += c.data.size() + sizeof(Chunk);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (bytes > max_bytes_ || slots_.count(id)) return exchange;
  lru_.push_front(id);
  slots_[id] = Slot{exchange, lru_.begin(), bytes};
  bytes_ += bytes;
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    auto victim = slots_.find(lru_.back());
    bytes_ -= victim->second.bytes;
    slots_.erase(victim);
    lru_.pop_back();
  }
  return exchange;
}

std::optional<NearestMatch> FindNearest(Store* store, const ReplayIndex& index,
                                        const Canonicalizer& canonicalizer,
                                        const Request& request, size_t limit) {
  return FindNearestWithin(store, index, canonicalizer, request, nullptr, limit)
      .nearest;
}

NearestSearch FindNearestWithin(
    Store* store, const ReplayIndex& index, const Canonicalizer& canonicalizer,
    const Request& request,
    const std::function<bool(const NearestMatch&)>& bound, size_t limit) {
  NearestSearch search;
  const std::vector<int64_t> ids =
      index.SamePath(request.method, request.path, limit);
  if (ids.empty()) return search;
  // What ranks the candidates costs no body: their lengths.
  Result<std::vector<StoredRequest>> found = store->GetRequests(ids, 0);
  if (!found.ok() || found->empty()) return search;
  std::vector<StoredRequest>& candidates = found.value();
  const int64_t size = static_cast<int64_t>(request.body.size());
  auto distance = [size](const StoredRequest& c) {
    return c.body_bytes > size ? c.body_bytes - size : size - c.body_bytes;
  };
  // Closest in length first; the newest first among equals.
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](const StoredRequest& a, const StoredRequest& b) {
                     const int64_t da = distance(a), db = distance(b);
                     return da != db ? da < db : a.id > b.id;
                   });

  // The same model, then the same "stream", then the same shape, then the
  // fewest differences; the newest among equals.
  auto rank = [](const NearestMatch& m) {
    auto has = [&m](const char* field) {
      return std::find(m.shape.begin(), m.shape.end(), field) != m.shape.end();
    };
    const bool model =
        has("model") || std::find(m.differences.begin(), m.differences.end(),
                                  "model") != m.differences.end();
    return std::make_tuple(model, has("stream"), !m.shape.empty(),
                           m.differences.size(), -m.id);
  };
  auto better = [&rank](const NearestMatch& m,
                        const std::optional<NearestMatch>& than) {
    return !than || rank(m) < rank(*than);
  };
  const std::vector<std::string>& ignored = canonicalizer.rules().ignore_fields;
  std::optional<NearestMatch>& best = search.nearest;
  const auto deadline = std::chrono::steady_clock::now() + kNearestBudget;
  size_t diffed = 0;
  size_t diffed_bytes = 0;
  if (request.body.size() <= kMaxDiffedBody) {
    for (const StoredRequest& c : candidates) {
      const size_t bytes =
          static_cast<size_t>(c.body_bytes) + request.body.size();
      if (diffed > 0 && (diffed_bytes + bytes > kDiffedBytesBudget ||
                         std::chrono::steady_clock::now() > deadline)) {
        break;
      }
      if (c.body_bytes > static_cast<int64_t>(kMaxDiffedBody)) continue;
      Result<std::vector<StoredRequest>> full =
          store->GetRequests({c.id}, kMaxDiffedBody);
      if (!full.ok() || full->empty() || !full->front().body_loaded) continue;
      ++diffed;
      diffed_bytes += bytes;
      const Request& recorded = full->front().request;
      NearestMatch m;
      m.id = c.id;
      m.key_hex = c.key_hex;
      m.shown = canonicalizer.DiffFields(recorded, request, kMaxDifferences,
                                         kShownDifferences);
      for (const FieldDifference& d : m.shown) m.differences.push_back(d.path);
      m.shown.resize(std::min(m.shown.size(), kShownDifferences));
      m.diffed = true;
      m.shape = ShapeDifferences(recorded.body, request.body, ignored);
      if (bound && better(m, search.within) && bound(m)) search.within = m;
      if (better(m, best)) best = std::move(m);
    }
  }
  if (best) return search;

  // Nothing small enough to diff: the closest in length, its other fields
  // compared, its body named as differing unless the bytes are the same.
  const StoredRequest& c = candidates.front();
  Request without_body = request;
  without_body.body.clear();
  std::vector<std::string> diffs =
      canonicalizer.Diff(c.request, without_body, kMaxDifferences);
  bool same_body = false;
  if (c.body_bytes == size) {
    Result<std::vector<StoredRequest>> full =
        store->GetRequests({c.id}, std::numeric_limits<size_t>::max());
    same_body = full.ok() && !full->empty() &&
                full->front().request.body == request.body;
  }
  if (!same_body && diffs.size() < kMaxDifferences) diffs.push_back("body");
  best =
      NearestMatch{c.id, c.key_hex, std::move(diffs), /*diffed=*/false, {}, {}};
  return search;
}

}  // namespace rwd
