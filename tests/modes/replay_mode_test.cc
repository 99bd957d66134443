#include "modes/replay_mode.h"

#include <gtest/gtest.h>

#include "modes/scope.h"
#include "store/memory_store.h"
#include "testutil/mode_fixture.h"

namespace rwd {
namespace {

using testing::CountingMode;
using testing::Post;
using testing::Recorded;

struct ReplayFixture {
  explicit ReplayFixture(const std::string& latency = "recorded",
                         RepeatPolicy repeat = RepeatPolicy::kSequence)
      : keys(store.rules()),
        index(repeat, 7),
        cache(&store, 1 << 20),
        samples(&index, &cache) {
    pacing.latency = LatencyModel::Parse(latency).value();
    pacing.seed = 7;
    pacing.samples = &samples;
  }
  void Add(const Exchange& e) { store.Append(e); }
  ReplayMode& Replay() {
    if (!mode) {
      EXPECT_TRUE(index.Load(&store, false).ok());
      mode = std::make_unique<ReplayMode>(&index, &cache, pacing, &miss,
                                          &counters);
    }
    return *mode;
  }
  Answer Serve(const Request& r, Scope* scope = nullptr) {
    const RequestKey key = keys.Key(r);
    return Replay().Serve(Call{r, key, 0, nullptr, scope});
  }

