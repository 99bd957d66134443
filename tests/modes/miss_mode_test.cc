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
    if (policy == MissPolicy::kNearest) {
      nearest = std::make_unique<NearestMode>(
          &store, &index, &keys, near_max_fields, &cache, &pacing, &counters);
      wrapped.nearest = nearest.get();
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
  size_t near_max_fields = 3;
  std::unique_ptr<ConvertMode> convert;
  std::unique_ptr<NearestMode> nearest;
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

// ---- --on-miss nearest -----------------------------------------------------

std::string Chat(const std::string& extra, const std::string& content,
                 const std::string& model = "m") {
  return R"({"model":")" + model + "\"" + extra +
         R"(,"messages":[{"role":"user","content":")" + content + R"("}]})";
}

// A recording of Chat(extra, content, model) answered with "answer",
// its headers at 1 ms and its body at 5 ms.
Exchange ChatRecording(const Canonicalizer& keys, const std::string& extra,
                       const std::string& content, const std::string& answer,
                       const std::string& model = "m") {
  Exchange e =
      Recorded(Post("/v1/chat/completions", Chat(extra, content, model)), keys,
               1'000, {5'000});
  e.response.chunks[0].data = answer;
  return e;
}

std::string NearHeader(const Answer& a) {
  for (const auto& [name, value] : a.headers) {
    if (name == "X-Rewind-Near") return value;
  }
  return "(none)";
}

