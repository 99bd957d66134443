#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

#include "rewind/request_key.h"
#include "scrub/detectors.h"
#include "scrub/scrubber.h"
#include "scrub/stream_text.h"

namespace rwd::scrub {
namespace {

using Finder = void (*)(std::string_view, int, std::vector<Match>*);

// The values a scanner finds in text.
std::vector<std::string> Found(Finder find, std::string_view text) {
  std::vector<Match> matches;
  find(text, 0, &matches);
  std::vector<std::string> out;
  for (const Match& m : matches) {
    out.emplace_back(text.substr(m.begin, m.end - m.begin));
  }
  return out;
}

using V = std::vector<std::string>;

std::shared_ptr<const Detectors> Make(const std::string& kinds,
                                      std::vector<std::string> patterns = {}) {
  auto parsed = ParseKinds(kinds);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  auto d = Detectors::Make(parsed.value(), patterns);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.value();
}

Scrubber Store(const std::string& kinds, const std::string& secret = "k1",
               std::vector<std::string> patterns = {}) {
  return Scrubber(Make(kinds, std::move(patterns)), Mode::kStore, secret);
}

TEST(ScrubDetectors, Emails) {
  EXPECT_EQ(Found(FindEmails, "write to bob.smith+tag@mail.example.co.uk."),
            V{"bob.smith+tag@mail.example.co.uk"});
  EXPECT_EQ(Found(FindEmails, "<a@b.io>, mailto:x_y@z.org"),
            (V{"a@b.io", "x_y@z.org"}));
  EXPECT_EQ(Found(FindEmails, "email='ann@site.com'"), V{"ann@site.com"});
  EXPECT_EQ(Found(FindEmails, "user@xn--p1ai.xn--p1ai"),
            V{"user@xn--p1ai.xn--p1ai"});
  // Not e-mails: a handle, a scoped package, no dot, a numeric top label,
  // a local part ending in a dot.
  EXPECT_EQ(Found(FindEmails,
                  "@mention, @types/node, root@localhost, "
                  "x@1.2.3.4, a.@b.com, @@, a@.com, a@b.c"),
            V{});
}

TEST(ScrubDetectors, Phones) {
  EXPECT_EQ(Found(FindPhones, "call +1 415 555 0132 now"),
            V{"+1 415 555 0132"});
  EXPECT_EQ(Found(FindPhones, "+44 (0)20 7946 0958; +33612345678"),
            (V{"+44 (0)20 7946 0958", "+33612345678"}));
  EXPECT_EQ(
      Found(FindPhones,
            "(415) 555-0132 or 415-555-0132 or "
            "415.555.0132 or 415 555 0132"),
      (V{"(415) 555-0132", "415-555-0132", "415.555.0132", "415 555 0132"}));
  // Not phones: bare digit runs (timestamps, ids), dates, versions, IPs,
  // arithmetic, area codes starting with 0 or 1, a longer dashed number,
  // too few digits after '+'.
  EXPECT_EQ(Found(FindPhones,
                  "created 1700000000, id 4155550132, "
                  "2024-01-15, v1.2.3, 10.0.0.1, 3+5=8, "
                  "123-456-7890, 415-555-0132-99, +12345, "
                  "x415-555-0132"),
            V{});
}

TEST(ScrubDetectors, CardsAreLuhnChecked) {
  EXPECT_EQ(Found(FindCards, "card 4111 1111 1111 1111 exp"),
            V{"4111 1111 1111 1111"});
  EXPECT_EQ(Found(FindCards,
                  "4111-1111-1111-1111, 5500005555555559, "
                  "378282246310005"),
            (V{"4111-1111-1111-1111", "5500005555555559", "378282246310005"}));
  // Groups after the card do not hide it.
  EXPECT_EQ(Found(FindCards, "4111 1111 1111 1111 2 items"),
            V{"4111 1111 1111 1111"});
  // A 16-digit order id that fails Luhn is not a card, nor one starting
  // with 9, nor a longer run, nor a decimal, nor digits inside a word.
  EXPECT_EQ(Found(FindCards,
                  "order 4111111111111112, 9111111111111119, "
                  "41111111111111111111, 0.4111111111111111, "
                  "id_4111111111111111, abc4111111111111111"),
            V{});
  EXPECT_TRUE(LuhnValid("4111111111111111"));
  EXPECT_FALSE(LuhnValid("4111111111111112"));
}

TEST(ScrubDetectors, Ipv4) {
  EXPECT_EQ(Found(FindIpv4, "from 10.0.0.1:8080 and 192.168.100.254."),
            (V{"10.0.0.1", "192.168.100.254"}));
  EXPECT_EQ(Found(FindIpv4,
                  "256.1.1.1 1.2.3 1.2.3.4.5 v1.2.3.4 01.2.3.4 "
                  "3.14159"),
            V{});
}

TEST(ScrubDetectors, Ipv6) {
  EXPECT_EQ(Found(FindIpv6, "host [2001:db8::1]:443, fe80::a1b2:3c4d."),
            (V{"2001:db8::1", "fe80::a1b2:3c4d"}));
  EXPECT_EQ(Found(FindIpv6, "::ffff:192.0.2.1 and ::1"),
            (V{"::ffff:192.0.2.1", "::1"}));
  // Not addresses: times, MACs, C++ scopes, a word with colons.
  EXPECT_EQ(Found(FindIpv6,
                  "12:30:45 00:1a:2b:3c:4d:5e std::string "
                  "::foo a:b:c"),
            V{});
}

TEST(ScrubDetectors, IbansAreMod97Checked) {
  EXPECT_EQ(Found(FindIbans,
                  "IBAN DE89370400440532013000, "
                  "GB82 WEST 1234 5698 7654 32."),
            (V{"DE89370400440532013000", "GB82 WEST 1234 5698 7654 32"}));
  // A wrong check digit, a wrong length, an unknown country.
  EXPECT_EQ(Found(FindIbans,
                  "DE88370400440532013000 DE8937040044053201300 "
                  "ZZ89370400440532013000"),
            V{});
  EXPECT_TRUE(IbanValid("NL91ABNA0417164300"));
}

TEST(ScrubDetectors, Tokens) {
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
      "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
  EXPECT_EQ(
      Found(FindTokens, "key sk-proj-abcdefghijklmnopqrstuvwx1234 and " + jwt),
      (V{"sk-proj-abcdefghijklmnopqrstuvwx1234", jwt}));
  EXPECT_EQ(Found(FindTokens, "Authorization: Bearer abc.DEF_ghi-jkl~mno123"),
            V{"abc.DEF_ghi-jkl~mno123"});
  EXPECT_EQ(
      Found(FindTokens, "AKIAIOSFODNN7EXAMPLE ghp_" + std::string(36, 'a')),
      (V{"AKIAIOSFODNN7EXAMPLE", "ghp_" + std::string(36, 'a')}));
  // Too short, inside a word, a lone base64 part.
  EXPECT_EQ(Found(FindTokens,
                  "sk-short task-abcdefghijklmnopqrstuvwxyz "
                  "eyJhbGciOiJIUzI1NiJ9 Bearer short"),
            V{});
}

TEST(ScrubDetectors, UserPatternsUseRe2) {
  auto d = Detectors::Make({}, {"customer=CUST-[0-9]{6}", "order=id=(\\d+)"});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  std::vector<Match> m;
  std::string text = "CUST-123456 bought, id=42";
  d.value()->Find(text, &m);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(text.substr(m[0].begin, m[0].end - m[0].begin), "CUST-123456");
  EXPECT_EQ(d.value()->name(m[0].detector), "customer");
  // The first group alone is replaced.
  EXPECT_EQ(text.substr(m[1].begin, m[1].end - m[1].begin), "42");

  EXPECT_FALSE(Detectors::Make({}, {"x=("}).ok());
  EXPECT_FALSE(Detectors::Make({}, {"x=a*"}).ok());     // matches ""
  EXPECT_FALSE(Detectors::Make({}, {"email=x"}).ok());  // a built-in
  EXPECT_FALSE(Detectors::Make({}, {"Bad Name=x"}).ok());
  EXPECT_FALSE(Detectors::Make({}, {"noequals"}).ok());
  // A pattern that backtracks exponentially in other engines.
  auto slow = Detectors::Make({}, {"slow=(a+)+b"});
  ASSERT_TRUE(slow.ok());
  std::vector<Match> none;
  slow.value()->Find(std::string(100000, 'a'), &none);
  EXPECT_TRUE(none.empty());
}

TEST(ScrubDetectors, ParseKinds) {
  EXPECT_EQ(ParseKinds("phone,email").value(), (V{"email", "phone"}));
  EXPECT_EQ(ParseKinds("ip").value(), (V{"ipv4", "ipv6"}));
  EXPECT_EQ(ParseKinds("all").value().size(), 7u);
  EXPECT_FALSE(ParseKinds("emails").ok());
  EXPECT_FALSE(ParseKinds("").ok());
}

TEST(Scrubber, PlaceholdersAreStableWithinAKeyAndDifferAcrossKeys) {
  Scrubber a = Store("email", "secret-a");
  Scrubber b = Store("email", "secret-b");
  std::string one = a.Text("bob@x.com");
  EXPECT_EQ(one.size(), std::string("<email:12345678>").size());
  EXPECT_EQ(one.substr(0, 7), "<email:");
  EXPECT_EQ(a.Text("to bob@x.com, cc bob@x.com"), "to " + one + ", cc " + one);
  EXPECT_NE(a.Text("ann@x.com"), one);
  EXPECT_NE(b.Text("bob@x.com"), one);
  // Scrubbing again changes nothing: placeholders are left alone.
  EXPECT_EQ(a.Text(one), one);
  EXPECT_EQ(b.Text(one), one);
}

TEST(Scrubber, PlaceholdersAreHmacSha256OfKindAndValue) {
  for (const std::string& secret :
       {std::string("k"), std::string(64, 'x'), std::string(100, 'y')}) {
    Scrubber s = Store("email", secret);
    const std::string input = std::string("email") + '\0' + "bob@x.com";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         mac, &n);
    char hex[9];
    std::snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", mac[0], mac[1], mac[2],
                  mac[3]);
    EXPECT_EQ(s.Text("bob@x.com"), std::string("<email:") + hex + ">")
        << secret.size();
  }
}

