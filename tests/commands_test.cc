// The recording commands (ls, show, stats, export, import, merge, verify,
// rekey, prune) run on fixtures as the CLI runs them.
#include "cli/commands.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cli/usage.h"
#include "rewind/redact.h"
#include "rewind/server.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::OpenTestStore;
using testing::ReadFile;
using testing::TempDir;

Exchange Make(int n, const std::string& model = "m1", int status = 200) {
  Exchange e;
  e.request.method = "POST";
  e.request.path = n % 3 == 0 ? "/v1/completions" : "/v1/chat/completions";
  e.request.headers = {{"Content-Type", "application/json"},
                       {"Authorization", "[REDACTED]"}};
  e.request.body = R"({"model":")" + model +
                   R"(","messages":[{"role":"user","content":"q)" +
                   std::to_string(n % 5) + "\"}]}";
  e.key_hex = Canonicalizer(KeyRules{DefaultIgnoredFields(), {}})
                  .Key(e.request)
                  .ToHex();
  e.response.status = status;
  e.response.headers = {{"Content-Type", "text/event-stream"}};
  e.response.chunked = true;
  e.response.headers_us = 1000 + n;
  e.response.chunks = {
      {20000 + n * 10,
       "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"},
      {35000 + n * 10, std::string("bin\0\xff", 5)},
      {36000 + n * 10, "data: [DONE]\n\n"}};
  e.started_at_us = 1700000000000000 + n * 1000;
  e.arrival_offset_us = n * 1000;
  return e;
}

void Fill(Store* store, int n) {
  for (int i = 0; i < n; ++i) store->Append(Make(i));
  ASSERT_TRUE(store->Flush().ok());
}

TEST(Commands, LsListsAndFilters) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  Fill(store.get(), 12);
  std::ostringstream out, err;
  ASSERT_EQ(RunLs(store.get(), {}, out, err), kExitOk) << err.str();
  EXPECT_NE(out.str().find("ID  TIME (UTC)"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("12 exchanges"), std::string::npos);
  LsFlags f;
  f.path_glob = "/v1/chat/*";
  f.json = true;
  std::ostringstream json;
  ASSERT_EQ(RunLs(store.get(), f, json, err), kExitOk);
  rapidjson::Document d;
  d.Parse(json.str().c_str());
  ASSERT_TRUE(d.IsArray()) << json.str();
  // Chat requests are n = 1,2,4,5,7,8,10,11 (n % 3 != 0).
  ASSERT_EQ(d.Size(), 8u);
  EXPECT_STREQ(d[0]["model"].GetString(), "m1");
  EXPECT_EQ(d[0]["chunks"].GetInt(), 3);
  // n=7 asks what n=2 asked (q2): the second recording of that key.
  EXPECT_EQ(d[1]["sequence"].GetInt(), 1);
  EXPECT_EQ(d[4]["id"].GetInt(), 8);
  EXPECT_EQ(d[4]["sequence"].GetInt(), 2);
  f.width = 60;
  f.json = false;
  std::ostringstream narrow;
  RunLs(store.get(), f, narrow, err);
  EXPECT_NE(narrow.str().find("~"), std::string::npos) << narrow.str();
}

TEST(Commands, ShowPrintsHeadersStreamOffsetsAndCanonicalForm) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  Fill(store.get(), 2);
  std::ostringstream out, err;
  ASSERT_EQ(RunShow(store.get(), "2", false, out, err), kExitOk) << err.str();
  const std::string s = out.str();
  EXPECT_NE(s.find("Authorization: [REDACTED]"), std::string::npos) << s;
  EXPECT_NE(s.find("\"model\": \"m1\""), std::string::npos)
      << s;  // pretty JSON
  EXPECT_NE(s.find("+     20.0 ms  data:"), std::string::npos) << s;
  EXPECT_NE(s.find("bin\\x00"), std::string::npos) << s;
  EXPECT_NE(s.find("4:POST20:/v1/chat/completions"), std::string::npos) << s;
  std::ostringstream by_key;
  const std::string prefix = Make(1).key_hex.substr(0, 8);
  EXPECT_EQ(RunShow(store.get(), prefix, false, by_key, err), kExitOk);
  EXPECT_NE(by_key.str().find("exchange 2"), std::string::npos);
  std::ostringstream none, none_err;
  EXPECT_EQ(RunShow(store.get(), "99", false, none, none_err), kExitFindings);
}