TEST(MissMode, NearestAnswersWithinTheBoundFromTheRecordingPacedLikeAHit) {
  MissFixture f;
  f.store.Append(ChatRecording(f.keys, ",\"temperature\":0.2",
                               "Capital of Italy?", "Rome"));
  f.Make(MissPolicy::kNearest);
  Answer a = f.Serve(Post("/v1/chat/completions",
                          Chat(",\"temperature\":0.7", "Capital of Italy?")));
  EXPECT_STREQ(a.outcome, "near");
  EXPECT_TRUE(a.keyed);
  EXPECT_EQ(a.exchange, 1);
  EXPECT_EQ(a.miss, nullptr);
  ASSERT_NE(a.near_differences, nullptr);
  EXPECT_EQ(*a.near_differences, (std::vector<std::string>{"temperature"}));
  EXPECT_EQ(NearHeader(a), "#1; differs in: temperature");
  ASSERT_NE(a.timeline.response, nullptr);
  EXPECT_EQ(a.timeline.response->status, 200);
  EXPECT_EQ(BodyOf(a.timeline), "Rome");
  // The recorded schedule, as a hit gets it.
  EXPECT_EQ(a.timeline.at.headers_us, 1'000);
  EXPECT_EQ(a.timeline.at.chunk_us, (std::vector<int64_t>{5'000}));
  EXPECT_EQ(f.counters.near.load(), 1u);
  EXPECT_EQ(f.counters.misses.load(), 0u);

  // Up to three fields by default, of any kind: a query parameter, the
  // content, a value.
  Request three = Post("/v1/chat/completions",
                       Chat(",\"temperature\":0.7", "Capital of Rome?"));
  three.query = "v=2";
  Answer b = f.Serve(three);
  EXPECT_STREQ(b.outcome, "near");
  EXPECT_EQ(NearHeader(b),
            "#1; differs in: query.v, messages[0].content, temperature");
}

TEST(MissMode, NearestMissesBeyondTheFieldBoundExplainingTheNearest) {
  MissFixture f;
  f.store.Append(ChatRecording(f.keys, "", "Capital of Italy?", "Rome"));
  f.Make(MissPolicy::kNearest);
  // Three differences: answered.
  Answer three =
      f.Serve(Post("/v1/chat/completions",
                   Chat(",\"temperature\":0.7,\"top_p\":1,\"seed\":4",
                        "Capital of Italy?")));
  EXPECT_STREQ(three.outcome, "near");
  // Four: a miss, explained with the nearest recording and its fields.
  Answer four =
      f.Serve(Post("/v1/chat/completions",
                   Chat(",\"temperature\":0.7,\"top_p\":1,\"seed\":4,\"n\":1",
                        "Capital of Italy?")));
  EXPECT_STREQ(four.outcome, "miss");
  EXPECT_EQ(four.timeline.response->status, 404);
  ASSERT_NE(four.miss, nullptr);
  EXPECT_EQ(four.miss->nearest_id, 1);
  EXPECT_EQ(four.miss->differences,
            (std::vector<std::string>{"n", "seed", "temperature", "top_p"}));
  EXPECT_EQ(four.exchange, 0);
  EXPECT_TRUE(four.headers.empty());
  EXPECT_EQ(f.counters.near.load(), 1u);
  EXPECT_EQ(f.counters.misses.load(), 1u);

  // --near-max-fields 1.
  MissFixture one;
  one.near_max_fields = 1;
  one.store.Append(ChatRecording(one.keys, "", "Capital of Italy?", "Rome"));
  one.Make(MissPolicy::kNearest);
  EXPECT_STREQ(one.Serve(Post("/v1/chat/completions",
                              Chat(",\"seed\":4", "Capital of Italy?")))
                   .outcome,
               "near");
  EXPECT_STREQ(one.Serve(Post("/v1/chat/completions",
                              Chat(",\"seed\":4,\"n\":1", "Capital of Italy?")))
                   .outcome,
               "miss");
}

TEST(MissMode, NearestNeverAnswersWithAnotherModel) {
  MissFixture f;
  f.store.Append(
      ChatRecording(f.keys, "", "Capital of Italy?", "Rome", "small"));
  f.Make(MissPolicy::kNearest);
  Answer a = f.Serve(
      Post("/v1/chat/completions", Chat("", "Capital of Italy?", "large")));
  EXPECT_STREQ(a.outcome, "miss");
  ASSERT_NE(a.miss, nullptr);
  EXPECT_EQ(a.miss->differences, (std::vector<std::string>{"model"}));
  // No model at all, or one that is an object, is another model too.
  EXPECT_STREQ(
      f
          .Serve(Post(
              "/v1/chat/completions",
              R"({"messages":[{"role":"user","content":"Capital of Italy?"}]})"))
          .outcome,
      "miss");
  EXPECT_STREQ(
      f
          .Serve(Post(
              "/v1/chat/completions",
              R"({"model":{"name":"small"},"messages":[{"role":"user","content":"Capital of Italy?"}]})"))
          .outcome,
      "miss");
  EXPECT_EQ(f.counters.near.load(), 0u);
}

TEST(MissMode, NearestPicksTheNearestOfTheSameModelOverANearerOtherOne) {
  MissFixture f;
  // #1: the same model, two fields away; #2: one field away, but it is
  // the model.
  f.store.Append(
      ChatRecording(f.keys, ",\"seed\":1", "Capital of France?", "Paris"));
  f.store.Append(
      ChatRecording(f.keys, "", "Capital of Italy?", "Rome", "other"));
  f.Make(MissPolicy::kNearest);
  Answer a =
      f.Serve(Post("/v1/chat/completions", Chat("", "Capital of Italy?")));
  EXPECT_STREQ(a.outcome, "near");
  EXPECT_EQ(a.exchange, 1);
  EXPECT_EQ(BodyOf(a.timeline), "Paris");
  EXPECT_EQ(NearHeader(a), "#1; differs in: messages[0].content, seed");
}

TEST(MissMode, NearestServesOneRecordingToEveryRepeat) {
  MissFixture f;
  f.store.Append(ChatRecording(f.keys, "", "Capital of Italy?", "Rome"));
  f.store.Append(ChatRecording(f.keys, "", "Capital of Italy?", "Roma"));
  f.Make(MissPolicy::kNearest);
  const Request changed =
      Post("/v1/chat/completions", Chat(",\"seed\":9", "Capital of Italy?"));
  // The newest of the equally near, every time, in any scope.
  Scope scope("t");
  for (Scope* s :
       {static_cast<Scope*>(nullptr), static_cast<Scope*>(nullptr), &scope}) {
    Answer a = f.Serve(changed, s);
    EXPECT_STREQ(a.outcome, "near");
    EXPECT_EQ(a.exchange, 2);
    EXPECT_EQ(BodyOf(a.timeline), "Roma");
  }
}

TEST(MissMode, NearestNeverServesAnIncompleteRecording) {
  MissFixture f;
  Exchange broken = ChatRecording(f.keys, "", "Capital of Italy?", "Ro");
  broken.complete = false;
  f.store.Append(broken);
  // Indexed (--include-incomplete), so an exact request gets it...
  f.Make(MissPolicy::kNearest, /*include_incomplete=*/true);
  // ...but a near one does not.
  Answer a = f.Serve(
      Post("/v1/chat/completions", Chat(",\"seed\":1", "Capital of Italy?")));
  EXPECT_STREQ(a.outcome, "miss");
  ASSERT_NE(a.miss, nullptr);
  EXPECT_EQ(a.miss->nearest_id, 1);
}

TEST(MissMode, NearestNeedsTheBodyDiffedFieldByField) {
  MissFixture f;
  // Bodies beyond 1 MiB are not diffed: the body is named as a whole.
  const std::string long_text(1100 * 1024, 'x');
  f.store.Append(ChatRecording(f.keys, "", long_text, "long"));
  // A body that is not JSON differs as a whole too.
  Exchange text = Recorded(Post("/v1/text", "one two three"), f.keys, 0, {0});
  f.store.Append(text);
  f.Make(MissPolicy::kNearest);
  Answer a =
      f.Serve(Post("/v1/chat/completions", Chat(",\"seed\":1", long_text)));
  EXPECT_STREQ(a.outcome, "miss");
  ASSERT_NE(a.miss, nullptr);
  EXPECT_EQ(a.miss->differences, (std::vector<std::string>{"body"}));
  Answer b = f.Serve(Post("/v1/text", "one two four"));
  EXPECT_STREQ(b.outcome, "miss");
  ASSERT_NE(b.miss, nullptr);
  EXPECT_EQ(b.miss->differences, (std::vector<std::string>{"body"}));
  EXPECT_EQ(f.counters.near.load(), 0u);
}

TEST(MissMode, XRewindNearNamesFieldsWithoutControlCharactersOrLongNames) {
  MissFixture f;
  f.store.Append(ChatRecording(f.keys, "", "Capital of Italy?", "Rome"));
  f.Make(MissPolicy::kNearest);
  const std::string long_name(200, 'k');
  Answer a = f.Serve(
      Post("/v1/chat/completions",
           Chat(",\"a\\r\\nSet-Cookie: x\\u0000\":1,\"" + long_name + "\":2",
                "Capital of Italy?")));
  EXPECT_STREQ(a.outcome, "near");
  const std::string header = NearHeader(a);
  EXPECT_EQ(header, "#1; differs in: aSet-Cookie: x, " +
                        std::string(NearestMode::kMaxShownField, 'k') + "...")
      << header;
  EXPECT_TRUE(IsWritableHeader("X-Rewind-Near", header));
  // The journal keeps the names as they are.
  ASSERT_NE(a.near_differences, nullptr);
  EXPECT_EQ((*a.near_differences)[1], long_name);
  // A UTF-8 name is cut between characters.
  const std::string cut = NearestMode::Header(
      7, {std::string(NearestMode::kMaxShownField - 1, 'a') + "\xc3\xa9"});
  EXPECT_EQ(cut, "#7; differs in: " +
                     std::string(NearestMode::kMaxShownField - 1, 'a') + "...");
}

TEST(MissMode, XRewindMatchExactMakesTheRequestMiss) {
  MissFixture f;
  f.store.Append(ChatRecording(f.keys, "", "Capital of Italy?", "Rome"));
  f.Make(MissPolicy::kNearest);
  for (const char* value : {"exact", "Exact"}) {
    Answer a = f.Serve(Post("/v1/chat/completions",
                            Chat(",\"temperature\":0.7", "Capital of Italy?"),
                            {{"X-Rewind-Match", value}}));
    EXPECT_STREQ(a.outcome, "miss") << value;
    EXPECT_EQ(a.timeline.response->status, 404);
    ASSERT_NE(a.miss, nullptr);
    EXPECT_EQ(a.miss->differences, (std::vector<std::string>{"temperature"}));
  }
  EXPECT_EQ(f.counters.near.load(), 0u);
  EXPECT_EQ(f.counters.misses.load(), 2u);
  // An empty header demands nothing.
  EXPECT_STREQ(f.Serve(Post("/v1/chat/completions",
                            Chat(",\"temperature\":0.7", "Capital of Italy?"),
                            {{"x-rewind-match", ""}}))
                   .outcome,
               "near");

  // convert, too.
  MissFixture c;
  const Request streamed = Post(
      "/v1/chat/completions",
      R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})");
  c.store.Append(Recorded(streamed, c.keys, 0, {0}, /*stream=*/true));
  c.Make(MissPolicy::kConvert);
  Answer a = c.Serve(
      Post("/v1/chat/completions",
           R"({"model":"m","messages":[{"role":"user","content":"hi"}]})",
           {{"X-Rewind-Match", "exact"}}));
  EXPECT_STREQ(a.outcome, "miss");
  EXPECT_EQ(c.counters.converted.load(), 0u);
}

TEST(MissMode, ABadXRewindMatchIsA400NamingTheAllowedValue) {
  MissFixture f;
  f.store.Append(ChatRecording(f.keys, "", "Capital of Italy?", "Rome"));
  f.Make(MissPolicy::kNearest);
  Answer a = f.Serve(Post("/v1/chat/completions",
                          Chat(",\"temperature\":0.7", "Capital of Italy?"),
                          {{"X-Rewind-Match", "fuzzy\x01"}}));
  EXPECT_STREQ(a.outcome, "error");
  EXPECT_FALSE(a.keyed);
  ASSERT_NE(a.timeline.response, nullptr);
  EXPECT_EQ(a.timeline.response->status, 400);
  const std::string body = BodyOf(a.timeline);
  EXPECT_NE(body.find("rewind_bad_match"), std::string::npos) << body;
  EXPECT_NE(
      body.find(
          R"(X-Rewind-Match: \"fuzzy\\x01\" is not a matching rule; the allowed value is \"exact\")"),
      std::string::npos)
      << body;
  EXPECT_EQ(f.counters.near.load(), 0u);
  EXPECT_EQ(f.counters.misses.load(), 0u);
  // Whatever the policy.
  MissFixture e;
  e.Make(MissPolicy::kError);
  EXPECT_EQ(e.Serve(Post("/v1/x", "{}", {{"X-Rewind-Match", "near"}}))
                .timeline.response->status,
            400);
}

}  // namespace
}  // namespace rwd