TEST(Scrubber, JsonStringsAreDecodedEscapedJsonIncluded) {
  Scrubber s = Store("email,card");
  const std::string tag = s.Text("bob@x.com");
  // Plain literal: edited in place, the rest byte for byte.
  EXPECT_EQ(s.Body(R"({"a": "mail bob@x.com",  "n":1})", "application/json", "")
                .value(),
            R"({"a": "mail )" + tag + R"(",  "n":1})");
  // Escapes hide it from a byte scan: b\u006fb, and an e-mail inside a
  // string that is itself escaped JSON, two levels deep.
  EXPECT_EQ(
      s.Body(R"({"a":"b\u006fb@x.com\n"})", "application/json", "").value(),
      R"({"a":")" + tag + R"(\n"})");
  EXPECT_EQ(
      s.Body(
           R"({"args":"{\"to\":\"bob@x.com\",\"x\":\"{\\\"cc\\\":\\\"bob@x.com\\\"}\"}"})",
           "", "")
          .value(),
      R"({"args":"{\"to\":\")" + tag + R"(\",\"x\":\"{\\\"cc\\\":\\\")" + tag +
          R"(\\\"}\"}"})");
  // A card as a JSON number becomes a string; an order id stays a number.
  std::string out =
      s.Body(R"({"card":4111111111111111,"order":4111111111111112})",
             "application/json", "")
          .value();
  EXPECT_EQ(out.substr(0, 15), R"({"card":"<card:)");
  EXPECT_NE(out.find(R"(","order":4111111111111112})"), std::string::npos)
      << out;
}

