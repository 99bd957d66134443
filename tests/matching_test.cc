// The matching rules of the request key: normalizers and content
// equivalence (rewind/request_key.h), as the key applies them, as a
// recording stores them, and end to end through record and replay.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <sstream>

#include "cli/commands.h"
#include "key/json.h"
#include "rewind/request_key.h"
#include "rewind/store.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::BackgroundServer;
using testing::OpenTestStore;
using testing::RewindProcess;
using testing::RunRewind;
using testing::TempDir;

Request Post(const std::string& body) {
  Request r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.body = body;
  return r;
}

Normalizer N(const std::string& spec) {
  Result<Normalizer> n = Normalizer::Parse(spec);
  EXPECT_TRUE(n.ok()) << spec << ": " << n.status().ToString();
  return n.ok() ? n.value() : Normalizer{};
}

KeyRules With(std::vector<std::string> specs, bool content_equivalence = true) {
  KeyRules rules{DefaultIgnoredFields(), {}};
  for (const std::string& s : specs) rules.normalizers.push_back(N(s));
  rules.content_equivalence = content_equivalence;
  return rules;
}

// The canonical body: what follows "json<len>:" in the canonical form.
std::string Body(const Canonicalizer& c, const std::string& body) {
  const std::string canonical = c.Canonical(Post(body));
  const size_t at = canonical.find("4:json");
  if (at == std::string::npos) return "(bytes) " + canonical;
  return canonical.substr(canonical.find(':', at + 6) + 1);
}

// A string value's normalized text, under "specs".
std::string Normalized(const std::vector<std::string>& specs,
                       const std::string& text) {
  Canonicalizer c(With(specs));
  rapidjson::Document d;
  const std::string body = Body(
      c, "{\"s\":" + [&] {
        rapidjson::StringBuffer b;
        rapidjson::Writer<rapidjson::StringBuffer> w(b);
        w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
        return std::string(b.GetString(), b.GetSize());
      }() + "}");
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << body;
  return d.HasParseError() ? body : d["s"].GetString();
}

// ---- The ready-made normalizers ------------------------------------------

TEST(Normalizers, DateTakesIsoDatesAndTheTimeThatFollows) {
  EXPECT_EQ(Normalized({"date"}, "Today is 2026-11-29."), "Today is <date>.");
  EXPECT_EQ(Normalized({"date"}, "2026-11-29T10:04:05.123Z and 2027-01-01"),
            "<date> and <date>");
  EXPECT_EQ(Normalized({"date"}, "at 2026-11-29 10:04+01:00 sharp"),
            "at <date> sharp");
  EXPECT_EQ(Normalized({"date"}, "2026-11-29T23:59:60"),
            "<date>:60");  // no leap second
  // Not dates: no such month or day, digits run on before it.
  for (const char* not_a_date : {"2026-13-01", "2026-11-32", "12026-11-29",
                                 "2026-1-29", "v2026-11-29"}) {
    EXPECT_EQ(Normalized({"date"}, not_a_date), not_a_date);
  }
}

TEST(Normalizers, TimestampTakesIsoDateTimesAndUnixTimes) {
  EXPECT_EQ(Normalized({"timestamp"}, "at 2026-11-29T10:04:05Z"),
            "at <timestamp>");
  EXPECT_EQ(Normalized({"timestamp"},
                       "t=1764410645 ms=1764410645123 f=1764410645.25"),
            "t=<timestamp> ms=<timestamp> f=<timestamp>");
  // A date alone is not a timestamp; nor is any other run of digits.
  for (const char* other : {"2026-11-29", "17644106451", "176441064",
                            "9764410645", "order 12345"}) {
    EXPECT_EQ(Normalized({"timestamp"}, other), other);
  }
}