// `show` pretty-prints JSON up to kMaxJsonDepth levels; deeper bodies (the
// indentation would grow with the square of the depth) print as they are.
TEST(Commands, ShowPrintsBodiesTooDeepForJsonAsTheyAre) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  Exchange e = Make(1);
  e.request.body = nest(100000);
  e.response.headers = {{"Content-Type", "application/json"}};
  e.response.chunked = false;
  e.response.chunks = {{1000, nest(50000)}};
  store->Append(e);
  Exchange exact = Make(2);
  exact.request.body =
      R"({"seed":18446744073709551617,"t":1.8072080523879883,"x":)" + nest(3) +
      "}";
  store->Append(exact);
  ASSERT_TRUE(store->Flush().ok());
  std::ostringstream out, err;
  ASSERT_EQ(RunShow(store.get(), "1", false, out, err), kExitOk) << err.str();
  EXPECT_LT(out.str().size(), 600000u);
  EXPECT_NE(out.str().find(nest(50000)), std::string::npos);
  std::ostringstream pretty;
  ASSERT_EQ(RunShow(store.get(), "2", false, pretty, err), kExitOk)
      << err.str();
  // Numbers as recorded, not as a double would print them.
  EXPECT_NE(pretty.str().find("\"seed\": 18446744073709551617"),
            std::string::npos);
  EXPECT_NE(pretty.str().find("\"t\": 1.8072080523879883"), std::string::npos);
}

TEST(Commands, StatsGivesPercentilesPerEndpointAndModel) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  Fill(store.get(), 9);
  store->Append(Make(10, "m2", 500));
  ASSERT_TRUE(store->Flush().ok());
  StatsFlags f;
  f.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(RunStats(store.get(), f, out, err), kExitOk) << err.str();
  rapidjson::Document d;
  d.Parse(out.str().c_str());
  ASSERT_TRUE(d.IsArray()) << out.str();
  ASSERT_EQ(d.Size(), 2u);
  EXPECT_STREQ(d[0]["group"].GetString(), "POST /v1/chat/completions");
  EXPECT_EQ(d[0]["count"].GetInt(), 7);
  EXPECT_EQ(d[0]["statuses"]["500"].GetInt(), 1);
  EXPECT_GT(d[0]["gap_ms"]["p50"].GetDouble(), 0);
  f.by = "model";
  std::ostringstream by_model;
  ASSERT_EQ(RunStats(store.get(), f, by_model, err), kExitOk);
  EXPECT_NE(by_model.str().find("m2  POST /v1/chat/completions"),
            std::string::npos)
      << by_model.str();
}

TEST(Commands, JsonExportImportExportIsByteIdentical) {
  TempDir dir;
  auto a = OpenTestStore(dir.File("a.sqlite"));
  Fill(a.get(), 12);
  Exchange broken = Make(12);
  broken.complete = false;
  broken.error = "backend: Read";
  a->Append(broken);
  ASSERT_TRUE(a->Flush().ok());
  std::ostringstream first, err;
  ASSERT_EQ(RunExport(a.get(), "json", first, err), kExitOk) << err.str();
  auto b = OpenTestStore(dir.File("b.sqlite"));
  std::istringstream in(first.str());
  ASSERT_EQ(RunImport(b.get(), "", in, false, err), kExitOk) << err.str();
  std::ostringstream second;
  ASSERT_EQ(RunExport(b.get(), "json", second, err), kExitOk);
  EXPECT_EQ(first.str(), second.str());
  // Binary chunks travel as base64, text as text.
  EXPECT_NE(first.str().find("\"encoding\": \"base64\""), std::string::npos);
  EXPECT_NE(first.str().find("\"schema_version\": 1"), std::string::npos);
  Result<Exchange> back = b->Get(13);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->complete);
  EXPECT_EQ(back->response.chunks[1].data, std::string("bin\0\xff", 5));
}