TEST(Scrubber, StreamsLineByLineAndNdjson) {
  Scrubber s = Store("email");
  const std::string tag = s.Text("bob@x.com");
  std::string sse =
      "event: message\ndata: {\"delta\":\"hi bob@x.com\"}\n\n"
      "data: plain bob@x.com\n\ndata: [DONE]\n\n";
  EXPECT_EQ(s.Body(sse, "text/event-stream", "").value(),
            "event: message\ndata: {\"delta\":\"hi " + tag +
                "\"}\n\ndata: plain " + tag + "\n\ndata: [DONE]\n\n");
  std::string nd = "{\"m\":\"bob@x.com\"}\n{\"m\":\"b\\u006fb@x.com\"}\n";
  EXPECT_EQ(s.Body(nd, "application/x-ndjson", "").value(),
            "{\"m\":\"" + tag + "\"}\n{\"m\":\"" + tag + "\"}\n");
}

// An OpenAI chat stream carrying "text" one piece per event, in choice
// "choice".
std::string ChatStream(const std::vector<std::string>& pieces, int choice = 0) {
  std::string out;
  for (const std::string& p : pieces) {
    out += "data: {\"id\":\"c1\",\"choices\":[{\"index\":" +
           std::to_string(choice) + ",\"delta\":{\"content\":\"" + p +
           "\"}}]}\n\n";
  }
  return out + "data: [DONE]\n\n";
}

