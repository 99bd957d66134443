#include "util/timer_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rwd {
namespace {

TEST(TimerQueue, FiresWhatIsDueInDeadlineOrderAndNothingEarly) {
  TimerQueue q;
  std::vector<std::string> fired;
  q.At(300, [&] { fired.push_back("c"); });
  q.At(100, [&] { fired.push_back("a"); });
  q.At(200, [&] { fired.push_back("b"); });
  EXPECT_EQ(q.Next(), 100);
  EXPECT_EQ(q.RunDue(99), 0u);
  EXPECT_TRUE(fired.empty());
  EXPECT_EQ(q.RunDue(200), 2u);
  EXPECT_EQ(fired, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(q.Next(), 300);
  EXPECT_EQ(q.RunDue(1000), 1u);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.Next(), std::nullopt);
}

TEST(TimerQueue, EqualDeadlinesFireInTheOrderTheyWereSet) {
  TimerQueue q;
  std::string fired;
  for (char c : std::string("abcdef")) {
    q.At(50, [&fired, c] { fired += c; });
  }
  q.RunDue(50);
  EXPECT_EQ(fired, "abcdef");
}

TEST(TimerQueue, ACancelledTimerNeverFires) {
  TimerQueue q;
  int fired = 0;
  const TimerQueue::Id a = q.At(10, [&] { fired += 1; });
  q.At(20, [&] { fired += 10; });
  q.Cancel(a);
  q.Cancel(a);     // twice: harmless
  q.Cancel(9999);  // never set: harmless
  EXPECT_EQ(q.Next(), 20);
  EXPECT_EQ(q.RunDue(100), 1u);
  EXPECT_EQ(fired, 10);
}

TEST(TimerQueue, ATimerSetWhileRunningForNowWaitsForTheNextRound) {
  TimerQueue q;
  int rounds = 0;
  std::function<void()> again = [&] {
    ++rounds;
    q.At(0, again);  // always due
  };
  q.At(0, again);
  EXPECT_EQ(q.RunDue(0), 1u);
  EXPECT_EQ(q.RunDue(0), 1u);
  EXPECT_EQ(rounds, 2);
  EXPECT_EQ(q.size(), 1u);
}

TEST(TimerQueue, ATimerCanCancelAnotherDueInTheSameRound) {
  TimerQueue q;
  int fired = 0;
  TimerQueue::Id second = 0;
  q.At(5, [&] {
    ++fired;
    q.Cancel(second);
  });
  second = q.At(5, [&] { fired += 100; });
  EXPECT_EQ(q.RunDue(5), 1u);
  EXPECT_EQ(fired, 1);
}

// Re-arming far more often than timers come due must not grow the heap
// without bound (each stream re-arms once per piece).
TEST(TimerQueue, CancelledEntriesDoNotAccumulate) {
  TimerQueue q;
  TimerQueue::Id id = 0;
  for (int i = 0; i < 100'000; ++i) {
    q.Cancel(id);
    id = q.At(1'000'000 + i, [] {});
  }
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.Next(), 1'000'000 + 99'999);
  EXPECT_EQ(q.RunDue(2'000'000), 1u);
}

}  // namespace
}  // namespace rwd
