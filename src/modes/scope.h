// Scopes: one test's own view of a shared rewind.
//
// A request names its scope with a path prefix, /__scope/NAME/..., or the
// header X-Rewind-Scope: NAME. The front strips both before the request is
// keyed, forwarded or recorded, so a client that only lets you set a base
// URL (http://HOST:PORT/__scope/NAME) works in every mode. A scope has its
// own repeat sequences (--repeat sequence and cycle start over in it), its
// own dummy-engine occurrence counts, its own journal view and its own
// "unused" view, and is reset alone (POST /__rewind/reset?scope=NAME).
//
// Thread-safety: Scope and ScopeRegistry are safe for concurrent use.
#ifndef REWIND_SRC_MODES_SCOPE_H_
#define REWIND_SRC_MODES_SCOPE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "rewind/replay.h"
#include "rewind/status.h"

namespace rwd {

// The header that names a request's scope.
inline constexpr std::string_view kScopeHeader = "X-Rewind-Scope";
// The path prefix that names it: /__scope/NAME/rest.
inline constexpr std::string_view kScopePrefix = "/__scope/";
// The longest scope name.
inline constexpr size_t kMaxScopeName = 128;

// OK when "name" is 1-128 characters of [A-Za-z0-9._~-] (URL-safe
// unreserved characters: it travels in a path as it is); else
// InvalidArgument saying so.
Status CheckScopeName(std::string_view name);

// A request path split into its scope and the path rewind serves.
struct ScopedPath {
  std::string_view scope;  // "" when the path has no prefix
  std::string_view path;   // the rest, from its "/"; "/" when nothing is left
};

// Splits the path (no query) "/__scope/NAME/rest" into NAME and "/rest";
// "/__scope/NAME" serves "/". A path without the prefix is returned whole
// with no scope. InvalidArgument for a bad name. The views point into
// "path" (or at a static "/").
Result<ScopedPath> SplitScope(std::string_view path);

class Scope {
 public:
  explicit Scope(std::string name) : name_(std::move(name)) {}
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

  const std::string& name() const { return name_; }

  // The repeat sequences of the replay index, of --on-miss convert's
  // index, and the dummy engine's occurrence counts, in this scope.
  RepeatCounts replay;
  RepeatCounts convert;
  RepeatCounts synth;

  // Recordings served in this scope since its last reset.
  void MarkServed(int64_t id);
  std::unordered_set<int64_t> Served() const;

  // Journal entries of this scope discarded to keep the journal bounded.
  std::atomic<uint64_t> dropped{0};

  // Starts the scope over: its counts, served set and dropped count.
  void Reset();

  // For the registry's eviction: when the scope was last used.
  std::atomic<uint64_t> last_used{0};

 private:
  const std::string name_;
  mutable std::mutex mu_;
  std::unordered_set<int64_t> served_;  // guarded by mu_
};

// The server's scopes by name, made at their first request. At most
// "max_scopes" are kept: beyond that, the least recently used ones are
// forgotten (as if reset), so a client cannot grow the server without
// bound by naming new scopes.
class ScopeRegistry {
 public:
  static constexpr size_t kDefaultMaxScopes = 10000;

  explicit ScopeRegistry(size_t max_scopes = kDefaultMaxScopes)
      : max_scopes_(max_scopes < 1 ? 1 : max_scopes) {}

  // The scope named "name", made if it is new.
  // REQUIRES: CheckScopeName(name) is OK.
  std::shared_ptr<Scope> Get(std::string_view name);
  // The scope named "name", or null when it has no state.
  std::shared_ptr<Scope> Find(std::string_view name) const;
  // Forgets every scope.
  void Clear();
  size_t size() const;

 private:
  void EvictLocked();

  const size_t max_scopes_;
  mutable std::mutex mu_;
  uint64_t tick_ = 0;  // guarded by mu_
  std::unordered_map<std::string, std::shared_ptr<Scope>> by_name_;  // guarded
};

}  // namespace rwd

#endif  // REWIND_SRC_MODES_SCOPE_H_