TEST(Normalizers, UuidAndHexId) {
  EXPECT_EQ(Normalized({"uuid"}, "id 123e4567-E89B-12d3-a456-426614174000."),
            "id <uuid>.");
  EXPECT_EQ(Normalized({"uuid"}, "123e4567-e89b-12d3-a456-42661417400"),
            "123e4567-e89b-12d3-a456-42661417400");  // one digit short
  EXPECT_EQ(Normalized({"hex-id"}, "trace 0af7651916cd43dd8448eb211c80319c ok"),
            "trace <hex-id> ok");
  EXPECT_EQ(Normalized({"hex-id"}, "req_0af7651916cd43dd8448eb211c80319c"),
            "req_<hex-id>");
  EXPECT_EQ(Normalized({"hex-id"}, "short 0af7651916cd43d"),
            "short 0af7651916cd43d");
  EXPECT_EQ(Normalized({"hex-id"}, "x0af7651916cd43dd8448"),
            "x0af7651916cd43dd8448");
}

// Their patterns are part of every recording's key that names them.
TEST(Normalizers, ReadyMadePatternsNeverChange) {
  std::vector<std::string> names;
  for (const ReadyMadeNormalizer& r : ReadyMadeNormalizers()) {
    names.push_back(std::string(r.name) + " " + r.pattern + " => " +
                    r.replacement);
  }
  const std::string date =
      R"(\b\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))";
  const std::string time =
      R"((?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?)";
  EXPECT_EQ(
      names,
      (std::vector<std::string>{
          "date " + date + "(?:[T ]" + time + ")? => <date>",
          "timestamp " + date + "[T ]" + time +
              R"(|\b1\d{9}(?:\d{3}){0,3}(?:\.\d+)?\b => <timestamp>)",
          R"(uuid \b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b => <uuid>)",
          R"(hex-id (\b|_)[0-9A-Fa-f]{16,}\b => \1<hex-id>)"}));
}

// ---- Custom normalizers, paths, the spelling -----------------------------

TEST(Normalizers, CustomPatternWithGroupsAndOrder) {
  EXPECT_EQ(Normalized({R"((\d+) tokens=>\1 t)"}, "used 12 tokens"),
            "used 12 t");
  // In their order: the second sees what the first made.
  EXPECT_EQ(Normalized({"a=>b", "b=>c"}, "aab"), "ccc");
  EXPECT_EQ(Normalized({"b=>c", "a=>b"}, "aab"), "bbc");
  // A pattern that matches the empty string still ends.
  EXPECT_EQ(Normalized({"x*=>-"}, "ab"), "-a-b-");
}

TEST(Normalizers, ADateInsideALongerStringAndEscapedText) {
  Canonicalizer c(With({"date"}));
  EXPECT_EQ(
      c.Key(Post(R"({"s":"You are helpful. Today is 2026-11-29. Be brief."})")),
      c.Key(
          Post(R"({"s":"You are helpful. Today is 2031-02-03. Be brief."})")));
  // Escapes are read before matching: \u002d is '-'.
  EXPECT_EQ(c.Key(Post(R"({"s":"Today is 2026\u002d11\u002d29"})")),
            c.Key(Post(R"({"s":"Today is 2030-01-01"})")));
  // Quotes, backslashes and newlines around it stay as they were.
  EXPECT_EQ(Body(c, R"({"s":"\"2026-11-29\"\n\\ end"})"),
            R"({"s":"\"<date>\"\n\\ end"})");
  // A replacement with JSON's special characters is written escaped.
  Canonicalizer q(With({R"(secret=>a"b\\c)"}));
  const std::string body = Body(q, R"({"s":"my secret"})");
  EXPECT_EQ(body, R"({"s":"my a\"b\\c"})");
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << body;
}

