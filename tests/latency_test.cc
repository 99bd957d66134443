#include "rewind/latency.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <thread>

#include "rewind/clock.h"

namespace rwd {
namespace {

// Headers at 2 ms, chunks at 50, 60, 85 ms.
Response Stream() {
  Response r;
  r.status = 200;
  r.chunked = true;
  r.headers_us = 2000;
  r.chunks = {{50000, "a"}, {60000, "b"}, {85000, "c"}};
  return r;
}

LatencyModel Model(const std::string& spec) {
  Result<LatencyModel> m = LatencyModel::Parse(spec);
  EXPECT_TRUE(m.ok()) << spec << ": " << m.status().ToString();
  return m.ok() ? m.value() : LatencyModel();
}

TEST(LatencyModel, RecordedKeepsEveryOffset) {
  Schedule s = Model("recorded").Apply(Stream(), 1);
  EXPECT_EQ(s.headers_us, 2000);
  EXPECT_EQ(s.chunk_us, (std::vector<int64_t>{50000, 60000, 85000}));
}

TEST(LatencyModel, RecordedNetTakesOutRewindsOwnTimeBeforeForwarding) {
  Response r = Stream();
  r.own_before_us = 1500;  // of the 2 ms to the headers, 1.5 were rewind's
  r.own_after_us = 300;    // in no offset: nothing to take out
  Schedule s = Model("recorded-net").Apply(r, 1);
  EXPECT_EQ(s.headers_us, 500);
  EXPECT_EQ(s.chunk_us, (std::vector<int64_t>{48500, 58500, 83500}));
  // "recorded" keeps it.
  EXPECT_EQ(Model("recorded").Apply(r, 1).headers_us, 2000);
}

TEST(LatencyModel, RecordedNetNeverGoesBelowZeroAndKeepsTheOrder) {
  Response r;
  r.headers_us = 200;
  r.chunks = {{250, "a"}, {900, "b"}, {900, "c"}, {5000, "d"}};
  r.own_before_us = 800;  // more than the headers took: a clock's jitter
  Schedule s = Model("recorded-net").Apply(r, 1);
  EXPECT_EQ(s.headers_us, 0);
  EXPECT_EQ(s.chunk_us, (std::vector<int64_t>{0, 100, 100, 4200}));
  EXPECT_TRUE(std::is_sorted(s.chunk_us.begin(), s.chunk_us.end()));
  EXPECT_LE(s.headers_us, s.chunk_us.front());
}

TEST(LatencyModel, RecordedNetOfARecordingWithoutOwnTimeIsRecorded) {
  Response r = Stream();  // own_before_us -1: an older recording
  Schedule net = Model("recorded-net").Apply(r, 1);
  Schedule recorded = Model("recorded").Apply(r, 1);
  EXPECT_EQ(net.headers_us, recorded.headers_us);
  EXPECT_EQ(net.chunk_us, recorded.chunk_us);
  EXPECT_EQ(Model("recorded-net").kind(), LatencyModel::Kind::kRecordedNet);
  EXPECT_EQ(Model("recorded-net").ToString(), "recorded-net");
}

TEST(LatencyModel, ScaledMultipliesEveryOffset) {
  Schedule s = Model("scaled:0.5").Apply(Stream(), 1);
  EXPECT_EQ(s.headers_us, 1000);
  EXPECT_EQ(s.chunk_us, (std::vector<int64_t>{25000, 30000, 42500}));
  s = Model("scaled:2").Apply(Stream(), 1);
  EXPECT_EQ(s.chunk_us.back(), 170000);
}

TEST(LatencyModel, NoneSendsEverythingAtOnce) {
  Schedule s = Model("none").Apply(Stream(), 1);
  EXPECT_EQ(s.headers_us, 0);
  EXPECT_EQ(s.chunk_us, (std::vector<int64_t>{0, 0, 0}));
}

TEST(LatencyModel, FixedTtftAndItl) {
  Schedule s = Model("fixed:100,20").Apply(Stream(), 1);
  EXPECT_EQ(s.headers_us, 2000);  // headers were ready before the TTFT
  EXPECT_EQ(s.chunk_us, (std::vector<int64_t>{100000, 120000, 140000}));
}

TEST(LatencyModel, FixedTtftAloneKeepsRecordedGaps) {
  Schedule s = Model("fixed:10").Apply(Stream(), 1);
  EXPECT_EQ(s.chunk_us, (std::vector<int64_t>{10000, 20000, 45000}));
}

TEST(LatencyModel, NonStreamedBodyMovesWithItsHeaders) {
  Response r;
  r.headers_us = 300000;
  r.chunks = {{300100, "{}"}};
  Schedule s = Model("fixed:40").Apply(r, 1);
  EXPECT_EQ(s.headers_us, 40000);
  EXPECT_EQ(s.chunk_us, std::vector<int64_t>{40000});
}

TEST(LatencyModel, RandomModelsAreDeterministicPerSeed) {
  for (const char* spec :
       {"uniform:10..50", "normal:100,30", "lognormal:80,0.6",
        "normal:100,30;itl=uniform:1..9"}) {
    LatencyModel m = Model(spec);
    Schedule a = m.Apply(Stream(), 42);
    Schedule b = m.Apply(Stream(), 42);
    EXPECT_EQ(a.chunk_us, b.chunk_us) << spec;
    bool differs = false;
    for (uint64_t seed = 1; seed < 20 && !differs; ++seed) {
      differs = m.Apply(Stream(), seed).chunk_us != a.chunk_us;
    }
    EXPECT_TRUE(differs) << spec << " ignores its seed";
  }
}

TEST(LatencyModel, UniformStaysInItsBoundsAndKeepsGaps) {
  LatencyModel m = Model("uniform:10..50");
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Schedule s = m.Apply(Stream(), seed);
    EXPECT_GE(s.chunk_us[0], 10000);
    EXPECT_LE(s.chunk_us[0], 50000);
    EXPECT_EQ(s.chunk_us[1] - s.chunk_us[0], 10000);
    EXPECT_EQ(s.chunk_us[2] - s.chunk_us[1], 25000);
  }
}

TEST(LatencyModel, NormalSampleStatisticsMatchAndAreClampedAtZero) {
  LatencyModel m = Model("normal:100,20");
  double sum = 0, sq = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    double v = m.Apply(Stream(), static_cast<uint64_t>(i)).chunk_us[0] / 1000.0;
    sum += v;
    sq += v * v;
  }
  double mean = sum / n;
  double sd = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, 100, 2.0);  // standard error is 0.32 ms
  EXPECT_NEAR(sd, 20, 1.5);
  LatencyModel wide = Model("normal:1,50");
  for (uint64_t seed = 0; seed < 500; ++seed) {
    EXPECT_GE(wide.Apply(Stream(), seed).chunk_us[0], 0);
  }
}