TEST(Commands, RewindsOwnTimeTravelsThroughExportImportAndShowSaysIt) {
  TempDir dir;
  auto a = OpenTestStore(dir.File("a.sqlite"));
  Exchange measured = Make(1);
  measured.response.own_before_us = 210;
  measured.response.own_after_us = 54;
  a->Append(measured);
  a->Append(Make(2));  // not known: an older recording's
  ASSERT_TRUE(a->Flush().ok());
  std::ostringstream first, err;
  ASSERT_EQ(RunExport(a.get(), "json", first, err), kExitOk) << err.str();
  EXPECT_NE(first.str().find("\"own_before_us\": 210"), std::string::npos)
      << first.str();
  EXPECT_NE(first.str().find("\"own_after_us\": 54"), std::string::npos);
  // Written only when known.
  const std::string text = first.str();
  EXPECT_EQ(text.find("own_before_us"), text.rfind("own_before_us"));
  auto b = OpenTestStore(dir.File("b.sqlite"));
  std::istringstream in(first.str());
  ASSERT_EQ(RunImport(b.get(), "json", in, false, err), kExitOk) << err.str();
  EXPECT_EQ(b->Get(1)->response.own_before_us, 210);
  EXPECT_EQ(b->Get(1)->response.own_after_us, 54);
  EXPECT_EQ(b->Get(2)->response.own_before_us, -1);
  EXPECT_EQ(b->Get(2)->response.own_after_us, -1);
  std::ostringstream second;
  ASSERT_EQ(RunExport(b.get(), "json", second, err), kExitOk);
  EXPECT_EQ(first.str(), second.str());

  std::ostringstream shown, unknown;
  ASSERT_EQ(RunShow(b.get(), "1", false, shown, err), kExitOk);
  EXPECT_NE(shown.str().find("rewind's own time: 0.21 ms before forwarding, "
                             "0.05 ms after the last byte"),
            std::string::npos)
      << shown.str();
  ASSERT_EQ(RunShow(b.get(), "2", false, unknown, err), kExitOk);
  EXPECT_NE(unknown.str().find("rewind's own time: not known"),
            std::string::npos)
      << unknown.str();
}

// An export written before rewind measured its own time imports with it
// not known.
TEST(Commands, AnExportWithoutOwnTimeImportsItAsNotKnown) {
  TempDir dir;
  auto a = OpenTestStore(dir.File("a.sqlite"));
  Fill(a.get(), 2);
  std::ostringstream exported, err;
  ASSERT_EQ(RunExport(a.get(), "json", exported, err), kExitOk);
  ASSERT_EQ(exported.str().find("own_"), std::string::npos);
  auto b = OpenTestStore(dir.File("b.sqlite"));
  std::istringstream in(exported.str());
  ASSERT_EQ(RunImport(b.get(), "json", in, false, err), kExitOk) << err.str();
  EXPECT_EQ(b->Get(1)->response.own_before_us, -1);
  EXPECT_EQ(b->Get(2)->response.own_after_us, -1);
  EXPECT_EQ(b->Get(2)->response.chunks.size(), 3u);
}

TEST(Commands, ImportRefusesANewerSchemaAndOtherRulesWithoutRekey) {
  TempDir dir;
  auto a = OpenTestStore(dir.File("a.sqlite"));
  Fill(a.get(), 2);
  std::ostringstream exported, err;
  RunExport(a.get(), "json", exported, err);
  std::string newer = exported.str();
  newer.replace(newer.find("\"schema_version\": 1"), 19,
                "\"schema_version\": 9");
  auto b = OpenTestStore(dir.File("b.sqlite"));
  std::istringstream in(newer);
  std::ostringstream e1;
  EXPECT_EQ(RunImport(b.get(), "json", in, false, e1), kExitError);
  EXPECT_NE(e1.str().find("newer than this rewind reads"), std::string::npos)
      << e1.str();

  StoreOptions o;
  o.path = dir.File("c.sqlite");
  o.create_if_missing = true;
  o.rules = KeyRules{{"temperature"}, {}};
  auto c = std::move(Store::Open(o).value());
  std::istringstream in2(exported.str());
  std::ostringstream e2;
  EXPECT_EQ(RunImport(c.get(), "json", in2, false, e2), kExitError);
  EXPECT_NE(e2.str().find("--rekey"), std::string::npos) << e2.str();
  std::istringstream in3(exported.str());
  EXPECT_EQ(RunImport(c.get(), "json", in3, true, e2), kExitOk);
  std::ostringstream verify;
  EXPECT_EQ(RunVerify(c.get(), verify, e2), kExitOk) << verify.str();
  std::istringstream junk("{\"format\":\"other\"}");
  EXPECT_EQ(RunImport(c.get(), "json", junk, false, e2), kExitError);
}

