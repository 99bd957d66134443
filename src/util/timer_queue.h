// TimerQueue: deadlines on a Clock's time line, fired in order by the one
// thread that owns the queue (an event loop). A stream waiting for its next
// chunk holds an entry here, not a thread.
//
// Deadlines are absolute microseconds on the owner's Clock (never "in N
// µs"), so a loop that wakes late fires what is due and nothing drifts.
// Timers due at the same microsecond fire in the order they were set. A
// timer may set or cancel others, itself included, while it runs; one set
// for a time already past fires on the next RunDue, not within the current
// one (a timer that keeps re-arming at "now" cannot starve the loop).
//
// Thread-safety: none; one thread sets, cancels and runs timers.
#ifndef REWIND_SRC_UTIL_TIMER_QUEUE_H_
#define REWIND_SRC_UTIL_TIMER_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

namespace rwd {

class TimerQueue {
 public:
  // Names a timer for Cancel(); 0 is never one.
  using Id = uint64_t;

  TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs "fire" at the first RunDue(now) with now >= "deadline_us".
  Id At(int64_t deadline_us, std::function<void()> fire);
  // Forgets timer "id" if it has not fired yet; harmless otherwise.
  void Cancel(Id id);
  // Fires, in deadline order, every timer due at "now_us" that was set
  // before this call. Returns how many fired.
  size_t RunDue(int64_t now_us);
  // The earliest pending deadline; nullopt when none is pending.
  std::optional<int64_t> Next();
  // Timers pending.
  size_t size() const { return pending_.size(); }

 private:
  struct Entry {
    int64_t deadline_us;
    Id id;  // increasing: orders equal deadlines by when they were set
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.deadline_us != b.deadline_us ? a.deadline_us > b.deadline_us
                                            : a.id > b.id;
    }
  };
  // Drops cancelled entries from the heap's top.
  void Prune();

  std::vector<Entry> heap_;  // a min-heap by Later; holds cancelled ids too
  std::unordered_map<Id, std::function<void()>> pending_;
  Id last_id_ = 0;
};

}  // namespace rwd

#endif  // REWIND_SRC_UTIL_TIMER_QUEUE_H_
