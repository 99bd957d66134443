// What the Store interface (rewind/store.h) implements itself: the default
// GetRequests(), on Get(), for stores without a cheaper way. Store::Open()
// is in sqlite_store.cc.
#include "rewind/store.h"

#include <utility>

namespace rwd {

uint64_t ExchangeBytes(const Exchange& e) {
  // Per row: its id, the numbers and flags, SQLite's row and index
  // headers, and the key again in two indexes.
  uint64_t n = 160 + 2 * e.key_hex.size();
  auto headers = [&n](const HeaderList& list) {
    for (const auto& [name, value] : list) n += name.size() + value.size() + 4;
  };
  n += e.request.method.size() + 2 * e.request.path.size() +
       e.request.query.size() + e.request.body.size() + e.error.size();
  headers(e.request.headers);
  headers(e.response.headers);
  for (const Chunk& c : e.response.chunks) n += c.data.size() + 16;
  return n;
}

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