TEST(Normalizers, PathsSelectTheStringsAtOrUnderThem) {
  const std::string a =
      R"({"model":"m","note":"2026-11-29","messages":[{"role":"system","content":"Today is 2026-11-29"},)"
      R"({"role":"user","content":[{"type":"text","text":"due 2026-11-30"},{"type":"image_url","image_url":{"url":"x"}}]}]})";
  const std::string b =
      R"({"model":"m","note":"2026-11-29","messages":[{"role":"system","content":"Today is 2027-01-05"},)"
      R"({"role":"user","content":[{"type":"text","text":"due 2027-01-06"},{"type":"image_url","image_url":{"url":"x"}}]}]})";
  Canonicalizer under(With({"messages.*.content:date"}));
  EXPECT_EQ(under.Key(Post(a)), under.Key(Post(b)));
  // Only there: "note" keeps its date.
  EXPECT_NE(Body(under, a).find(R"("note":"2026-11-29")"), std::string::npos)
      << Body(under, a);
  EXPECT_NE(Body(under, a).find(R"("text":"due <date>")"), std::string::npos);
  // An index names one element.
  Canonicalizer first(With({"messages.0.content:date"}));
  EXPECT_FALSE(first.Key(Post(a)) == first.Key(Post(b)));
  EXPECT_NE(Body(first, a).find("Today is <date>"), std::string::npos);
  EXPECT_NE(Body(first, a).find("due 2026-11-30"), std::string::npos);
  // A path the body does not have changes nothing.
  for (const char* spec :
       {"input.*.content:date", "messages.content:date",
        "messages.*.content.*.text.more:date", "model.x:date"}) {
    Canonicalizer none(With({spec}));
    EXPECT_EQ(none.Canonical(Post(a)),
              Canonicalizer(With({})).Canonical(Post(a)))
        << spec;
  }
  // "*" is any member too; member names are never rewritten.
  Canonicalizer any(With({"*.*:date"}));
  EXPECT_EQ(
      Body(any, R"({"o":{"2026-11-29":"2026-11-29"},"top":"2026-11-29"})"),
      R"({"o":{"2026-11-29":"<date>"},"top":"2026-11-29"})");
  // Values under arrays, no path: every string of the body.
  Canonicalizer all(With({"date"}));
  EXPECT_EQ(Body(all, R"(["2026-11-29",{"a":["x 2026-11-30"]},"2026-11-32"])"),
            R"(["<date>",{"a":["x <date>"]},"2026-11-32"])");
  // A body that is one string.
  EXPECT_EQ(Body(all, R"("2026-11-29")"), R"("<date>")");
}

TEST(Normalizers, TheDiffAgreesWithTheKey) {
  Canonicalizer c(With({"messages.*.content:date"}));
  const Request a =
      Post(R"({"messages":[{"role":"user","content":"on 2026-11-29"}],"t":1})");
  EXPECT_TRUE(
      c.Diff(
           a,
           Post(
               R"({"messages":[{"role":"user","content":"on 2030-05-05"}],"t":1})"))
          .empty());
  EXPECT_EQ(
      c.Diff(
          a,
          Post(
              R"({"messages":[{"role":"user","content":"in 2030-05-05"}],"t":1})")),
      std::vector<std::string>{"messages[0].content"});
}

TEST(Normalizers, SpellingParsesAndPrintsBack) {
  struct Case {
    std::string spec, path, name, pattern, replacement;
  };
  for (const Case& c : std::vector<Case>{
           {"date", "", "date", "", ""},
           {"messages.*.content:uuid", "messages.*.content", "uuid", "", ""},
           {R"(messages.*.content:\d{4}-\d{2}-\d{2}=><date>)",
            "messages.*.content", "", R"(\d{4}-\d{2}-\d{2})", "<date>"},
           {R"(\d+:\d+=>HH:MM)", "", "", R"(\d+:\d+)",
            "HH:MM"},                              // not a path before ':'
           {":T10:00=>x", "", "", "T10:00", "x"},  // ':' first: no path
           {"a=>b=>c", "", "", "a=>b", "c"},       // the last "=>"
           {"x.0.y:(?i)secret=>", "x.0.y", "", "(?i)secret", ""},
       }) {
    Result<Normalizer> n = Normalizer::Parse(c.spec);
    ASSERT_TRUE(n.ok()) << c.spec << ": " << n.status().ToString();
    EXPECT_EQ(n->path, c.path) << c.spec;
    EXPECT_EQ(n->name, c.name) << c.spec;
    EXPECT_EQ(n->pattern, c.pattern) << c.spec;
    EXPECT_EQ(n->replacement, c.replacement) << c.spec;
    EXPECT_EQ(n->ToString(), c.spec);
    EXPECT_TRUE(Normalizer::Parse(n->ToString()).value() == n.value())
        << c.spec;
  }
  // A regex that would read as PATH: is printed with a leading ':'.
  Normalizer tricky;
  tricky.pattern = "T10:00";
  tricky.replacement = "x";
  EXPECT_EQ(tricky.ToString(), ":T10:00=>x");
}