// A binary chunk whose base64 was damaged (a character changed, or cut
// short) is refused with the reason, and nothing is imported.
TEST(Commands, ImportRefusesDamagedBase64) {
  TempDir dir;
  auto a = OpenTestStore(dir.File("a.sqlite"));
  Fill(a.get(), 12);  // the odd ones carry a binary chunk
  ASSERT_TRUE(a->Flush().ok());
  std::ostringstream exported, err;
  ASSERT_EQ(RunExport(a.get(), "json", exported, err), kExitOk) << err.str();
  const std::string good = exported.str();
  const size_t at = good.find("\"encoding\": \"base64\"");
  ASSERT_NE(at, std::string::npos);
  // The chunk's "data" comes before its "encoding".
  const size_t data =
      good.rfind("\"data\": \"", at) + std::strlen("\"data\": \"");
  const size_t end = good.find('"', data);
  ASSERT_GT(end, data + 2);
  std::string changed = good;
  changed[data + 1] = '!';
  std::string cut = good;
  cut.erase(end - 1, 1);
  for (const std::string& damaged : {changed, cut}) {
    auto b = OpenTestStore(dir.File("b.sqlite"));
    std::istringstream in(damaged);
    std::ostringstream e;
    EXPECT_EQ(RunImport(b.get(), "json", in, false, e), kExitError);
    EXPECT_NE(e.str().find("not padded base64"), std::string::npos) << e.str();
    EXPECT_EQ(b->Count().value(), 0);
  }
}

// Found by fuzz_import: a number with a zero significand and a huge
// exponent sent RapidJSON's full-precision path into __builtin_clzll(0).
TEST(Commands, ImportOfOddNumbersFailsCleanly) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  std::istringstream in(
      R"({"canonicalizer":"rewind.json-v1","exchanges":[],"format":"rewind.recording","key_rules":{"ignore_fields":[],"match_headers":[]},"schema_version":0e55})");
  std::ostringstream err;
  EXPECT_EQ(RunImport(store.get(), "json", in, false, err), kExitError);
  EXPECT_FALSE(err.str().empty());
}

// cereal and RapidJSON's DOM recurse: a deeply nested file is refused
// before either reads it.
TEST(Commands, ImportRefusesDeeplyNestedInput) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  const std::string deep =
      std::string(1000000, '[') + std::string(1000000, ']');
  for (const char* format : {"", "json", "har"}) {
    std::istringstream in(deep);
    std::ostringstream err;
    EXPECT_EQ(RunImport(store.get(), format, in, false, err), kExitError)
        << format;
    EXPECT_NE(err.str().find("levels deep"), std::string::npos) << err.str();
  }
  std::istringstream in(R"({"canonicalizer":)" + std::string(300, '[') +
                        std::string(300, ']') + "}");
  std::ostringstream err;
  EXPECT_EQ(RunImport(store.get(), "json", in, false, err), kExitError);
  EXPECT_EQ(store->Count().value(), 0);
  // Deep bodies are strings in an export: they travel.
  auto a = OpenTestStore(dir.File("a.sqlite"));
  Exchange e = Make(1);
  e.request.body = deep;
  e.key_hex = Canonicalizer(a->rules()).Key(e.request).ToHex();
  a->Append(e);
  ASSERT_TRUE(a->Flush().ok());
  std::ostringstream exported;
  ASSERT_EQ(RunExport(a.get(), "json", exported, err), kExitOk);
  std::istringstream back(exported.str());
  ASSERT_EQ(RunImport(store.get(), "json", back, false, err), kExitOk)
      << err.str();
  std::ostringstream verify;
  EXPECT_EQ(RunVerify(store.get(), verify, err), kExitOk) << verify.str();
}