TEST(LatencyModel, LognormalMedianMatches) {
  LatencyModel m = Model("lognormal:80,0.5");
  std::vector<int64_t> v;
  for (uint64_t seed = 0; seed < 4001; ++seed) {
    v.push_back(m.Apply(Stream(), seed).chunk_us[0]);
  }
  std::nth_element(v.begin(), v.begin() + 2000, v.end());
  EXPECT_NEAR(v[2000] / 1000.0, 80, 4);
}

TEST(LatencyModel, EmpiricalDrawsTtftAndGapsFromTheSamples) {
  LatencySamples samples;
  Response other;
  other.chunks = {{7000, "x"}, {9000, "y"}, {12000, "z"}};  // gaps 2 and 3 ms
  samples.Add(other);
  samples.Add(Stream());  // TTFT 50 ms, gaps 10 and 25 ms
  EXPECT_EQ(samples.ttft_us, (std::vector<int64_t>{7000, 50000}));
  EXPECT_EQ(samples.gaps_us, (std::vector<int64_t>{2000, 3000, 10000, 25000}));
  LatencyModel m = Model("empirical");
  std::set<int64_t> ttfts;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Schedule s = m.Apply(Stream(), seed, &samples);
    ttfts.insert(s.chunk_us[0]);
    for (size_t i = 1; i < s.chunk_us.size(); ++i) {
      int64_t gap = s.chunk_us[i] - s.chunk_us[i - 1];
      EXPECT_TRUE(gap == 2000 || gap == 3000 || gap == 10000 || gap == 25000)
          << gap;
    }
  }
  EXPECT_EQ(ttfts, (std::set<int64_t>{7000, 50000}));
  EXPECT_EQ(m.Apply(Stream(), 3, &samples).chunk_us,
            m.Apply(Stream(), 3, &samples).chunk_us);
  // Without samples it keeps the recorded timeline.
  EXPECT_EQ(m.Apply(Stream(), 3).chunk_us,
            Model("recorded").Apply(Stream(), 3).chunk_us);
}

TEST(LatencyModel, RejectsMalformedSpecs) {
  for (const char* spec :
       {"", "fast", "scaled:", "scaled:-1", "scaled:x", "fixed:", "fixed:-5",
        "uniform:5..1", "uniform:5", "normal:1", "normal:1,-2", "lognormal:0,1",
        "fixed:1,2;itl=3", "normal:1,1;gap=2", "nan", "uniform:0..inf",
        "recorded-", "recorded-net:1", "net"}) {
    EXPECT_FALSE(LatencyModel::Parse(spec).ok()) << spec;
  }
}

TEST(LatencyModel, ToStringRoundTrips) {
  for (const char* spec :
       {"recorded", "recorded-net", "none", "empirical", "scaled:0.25",
        "fixed:100", "uniform:10..50", "normal:100,20;itl=fixed:5"}) {
    EXPECT_EQ(Model(Model(spec).ToString()).ToString(), Model(spec).ToString());
  }
  EXPECT_EQ(Model("fixed:100,20").ToString(), "fixed:100;itl=fixed:20");
}

// Linux ends a timed sleep up to the thread's timer slack late (50 µs by
// default): a thread that paces answers asks for none.
TEST(SystemClock, APacingThreadSleepsWithoutTimerSlack) {
  int before = -1, after = -1;
  std::thread pacer([&] {
    before = prctl(PR_GET_TIMERSLACK);
    Clock* clock = SystemClock();
    clock->SleepUntil(clock->NowMicros() + 200);
    after = prctl(PR_GET_TIMERSLACK);
  });
  pacer.join();
  EXPECT_GT(before, 1);  // a new thread's default
  EXPECT_EQ(after, 1);
}

}  // namespace
}  // namespace rwd