TEST(Normalizers, BadSpellingsSayWhatIsWrong) {
  struct Case {
    std::string spec, says;
  };
  for (const Case& c : std::vector<Case>{
           {"dates",
            "\"dates\" is not a ready-made normalizer (ready-made: date, "
            "timestamp, uuid, hex-id"},
           {"", "nothing to normalize"},
           {"(unclosed=>x", "does not compile: missing )"},
           {"a.b:[z-a]=>x", "does not compile"},
           {R"((a)=>\2)", "the replacement \"\\2\""},
           {"=>x", "the regular expression is empty"},
           {"messages..content:date", "is not a ready-made normalizer"},
       }) {
    Result<Normalizer> n = Normalizer::Parse(c.spec);
    ASSERT_FALSE(n.ok()) << c.spec;
    EXPECT_NE(n.status().message().find(c.says), std::string::npos)
        << c.spec << ": " << n.status().message();
  }
  Normalizer bad_path;
  bad_path.path = "a b";
  bad_path.name = "date";
  EXPECT_FALSE(bad_path.Check().ok());
}

TEST(Normalizers, HugeAndDeepBodiesStayBounded) {
  Canonicalizer c(With({"date", "uuid", "hex-id", "timestamp"}));
  // 4 MB in one string, a date every 100 bytes.
  std::string s;
  while (s.size() < (4u << 20))
    s += "lorem ipsum 2026-11-29 dolor sit amet consectetur adipiscing elit "
         "sed do eiusmod tempor ";
  const std::string body = "{\"s\":\"" + s + "\"}";
  const auto t0 = std::chrono::steady_clock::now();
  const std::string canonical = c.Canonical(Post(body));
  const double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
  EXPECT_EQ(canonical.find("2026-11-29"), std::string::npos);
  EXPECT_NE(canonical.find("ipsum <date> dolor"), std::string::npos);
  EXPECT_LT(ms, 5000) << "linear in the body, whatever the pattern";
  // std::regex overflows the stack here; RE2 does not recurse.
  Canonicalizer alternation(With({"(a|b)*c=>x"}));
  EXPECT_NE(
      alternation
          .Canonical(Post("{\"s\":\"" + std::string(1 << 20, 'a') + "\"}"))
          .size(),
      0u);
  // Deeper than kMaxJsonDepth: bytes, as without the rules.
  std::string deep =
      std::string(300, '[') + "\"2026-11-29\"" + std::string(300, ']');
  EXPECT_NE(c.Canonical(Post(deep)).find("5:bytes"), std::string::npos);
  EXPECT_NE(c.Canonical(Post(deep)).find("2026-11-29"), std::string::npos);
}

// ---- Content equivalence ---------------------------------------------------

TEST(ContentEquivalence, OneTextPartKeysAsTheString) {
  Canonicalizer on(KeyRules{DefaultIgnoredFields(), {}});
  ASSERT_TRUE(on.rules().content_equivalence) << "on for new rules";
  const std::string plain =
      R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
  const std::string part =
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]})";
  const std::string reordered =
      R"({"messages":[{"content":[{"text":"hi","type":"text"}],"role":"user"}],"model":"m"})";
  EXPECT_EQ(on.Key(Post(plain)), on.Key(Post(part)));
  EXPECT_EQ(on.Key(Post(plain)), on.Key(Post(reordered)));
  EXPECT_EQ(on.Canonical(Post(part)), on.Canonical(Post(plain)));
  EXPECT_TRUE(on.Diff(Post(plain), Post(part)).empty());
  // Anything else in the list or the part is a different request.
  for (
      const char* other : {
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"h"},{"type":"text","text":"i"}]}]})",
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]})",
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}]})",
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi","text":"hi"}]}]})",
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]})",
          R"({"model":"m","messages":[{"role":"user","content":[]}]})",
          R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1}]}]})",
      }) {
    EXPECT_FALSE(on.Key(Post(plain)) == on.Key(Post(other))) << other;
    EXPECT_FALSE(on.Diff(Post(plain), Post(other)).empty()) << other;
  }
  // Only a top-level "messages".
  EXPECT_FALSE(
      on.Key(Post(R"({"x":{"messages":[{"content":"hi"}]}})")) ==
      on.Key(Post(
          R"({"x":{"messages":[{"content":[{"type":"text","text":"hi"}]}]}})")));
  // Each message on its own.
  EXPECT_EQ(
      on.Key(Post(
          R"({"messages":[{"content":"a"},{"content":[{"type":"text","text":"b"}]}]})")),
      on.Key(Post(
          R"({"messages":[{"content":[{"type":"text","text":"a"}]},{"content":"b"}]})")));
}

