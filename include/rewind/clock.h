// Clock: the only way rewind reads time or waits.
//
// Pacing code schedules against absolute deadlines (SleepUntil) so errors do
// not accumulate. Tests inject a fake clock that advances instantly and
// records every sleep.
//
// Thread-safety: implementations must be safe for concurrent use.
#ifndef REWIND_CLOCK_H_
#define REWIND_CLOCK_H_

#include <cstdint>

namespace rwd {

class Clock {
 public:
  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  virtual ~Clock() = default;

  // Monotonic microseconds from an arbitrary origin.
  virtual int64_t NowMicros() = 0;
  // Microseconds since the Unix epoch (wall clock, for display only).
  virtual int64_t WallMicros() = 0;
  // Blocks until NowMicros() >= deadline_micros. Returns at once if the
  // deadline has passed. An event loop that waited (in epoll) for a timer
  // due at "deadline_micros" calls it once the wait ends: for the real
  // clock the time has come, and a fake clock moves to it there.
  virtual void SleepUntil(int64_t deadline_micros) = 0;
};

// The process-wide real clock (steady_clock / system_clock). Never deleted.
Clock* SystemClock();

}  // namespace rwd

#endif  // REWIND_CLOCK_H_
