// FakeClock: a Clock whose time moves only when someone sleeps on it (or a
// test advances it). It records every deadline it was asked to sleep until,
// so tests can assert a pacing schedule exactly.
#ifndef REWIND_TESTS_TESTUTIL_FAKE_CLOCK_H_
#define REWIND_TESTS_TESTUTIL_FAKE_CLOCK_H_

#include <algorithm>
#include <mutex>
#include <vector>

#include "rewind/clock.h"

namespace rwd::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_us = 1'000'000) : now_(start_us) {}

  int64_t NowMicros() override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  int64_t WallMicros() override { return NowMicros() + 1'700'000'000'000'000; }
  void SleepUntil(int64_t deadline) override {
    std::lock_guard<std::mutex> lock(mu_);
    sleeps_.push_back(deadline);
    now_ = std::max(now_, deadline);
  }
  void Advance(int64_t us) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += us;
  }
  std::vector<int64_t> sleeps() {
    std::lock_guard<std::mutex> lock(mu_);
    return sleeps_;
  }

 private:
  std::mutex mu_;
  int64_t now_;
  std::vector<int64_t> sleeps_;
};

}  // namespace rwd::testing

#endif  // REWIND_TESTS_TESTUTIL_FAKE_CLOCK_H_