TEST(ContentEquivalence, OffKeysTheFormsApartAndNormalizersSeeTheString) {
  KeyRules rules{DefaultIgnoredFields(), {}};
  rules.content_equivalence = false;
  Canonicalizer off(rules);
  const std::string plain =
      R"({"messages":[{"role":"user","content":"on 2026-11-29"}]})";
  const std::string part =
      R"({"messages":[{"role":"user","content":[{"type":"text","text":"on 2026-12-01"}]}]})";
  EXPECT_FALSE(off.Key(Post(plain)) == off.Key(Post(part)));
  EXPECT_EQ(off.Diff(Post(plain), Post(part)),
            std::vector<std::string>{"messages[0].content"});
  // Content equivalence first, then the normalizers: a path to the
  // content covers both forms.
  Canonicalizer both(With({"messages.*.content:date"}));
  EXPECT_EQ(both.Key(Post(plain)), both.Key(Post(part)));
}

// ---- Stored with the recording ---------------------------------------------

TEST(MatchingRules, StoredAsJsonAndReadBack) {
  KeyRules rules = With({"date", R"(messages.*.content:\d+=>N)"});
  const std::string json = rules.ToJson();
  EXPECT_EQ(
      json,
      R"({"ignore_fields":["user","request_id","metadata","store","service_tier",)"
      R"("safety_identifier","prompt_cache_key"],"match_headers":[],)"
      R"("normalize":[{"path":"","name":"date"},)"
      R"({"path":"messages.*.content","pattern":"\\d+","replacement":"N"}],)"
      R"("content_equivalence":true,"tool_sets":true})");
  Result<KeyRules> back = KeyRules::FromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back.value() == rules);
  // Rules stored before these existed: none, and content equivalence off.
  Result<KeyRules> old =
      KeyRules::FromJson(R"({"ignore_fields":["user"],"match_headers":[]})");
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(old->normalizers.empty());
  EXPECT_FALSE(old->content_equivalence);
  EXPECT_STREQ(Canonicalizer::NameFor(old.value()), "rewind.json-v2");
  EXPECT_STREQ(Canonicalizer::NameFor(rules), "rewind.json-v4");
  EXPECT_TRUE(Canonicalizer::Reads("rewind.json-v2"));
  EXPECT_TRUE(Canonicalizer::Reads("rewind.json-v3"));
  EXPECT_TRUE(Canonicalizer::Reads("rewind.json-v4"));
  EXPECT_FALSE(Canonicalizer::Reads("rewind.json-v1"));
  // A damaged rule is refused, naming it.
  for (
      const char* bad : {
          R"({"ignore_fields":[],"match_headers":[],"normalize":[{"path":"","name":"dates"}]})",
          R"({"ignore_fields":[],"match_headers":[],"normalize":[{"pattern":"(","replacement":""}]})",
          R"({"ignore_fields":[],"match_headers":[],"normalize":"date"})",
          R"({"ignore_fields":[],"match_headers":[],"content_equivalence":1})",
      }) {
    Result<KeyRules> r = KeyRules::FromJson(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

// These keys are stored in recordings made with these rules. If this test
// fails, the keys of such recordings changed: they no longer match.
TEST(MatchingRules, GoldenKeysNeverChangeSilently) {
  const Request system_prompt = Post(
      R"({"model":"demo-model","messages":[{"role":"system","content":"Today is 2026-11-29. )"
      R"(Session 123e4567-e89b-12d3-a456-426614174000."},{"role":"user","content":)"
      R"([{"type":"text","text":"trace 0af7651916cd43dd8448eb211c80319c at 1764410645"}]}]})");
  Canonicalizer c(With({"date", "uuid", "hex-id", "timestamp",
                        R"(messages.*.content:Session=>S)"}));
  EXPECT_EQ(
      Body(c, system_prompt.body),
      R"({"messages":[{"content":"Today is <date>. S <uuid>.","role":"system"},)"
      R"({"content":"trace <hex-id> at <timestamp>","role":"user"}],"model":"demo-model"})");
  EXPECT_EQ(c.Key(system_prompt).ToHex(), "59bf87d7325b0e8e320f6815ee05634b");
  // Content equivalence alone: a string content keys as under v2.
  Canonicalizer plain(KeyRules{DefaultIgnoredFields(), {}});
  EXPECT_EQ(
      plain
          .Key(Post(
              R"({"model":"demo-model","messages":[{"role":"user","content":"hello"}]})"))
          .ToHex(),
      "f61f916df024c05df3bf236e28840b6b");
  EXPECT_EQ(
      plain
          .Key(Post(
              R"({"model":"demo-model","messages":[{"role":"user","content":)"
              R"([{"type":"text","text":"hello"}]}]})"))
          .ToHex(),
      "f61f916df024c05df3bf236e28840b6b");
}

// A recording made before these rules existed keeps exactly its keys.
TEST(MatchingRules, ARecordingFromBeforeKeepsItsKeys) {
  TempDir dir;
  const std::string path = dir.File("old.sqlite");
  const Request part = Post(
      R"({"model":"demo-model","messages":[{"role":"user","content":[{"type":"text","text":"hello"}]}]})");
  // v2's key for it: the list is part of the key.
  const std::string v2_key = "259da2cf7810a13206da482193cb57c4";
  {
    auto store = OpenTestStore(path);
    Exchange e;
    e.request = part;
    e.key_hex = v2_key;
    e.response.status = 200;
    e.response.chunks = {{100, "{}"}};
    store->Append(e);
    ASSERT_TRUE(store->Flush().ok());
  }
  {
    // What a rewind before them wrote: its name and its rules, no more.
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(
        "UPDATE meta SET value = 'rewind.json-v2' WHERE name = "
        "'canonicalizer'");
    db.exec(
        R"(UPDATE meta SET value = '{"ignore_fields":["user","request_id","metadata",)"
        R"("store","service_tier","safety_identifier","prompt_cache_key"],"match_headers":[]}')"
        " WHERE name = 'key_rules'");
  }
  auto store = OpenTestStore(path, /*create=*/false);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->rules().content_equivalence);
  EXPECT_EQ(Canonicalizer(store->rules()).Key(part).ToHex(), v2_key);
  std::ostringstream out, err;
  EXPECT_EQ(RunVerify(store.get(), out, err), kExitOk)
      << out.str() << err.str();
  // rekey without rule flags keeps its rules, and so its keys.
  store.reset();
  std::string said;
  ASSERT_EQ(RunRewind("rekey --db " + path, &said), 0) << said;
  store = OpenTestStore(path, false);
  EXPECT_EQ(store->Get(1)->key_hex, v2_key);
  EXPECT_FALSE(store->rules().content_equivalence);
  // A damaged rule is refused when the recording is opened, naming it.
  store.reset();
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(
        R"(UPDATE meta SET value = '{"ignore_fields":[],"match_headers":[],)"
        R"("normalize":[{"path":"messages","pattern":"(x","replacement":""}]}')"
        " WHERE name = 'key_rules'");
  }
  StoreOptions o;
  o.path = path;
  o.read_only = true;
  Result<std::unique_ptr<Store>> refused = Store::Open(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("messages:(x=>"), std::string::npos)
      << refused.status().message();
}