// tests/fixtures/v1-export.json was written by rewind.json-v1 (see
// tests/fixtures/README.md): exchanges 1 and 2 differ only in the last
// digit of "temperature" and shared a key; exchange 4's "api_key" is
// ignored by the file's rules, so 4 and 6 share one.
TEST(Commands, ARecordingKeyedByV1IsRefusedUntilRekeyed) {
  TempDir dir;
  const std::string fixture = ReadFile(std::string(REWIND_SOURCE_DIR) +
                                       "/tests/fixtures/v1-export.json");
  ASSERT_FALSE(fixture.empty()) << "fixture missing";
  KeyRules rules{DefaultIgnoredFields(), {}};
  rules.ignore_fields.push_back("api_key");
  const std::vector<std::string> v1_keys = {
      "67e43d397018e1c3fd88a81a7662852a", "67e43d397018e1c3fd88a81a7662852a",
      "06e286d2a67174c28607820009caef54", "f61f916df024c05df3bf236e28840b6b",
      "7e316f278e0516d3c8014bc43a4d8e3c", "f61f916df024c05df3bf236e28840b6b"};
  // An export keyed by v1 needs --rekey.
  const std::string path = dir.File("v1.sqlite");
  {
    StoreOptions o;
    o.path = path;
    o.create_if_missing = true;
    o.rules = rules;
    auto store = std::move(Store::Open(o).value());
    std::istringstream in(fixture);
    std::ostringstream err;
    EXPECT_EQ(RunImport(store.get(), "json", in, false, err), kExitError);
    EXPECT_NE(err.str().find("rewind.json-v1"), std::string::npos) << err.str();
    std::istringstream again(fixture);
    ASSERT_EQ(RunImport(store.get(), "json", again, true, err), kExitOk)
        << err.str();
  }
  // Make it what rewind.json-v1 wrote: its keys and its name.
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(
        "UPDATE meta SET value = 'rewind.json-v1' WHERE name = "
        "'canonicalizer'");
    for (size_t i = 0; i < v1_keys.size(); ++i) {
      SQLite::Statement st(db,
                           "UPDATE exchanges SET request_key = ? WHERE id = ?");
      st.bind(1, v1_keys[i]);
      st.bind(2, static_cast<int64_t>(i + 1));
      st.exec();
    }
  }
  StoreOptions o;
  o.path = path;
  o.read_only = true;
  Result<std::unique_ptr<Store>> refused = Store::Open(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("rewind rekey --db " + path),
            std::string::npos)
      << refused.status().message();
  std::string out;
  ASSERT_EQ(testing::RunRewind("rekey --db " + path, &out), 0) << out;
  Result<std::unique_ptr<Store>> opened = Store::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store* store = opened.value().get();
  EXPECT_TRUE(store->rules() == rules) << store->rules().ToJson();  // kept
  std::vector<std::string> keys;
  for (int64_t id = 1; id <= 6; ++id) keys.push_back(store->Get(id)->key_hex);
  EXPECT_NE(keys[0], keys[1]);     // the two temperatures part
  EXPECT_EQ(keys[3], keys[5]);     // the ignored api_key still ignored
  EXPECT_EQ(keys[5], v1_keys[5]);  // no number, no repeated name: as in v1
  EXPECT_NE(keys[4], v1_keys[4]);  // ?ids=2&ids=1 keeps its order now
  // rewind.json-v2's golden keys.
  EXPECT_EQ(keys[0], "e58d36f11426f4ccc1b0ec6cd1e830c9");
  EXPECT_EQ(keys[1], "19962514d01c69898502291677e867f7");
  std::ostringstream verify, err;
  EXPECT_EQ(RunVerify(store, verify, err), kExitOk) << verify.str();
}