  MemoryStore store;
  Canonicalizer keys;
  ReplayIndex index;
  ExchangeCache cache;
  EndpointSamples samples;
  Pacing pacing;
  CountingMode miss{"miss"};
  ModeCounters counters;
  std::unique_ptr<ReplayMode> mode;
};

const Request kHello =
    Post("/v1/chat/completions",
         R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");

TEST(ReplayMode, AHitKeepsTheRecordedOffsetsExactly) {
  ReplayFixture f;
  f.Add(Recorded(kHello, f.keys, 1'000, {2'000, 5'000, 9'500}, true));
  Answer a = f.Serve(kHello);
  EXPECT_STREQ(a.outcome, "hit");
  EXPECT_TRUE(a.keyed);
  EXPECT_FALSE(a.relay);
  EXPECT_EQ(a.timeline.at.headers_us, 1'000);
  EXPECT_EQ(a.timeline.at.chunk_us,
            (std::vector<int64_t>{2'000, 5'000, 9'500}));
  EXPECT_EQ(testing::BodyOf(a.timeline), "piece0piece1piece2");
  EXPECT_TRUE(a.timeline.response->chunked);
  EXPECT_EQ(f.counters.hits.load(), 1u);
}

TEST(ReplayMode, TheLatencyModelRepacesTheSamePieces) {
  ReplayFixture f("scaled:0.5");
  f.Add(Recorded(kHello, f.keys, 1'000, {2'000, 5'000}));
  Answer a = f.Serve(kHello);
  EXPECT_EQ(a.timeline.at.headers_us, 500);
  EXPECT_EQ(a.timeline.at.chunk_us, (std::vector<int64_t>{1'000, 2'500}));
  // Paced, not copied: the pieces are the cached recording's.
  Answer b = f.Serve(kHello);
  EXPECT_EQ(a.timeline.response.get(), b.timeline.response.get());
}

TEST(ReplayMode, ARequestAsksForItsOwnLatencyOrGetsA400) {
  ReplayFixture f;
  f.Add(Recorded(kHello, f.keys, 1'000, {2'000, 5'000}));
  Request none = kHello;
  none.headers.emplace_back("X-Rewind-Latency", "none");
  Answer a = f.Serve(none);
  EXPECT_STREQ(a.outcome, "hit");
  EXPECT_EQ(a.timeline.at.headers_us, 0);
  EXPECT_EQ(a.timeline.at.chunk_us, (std::vector<int64_t>{0, 0}));

  Request bad = kHello;
  bad.headers.emplace_back("X-Rewind-Latency", "sideways");
  Answer b = f.Serve(bad);
  EXPECT_STREQ(b.outcome, "error");
  EXPECT_FALSE(b.keyed);
  EXPECT_EQ(b.timeline.response->status, 400);
  EXPECT_NE(testing::BodyOf(b.timeline).find("rewind_bad_latency"),
            std::string::npos);
}

TEST(ReplayMode, RecordedNetByTheServerOrByARequestTakesOutRewindsOwnTime) {
  Exchange e = Recorded(kHello, ReplayFixture().keys, 1'000, {2'000, 5'000});
  e.response.own_before_us = 400;
  for (bool by_header : {false, true}) {
    ReplayFixture f(by_header ? "recorded" : "recorded-net");
    f.Add(e);
    Request r = kHello;
    if (by_header) r.headers.emplace_back("X-Rewind-Latency", "recorded-net");
    Answer a = f.Serve(r);
    EXPECT_STREQ(a.outcome, "hit");
    EXPECT_EQ(a.timeline.at.headers_us, 600) << by_header;
    EXPECT_EQ(a.timeline.at.chunk_us, (std::vector<int64_t>{1'600, 4'600}))
        << by_header;
    // Without the header the server's model holds.
    EXPECT_EQ(f.Serve(kHello).timeline.at.headers_us, by_header ? 1'000 : 600);
  }
}

TEST(ReplayMode, RepeatsFollowThePolicyAndResetRestartsThem) {
  ReplayFixture f;
  f.Add(Recorded(kHello, f.keys, 1'000, {1'000}));
  f.Add(Recorded(kHello, f.keys, 2'000, {2'000}));
  std::vector<int64_t> seen;
  for (int i = 0; i < 3; ++i)
    seen.push_back(f.Serve(kHello).timeline.at.headers_us);
  EXPECT_EQ(seen, (std::vector<int64_t>{1'000, 2'000, 2'000}));
  f.Replay().Reset();
  EXPECT_EQ(f.Serve(kHello).timeline.at.headers_us, 1'000);
  EXPECT_EQ(f.miss.resets, 1);
}

TEST(ReplayMode, AnUnrecordedKeyGoesToTheMissMode) {
  ReplayFixture f;
  f.Add(Recorded(kHello, f.keys, 1'000, {1'000}));
  Answer a =
      f.Serve(Post("/v1/chat/completions", R"({"model":"m","messages":[]})"));
  EXPECT_STREQ(a.outcome, "miss");
  EXPECT_EQ(f.miss.calls, 1);
  EXPECT_EQ(f.counters.hits.load(), 0u);
}

TEST(ReplayMode, RandomLatencyDrawsDependOnTheKeyAndOccurrenceNotOnOrder) {
  ReplayFixture f("uniform:0..1000");
  f.Add(Recorded(kHello, f.keys, 0, {0}));
  const Request other = Post("/v1/chat/completions", R"({"model":"m"})");
  f.Add(Recorded(other, f.keys, 0, {0}));
  const int64_t hello_first = f.Serve(kHello).timeline.at.headers_us;
  f.Serve(other);
  ReplayFixture g("uniform:0..1000");
  g.Add(Recorded(kHello, g.keys, 0, {0}));
  g.Add(Recorded(other, g.keys, 0, {0}));
  g.Serve(other);
  EXPECT_EQ(g.Serve(kHello).timeline.at.headers_us, hello_first);
}

TEST(ReplayMode, AHitNamesTheRecordingThatAnswers) {
  ReplayFixture f;
  f.Add(Recorded(kHello, f.keys, 0, {0}));
  f.Add(Recorded(kHello, f.keys, 0, {0}));
  EXPECT_EQ(f.Serve(kHello).exchange, 1);
  EXPECT_EQ(f.Serve(kHello).exchange, 2);
  EXPECT_EQ(f.Serve(kHello).exchange, 2);
}

TEST(ReplayMode, EachScopeRepeatsFromTheFirstRecording) {
  ReplayFixture f;
  f.Add(Recorded(kHello, f.keys, 1'000, {1'000}));
  f.Add(Recorded(kHello, f.keys, 2'000, {2'000}));
  Scope a("a"), b("b");
  auto at = [&f](Scope* s) {
    return f.Serve(kHello, s).timeline.at.headers_us;
  };
  EXPECT_EQ(at(&a), 1'000);
  EXPECT_EQ(at(&b), 1'000);
  EXPECT_EQ(at(&a), 2'000);
  EXPECT_EQ(at(nullptr), 1'000);  // no scope: the server's own sequence
  EXPECT_EQ(at(&b), 2'000);
  EXPECT_EQ(at(nullptr), 2'000);
  // A scope's reset restarts it alone; the server's reset leaves scopes be.
  a.Reset();
  EXPECT_EQ(at(&a), 1'000);
  EXPECT_EQ(at(&b), 2'000);
  f.Replay().Reset();
  EXPECT_EQ(at(nullptr), 1'000);
  EXPECT_EQ(at(&b), 2'000);
}

TEST(ReplayMode, ABadXRewindMatchIsA400EvenOnAHit) {
  ReplayFixture f;
  f.Add(Recorded(kHello, f.keys, 0, {0}));
  Request asked = kHello;
  asked.headers.emplace_back("X-Rewind-Match", "nearest");
  Answer a = f.Serve(asked);
  EXPECT_STREQ(a.outcome, "error");
  EXPECT_EQ(a.timeline.response->status, 400);
  EXPECT_NE(testing::BodyOf(a.timeline).find("rewind_bad_match"),
            std::string::npos);
  EXPECT_EQ(f.counters.hits.load(), 0u);
  EXPECT_EQ(f.miss.calls, 0);
  // "exact" on a hit is a hit.
  asked.headers.back().second = "exact";
  EXPECT_STREQ(f.Serve(asked).outcome, "hit");
}

}  // namespace
}  // namespace rwd
