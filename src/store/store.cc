// What the Store interface (rewind/store.h) implements itself: the default
// GetRequests(), on Get(), for stores without a cheaper way. Store::Open()
// is in sqlite_store.cc.
#include <utility>

#include "rewind/store.h"

namespace rwd {

Result<std::vector<StoredRequest>> Store::GetRequests(
    const std::vector<int64_t>& ids, size_t max_body) {
  std::vector<StoredRequest> out;
  for (int64_t id : ids) {
    Result<Exchange> e = Get(id);
    if (!e.ok()) {
      if (e.status().IsNotFound()) continue;
      return e.status();
    }
    StoredRequest r;
    r.id = id;
    r.key_hex = std::move(e->key_hex);
    r.request = std::move(e->request);
    r.body_bytes = static_cast<int64_t>(r.request.body.size());
    r.body_loaded = r.request.body.size() <= max_body;
    if (!r.body_loaded) r.request.body.clear();
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace rwd