TEST(Commands, HarExportImportsBackWithTheSameTimeline) {
  TempDir dir;
  auto a = OpenTestStore(dir.File("a.sqlite"));
  Fill(a.get(), 3);
  Exchange measured = Make(3);
  measured.response.own_before_us = 180;
  measured.response.own_after_us = 40;
  a->Append(measured);
  ASSERT_TRUE(a->Flush().ok());
  std::ostringstream har, err;
  ASSERT_EQ(RunExport(a.get(), "har", har, err), kExitOk);
  rapidjson::Document d;
  d.Parse(har.str().c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_STREQ(d["log"]["version"].GetString(), "1.2");
  ASSERT_EQ(d["log"]["entries"].Size(), 4u);
  const auto& entry = d["log"]["entries"][0];
  EXPECT_DOUBLE_EQ(entry["timings"]["wait"].GetDouble(), 1.0);
  EXPECT_STREQ(entry["response"]["content"]["encoding"].GetString(), "base64");
  auto b = OpenTestStore(dir.File("b.sqlite"));
  std::istringstream in(har.str());
  ASSERT_EQ(RunImport(b.get(), "", in, false, err), kExitOk) << err.str();
  for (int64_t id = 1; id <= 4; ++id) {
    Exchange x = a->Get(id).value(), y = b->Get(id).value();
    EXPECT_EQ(x.key_hex, y.key_hex);
    EXPECT_EQ(x.request.body, y.request.body);
    EXPECT_EQ(x.response.Body(), y.response.Body());
    ASSERT_EQ(x.response.chunks.size(), y.response.chunks.size());
    EXPECT_EQ(x.response.chunks[2].offset_us, y.response.chunks[2].offset_us);
    EXPECT_EQ(x.response.chunked, y.response.chunked);
    EXPECT_EQ(x.response.own_before_us, y.response.own_before_us);
    EXPECT_EQ(x.response.own_after_us, y.response.own_after_us);
  }
  EXPECT_EQ(b->Get(4)->response.own_before_us, 180);
  EXPECT_EQ(b->Get(1)->response.own_before_us, -1);
}

// A HAR written by a real browser (see tests/fixtures/README.md).
TEST(Commands, ImportsAHarFromARealBrowser) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  std::ifstream in(std::string(REWIND_SOURCE_DIR) +
                   "/tests/fixtures/chromium.har");
  ASSERT_TRUE(in) << "fixture missing";
  std::ostringstream err;
  ASSERT_EQ(RunImport(store.get(), "", in, false, err), kExitOk) << err.str();
  std::vector<ExchangeSummary> rows;
  ASSERT_TRUE(
      store->Scan([&](const ExchangeSummary& e) { rows.push_back(e); }).ok());
  ASSERT_GE(rows.size(), 2u);
  bool saw_post = false;
  for (const ExchangeSummary& e : rows) {
    Exchange x = store->Get(e.id).value();
    if (x.request.method == "POST") {
      saw_post = true;
      EXPECT_NE(x.request.body.find("capital"), std::string::npos)
          << x.request.body;
      EXPECT_NE(x.response.Body().find("Paris"), std::string::npos);
      EXPECT_GT(x.response.headers_us, 0);  // timings.wait
      EXPECT_EQ(FindHeader(x.request.headers, "Authorization"), "[REDACTED]");
    }
    EXPECT_TRUE(FindHeader(x.response.headers, "Content-Length").empty());
  }
  EXPECT_TRUE(saw_post);
  std::ostringstream verify;
  EXPECT_EQ(RunVerify(store.get(), verify, err), kExitOk) << verify.str();
}

// A HAR file holds secrets in the clear; import stores every header the
// recorder redacts (whatever its case) as the recorder does, nothing else.
TEST(Commands, HarImportRedactsTheHeadersTheRecorderRedacts) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  std::string headers;
  for (const std::string& name : DefaultRedactedHeaders()) {
    std::string lower = name;
    for (char& c : lower)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers +=
        R"({"name":")" + lower + R"(","value":"secret-)" + name + R"("},)";
  }
  headers += R"({"name":"X-Kept","value":"visible"})";
  const std::string har =
      R"({"log":{"version":"1.2","entries":[{"startedDateTime":"2024-01-02T03:04:05.000Z",)"
      R"("request":{"method":"GET","url":"http://h/v1/models","headers":[)" +
      headers + R"(]},"response":{"status":200,"headers":[)" + headers +
      R"(],"content":{"text":"{}"}},"timings":{"wait":1,"receive":1}}]}})";
  std::istringstream in(har);
  std::ostringstream err;
  ASSERT_EQ(RunImport(store.get(), "har", in, false, err), kExitOk)
      << err.str();
  Exchange x = store->Get(1).value();
  for (const HeaderList* list : {&x.request.headers, &x.response.headers}) {
    for (const std::string& name : DefaultRedactedHeaders()) {
      EXPECT_EQ(FindHeader(*list, name), kRedacted) << name;
    }
    EXPECT_EQ(FindHeader(*list, "X-Kept"), "visible");
  }
  store.reset();
  EXPECT_EQ(ReadFile(dir.File("r.sqlite")).find("secret-"), std::string::npos);
}

