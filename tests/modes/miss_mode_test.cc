#include "modes/miss_mode.h"

#include <gtest/gtest.h>

#include "modes/convert.h"
#include "modes/scope.h"
#include "store/memory_store.h"
#include "testutil/fake_clock.h"
#include "testutil/mode_fixture.h"

namespace rwd {
namespace {

using testing::BodyOf;
using testing::CountingMode;
using testing::Post;
using testing::Recorded;

struct MissFixture {
  MissFixture()
      : keys(store.rules()),
        index(RepeatPolicy::kSequence, 0),
        cache(&store, 1 << 20) {
    pacing.seed = 0;
  }
  // Loads the index, then makes the miss mode for "policy".
  MissMode& Make(MissPolicy policy, bool include_incomplete = false) {
    EXPECT_TRUE(index.Load(&store, include_incomplete).ok());
    MissMode::Wrapped wrapped;
    wrapped.relay = &relay;
    if (policy == MissPolicy::kConvert) {
      convert = ConvertMode::Load(&store, index, store.rules(),
                                  RepeatPolicy::kSequence, &cache, &pacing,
                                  &counters, &events)
                    .value();
      wrapped.convert = convert.get();
    }
    if (policy == MissPolicy::kSynthesize) {
      synth = std::make_unique<SynthMode>(SynthOptions{}, &clock, &counters);
      wrapped.synth = synth.get();
    }
    mode = std::make_unique<MissMode>(policy, wrapped, &store, &index, &keys,
                                      &counters, &events);
    return *mode;
  }
  Answer Serve(const Request& r, Scope* scope = nullptr) {
    const RequestKey key = keys.Key(r);
    return mode->Serve(Call{r, key, 0, nullptr, scope});
  }

