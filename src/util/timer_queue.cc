#include "util/timer_queue.h"

#include <algorithm>
#include <utility>

namespace rwd {

TimerQueue::Id TimerQueue::At(int64_t deadline_us, std::function<void()> fire) {
  const Id id = ++last_id_;
  heap_.push_back(Entry{deadline_us, id});
  std::push_heap(heap_.begin(), heap_.end(), Later());
  pending_.emplace(id, std::move(fire));
  return id;
}

void TimerQueue::Cancel(Id id) {
  pending_.erase(id);
  // A heap full of cancelled entries would grow without bound when timers
  // are re-armed faster than they come due: rebuild it once it is mostly
  // dead weight.
  if (heap_.size() > 64 && heap_.size() > 4 * pending_.size()) {
    heap_.erase(std::remove_if(heap_.begin(), heap_.end(),
                               [this](const Entry& e) {
                                 return pending_.count(e.id) == 0;
                               }),
                heap_.end());
    std::make_heap(heap_.begin(), heap_.end(), Later());
  }
}

void TimerQueue::Prune() {
  while (!heap_.empty() && pending_.count(heap_.front().id) == 0) {
    std::pop_heap(heap_.begin(), heap_.end(), Later());
    heap_.pop_back();
  }
}

std::optional<int64_t> TimerQueue::Next() {
  Prune();
  if (heap_.empty()) return std::nullopt;
  return heap_.front().deadline_us;
}

size_t TimerQueue::RunDue(int64_t now_us) {
  // Timers set while these run get larger ids: they wait for the next call.
  const Id last_before = last_id_;
  size_t fired = 0;
  std::vector<Entry> later;  // due now, but set during this call
  while (true) {
    Prune();
    if (heap_.empty() || heap_.front().deadline_us > now_us) break;
    const Entry top = heap_.front();
    std::pop_heap(heap_.begin(), heap_.end(), Later());
    heap_.pop_back();
    if (top.id > last_before) {
      later.push_back(top);
      continue;
    }
    auto it = pending_.find(top.id);
    std::function<void()> fire = std::move(it->second);
    pending_.erase(it);
    fire();
    ++fired;
  }
  for (const Entry& e : later) {
    heap_.push_back(e);
    std::push_heap(heap_.begin(), heap_.end(), Later());
  }
  return fired;
}

}  // namespace rwd