TEST(Commands, VerifyCatchesACorruptRowAndAWrongKey) {
  TempDir dir;
  const std::string path = dir.File("r.sqlite");
  {
    auto store = OpenTestStore(path);
    Fill(store.get(), 5);
    std::ostringstream out, err;
    EXPECT_EQ(RunVerify(store.get(), out, err), kExitOk) << out.str();
  }
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("UPDATE exchanges SET timeline = x'0102' WHERE id = 2");
    db.exec("UPDATE exchanges SET request_key = '" + std::string(32, '0') +
            "' WHERE id = 4");
  }
  auto store = OpenTestStore(path, false);
  std::ostringstream out, err;
  EXPECT_EQ(RunVerify(store.get(), out, err), kExitFindings);
  EXPECT_NE(out.str().find("1 undecodable; 1 with a wrong key"),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("exchange 2:"), std::string::npos);
  EXPECT_NE(out.str().find("exchange 4: stored key 0000"), std::string::npos);
}

TEST(Commands, RekeyChangesKeysAndRulesAndVerifyAgrees) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  Fill(store.get(), 5);
  KeyRules rules{{"messages"}, {}};
  std::ostringstream err;
  ASSERT_EQ(RunRekey(store.get(), rules, err), kExitOk) << err.str();
  EXPECT_TRUE(store->rules() == rules);
  // With messages ignored, the chat requests (all model m1) share a key.
  std::set<std::string> chat_keys;
  store->Scan([&](const ExchangeSummary& e) {
    if (e.path == "/v1/chat/completions") chat_keys.insert(e.key_hex);
  });
  EXPECT_EQ(chat_keys.size(), 1u);
  std::ostringstream verify;
  EXPECT_EQ(RunVerify(store.get(), verify, err), kExitOk) << verify.str();
}

TEST(Commands, PruneRemovesWhatIsNamed) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  Fill(store.get(), 10);  // keys repeat every 5 (q0..q4) with paths
  Exchange broken = Make(20);
  broken.complete = false;
  store->Append(broken);
  store->Append(Make(21, "m1", 503));
  ASSERT_TRUE(store->Flush().ok());
  std::ostringstream err;
  PruneFlags f;
  EXPECT_EQ(RunPrune(store.get(), f, err), kExitError);
  f.incomplete = true;
  f.status = 503;
  ASSERT_EQ(RunPrune(store.get(), f, err), kExitOk) << err.str();
  EXPECT_EQ(store->Count().value(), 10);
  PruneFlags keep;
  keep.keep_last = 1;
  ASSERT_EQ(RunPrune(store.get(), keep, err), kExitOk);
  std::set<std::string> keys;
  int64_t n = 0;
  store->Scan([&](const ExchangeSummary& e) {
    keys.insert(e.key_hex);
    ++n;
  });
  EXPECT_EQ(static_cast<size_t>(n), keys.size()) << "one per key remains";
}

TEST(Commands, MergeOrdersByArrivalRecomputesKeysAndDedupes) {
  TempDir dir;
  {
    auto a = OpenTestStore(dir.File("a.sqlite"));
    auto b = OpenTestStore(dir.File("b.sqlite"));
    // Two replicas recording at the same time, interleaved in time.
    for (int i = 0; i < 6; ++i) (i % 2 ? b : a)->Append(Make(i));
    b->Append(Make(0));  // a duplicate of a's first exchange
    ASSERT_TRUE(a->Flush().ok() && b->Flush().ok());
  }
  StoreOptions o;
  o.path = dir.File("out.sqlite");
  o.create_if_missing = true;
  o.rules = KeyRules{{"model"}, {}};
  auto out = std::move(Store::Open(o).value());
  std::ostringstream err;
  ASSERT_EQ(RunMerge(out.get(), {dir.File("a.sqlite"), dir.File("b.sqlite")},
                     true, err),
            kExitOk)
      << err.str();
  std::vector<int64_t> started;
  out->Scan(
      [&](const ExchangeSummary& e) { started.push_back(e.started_at_us); });
  EXPECT_EQ(started.size(), 6u) << "the duplicate is collapsed";
  EXPECT_TRUE(std::is_sorted(started.begin(), started.end()));
  std::ostringstream verify;
  EXPECT_EQ(RunVerify(out.get(), verify, err), kExitOk) << verify.str();
}

