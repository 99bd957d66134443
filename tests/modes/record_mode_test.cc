#include "modes/record_mode.h"

#include <gtest/gtest.h>

#include "rewind/redact.h"
#include "store/memory_store.h"
#include "testutil/fake_clock.h"
#include "testutil/mode_fixture.h"

namespace rwd {
namespace {

using testing::Post;

struct RecordFixture {
  explicit RecordFixture(std::vector<std::string> redact_fields = {},
                         bool with_index = false)
      : keys(store.rules()),
        clock(5'000'000),
        index(RepeatPolicy::kSequence, 0) {
    RecordOptions o;
    o.redact_headers = DefaultRedactedHeaders();
    o.redact_fields = std::move(redact_fields);
    o.match_headers = {"X-Rewind-Tenant"};
    o.max_record_bytes = 1000;
    o.session_start_us = 1'000'000;
    mode = std::make_unique<RecordMode>(
        &store, &clock, o, with_index ? &index : nullptr, &counters, &events);
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
