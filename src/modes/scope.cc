#include "modes/scope.h"

#include <algorithm>
#include <utility>

#include "util/text.h"

namespace rwd {
namespace {

bool IsScopeChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' || c == '-';
}

}  // namespace

Status CheckScopeName(std::string_view name) {
  if (name.empty()) {
    return Status::InvalidArgument(
        "empty scope name: name a scope with 1-128 characters of "
        "A-Z a-z 0-9 . _ ~ -");
  }
  if (name.size() > kMaxScopeName) {
    return Status::InvalidArgument(
        "scope name of " + std::to_string(name.size()) +
        " characters: at most " + std::to_string(kMaxScopeName) +
        " are allowed");
  }
  for (char c : name) {
    if (!IsScopeChar(c)) {
      const std::string shown(name.substr(0, 64));
      return Status::InvalidArgument("scope name " + QuotedBytes(shown) +
                                     (name.size() > 64 ? "..." : "") +
                                     " may hold only A-Z a-z 0-9 . _ ~ -");
    }
  }
  return Status::Ok();
}

Result<ScopedPath> SplitScope(std::string_view path) {
  ScopedPath out;
  out.path = path;
  if (path.compare(0, kScopePrefix.size(), kScopePrefix) != 0) return out;
  const std::string_view rest = path.substr(kScopePrefix.size());
  const size_t slash = rest.find('/');
  const std::string_view name = rest.substr(0, slash);
  Status ok = CheckScopeName(name);
  if (!ok.ok()) return ok;
  out.scope = name;
  out.path = slash == std::string_view::npos ? std::string_view("/")
                                             : rest.substr(slash);
  return out;
}

void Scope::MarkServed(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  served_.insert(id);
}

std::unordered_set<int64_t> Scope::Served() const {
  std::lock_guard<std::mutex> lock(mu_);
  return served_;
}

void Scope::Reset() {
  replay.Reset();
  convert.Reset();
  synth.Reset();
  std::lock_guard<std::mutex> lock(mu_);
  served_.clear();
  dropped = 0;
}

std::shared_ptr<Scope> ScopeRegistry::Get(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t now = ++tick_;
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) {
    if (by_name_.size() >= max_scopes_) EvictLocked();
    it = by_name_
             .emplace(std::string(name),
                      std::make_shared<Scope>(std::string(name)))
             .first;
  }
  it->second->last_used.store(now, std::memory_order_relaxed);
  return it->second;
}

std::shared_ptr<Scope> ScopeRegistry::Find(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second;
}

void ScopeRegistry::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  by_name_.clear();
}

size_t ScopeRegistry::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_name_.size();
}

void ScopeRegistry::EvictLocked() {
  // Forgets the least recently used eighth (at least one), so a run that
  // names ever new scopes pays for this scan once per max_scopes/8 scopes.
  std::vector<std::pair<uint64_t, const std::string*>> ages;
  ages.reserve(by_name_.size());
  for (const auto& [name, scope] : by_name_) {
    ages.emplace_back(scope->last_used.load(std::memory_order_relaxed), &name);
  }
  const size_t evict = std::max<size_t>(1, ages.size() / 8);
  std::nth_element(ages.begin(), ages.begin() + (evict - 1), ages.end());
  std::vector<std::string> names;
  names.reserve(evict);
  for (size_t i = 0; i < evict; ++i) names.push_back(*ages[i].second);
  for (const std::string& name : names) by_name_.erase(name);
}

}  // namespace rwd
