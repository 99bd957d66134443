#include "modes/journal.h"

#include <algorithm>
#include <utility>

namespace rwd {

bool ServesRecording(std::string_view outcome) {
  return outcome == "hit" || outcome == "converted" || outcome == "near";
}

void Journal::Add(JournalEntry entry) {
  const bool served = entry.exchange != 0 && ServesRecording(entry.outcome);
  if (served && entry.scope) entry.scope->MarkServed(entry.exchange);
  std::lock_guard<std::mutex> lock(mu_);
  entry.seq = ++seq_;
  ++totals_.requests;
  if (served) {
    served_.insert(entry.exchange);
    totals_.served.insert(entry.exchange);
  }
  const std::string_view outcome = entry.outcome;
  if (outcome == "hit") ++totals_.hits;
  if (outcome == "near") {
    ++totals_.near;
    if (totals_.answered_near.size() < kListedNear) {
      totals_.answered_near.push_back(entry);
    }
  }
  if (outcome == "miss") {
    ++totals_.misses;
    if (totals_.missed.size() < capacity_) totals_.missed.push_back(entry);
  }
  if (entries_.size() >= capacity_) {
    JournalEntry& oldest = entries_.front();
    ++dropped_;
    if (oldest.scope) ++oldest.scope->dropped;
    entries_.pop_front();
  }
  entries_.push_back(std::move(entry));
}

Journal::View Journal::Entries(std::string_view scope) const {
  View view;
  std::lock_guard<std::mutex> lock(mu_);
  if (scope.empty()) {
    view.entries.assign(entries_.begin(), entries_.end());
    view.dropped = dropped_;
    return view;
  }
  for (const JournalEntry& e : entries_) {
    if (e.scope && e.scope->name() == scope) view.entries.push_back(e);
  }
  return view;
}

std::unordered_set<int64_t> Journal::Served() const {
  std::lock_guard<std::mutex> lock(mu_);
  return served_;
}

void Journal::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
  dropped_ = 0;
  served_.clear();
}

void Journal::Reset(std::string_view scope) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [scope](const JournalEntry& e) {
                                  return e.scope && e.scope->name() == scope;
                                }),
                 entries_.end());
}

Journal::Totals Journal::RunTotals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return totals_;
}

}  // namespace rwd
