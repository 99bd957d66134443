// MemoryStore: the Store interface over a std::map (see memory_store.h).
#include "store/memory_store.h"

#include <rapidjson/document.h>

#include <algorithm>

#include "store/ticket.h"

namespace rwd {
namespace {

// What the SQLite store's listing reads with json_extract(body, '$.model'):
// the top-level "model" of a JSON body when it is a string.
std::string ModelOf(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) return "";
  auto it = doc.FindMember("model");
  if (it == doc.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

ExchangeSummary KeysOf(const Exchange& e) {
  ExchangeSummary s;
  s.id = e.id;
  s.key_hex = e.key_hex;
  s.method = e.request.method;
  s.path = e.request.path;
  s.status = e.response.status;
  s.complete = e.complete;
  return s;
}

}  // namespace

MemoryStore::MemoryStore(KeyRules rules) : rules_(std::move(rules)) {}

std::shared_ptr<Store::Ticket> MemoryStore::Append(Exchange exchange) {
  auto ticket = std::make_shared<Ticket>();
  std::lock_guard<std::mutex> lock(mu_);
  ticket->done = true;
  if (exchange.id == 0) exchange.id = last_id_ + 1;
  if (exchanges_.count(exchange.id)) {
    ticket->status =
        Status::IOError("id " + std::to_string(exchange.id) + " is taken");
    write_health_ = ticket->status;
    ++stats_.failures;
    return ticket;
  }
  ticket->id = exchange.id;
  last_id_ = std::max(last_id_, exchange.id);
  stats_.bytes += ExchangeBytes(exchange);
  exchanges_.emplace(exchange.id, std::move(exchange));
  write_health_ = Status::Ok();
  ++stats_.commits;
  ++stats_.written;
  return ticket;
}

Result<int64_t> MemoryStore::WaitCommitted(
    const std::shared_ptr<Ticket>& ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ticket->status.ok()) return ticket->status;
  return ticket->id;
}

Status MemoryStore::Flush() { return WriteHealth(); }

Status MemoryStore::WriteHealth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_health_;
}

Store::WriterStats MemoryStore::writer_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Result<Exchange> MemoryStore::Get(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = exchanges_.find(id);
  if (it == exchanges_.end()) {
    return Status::NotFound("no exchange " + std::to_string(id));
  }
  return it->second;
}

Status MemoryStore::Scan(
    const std::function<void(const ExchangeSummary&)>& fn) {
  std::vector<ExchangeSummary> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rows.reserve(exchanges_.size());
    for (const auto& [id, e] : exchanges_) {
      ExchangeSummary s = KeysOf(e);
      s.query = e.request.query;
      s.model = ModelOf(e.request.body);
      s.started_at_us = e.started_at_us;
      s.headers_us = e.response.headers_us;
      s.total_us = e.response.TotalMicros();
      s.response_bytes = 0;
      for (const Chunk& c : e.response.chunks) {
        s.response_bytes += static_cast<int64_t>(c.data.size());
      }
      s.chunks = static_cast<int64_t>(e.response.chunks.size());
      rows.push_back(std::move(s));
    }
  }
  for (const ExchangeSummary& s : rows) fn(s);
  return Status::Ok();
}

Status MemoryStore::ScanKeys(
    const std::function<void(const ExchangeSummary&)>& fn) {
  std::vector<ExchangeSummary> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rows.reserve(exchanges_.size());
    for (const auto& [id, e] : exchanges_) rows.push_back(KeysOf(e));
  }
  for (const ExchangeSummary& s : rows) fn(s);
  return Status::Ok();
}

Result<int64_t> MemoryStore::Count() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(exchanges_.size());
}

Status MemoryStore::SetRules(const KeyRules& rules) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_ = rules;
  return Status::Ok();
}

Status MemoryStore::UpdateKeys(
    const std::vector<std::pair<int64_t, std::string>>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, key] : keys) {
    auto it = exchanges_.find(id);
    if (it != exchanges_.end()) it->second.key_hex = key;
  }
  return Status::Ok();
}

Status MemoryStore::Delete(const std::vector<int64_t>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t id : ids) {
    auto it = exchanges_.find(id);
    if (it == exchanges_.end()) continue;
    stats_.bytes -= std::min(stats_.bytes, ExchangeBytes(it->second));
    exchanges_.erase(it);
  }
  return Status::Ok();
}

}  // namespace rwd
