#include "modes/synth_mode.h"

#include <gtest/gtest.h>

#include "modes/scope.h"
#include "testutil/fake_clock.h"
#include "testutil/mode_fixture.h"

namespace rwd {
namespace {

using testing::BodyOf;
using testing::Post;

SynthOptions Options(const std::string& output) {
  SynthOptions o;
  o.output = OutputMode::Parse(output, nullptr).value();
  o.ttft = Distribution::Parse("fixed:100").value();
  o.itl = Distribution::Parse("fixed:10").value();
  o.deterministic_created = true;
  o.seed = 3;
  return o;
}

struct SynthFixture {
  explicit SynthFixture(SynthOptions o) : mode(o, &clock, &counters) {}
  Answer Serve(const Request& r, Scope* scope = nullptr) {
    const RequestKey key = Canonicalizer(KeyRules{}).Key(r);
    return mode.Serve(Call{r, key, clock.NowMicros(), nullptr, scope});
  }
  testing::FakeClock clock;
  ModeCounters counters;
  SynthMode mode;
};

const Request kChat =
    Post("/v1/chat/completions",
         R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");

TEST(SynthMode, AnAnswerIsPlannedOnTheEngineLatencyExactly) {
  SynthFixture f(Options("static:one two three"));
  Answer a = f.Serve(kChat);
  EXPECT_STREQ(a.outcome, "synth");
  EXPECT_TRUE(a.keyed);
  ASSERT_EQ(a.timeline.response->status, 200);
  // Three tokens: the first at the TTFT, then two gaps; one JSON body.
  EXPECT_EQ(a.timeline.at.chunk_us, (std::vector<int64_t>{120'000}));
  EXPECT_NE(BodyOf(a.timeline).find("one two three"), std::string::npos);
  EXPECT_EQ(f.counters.synthesized.load(), 1u);

  Request streamed = Post(
      "/v1/chat/completions",
      R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})");
  Answer s = f.Serve(streamed);
  ASSERT_GE(s.timeline.at.chunk_us.size(), 4u);
  EXPECT_EQ(s.timeline.at.chunk_us[0], 100'000);  // the role chunk, at the TTFT
  EXPECT_TRUE(s.timeline.response->chunked);
  // Each timeline offset is the plan's own.
  for (size_t i = 0; i < s.timeline.at.chunk_us.size(); ++i) {
    EXPECT_EQ(s.timeline.at.chunk_us[i],
              s.timeline.response->chunks[i].offset_us);
  }
}

TEST(SynthMode, TheSameSeedGivesTheSameBytesAndResetRestartsOccurrences) {
  SynthFixture f(Options("random"));
  const std::string first = BodyOf(f.Serve(kChat).timeline);
  const std::string second = BodyOf(f.Serve(kChat).timeline);
  EXPECT_NE(first, second);  // the second occurrence draws anew
  f.mode.Reset();
  EXPECT_EQ(BodyOf(f.Serve(kChat).timeline), first);
  SynthFixture g(Options("random"));
  EXPECT_EQ(BodyOf(g.Serve(kChat).timeline), first);
}

TEST(SynthMode, CapacityHoldsASlotUntilTheAnswerIsGone) {
  SynthOptions o = Options("static:hi");
  o.max_concurrency = 1;
  o.max_queue = 0;
  SynthFixture f(o);
  Answer running = f.Serve(kChat);
  ASSERT_EQ(running.timeline.response->status, 200);
  ASSERT_TRUE(running.timeline.hold);
  Answer refused = f.Serve(kChat);
  EXPECT_EQ(refused.timeline.response->status, 429);
  EXPECT_STREQ(refused.outcome, "synth");
  EXPECT_NE(
      BodyOf(refused.timeline).find("at capacity: 1 running and 0 waiting"),
      std::string::npos);
  running.timeline.hold.reset();  // the paced writer is done with it
  EXPECT_EQ(f.Serve(kChat).timeline.response->status, 200);
}

TEST(SynthMode, ABadFaultHeaderIsA400InTheRequestsDialect) {
  SynthFixture f(Options("echo"));
  Request r =
      Post("/v1/messages", R"({"model":"m","max_tokens":5,"messages":[]})",
           {{"X-Rewind-Fault", "lightning"}});
  Answer a = f.Serve(r);
  EXPECT_EQ(a.timeline.response->status, 400);
  EXPECT_NE(BodyOf(a.timeline).find("\"type\":\"error\""),
            std::string::npos);  // Anthropic's
}

TEST(SynthMode, TheRestOfTheSurfaceAnswersAtOnceWithoutAKey) {
  SynthFixture f(Options("echo"));
  Request health;
  health.method = "GET";
  health.path = "/health";
  Answer h = f.Serve(health);
  EXPECT_FALSE(h.keyed);
  EXPECT_EQ(h.timeline.at.chunk_us, (std::vector<int64_t>{0}));
  EXPECT_EQ(BodyOf(h.timeline), "{\"status\":\"ok\"}\n");

  Request models = health;
  models.path = "/v1/models";
  EXPECT_NE(BodyOf(f.Serve(models).timeline).find("rewind-dummy"),
            std::string::npos);

  Request unknown = Post("/v2/nothing", "{}");
  Answer u = f.Serve(unknown);
  EXPECT_EQ(u.timeline.response->status, 404);
  EXPECT_FALSE(u.keyed);
  EXPECT_NE(BodyOf(u.timeline).find("rewind serve has no POST /v2/nothing"),
            std::string::npos);
  EXPECT_EQ(f.counters.synthesized.load(), 0u);
}

TEST(SynthMode, EachScopeCountsItsOwnOccurrences) {
  SynthFixture f(Options("random"));
  Scope a("a"), b("b");
  const std::string first = BodyOf(f.Serve(kChat, &a).timeline);
  const std::string second = BodyOf(f.Serve(kChat, &a).timeline);
  EXPECT_NE(first, second);  // the same request, seeded by its occurrence
  EXPECT_EQ(BodyOf(f.Serve(kChat, &b).timeline), first);
  EXPECT_EQ(BodyOf(f.Serve(kChat).timeline), first);
  EXPECT_EQ(BodyOf(f.Serve(kChat, &b).timeline), second);
  a.Reset();
  EXPECT_EQ(BodyOf(f.Serve(kChat, &a).timeline), first);
}

}  // namespace
}  // namespace rwd
