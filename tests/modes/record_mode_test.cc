#include "modes/record_mode.h"

#include <gtest/gtest.h>

#include "rewind/redact.h"
#include "store/memory_store.h"
#include "testutil/fake_clock.h"
#include "testutil/faulty_store.h"
#include "testutil/mode_fixture.h"

namespace rwd {
namespace {

using testing::Post;

struct RecordFixture {
  explicit RecordFixture(std::vector<std::string> redact_fields = {},
                         bool with_index = false, CaptureRules capture = {})
      : keys(store.rules()),
        clock(5'000'000),
        index(RepeatPolicy::kSequence, 0) {
    RecordOptions o;
    o.capture = std::move(capture);
    o.redact_headers = DefaultRedactedHeaders();
    o.redact_fields = std::move(redact_fields);
    o.match_headers = {"X-Rewind-Tenant"};
    o.max_record_bytes = 1000;
    o.session_start_us = 1'000'000;
    mode = std::make_unique<RecordMode>(
        &store, &clock, o, with_index ? &index : nullptr, &counters, &events);
  }
  explicit RecordFixture(CaptureRules capture)
      : RecordFixture({}, false, std::move(capture)) {}
  // Serves "r" and, when it is recorded, finishes its exchange with
  // "body".
  Answer ServeAndStore(const Request& r, const std::string& body = "{}") {
    Answer a = Serve(r, 1'000'000);
    if (a.capture.on_done) {
      Exchange done = a.capture.base;
      done.response.status = 200;
      done.response.chunks = {{10, body}};
      a.capture.on_done(std::move(done));
    }
    return a;
  }
  uint64_t NotRecorded(Skip reason) const {
    return counters.not_recorded[static_cast<size_t>(reason)].load();
  }
  Answer Serve(const Request& r, int64_t received_us) {
    const RequestKey key = keys.Key(r);
    return mode->Serve(Call{r, key, received_us});
  }