TEST(StreamText, FindsTokenFieldsWithTheirLiterals) {
  const std::string body =
      "data: "
      "{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"a\\\"b\"}"
      "}]}\n\n"
      "data: "
      "{\"choices\":[{\"delta\":{\"content\":\"c\"}},{\"delta\":{\"content\":"
      "\"x\"}}]}\n\n"
      "event: content_block_delta\n"
      "data: "
      "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
      "\"text\":\"hi\"}}\n\n"
      "data: {\"type\":\"response.output_text.delta\",\"delta\":\"yo\"}\n\n"
      "data: [DONE]\n\n";
  std::vector<StreamText> texts = StreamTexts(body, true);
  ASSERT_EQ(texts.size(), 4u);
  EXPECT_EQ(texts[0].path, "choices.0.delta.content");
  ASSERT_EQ(texts[0].pieces.size(), 2u);
  EXPECT_EQ(texts[0].pieces[0].value, "a\"b");
  // The piece's bytes are its literal, quotes and escapes included.
  const StreamPiece& p = texts[0].pieces[0];
  EXPECT_EQ(body.substr(p.begin, p.end - p.begin), "\"a\\\"b\"");
  EXPECT_EQ(texts[0].pieces[1].value, "c");
  EXPECT_EQ(texts[1].path, "choices.1.delta.content");
  EXPECT_EQ(texts[2].path, "delta.text");
  EXPECT_EQ(texts[2].pieces[0].value, "hi");
  EXPECT_EQ(texts[3].path, "delta");
  EXPECT_EQ(texts[3].pieces[0].value, "yo");
}

TEST(StreamText, IndexFieldsNameTheText) {
  // OpenAI: each choice at position 0, its "index" (before or after the
  // delta) saying which; tool calls likewise. Anthropic: the event's index.
  const std::string body =
      "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"a\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"index\":0}]}\n\n"
      "data: "
      "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":2,"
      "\"function\":{\"arguments\":\"{\\\"x\"}}]}}]}\n\n"
      "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
      "{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n";
  std::vector<StreamText> texts = StreamTexts(body, true);
  ASSERT_EQ(texts.size(), 4u);
  EXPECT_EQ(texts[0].path, "choices.1.delta.content");
  EXPECT_EQ(texts[1].path, "choices.0.delta.content");
  EXPECT_EQ(texts[2].path, "choices.0.delta.tool_calls.2.function.arguments");
  EXPECT_EQ(texts[2].pieces[0].value, "{\"x");
  EXPECT_EQ(texts[3].path, "index=1 delta.partial_json");
}

TEST(StreamText, NdjsonAndWhatIsNotATokenField) {
  const std::string body =
      "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"he\"}"
      "}\n"
      "{\"model\":\"m\",\"message\":{\"content\":\"llo\"},\"done\":false}\n"
      "{\"response\":\"r\",\"x\":{\"response\":\"nested\"}}\n"
      "not json\n[\"an\",\"array\"]\n{\"cut\":\"short";
  std::vector<StreamText> texts = StreamTexts(body, false);
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(texts[0].path, "message.content");
  ASSERT_EQ(texts[0].pieces.size(), 2u);
  EXPECT_EQ(texts[0].pieces[1].value, "llo");
  EXPECT_EQ(texts[1].path, "response");
  ASSERT_EQ(texts[1].pieces.size(), 1u);
  // Deep nesting ends the walk of that event, without recursion.
  std::string deep = "{\"choices\":" + std::string(100000, '[') + "\n";
  EXPECT_TRUE(StreamTexts(deep, false).empty());
}

TEST(Scrubber, AValueSplitAcrossEventsIsFoundAndTakenOut) {
  Scrubber s = Store("email,phone,card");
  const std::string tag = s.Text("bob.smith@example.com");
  const std::string phone = s.Text("+1 415 555 0132");
  const std::string streamed =
      ChatStream({"Write to bo", "b.smith", "@exam", "ple.com or call +1 4",
                  "15 555 0132", " today"});
  const std::string scrubbed =
      s.Body(streamed, "text/event-stream", "").value();
  // The placeholder where the value starts; the rest of it gone from the
  // events after; every event still there.
  EXPECT_EQ(scrubbed, ChatStream({"Write to " + tag, "", "",
                                  " or call " + phone, "", " today"}));
  // Within a recording the placeholder is the one of the whole value.
  EXPECT_NE(tag.find("<email:"), std::string::npos);
  // Scrubbing again changes nothing.
  EXPECT_EQ(s.Body(scrubbed, "text/event-stream", "").value(), scrubbed);
  // A scan (kKey) counts them.
  Scrubber scan(Make("email,phone,card"), Mode::kKey);
  Counts counts;
  scan.Body(streamed, "text/event-stream", "", &counts).value();
  counts.resize(3);
  EXPECT_EQ(counts, (Counts{1, 1, 0}));
}