TEST(MatchingRules, ExportAndImportKeepThemAndOldExportsStillImport) {
  TempDir dir;
  StoreOptions o;
  o.path = dir.File("a.sqlite");
  o.create_if_missing = true;
  o.rules = With({"date", "messages.*.content:uuid"});
  auto a = std::move(Store::Open(o).value());
  Exchange e;
  e.request =
      Post(R"({"messages":[{"role":"user","content":"on 2026-11-29"}]})");
  e.key_hex = Canonicalizer(a->rules()).Key(e.request).ToHex();
  e.response.status = 200;
  e.response.chunks = {{100, "{}"}};
  a->Append(e);
  ASSERT_TRUE(a->Flush().ok());
  std::ostringstream exported, err;
  ASSERT_EQ(RunExport(a.get(), "json", exported, err), kExitOk) << err.str();
  EXPECT_NE(exported.str().find("\"canonicalizer\": \"rewind.json-v4\""),
            std::string::npos);
  EXPECT_NE(exported.str().find("\"content_equivalence\": true"),
            std::string::npos);
  // Into a recording with the same rules: no --rekey needed, same keys.
  o.path = dir.File("b.sqlite");
  auto b = std::move(Store::Open(o).value());
  std::istringstream in(exported.str());
  ASSERT_EQ(RunImport(b.get(), "json", in, false, err), kExitOk) << err.str();
  EXPECT_EQ(b->Get(1)->key_hex, e.key_hex);
  std::ostringstream again;
  ASSERT_EQ(RunExport(b.get(), "json", again, err), kExitOk);
  EXPECT_EQ(again.str(), exported.str());
  // Into one with other rules: --rekey, as for any other rule.
  auto c = OpenTestStore(dir.File("c.sqlite"));
  std::istringstream in2(exported.str());
  EXPECT_EQ(RunImport(c.get(), "json", in2, false, err), kExitError);
  EXPECT_NE(err.str().find("--rekey"), std::string::npos) << err.str();
  // An export written before the rules existed: its rules read as they
  // were (content equivalence off), so it imports as before into a
  // recording with those rules.
  const std::string old_export =
      R"({"canonicalizer":"rewind.json-v2","exchanges":[],"format":"rewind.recording",)"
      R"("key_rules":{"ignore_fields":["user"],"match_headers":[]},"schema_version":1})";
  StoreOptions old_rules;
  old_rules.path = dir.File("d.sqlite");
  old_rules.create_if_missing = true;
  old_rules.rules = KeyRules{{"user"}, {}};
  old_rules.rules->content_equivalence = false;
  old_rules.rules->tool_sets = false;
  auto d = std::move(Store::Open(old_rules).value());
  std::istringstream in3(old_export);
  std::ostringstream err3;
  EXPECT_EQ(RunImport(d.get(), "json", in3, false, err3), kExitOk)
      << err3.str();
}

