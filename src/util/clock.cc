#include "rewind/clock.h"

#include <sys/prctl.h>

#include <chrono>
#include <thread>

namespace rwd {
namespace {

class RealClock final : public Clock {
 public:
  int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  int64_t WallMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void SleepUntil(int64_t deadline_micros) override {
    // Linux lets a timed sleep end up to the thread's timer slack late
    // (50 µs by default, which a replayed 50 µs offset would double): a
    // thread that paces asks for none, once.
    thread_local const bool exact = prctl(PR_SET_TIMERSLACK, 1UL) == 0;
    (void)exact;
    std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
        std::chrono::microseconds(deadline_micros)));
  }
};

}  // namespace

Clock* SystemClock() {
  // Never destroyed: threads may still pace responses during exit.
  static Clock* const clock = new RealClock();
  return clock;
}

}  // namespace rwd