  MemoryStore store;
  Canonicalizer keys;
  ReplayIndex index;
  ExchangeCache cache;
  Pacing pacing;
  testing::FakeClock clock;
  ModeCounters counters;
  testing::RecordedEvents events;
  CountingMode relay{"passthrough"};
  std::unique_ptr<ConvertMode> convert;
  std::unique_ptr<SynthMode> synth;
  std::unique_ptr<MissMode> mode;
};

const Request kItaly = Post(
    "/v1/chat/completions",
    R"({"model":"m","messages":[{"role":"user","content":"What is the capital of Italy?"}]})");

TEST(MissMode, ErrorNamesTheNearestRecordingAndItsDifferingFields) {
  MissFixture f;
  f.store.Append(Recorded(kItaly, f.keys, 0, {0}));
  f.Make(MissPolicy::kError);
  Request changed = Post(
      "/v1/chat/completions",
      R"({"model":"m","temperature":0.3,"messages":[{"role":"user","content":"And of France?"}]})");
  changed.query = "api-key=secret";
  Answer a = f.Serve(changed);
  EXPECT_STREQ(a.outcome, "miss");
  EXPECT_TRUE(a.keyed);
  EXPECT_EQ(a.timeline.response->status, 404);
  const std::string body = BodyOf(a.timeline);
  EXPECT_NE(body.find("\"nearest\":{\"id\":1,"), std::string::npos) << body;
  EXPECT_NE(
      body.find(
          R"("differences":["query.api-key","messages[0].content","temperature"])"),
      std::string::npos)
      << body;
  EXPECT_EQ(f.counters.misses.load(), 1u);
  // The log line names the path but never the query.
  ASSERT_EQ(f.events.errors.size(), 1u);
  EXPECT_EQ(f.events.errors[0].find("secret"), std::string::npos);
  EXPECT_NE(f.events.errors[0].find("miss: POST /v1/chat/completions"),
            std::string::npos);
}

TEST(MissMode, ARequestRecordedIncompleteSaysHowToServeIt) {
  MissFixture f;
  Exchange broken = Recorded(kItaly, f.keys, 0, {0});
  broken.complete = false;
  f.store.Append(broken);
  f.Make(MissPolicy::kError);
  const std::string body = BodyOf(f.Serve(kItaly).timeline);
  EXPECT_NE(body.find("replay with --include-incomplete to serve it"),
            std::string::npos);
  EXPECT_NE(body.find("\"incomplete\":[1]"), std::string::npos) << body;
}

TEST(MissMode, AnErrorTakesTheShapeOfTheRequestsApi) {
  MissFixture f;
  f.Make(MissPolicy::kError);
  const std::string body = BodyOf(f.Serve(Post("/api/chat", "{}")).timeline);
  EXPECT_EQ(
      body.rfind("{\"error\":\"no recorded response for POST /api/chat", 0), 0u)
      << body;
}

TEST(MissMode, PassthroughAndRecordHandTheRequestToTheRelay) {
  for (MissPolicy p : {MissPolicy::kPassthrough, MissPolicy::kRecord}) {
    MissFixture f;
    f.Make(p);
    EXPECT_STREQ(f.Serve(kItaly).outcome, "passthrough");
    EXPECT_EQ(f.relay.calls, 1);
    EXPECT_EQ(f.counters.misses.load(), 1u);
  }
}

TEST(MissMode, SynthesizeAnswersTheEnginesEndpointsAndExplainsTheRest) {
  MissFixture f;
  f.Make(MissPolicy::kSynthesize);
  Answer a = f.Serve(kItaly);
  EXPECT_STREQ(a.outcome, "synth");
  EXPECT_EQ(a.timeline.response->status, 200);
  Answer b = f.Serve(Post("/v1/unknown", "{}"));
  EXPECT_STREQ(b.outcome, "miss");
  EXPECT_EQ(f.counters.misses.load(), 2u);
  EXPECT_EQ(f.counters.synthesized.load(), 1u);
}

TEST(MissMode, ConvertAnswersTheOtherFramingAndResetRestartsItsSequence) {
  MissFixture f;
  const Request streamed = Post(
      "/v1/chat/completions",
      R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})");
  Exchange e = Recorded(streamed, f.keys, 1'000, {}, /*stream=*/true);
  e.response.chunks = {
      {2'000,
       "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
       "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
       "\"assistant\","
       "\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"},
      {7'000,
       "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
       "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
       "\"lo\"},"
       "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"}};
  f.store.Append(e);
  Exchange later = e;
  later.response.chunks.back().offset_us = 9'000;
  f.store.Append(later);
  f.Make(MissPolicy::kConvert);
  const Request whole =
      Post("/v1/chat/completions",
           R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
  Answer a = f.Serve(whole);
  EXPECT_STREQ(a.outcome, "converted");
  EXPECT_FALSE(a.timeline.response->chunked);
  EXPECT_NE(BodyOf(a.timeline).find("\"content\":\"Hello\""), std::string::npos)
      << BodyOf(a.timeline);
  // Delivered whole at the stream's last offset.
  EXPECT_EQ(a.timeline.at.chunk_us, (std::vector<int64_t>{7'000}));
  EXPECT_EQ(f.counters.converted.load(), 1u);
  EXPECT_EQ(f.counters.misses.load(), 0u);
  // The second recording, then (after a reset) the first again.
  EXPECT_EQ(f.Serve(whole).timeline.at.chunk_us, (std::vector<int64_t>{9'000}));
  f.mode->Reset();
  EXPECT_EQ(f.Serve(whole).timeline.at.chunk_us, (std::vector<int64_t>{7'000}));

  // Nothing to convert from: the miss is explained.
  Answer miss = f.Serve(Post("/v1/chat/completions", R"({"model":"other"})"));
  EXPECT_STREQ(miss.outcome, "miss");
}

TEST(MissMode, AMissReportsItsExplanationAndTheNearestRecording) {
  MissFixture f;
  f.store.Append(Recorded(kItaly, f.keys, 0, {0}));
  f.Make(MissPolicy::kError);
  Request changed = Post(
      "/v1/chat/completions",
      R"({"model":"m","messages":[{"role":"user","content":"And of France?"}]})");
  changed.query = "api-key=secret";
  Answer a = f.Serve(changed);
  ASSERT_NE(a.miss, nullptr);
  EXPECT_EQ(a.exchange, 0);
  // What the 404 said, query included (the client sent it)...
  EXPECT_NE(BodyOf(a.timeline).find(a.miss->explanation.substr(0, 40)),
            std::string::npos);
  EXPECT_NE(a.miss->explanation.find("api-key=secret"), std::string::npos);
  EXPECT_NE(a.miss->explanation.find("nearest recording is #1"),
            std::string::npos);
  // ...and as the log says it: never the query.
  EXPECT_EQ(a.miss->logged.find("secret"), std::string::npos) << a.miss->logged;
  EXPECT_EQ(a.miss->logged.rfind("POST /v1/chat/completions (key ", 0), 0u)
      << a.miss->logged;
  EXPECT_EQ(a.miss->nearest_id, 1);
  EXPECT_EQ(a.miss->differences,
            (std::vector<std::string>{"query.api-key", "messages[0].content"}));

  Answer none = f.Serve(Post("/v1/embeddings", "{}"));
  ASSERT_NE(none.miss, nullptr);
  EXPECT_EQ(none.miss->nearest_id, 0);
  EXPECT_NE(none.miss->explanation.find("nothing was recorded"),
            std::string::npos);
}

TEST(MissMode, ConvertCountsRepeatsPerScopeAndNamesTheRecording) {
  MissFixture f;
  Request streamed = kItaly;
  streamed.body =
      R"({"model":"m","stream":true,"messages":[{"role":"user","content":"What is the capital of Italy?"}]})";
  Exchange first = Recorded(kItaly, f.keys, 0, {0});
  first.response.chunks[0].data =
      R"({"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Rome"},"finish_reason":"stop"}]})";
  Exchange second = first;
  second.response.chunks[0].data =
      R"({"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Roma"},"finish_reason":"stop"}]})";
  f.store.Append(first);
  f.store.Append(second);
  f.Make(MissPolicy::kConvert);
  Scope a("a"), b("b");
  Answer a1 = f.Serve(streamed, &a);
  EXPECT_STREQ(a1.outcome, "converted");
  EXPECT_EQ(a1.exchange, 1);
  EXPECT_EQ(f.Serve(streamed, &a).exchange, 2);
  EXPECT_EQ(f.Serve(streamed, &b).exchange, 1);
  EXPECT_EQ(f.Serve(streamed).exchange, 1);
}

}  // namespace
}  // namespace rwd