  MemoryStore store;
  Canonicalizer keys;
  testing::FakeClock clock;
  ReplayIndex index;
  ModeCounters counters;
  testing::RecordedEvents events;
  std::unique_ptr<RecordMode> mode;
};

const HeaderList kHeaders = {{"Authorization", "Bearer sk-secret"},
                             {"X-Rewind-Latency", "none"},
                             {"X-Rewind-Tenant", "a"},
                             {"Accept", "*/*"}};

TEST(RecordMode, RelaysWithTheRequestAsItIsStored) {
  RecordFixture f;
  const Request r = Post("/v1/chat/completions", R"({"model":"m"})", kHeaders);
  Answer a = f.Serve(r, 3'000'000);
  EXPECT_STREQ(a.outcome, "record");
  EXPECT_TRUE(a.relay);
  EXPECT_TRUE(a.keyed);
  const Exchange& base = a.capture.base;
  EXPECT_EQ(base.key_hex, f.keys.Key(r).ToHex());
  EXPECT_EQ(FindHeader(base.request.headers, "Authorization"), kRedacted);
  // rewind's own headers are stored only when the key matches on them.
  EXPECT_EQ(FindHeader(base.request.headers, "X-Rewind-Latency"), "");
  EXPECT_EQ(FindHeader(base.request.headers, "X-Rewind-Tenant"), "a");
  EXPECT_EQ(FindHeader(base.request.headers, "Accept"), "*/*");
  EXPECT_EQ(base.arrival_offset_us, 2'000'000);
  EXPECT_EQ(base.started_at_us, f.clock.WallMicros());
  EXPECT_EQ(a.capture.max_bytes, 1000u);
}

TEST(RecordMode, StoresItsOwnTimeAfterTheBackendsLastByte) {
  RecordFixture f;  // the clock stands at 5 s
  const Request r = Post("/v1/chat/completions", R"({"model":"m"})");
  Answer a = f.Serve(r, 4'990'000);  // received 10 ms ago
  Exchange done = a.capture.base;
  done.response.status = 200;
  done.response.headers_us = 6'000;
  done.response.chunks = {{9'700, "{}"}};  // the last byte 0.3 ms ago
  done.response.own_before_us = 250;       // the forwarder's measure
  a.capture.on_done(std::move(done));
  Result<Exchange> stored = f.store.Get(1);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->response.own_after_us, 300);
  EXPECT_EQ(stored->response.own_before_us, 250);
}

TEST(RecordMode, TheFinishedExchangeIsStoredRedactedAndIndexed) {
  RecordFixture f({}, /*with_index=*/true);
  const Request r = Post("/v1/chat/completions", R"({"model":"m"})", kHeaders);
  Answer a = f.Serve(r, 1'000'000);
  Exchange done = a.capture.base;
  done.response.status = 200;
  done.response.headers = {{"Set-Cookie", "session=1"},
                           {"Content-Type", "application/json"}};
  done.response.chunks = {{10, "{}"}};
  a.capture.on_done(std::move(done));
  EXPECT_EQ(f.counters.recorded.load(), 1u);
  Result<Exchange> stored = f.store.Get(1);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(FindHeader(stored->response.headers, "Set-Cookie"), kRedacted);
  EXPECT_EQ(stored->response.Body(), "{}");
  std::optional<ReplayIndex::Pick> pick = f.index.Select(f.keys.Key(r));
  ASSERT_TRUE(pick.has_value());
  EXPECT_EQ(pick->id, 1);
}

TEST(RecordMode, ABodyWhoseSecretCannotBeTakenOutIsRelayedNotRecorded) {
  RecordFixture f({"api_key"});
  Answer a = f.Serve(Post("/v1/x", R"({"api_key": "sk-1", )"), 1'000'000);
  EXPECT_STREQ(a.outcome, "passthrough");
  EXPECT_TRUE(a.relay);
  EXPECT_FALSE(a.capture.on_done);
  EXPECT_EQ(a.capture.base.request.body, "");
  EXPECT_EQ(f.events.skipped, (std::vector<std::string>{"unredactable"}));
  ASSERT_EQ(f.events.errors.size(), 1u);
  EXPECT_EQ(f.events.errors[0].find("sk-1"), std::string::npos);
  EXPECT_EQ(f.counters.passthrough.load(), 1u);

  Answer ok = f.Serve(Post("/v1/x", R"({"api_key":"sk-1","q":1})"), 1'000'000);
  EXPECT_STREQ(ok.outcome, "record");
  EXPECT_EQ(ok.capture.base.request.body.find("sk-1"), std::string::npos);
}

TEST(RecordMode, AnAnswerTooLargeIsCountedAndLoggedWithoutItsBody) {
  RecordFixture f;
  Answer a = f.Serve(Post("/v1/x", "{}"), 1'000'000);
  a.capture.on_too_large(4096);
  EXPECT_EQ(f.events.skipped, (std::vector<std::string>{"too_large"}));
  ASSERT_EQ(f.events.errors.size(), 1u);
  EXPECT_NE(
      f.events.errors[0].find("--max-record-bytes (1000; 4096 bytes known)"),
      std::string::npos);
}

TEST(RecordMode, AStoreThatFailsCountsAnErrorAndSaysWhy) {
  RecordFixture f;
  Answer a = f.Serve(Post("/v1/x", "{}"), 1'000'000);
  Exchange first = a.capture.base;
  first.id = 1;
  f.store.Append(first);
  Exchange clash = a.capture.base;
  clash.id = 1;  // the in-memory store refuses a taken id
  a.capture.on_done(std::move(clash));
  EXPECT_EQ(f.counters.errors.load(), 1u);
  EXPECT_EQ(f.counters.recorded.load(), 0u);
  ASSERT_EQ(f.events.errors.size(), 1u);
  EXPECT_NE(f.events.errors[0].find("exchange not recorded"),
            std::string::npos);
}

TEST(RecordMode, PathGlobsChooseWhatIsRecordedAndASkipWins) {
  CaptureRules rules;
  rules.record_paths = {"/v1/chat/*", "/v1/embeddings"};
  rules.skip_paths = {"*/internal*"};
  RecordFixture f(rules);
  struct Case {
    const char* path;
    const char* outcome;
  };
  for (const Case& c : {Case{"/v1/chat/completions", "record"},
                        Case{"/v1/embeddings", "record"},
                        Case{"/v1/completions", "passthrough"},
                        Case{"/v1/chat/internal/x", "passthrough"},
                        Case{"/health", "passthrough"}}) {
    Answer a = f.Serve(Post(c.path, "{}"), 1'000'000);
    EXPECT_STREQ(a.outcome, c.outcome) << c.path;
    EXPECT_TRUE(a.relay) << c.path;
    EXPECT_EQ(static_cast<bool>(a.capture.on_done),
              std::string(c.outcome) == "record")
        << c.path;
  }
  EXPECT_EQ(f.NotRecorded(Skip::kPath), 3u);
  EXPECT_EQ(f.counters.passthrough.load(), 3u);
  EXPECT_EQ(f.events.skipped,
            (std::vector<std::string>{"path", "path", "path"}));
  // The query is not part of the path matched.
  Request q = Post("/v1/completions", "{}");
  q.query = "x=/v1/chat/y";
  EXPECT_STREQ(f.Serve(q, 1'000'000).outcome, "passthrough");
}

TEST(RecordMode, TheSampleIsASeededShareDecidedByTheKeyAlone) {
  CaptureRules rules;
  rules.sample = 0.3;
  rules.seed = 7;
  RecordFixture f(rules);
  CaptureRules other_seed = rules;
  other_seed.seed = 8;
  RecordFixture g(other_seed);
  const int n = 4000;
  int recorded = 0;
  int differs = 0;
  for (int i = 0; i < n; ++i) {
    const Request r = Post("/v1/x", "{\"i\":" + std::to_string(i) + "}");
    const bool in = std::string(f.Serve(r, 1'000'000).outcome) == "record";
    recorded += in;
    // The same request, again: the same decision.
    EXPECT_EQ(std::string(f.Serve(r, 2'000'000).outcome) == "record", in);
    differs += (std::string(g.Serve(r, 1'000'000).outcome) == "record") != in;
  }
  // Binomial(4000, 0.3): mean 1200, sigma 29; within 4 sigma.
  EXPECT_NEAR(recorded, 1200, 4 * 29);
  EXPECT_EQ(f.NotRecorded(Skip::kSampledOut), 2u * (n - recorded));
  // Another seed draws another share (two independent 0.3 draws differ
  // on 42 % of requests).
  EXPECT_NEAR(differs, 0.42 * n, 4 * 31);

  // At 1, every request; the draw is not even made.
  RecordFixture all;
  EXPECT_STREQ(all.Serve(Post("/v1/x", "{}"), 1'000'000).outcome, "record");
}

TEST(RecordMode, MaxPerKeyKeepsKRecordingsOfARequestAndCountsTheRest) {
  CaptureRules rules;
  rules.max_per_key = 2;
  RecordFixture f(rules);
  const Request r = Post("/v1/x", R"({"q":1})");
  EXPECT_STREQ(f.ServeAndStore(r).outcome, "record");
  EXPECT_STREQ(f.ServeAndStore(r).outcome, "record");
  EXPECT_STREQ(f.ServeAndStore(r).outcome, "passthrough");
  EXPECT_STREQ(f.ServeAndStore(r).outcome, "passthrough");
  EXPECT_EQ(f.store.Count().value(), 2);
  EXPECT_EQ(f.NotRecorded(Skip::kMaxPerKey), 2u);
  EXPECT_EQ(f.events.skipped,
            (std::vector<std::string>{"max_per_key", "max_per_key"}));
  // Another request has its own count.
  EXPECT_STREQ(f.ServeAndStore(Post("/v1/x", R"({"q":2})")).outcome, "record");
}

TEST(RecordMode, MaxPerKeyGivesBackThePlaceOfAnExchangeNeverStored) {
  CaptureRules rules;
  rules.max_per_key = 1;
  RecordFixture f(rules);
  const Request r = Post("/v1/x", R"({"q":1})");
  {
    // The backend failed: the relay ends without an exchange.
    Answer a = f.Serve(r, 1'000'000);
    EXPECT_STREQ(a.outcome, "record");
    // While it is on its way, its place is taken.
    EXPECT_STREQ(f.Serve(r, 1'000'000).outcome, "passthrough");
  }
  EXPECT_STREQ(f.ServeAndStore(r).outcome, "record");
  EXPECT_STREQ(f.ServeAndStore(r).outcome, "passthrough");
  EXPECT_EQ(f.store.Count().value(), 1);
}

TEST(RecordMode, MaxPerKeyCountsTheRecordingsAlreadyThere) {
  CaptureRules rules;
  rules.max_per_key = 2;
  RecordFixture f(rules);
  const Request r = Post("/v1/x", R"({"q":1})");
  for (int i = 0; i < 2; ++i) {
    f.store.Append(testing::Recorded(r, f.keys, 10, {20}));
  }
  ASSERT_TRUE(f.mode->Start().ok());
  EXPECT_STREQ(f.ServeAndStore(r).outcome, "passthrough");
  EXPECT_STREQ(f.ServeAndStore(Post("/v1/x", R"({"q":2})")).outcome, "record");
}

TEST(RecordMode, MaxExchangesFillsTheRecordingAndSaysSoOnce) {
  CaptureRules rules;
  rules.max_exchanges = 2;
  RecordFixture f(rules);
  for (int i = 0; i < 2; ++i) {
    EXPECT_STREQ(
        f.ServeAndStore(Post("/v1/x", "{\"q\":" + std::to_string(i) + "}"))
            .outcome,
        "record");
  }
  EXPECT_TRUE(f.counters.full.load());
  for (int i = 2; i < 5; ++i) {
    Answer a =
        f.ServeAndStore(Post("/v1/x", "{\"q\":" + std::to_string(i) + "}"));
    EXPECT_STREQ(a.outcome, "passthrough");
    EXPECT_TRUE(a.relay);
  }
  EXPECT_EQ(f.store.Count().value(), 2);
  EXPECT_EQ(f.NotRecorded(Skip::kFull), 3u);
  EXPECT_EQ(f.counters.passthrough.load(), 3u);
  ASSERT_EQ(f.events.errors.size(), 1u) << "said once";
  EXPECT_NE(f.events.errors[0].find(
                "the recording is full (--max-exchanges 2 reached)"),
            std::string::npos)
      << f.events.errors[0];
}

TEST(RecordMode, ExchangesOnTheirWayTakePlacesButFillNothingUntilStored) {
  CaptureRules rules;
  rules.max_exchanges = 1;
  RecordFixture f(rules);
  {
    Answer first = f.Serve(Post("/v1/x", "{}"), 1'000'000);
    EXPECT_STREQ(first.outcome, "record");
    // Its place is taken while it is on its way.
    EXPECT_STREQ(f.Serve(Post("/v1/y", "{}"), 1'000'000).outcome,
                 "passthrough");
    EXPECT_FALSE(f.counters.full.load());
    // The backend failed: no exchange.
  }
  EXPECT_STREQ(f.ServeAndStore(Post("/v1/z", "{}")).outcome, "record");
  EXPECT_TRUE(f.counters.full.load());
  EXPECT_EQ(f.store.Count().value(), 1);
}

TEST(RecordMode, CapsCountWhatTheRecordingHoldsAlready) {
  CaptureRules rules;
  rules.max_exchanges = 2;
  RecordFixture f(rules);
  for (int i = 0; i < 2; ++i) {
    f.store.Append(testing::Recorded(Post("/v1/x", "{}"), f.keys, 10, {20}));
  }
  ASSERT_TRUE(f.mode->Start().ok());
  EXPECT_TRUE(f.counters.full.load());
  EXPECT_STREQ(f.ServeAndStore(Post("/v1/new", "{}")).outcome, "passthrough");
  ASSERT_EQ(f.events.errors.size(), 1u);
  EXPECT_NE(f.events.errors[0].find("the recording holds 2 already"),
            std::string::npos)
      << f.events.errors[0];

  CaptureRules bytes;
  bytes.max_db_bytes = f.store.writer_stats().bytes;  // full already
  RecordFixture g(bytes);
  g.store.Append(testing::Recorded(Post("/v1/x", "{}"), g.keys, 10, {20}));
  g.store.Append(testing::Recorded(Post("/v1/x", "{}"), g.keys, 10, {20}));
  ASSERT_TRUE(g.mode->Start().ok());
  EXPECT_TRUE(g.counters.full.load());
  EXPECT_STREQ(g.ServeAndStore(Post("/v1/new", "{}")).outcome, "passthrough");
}

TEST(RecordMode, MaxDbBytesStoresNoExchangeThatWouldGoBeyondIt) {
  CaptureRules rules;
  const std::string answer(40'000, 'a');
  RecordFixture probe;
  probe.ServeAndStore(Post("/v1/x", R"({"q":0})"), answer);
  const uint64_t one = probe.store.writer_stats().bytes;
  ASSERT_GT(one, 40'000u);
  // Room for two exchanges of that size (and a page of slack), not three.
  rules.max_db_bytes = 2 * one + one / 2;
  RecordFixture f(rules);
  EXPECT_STREQ(f.ServeAndStore(Post("/v1/x", R"({"q":1})"), answer).outcome,
               "record");
  EXPECT_STREQ(f.ServeAndStore(Post("/v1/x", R"({"q":2})"), answer).outcome,
               "record");
  // Admitted (the recording is below the cap), then not stored: storing it
  // would go beyond.
  Answer third = f.ServeAndStore(Post("/v1/x", R"({"q":3})"), answer);
  EXPECT_STREQ(third.outcome, "record");
  EXPECT_EQ(f.store.Count().value(), 2);
  EXPECT_TRUE(f.counters.full.load());
  EXPECT_EQ(f.NotRecorded(Skip::kFull), 1u);
  EXPECT_EQ(f.counters.recorded.load(), 2u);
  EXPECT_STREQ(f.ServeAndStore(Post("/v1/x", R"({"q":4})"), answer).outcome,
               "passthrough");
  EXPECT_EQ(f.NotRecorded(Skip::kFull), 2u);
  ASSERT_EQ(f.events.errors.size(), 1u);
  EXPECT_NE(f.events.errors[0].find("--max-db-bytes"), std::string::npos);
  EXPECT_LE(f.store.writer_stats().bytes, rules.max_db_bytes);
}

// Record on a store that throws when told to: internal errors.
struct FailFixture {
  explicit FailFixture(bool fail_open, CaptureRules capture = {})
      : faulty(&memory), keys(memory.rules()), clock(5'000'000) {
    RecordOptions o;
    o.redact_headers = DefaultRedactedHeaders();
    o.capture = std::move(capture);
    o.fail_open = fail_open;
    mode = std::make_unique<RecordMode>(&faulty, &clock, o, nullptr, &counters,
                                        &events);
  }
  Answer Serve(const Request& r, const std::string* capture_error = nullptr) {
    const RequestKey key = keys.Key(r);
    return mode->Serve(
        Call{r, key, 1'000'000, nullptr, nullptr, capture_error});
  }
  // Finishes "a"'s exchange; returns what on_done said.
  bool Finish(Answer& a) {
    Exchange done = a.capture.base;
    done.response.status = 200;
    done.response.chunks = {{10, "{}"}};
    return a.capture.on_done(std::move(done));
  }
  uint64_t InternalErrors() const {
    return counters.not_recorded[static_cast<size_t>(Skip::kInternalError)];
  }

  MemoryStore memory;
  testing::FaultyStore faulty;
  Canonicalizer keys;
  testing::FakeClock clock;
  ModeCounters counters;
  testing::RecordedEvents events;
  std::unique_ptr<RecordMode> mode;
};

TEST(RecordMode, AnExceptionStoringFailsTheAnswerUnlessFailOpen) {
  for (bool fail_open : {false, true}) {
    FailFixture f(fail_open);
    Answer a = f.Serve(Post("/v1/x", "{}"));
    EXPECT_STREQ(a.outcome, "record");
    f.faulty.throw_on_append = true;
    // The client's answer completes only with --fail-open.
    EXPECT_EQ(f.Finish(a), fail_open);
    EXPECT_EQ(f.memory.Count().value(), 0);
    EXPECT_EQ(f.InternalErrors(), 1u);
    EXPECT_EQ(f.counters.errors.load(), fail_open ? 0u : 1u);
    EXPECT_EQ(f.counters.recorded.load(), 0u);
    EXPECT_EQ(f.events.skipped, std::vector<std::string>{"internal_error"});
    ASSERT_EQ(f.events.errors.size(), 1u);
    EXPECT_NE(f.events.errors[0].find(
                  "recording POST /v1/x failed: injected: append"),
              std::string::npos)
        << f.events.errors[0];
    EXPECT_NE(f.events.errors[0].find(fail_open ? "(--fail-open)"
                                                : "was not completed"),
              std::string::npos)
        << f.events.errors[0];
    // The store works again: so does recording.
    f.faulty.throw_on_append = false;
    Answer b = f.Serve(Post("/v1/y", "{}"));
    EXPECT_TRUE(f.Finish(b));
    EXPECT_EQ(f.memory.Count().value(), 1);
  }
}

TEST(RecordMode, AnExceptionBeforeForwardingIsA500UnlessFailOpen) {
  CaptureRules rules;
  rules.max_db_bytes = 1u << 30;  // admitting reads the store's size
  for (bool fail_open : {false, true}) {
    FailFixture f(fail_open, rules);
    f.faulty.throw_on_stats = true;
    Answer a = f.Serve(Post("/v1/chat/completions", "{}"));
    EXPECT_FALSE(a.capture.on_done);
    EXPECT_EQ(f.InternalErrors(), 1u);
    if (fail_open) {
      EXPECT_STREQ(a.outcome, "passthrough");
      EXPECT_TRUE(a.relay) << "relayed untouched";
      EXPECT_EQ(f.counters.passthrough.load(), 1u);
    } else {
      EXPECT_STREQ(a.outcome, "error");
      EXPECT_FALSE(a.relay) << "not forwarded";
      ASSERT_TRUE(a.timeline.response);
      EXPECT_EQ(a.timeline.response->status, 500);
      EXPECT_NE(testing::BodyOf(a.timeline).find("rewind_record_failed"),
                std::string::npos);
      EXPECT_NE(testing::BodyOf(a.timeline).find("--fail-open"),
                std::string::npos);
      EXPECT_EQ(f.counters.errors.load(), 1u);
    }
    ASSERT_EQ(f.events.errors.size(), 1u);
    EXPECT_NE(f.events.errors[0].find("injected: writer stats"),
              std::string::npos)
        << f.events.errors[0];
  }
}

TEST(RecordMode, AFailureInTheFrontsPartIsAnsweredTheSameWay) {
  const std::string what = "scrubbing the request: boom";
  for (bool fail_open : {false, true}) {
    FailFixture f(fail_open);
    Answer a = f.Serve(Post("/v1/x", "{}"), &what);
    EXPECT_FALSE(a.capture.on_done) << "nothing of it is stored";
    EXPECT_STREQ(a.outcome, fail_open ? "passthrough" : "error");
    EXPECT_EQ(a.relay, fail_open);
    EXPECT_EQ(f.InternalErrors(), 1u);
    ASSERT_EQ(f.events.errors.size(), 1u);
    EXPECT_NE(f.events.errors[0].find(what), std::string::npos);
  }
}

TEST(PassthroughMode, RelaysAndRecordsNothing) {
  ModeCounters counters;
  PassthroughMode mode(&counters);
  const Request r = Post("/v1/x", "{}");
  const RequestKey key{1, 2};
  Answer a = mode.Serve(Call{r, key, 0});
  EXPECT_STREQ(a.outcome, "passthrough");
  EXPECT_TRUE(a.relay);
  EXPECT_FALSE(a.capture.on_done);
  EXPECT_EQ(counters.passthrough.load(), 1u);
}

}  // namespace
}  // namespace rwd