TEST(Scrubber, SplitValuesInResponsesKeepChunksAndTheirOffsets) {
  Scrubber s = Store("email");
  const std::string tag = s.Text("ann@site.org");
  Response r;
  r.headers = {{"Content-Type", "text/event-stream"}};
  const std::string a =
      "data: {\"choices\":[{\"delta\":{\"content\":\"ann@\"}}]}\n\n";
  const std::string b =
      "data: {\"choices\":[{\"delta\":{\"content\":\"site.org!\"}}]}\n\n";
  r.chunks = {{1000, a}, {2000, b}, {3000, "data: [DONE]\n\n"}};
  ASSERT_TRUE(s.ScrubResponse(&r).ok());
  ASSERT_EQ(r.chunks.size(), 3u);
  EXPECT_EQ(r.chunks[0].data, "data: {\"choices\":[{\"delta\":{\"content\":\"" +
                                  tag + "\"}}]}\n\n");
  EXPECT_EQ(r.chunks[1].data,
            "data: {\"choices\":[{\"delta\":{\"content\":\"!\"}}]}\n\n");
  EXPECT_EQ(r.chunks[0].offset_us, 1000);
  EXPECT_EQ(r.chunks[1].offset_us, 2000);
  EXPECT_EQ(r.chunks[2].data, "data: [DONE]\n\n");
}

TEST(Scrubber, SplitValuesAreJoinedWithinOneTextOnly) {
  Scrubber s = Store("email");
  // Two choices interleaved: "ann@" in one and "site.org" in the other are
  // not one value.
  std::string body = ChatStream({"ann@"}, 0) + ChatStream({"site.org"}, 1);
  EXPECT_EQ(s.Body(body, "text/event-stream", "").value(), body);
  // Other fields (ids, models) are never joined.
  std::string ids =
      "data: {\"id\":\"ann@\",\"choices\":[]}\n\n"
      "data: {\"id\":\"site.org\",\"choices\":[]}\n\n";
  EXPECT_EQ(s.Body(ids, "text/event-stream", "").value(), ids);
  // NDJSON (Ollama) is joined too.
  std::string nd =
      "{\"message\":{\"content\":\"ann\"}}\n{\"message\":{\"content\":\"@site."
      "org\"}}\n";
  EXPECT_EQ(s.Body(nd, "application/x-ndjson", "").value(),
            "{\"message\":{\"content\":\"" + s.Text("ann@site.org") +
                "\"}}\n{\"message\":{\"content\":\"\"}}\n");
}

TEST(Scrubber, QueryPathFormAndHeaders) {
  Scrubber s = Store("email,ipv4");
  const std::string tag = s.Text("bob@x.com");
  std::string q = s.Query("a=1&to=bob%40x.com&b");
  EXPECT_EQ(q.find("bob"), std::string::npos) << q;
  EXPECT_EQ(q.substr(0, 7), "a=1&to=");
  EXPECT_EQ(q.substr(q.size() - 2), "&b");
  EXPECT_EQ(s.Query(q), q);  // idempotent
  EXPECT_EQ(s.Path("/users/bob@x.com/info").find("bob"), std::string::npos);
  EXPECT_EQ(
      s.Body("name=a&mail=bob%40x.com", "application/x-www-form-urlencoded", "")
          .value()
          .find("bob"),
      std::string::npos);
  EXPECT_EQ(s.HeaderValue("X-Forwarded-For", "10.1.2.3"), s.Text("10.1.2.3"));
  EXPECT_EQ(s.HeaderValue("Content-Length", "10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(s.HeaderValue("Authorization", "[REDACTED]"), "[REDACTED]");
}

TEST(Scrubber, EncodedBodiesAreUnscrubbableBinaryMediaUntouched) {
  Scrubber s = Store("email");
  auto r = s.Body("bob@x.com", "text/plain", "gzip");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), kUnscrubbable);
  EXPECT_EQ(s.Body("bob@x.com", "image/png", "").value(), "bob@x.com");
  EXPECT_EQ(s.Body("bob@x.com", "text/plain", "identity").value(),
            s.Text("bob@x.com"));
}