TEST(Commands, VerifyShowsACorruptedKeyEscapedNotAsRawBytes) {
  TempDir dir;
  const std::string db = dir.File("r.sqlite");
  {
    auto store = OpenTestStore(db);
    Fill(store.get(), 2);
  }
  {
    SQLite::Database sql(db, SQLite::OPEN_READWRITE);
    // An escape sequence that would clear the screen, and a byte that is no
    // text.
    sql.exec(
        "UPDATE exchanges SET request_key = char(27) || '[2J' || char(255) || "
        "'\"' "
        "WHERE id = 1");
  }
  auto store = OpenTestStore(db, false);
  std::ostringstream out, err;
  EXPECT_EQ(RunVerify(store.get(), out, err), kExitFindings) << err.str();
  EXPECT_EQ(out.str().find('\x1b'), std::string::npos) << out.str();
  EXPECT_NE(
      out.str().find(
          R"(exchange 1: stored key "\x1b[2J\xc3\xbf\x22" but the request hashes to )"),
      std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("1 with a wrong key"), std::string::npos)
      << out.str();
  std::ostringstream shown;
  ASSERT_EQ(RunShow(store.get(), "1", false, shown, err), kExitOk);
  EXPECT_EQ(shown.str().find('\x1b'), std::string::npos);
  EXPECT_NE(shown.str().find(R"(key "\x1b[2J)"), std::string::npos)
      << shown.str();
}

TEST(Commands, HeadersAndFirstByteAreNamedAlikeInLsStatsAndShow) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("r.sqlite"));
  Fill(store.get(), 3);  // headers at 1 ms, first body byte at 20 ms
  std::ostringstream ls, stats, json, show, err;
  ASSERT_EQ(RunLs(store.get(), {}, ls, err), kExitOk);
  EXPECT_NE(ls.str().find("HEADERS ms"), std::string::npos) << ls.str();
  ASSERT_EQ(RunStats(store.get(), {}, stats, err), kExitOk);
  EXPECT_NE(stats.str().find("    headers      1.0 / "), std::string::npos)
      << stats.str();
  EXPECT_NE(stats.str().find("    first byte   20.0 / "), std::string::npos)
      << stats.str();
  StatsFlags sf;
  sf.json = true;
  ASSERT_EQ(RunStats(store.get(), sf, json, err), kExitOk);
  rapidjson::Document d;
  d.Parse(json.str().c_str());
  ASSERT_TRUE(d.IsArray() && d.Size() > 0) << json.str();
  EXPECT_NEAR(d[0]["headers_ms"]["p50"].GetDouble(), 1.0, 0.05);
  EXPECT_NEAR(d[0]["first_byte_ms"]["p50"].GetDouble(), 20.0, 0.05);
  ASSERT_EQ(RunShow(store.get(), "1", false, show, err), kExitOk);
  EXPECT_NE(
      show.str().find(
          "headers at 1.0 ms, first byte at 20.0 ms, last byte at 36.0 ms"),
      std::string::npos)
      << show.str();
  for (const std::string& text :
       {ls.str(), stats.str(), json.str(), show.str()}) {
    for (const char* other : {"TTFB", "ttfb", "ttft", "TTFT"}) {
      EXPECT_EQ(text.find(other), std::string::npos) << other << " in\n"
                                                     << text;
    }
  }
}

TEST(Usage, NearestWordForgivesTyposButNotStrangers) {
  EXPECT_EQ(EditDistance("recrod", "record"), 1u);  // a transposition
  EXPECT_EQ(EditDistance("", "ls"), 2u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  const std::vector<std::string> commands = {"record", "replay", "serve",
                                             "ls",     "show",   "stats",
                                             "export", "import", "verify"};
  EXPECT_EQ(NearestWord("recrod", commands), "record");
  EXPECT_EQ(NearestWord("--replya", commands), "replay");
  EXPECT_EQ(NearestWord("EXPROT", commands), "export");
  EXPECT_EQ(NearestWord("lss", commands), "ls");
  EXPECT_EQ(NearestWord("bogus", commands), "");
  EXPECT_EQ(NearestWord("--backend-timout", {"--backend", "--backend-timeout"}),
            "--backend-timeout");
}

}  // namespace
}  // namespace rwd
