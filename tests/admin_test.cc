// The admin endpoints under /__rewind/ over real HTTP on 127.0.0.1: each
// body is one JSON document, its values exact.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <limits>
#include <string>

#include "rewind/server.h"
#include "store/memory_store.h"
#include "testutil/mode_fixture.h"
#include "testutil/raw_http.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::InProcessRewind;
using testing::RawExchange;
using testing::RawResponse;
using testing::RequestText;

rapidjson::Document Json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << body;
  EXPECT_TRUE(d.IsObject()) << body;
  return d;
}

const Request kHello = testing::Post(
    "/v1/chat/completions",
    R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");

struct Replay {
  Replay() {
    store.Append(
        testing::Recorded(kHello, Canonicalizer(store.rules()), 0, {0}));
  }
  ServerOptions Options() {
    ServerOptions o;
    o.mode = ServerMode::kReplay;
    o.store = &store;
    o.replay.latency = LatencyModel::Parse("none").value();
    return o;
  }
  MemoryStore store;
};

TEST(Admin, HealthSaysTheModeAndTheRecordingsSize) {
  Replay r;
  InProcessRewind replay(r.Options());
  RawResponse health =
      RawExchange(replay.port(), RequestText("GET", "/__rewind/health", ""));
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(testing::HeaderOf(health, "X-Rewind"), "admin");
  rapidjson::Document d = Json(health.body);
  EXPECT_STREQ(d["status"].GetString(), "ok");
  EXPECT_STREQ(d["mode"].GetString(), "replay");
  EXPECT_EQ(d["exchanges"].GetUint64(), 1u);
  EXPECT_FALSE(d.HasMember("store_error"));
  EXPECT_EQ(health.body.back(), '\n');
}

TEST(Admin, ConfigIsOneJsonDocumentWithExactValues) {
  Replay r;
  ServerOptions o = r.Options();
  o.seed = std::numeric_limits<uint64_t>::max();
  o.record.redact_headers = {"X-\"Quoted\"\\Name", "X-Tab\tName"};
  o.front.admin_token = "s3cret";
  o.front.max_body_bytes = 12345;
  InProcessRewind replay(o);
  RawResponse config = RawExchange(
      replay.port(), RequestText("GET", "/__rewind/config", "",
                                 "Authorization: Bearer s3cret\r\n"));
  ASSERT_EQ(config.status, 200);
  rapidjson::Document d = Json(config.body);
  EXPECT_STREQ(d["mode"].GetString(), "replay");
  EXPECT_STREQ(d["latency"].GetString(), "none");
  EXPECT_STREQ(d["repeat"].GetString(), "sequence");
  EXPECT_STREQ(d["on_miss"].GetString(), "error");
  EXPECT_EQ(d["seed"].GetUint64(), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(d["include_incomplete"].GetBool());
  const rapidjson::Value& redacted = d["redact_headers"];
  ASSERT_TRUE(redacted.IsArray());
  ASSERT_GE(redacted.Size(), 2u);
  EXPECT_STREQ(redacted[redacted.Size() - 2].GetString(), "X-\"Quoted\"\\Name");
  EXPECT_STREQ(redacted[redacted.Size() - 1].GetString(), "X-Tab\tName");
  EXPECT_TRUE(d["admin_token"].GetBool());
  EXPECT_EQ(config.body.find("s3cret"), std::string::npos)
      << "never the token itself";
  // The name the recording's rules are stamped with (v4: content
  // equivalence and tool sets are on in new rules).
  EXPECT_STREQ(d["canonicalizer"].GetString(),
               Canonicalizer::NameFor(o.store->rules()));
  EXPECT_STREQ(d["canonicalizer"].GetString(), "rewind.json-v4");
  EXPECT_TRUE(d["key_rules"]["content_equivalence"].GetBool());
  EXPECT_TRUE(d["key_rules"]["ignore_fields"].IsArray());
  EXPECT_FALSE(d.HasMember("synth"));
  EXPECT_EQ(d["max_body_bytes"].GetUint64(), 12345u);
  EXPECT_EQ(d["client_timeout_s"].GetInt(), 5);
  EXPECT_STREQ(d["log"].GetString(), "stderr");
  EXPECT_STREQ(d["log_format"].GetString(), "text");
  EXPECT_FALSE(d["quiet"].GetBool());
}

TEST(Admin, TheDummyEnginesNumbersAreShownExactly) {
  ServerOptions o;
  o.mode = ServerMode::kServe;
  o.synth.faults = FaultSpec::Parse("rate=0.0000001,types=500").value();
  o.synth.tool_rate = 0.125;
  o.synth.prefill_per_token_ms = 0.3;
  o.synth.load_factor = 2.5;
  o.synth.models = {"a", "b"};
  o.synth.adapters = {{"a-sql", "a"}};
  InProcessRewind serve(o);
  RawResponse config =
      RawExchange(serve.port(), RequestText("GET", "/__rewind/config", ""));
  ASSERT_EQ(config.status, 200);
  rapidjson::Document d = Json(config.body);
  const rapidjson::Value& synth = d["synth"];
  ASSERT_TRUE(synth.IsObject()) << config.body;
  // std::to_string wrote six decimals: 1e-7 came out as 0.000000.
  EXPECT_EQ(synth["fault_rate"].GetDouble(), 0.0000001) << config.body;
  EXPECT_EQ(synth["tool_rate"].GetDouble(), 0.125);
  EXPECT_EQ(synth["prefill_per_token_ms"].GetDouble(), 0.3);
  EXPECT_EQ(synth["load_factor"].GetDouble(), 2.5);
  ASSERT_EQ(synth["models"].Size(), 3u);
  EXPECT_STREQ(synth["models"][2].GetString(), "a-sql=a");
  EXPECT_EQ(synth["kv_cache_tokens"].GetInt64(), 65536);
}

TEST(Admin, StatsCountEachOutcome) {
  Replay r;
  InProcessRewind replay(r.Options());
  const std::string hello =
      RequestText("POST", "/v1/chat/completions", kHello.body);
  EXPECT_EQ(RawExchange(replay.port(), hello).status, 200);
  EXPECT_EQ(RawExchange(replay.port(), hello).status, 200);
  EXPECT_EQ(RawExchange(replay.port(),
                        RequestText("POST", "/v1/chat/completions", "{}"))
                .status,
            404);
  RawResponse stats =
      RawExchange(replay.port(), RequestText("GET", "/__rewind/stats", ""));
  ASSERT_EQ(stats.status, 200);
  rapidjson::Document d = Json(stats.body);
  EXPECT_EQ(d["hits"].GetUint64(), 2u);
  EXPECT_EQ(d["misses"].GetUint64(), 1u);
  for (const char* zero : {"near", "recorded", "passthrough", "synthesized",
                           "converted", "errors"}) {
    ASSERT_TRUE(d.HasMember(zero)) << zero;
    EXPECT_EQ(d[zero].GetUint64(), 0u) << zero;
  }
  // Answers relayed but not recorded, by reason: none in replay.
  ASSERT_TRUE(d.HasMember("not_recorded") && d["not_recorded"].IsObject());
  const auto& skipped = d["not_recorded"];
  for (const char* reason :
       {"too_large", "unredactable", "unscrubbable", "path", "sampled_out",
        "max_per_key", "full", "internal_error"}) {
    ASSERT_TRUE(skipped.HasMember(reason)) << reason;
    EXPECT_EQ(skipped[reason].GetUint64(), 0u) << reason;
  }
  EXPECT_EQ(skipped.MemberCount(), 8u);
  EXPECT_EQ(d.MemberCount(), 9u);
}

TEST(Admin, AnUnknownEndpointNamesTheOnesThereAre) {
  Replay r;
  InProcessRewind replay(r.Options());
  RawResponse r404 =
      RawExchange(replay.port(), RequestText("GET", "/__rewind/nope", ""));
  EXPECT_EQ(r404.status, 404);
  rapidjson::Document d = Json(r404.body);
  EXPECT_NE(std::string(d["error"]["message"].GetString())
                .find("GET /__rewind/stats"),
            std::string::npos);
  // The wrong method is no endpoint either.
  EXPECT_EQ(
      RawExchange(replay.port(), RequestText("GET", "/__rewind/reset", ""))
          .status,
      404);
}

}  // namespace
}  // namespace rwd