TEST(Scrubber, ResponseChunksKeepTheirOffsets) {
  Scrubber s = Store("email");
  const std::string tag = s.Text("bob@x.com");
  Response r;
  r.headers = {{"Content-Type", "text/plain"}, {"X-User", "bob@x.com"}};
  // The e-mail straddles the first two chunks.
  r.chunks = {{10, "to bob@"}, {20, "x.com and "}, {30, "ann@y.org"}};
  Counts counts;
  ASSERT_TRUE(s.ScrubResponse(&r, &counts).ok());
  ASSERT_EQ(r.chunks.size(), 3u);
  EXPECT_EQ(r.chunks[0].data, "to " + tag);
  EXPECT_EQ(r.chunks[1].data, " and ");
  EXPECT_EQ(r.chunks[2].data, s.Text("ann@y.org"));
  EXPECT_EQ(r.chunks[1].offset_us, 20);
  EXPECT_EQ(r.headers[1].second, tag);
  EXPECT_EQ(counts, (Counts{3}));
}

TEST(Scrubber, KeyModeMakesValuesAndPlaceholdersTheirType) {
  auto d = Make("email,card");
  Scrubber store(d, Mode::kStore, "k");
  Scrubber key(d, Mode::kKey);
  std::string body = R"({"m":"to bob@x.com","c":4111111111111111})";
  std::string stored = store.Body(body, "application/json", "").value();
  EXPECT_EQ(key.Body(body, "application/json", "").value(),
            R"({"m":"to <email>","c":"<card>"})");
  EXPECT_EQ(key.Body(stored, "application/json", "").value(),
            R"({"m":"to <email>","c":"<card>"})");
}

TEST(Scrubber, RequestKeysUnderScrubRulesIgnoreTheValue) {
  KeyRules rules{DefaultIgnoredFields(), {}, {"email"}, {}};
  Canonicalizer c(rules);
  auto request = [](const std::string& content) {
    Request r;
    r.method = "POST";
    r.path = "/v1/chat/completions";
    r.headers = {{"Content-Type", "application/json"}};
    r.body = R"({"messages":[{"role":"user","content":")" + content + R"("}]})";
    return r;
  };
  Scrubber store(Make("email"), Mode::kStore, "k");
  Request stored = request("mail bob@x.com");
  ASSERT_TRUE(store.ScrubRequest(&stored).ok());
  EXPECT_EQ(stored.body.find("bob"), std::string::npos);
  EXPECT_EQ(c.Key(request("mail bob@x.com")), c.Key(stored));
  // Keying the scrubbed request without scanning it again gives the same.
  EXPECT_EQ(c.KeyOfScrubbed(stored), c.Key(stored));
  Request with_query =
      request("to \\u0062ob@x.com, {\\\"cc\\\":\\\"ann@y.org\\\"}");
  with_query.query = "to=bob%40x.com&n=1";
  with_query.path = "/v1/users/bob@x.com";
  Request scrubbed_query = with_query;
  ASSERT_TRUE(store.ScrubRequest(&scrubbed_query).ok());
  EXPECT_EQ(scrubbed_query.body.find("ann"), std::string::npos)
      << scrubbed_query.body;
  EXPECT_EQ(c.KeyOfScrubbed(scrubbed_query), c.Key(with_query));
  EXPECT_EQ(c.Key(scrubbed_query), c.Key(with_query));
  EXPECT_EQ(c.Key(request("mail ann@other.org")), c.Key(stored));
  EXPECT_FALSE(c.Key(request("mail nobody")) == c.Key(stored));
  EXPECT_TRUE(c.Diff(request("mail ann@other.org"), stored).empty());
  // Without the scrub rules the values differ.
  Canonicalizer plain(KeyRules{DefaultIgnoredFields(), {}});
  EXPECT_FALSE(plain.Key(request("mail bob@x.com")) ==
               plain.Key(request("mail ann@other.org")));
}

TEST(Scrubber, RulesRoundTripAndOldRulesKeepTheirBytes) {
  KeyRules plain{DefaultIgnoredFields(), {"x-a"}};
  EXPECT_EQ(plain.ToJson().find("scrub"), std::string::npos);
  KeyRules rules{{"user"}, {}, {"email", "phone"}, {"cust=C-[0-9]+"}};
  auto back = KeyRules::FromJson(rules.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back.value() == rules);
  KeyRules bad{{}, {}, {"emails"}, {}};
  EXPECT_FALSE(KeyRules::FromJson(bad.ToJson()).ok());
}

}  // namespace
}  // namespace rwd::scrub