// ---- End to end
// ---------------------------------------------------------------

std::string Chat(const std::string& system,
                 const std::string& user_content_json) {
  return R"({"model":"demo","messages":[{"role":"system","content":")" +
         system + R"("},{"role":"user","content":)" + user_content_json + "}]}";
}

TEST(MatchingRules, RecordWithNormalizeDateReplaysADifferentDayAsAHit) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  BackgroundServer backend;
  int calls = 0;
  backend.server().Post("/v1/chat/completions", [&](const httplib::Request&,
                                                    httplib::Response& res) {
    ++calls;
    res.set_content(R"({"choices":[{"message":{"content":"answer )" +
                        std::to_string(calls) + R"("}}]})",
                    "application/json");
  });
  backend.Start();
  {
    RewindProcess rec({"record", "--db", db, "--backend", backend.url(),
                       "--listen", "127.0.0.1:0", "--normalize", "date",
                       "--quiet"});
    ASSERT_GT(rec.port(), 0) << rec.first_line();
    httplib::Client client("127.0.0.1", rec.port());
    client.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    auto r = client.Post(
        "/v1/chat/completions",
        Chat("You are terse. Today is 2026-11-29.", R"("Capital of France?")"),
        "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("X-Rewind"), "record");
    rec.Signal(SIGTERM);
    EXPECT_EQ(rec.Wait(), 0);
  }
  backend.Stop();

  RewindProcess replay({"replay", "--db", db, "--listen", "127.0.0.1:0",
                        "--latency", "none", "--quiet"});
  ASSERT_GT(replay.port(), 0) << replay.first_line();
  httplib::Client client("127.0.0.1", replay.port());
  client.set_read_timeout(60, 0);  // a sanitizer build under load is slow
  // Another day, and the question as one text part: the same request.
  auto hit =
      client.Post("/v1/chat/completions",
                  Chat("You are terse. Today is 2027-03-14.",
                       R"([{"type":"text","text":"Capital of France?"}])"),
                  "application/json");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->status, 200) << hit->body;
  EXPECT_EQ(hit->get_header_value("X-Rewind"), "hit");
  EXPECT_EQ(hit->body, R"({"choices":[{"message":{"content":"answer 1"}}]})");
  // A prompt that really changed still misses, naming where.
  auto miss = client.Post(
      "/v1/chat/completions",
      Chat("You are verbose. Today is 2027-03-14.", R"("Capital of France?")"),
      "application/json");
  ASSERT_TRUE(miss);
  EXPECT_EQ(miss->status, 404);
  EXPECT_NE(miss->body.find("messages[0].content"), std::string::npos)
      << miss->body;
  // The rules are in the config.
  auto config = client.Get("/__rewind/config");
  ASSERT_TRUE(config);
  rapidjson::Document d;
  d.Parse(config->body.c_str());
  ASSERT_FALSE(d.HasParseError()) << config->body;
  EXPECT_STREQ(d["canonicalizer"].GetString(), "rewind.json-v4");
  const auto& rules = d["key_rules"];
  ASSERT_EQ(rules["normalize"].Size(), 1u) << config->body;
  EXPECT_STREQ(rules["normalize"][0]["name"].GetString(), "date");
  EXPECT_TRUE(rules["content_equivalence"].GetBool());
  replay.Signal(SIGTERM);
  EXPECT_EQ(replay.Wait(), 0);

  // show prints the canonical form as hashed; verify passes.
  std::string out;
  ASSERT_EQ(RunRewind("show --db " + db + " 1", &out), 0) << out;
  EXPECT_NE(out.find("Today is <date>."), std::string::npos) << out;
  EXPECT_NE(out.find("normalize date"), std::string::npos) << out;
  ASSERT_EQ(RunRewind("verify --db " + db, &out), 0) << out;
  // rekey changes them: without content equivalence the string and the
  // part differ; every key is recomputed and verify still passes.
  ASSERT_EQ(RunRewind("rekey --db " + db +
                          " --normalize date --no-content-equivalence",
                      &out),
            0)
      << out;
  auto store = OpenTestStore(db, false);
  EXPECT_FALSE(store->rules().content_equivalence);
  ASSERT_EQ(store->rules().normalizers.size(), 1u);
  store.reset();
  ASSERT_EQ(RunRewind("verify --db " + db, &out), 0) << out;
}

TEST(MatchingRules, ABadNormalizeFlagIsAUsageErrorNamingIt) {
  TempDir dir;
  const std::string db = dir.File("x.sqlite");
  std::string out;
  EXPECT_EQ(RunRewind("record --db " + db +
                          " --backend http://127.0.0.1:9 --normalize "
                          "'messages.*.content:(unclosed=>x'",
                      &out),
            2);
  EXPECT_NE(out.find("--normalize"), std::string::npos) << out;
  EXPECT_NE(out.find("(unclosed"), std::string::npos) << out;
  EXPECT_NE(out.find("missing )"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(db)) << "a usage error creates no file";
  EXPECT_EQ(RunRewind("record --db " + db +
                          " --backend http://127.0.0.1:9 --normalize dates",
                      &out),
            2);
  EXPECT_NE(out.find("date, timestamp, uuid, hex-id"), std::string::npos)
      << out;
  EXPECT_EQ(RunRewind("rekey --db " + db + " --normalize '['", &out), 2);
  EXPECT_NE(out.find("--normalize"), std::string::npos) << out;
}

}  // namespace
}  // namespace rwd
