// record --scrub over real HTTP: nothing planted reaches the recording, its
// -wal, an export, a HAR or the log; the client still gets the real answer;
// replay keys a request carrying another value like the recorded one.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <string>
#include <vector>

#include "testutil/test_server.h"

namespace rwd {
namespace {

using testing::BackgroundServer;
using testing::ReadFile;
using testing::RewindProcess;
using testing::RunRewind;
using testing::TempDir;

constexpr char kEmail[] = "bob.planted@example.com";
constexpr char kPhone[] = "+1 415 555 0132";
constexpr char kCard[] = "4111 1111 1111 1111";
constexpr char kToken[] = "sk-proj-PLANTEDabcdefghijklmnop123456";

// What must appear in no stored byte: each value, and distinctive parts of
// it (a value re-encoded would still hold them).
const std::vector<std::string>& Needles() {
  static const std::vector<std::string> needles = {
      kEmail, "bob.planted",      "415 555 0132",
      kCard,  "4111111111111111", "PLANTEDabcdef"};
  return needles;
}

void ExpectClean(const std::string& what, const std::string& bytes) {
  EXPECT_FALSE(bytes.empty()) << what << " is empty";
  for (const std::string& n : Needles()) {
    EXPECT_EQ(bytes.find(n), std::string::npos) << what << " holds " << n;
  }
}

// The "content" values of a chat stream's events, joined.
std::string JoinedContent(const std::string& stream) {
  const std::string field = "\"content\":\"";
  std::string text;
  for (size_t at = stream.find(field); at != std::string::npos;
       at = stream.find(field, at)) {
    at += field.size();
    const size_t end = stream.find('"', at);
    if (end == std::string::npos) break;
    text += stream.substr(at, end - at);
  }
  return text;
}

std::string ChatBody(const std::string& email) {
  return std::string(
             R"({"model":"m","messages":[{"role":"user","content":"I am )") +
         email + ", phone " + kPhone + ", card " + kCard + ", key " + kToken +
         R"("},{"role":"tool","content":"{\"to\":\")" + email +
         R"(\",\"cc\":\"bob.planted\u0040example.com\"}"}]})";
}

class ScrubRecord : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_.server().Post(
        "/v1/chat/completions",
        [](const httplib::Request& req, httplib::Response& res) {
          const std::string answer = std::string("Reply to ") + kEmail +
                                     ", call " + kPhone + ", card " + kCard +
                                     ", key " + kToken;
          res.set_header("X-Echo-User", kEmail);
          if (req.body.find("\"stream\":true") != std::string::npos) {
            // Three characters per event, as a model streams tokens: every
            // planted value is split across events.
            std::string events;
            for (size_t i = 0; i < answer.size(); i += 3) {
              events +=
                  "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
                  answer.substr(i, 3) + "\"}}]}\n\n";
            }
            res.set_content(events + "data: [DONE]\n\n", "text/event-stream");
          } else {
            res.set_content(
                R"({"choices":[{"message":{"content":")" + answer + R"("}}]})",
                "application/json");
          }
        });
    backend_.server().Get(R"(/v1/users/(.*)/profile)",
                          [](const httplib::Request&, httplib::Response& res) {
                            res.set_content(R"({"ok":true})",
                                            "application/json");
                          });
    backend_.Start();
  }

  BackgroundServer backend_;
  TempDir dir_;
};

TEST_F(ScrubRecord, NothingPlantedReachesAnyFileAndAnotherValueStillHits) {
  const std::string db = dir_.File("rec.sqlite");
  const std::string log = dir_.File("record.log");
  std::string wal;
  {
    RewindProcess record({"record", "--backend", backend_.url(), "--db", db,
                          "--listen", "127.0.0.1:0", "--log-file", log,
                          "--scrub", "all", "--scrub-key",
                          "a-test-key-of-some-length"});
    ASSERT_GT(record.port(), 0) << record.first_line();
    httplib::Client c("127.0.0.1", record.port());
    c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    httplib::Headers headers = {
        {"X-User-Email", kEmail},
        {"Authorization", std::string("Bearer ") + kToken},
        {"Accept-Encoding", "gzip"}};
    auto r = c.Post("/v1/chat/completions?user=bob.planted%40example.com",
                    headers, ChatBody(kEmail), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    // The client gets the real answer.
    EXPECT_NE(r->body.find(kEmail), std::string::npos) << r->body;
    EXPECT_EQ(r->get_header_value("X-Echo-User"), kEmail);
    EXPECT_EQ(r->get_header_value("X-Rewind"), "record");

    std::string streamed = ChatBody(kEmail);
    streamed.insert(1, "\"stream\":true,");
    auto s =
        c.Post("/v1/chat/completions", headers, streamed, "application/json");
    ASSERT_TRUE(s);
    EXPECT_NE(JoinedContent(s->body).find(kEmail), std::string::npos)
        << s->body;

    auto g = c.Get("/v1/users/bob.planted@example.com/profile");
    ASSERT_TRUE(g);
    EXPECT_EQ(g->status, 200);

    // While the recorder runs, what it wrote sits in the -wal.
    wal = ReadFile(db + "-wal");
    record.Signal(SIGTERM);
    EXPECT_EQ(record.Wait(), 0);
  }
  ExpectClean("the -wal", wal);
  ExpectClean("the recording", ReadFile(db));
  ExpectClean("the log", ReadFile(log));
  EXPECT_NE(ReadFile(log).find("/v1/users/%3Cemail%3E/profile"),
            std::string::npos)
      << ReadFile(log);

  std::string out;
  ASSERT_EQ(
      RunRewind("export --db " + db + " --out " + dir_.File("x.json"), &out), 0)
      << out;
  const std::string exported = ReadFile(dir_.File("x.json"));
  ExpectClean("the export", exported);
  EXPECT_NE(exported.find("\"scrub\""), std::string::npos);
  EXPECT_NE(exported.find("<email:"), std::string::npos);
  ASSERT_EQ(RunRewind("export --format har --db " + db + " --out " +
                          dir_.File("x.har"),
                      &out),
            0)
      << out;
  ExpectClean("the HAR", ReadFile(dir_.File("x.har")));

  // show says which detectors were applied; verify recomputes the keys
  // under them.
  ASSERT_EQ(RunRewind("show --db " + db + " 1", &out), 0) << out;
  EXPECT_NE(out.find("scrubbed: email, phone, card, ipv4, ipv6, iban, token"),
            std::string::npos)
      << out;
  ExpectClean("show", out);
  EXPECT_EQ(RunRewind("verify --db " + db, &out), 0) << out;

  // Replay: the recorded value, and another e-mail, both hit.
  RewindProcess replay({"replay", "--db", db, "--listen", "127.0.0.1:0",
                        "--latency", "none", "--repeat", "first"});
  ASSERT_GT(replay.port(), 0) << replay.first_line();
  httplib::Client c("127.0.0.1", replay.port());
  c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
  for (const std::string& email :
       {std::string(kEmail), std::string("ann.other@example.org")}) {
    std::string target = "/v1/chat/completions?user=" + email;
    target.replace(target.find('@'), 1, "%40");
    auto r = c.Post(target, ChatBody(email), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << email << ": " << r->body;
    EXPECT_EQ(r->get_header_value("X-Rewind"), "hit") << email;
    // What replay serves is the scrubbed answer.
    EXPECT_EQ(r->body.find(kEmail), std::string::npos);
    EXPECT_NE(r->body.find("<email:"), std::string::npos) << r->body;
  }
  // The streamed answer had every value split across events: its text,
  // joined, holds placeholders only.
  std::string streamed = ChatBody(kEmail);
  streamed.insert(1, "\"stream\":true,");
  auto st = c.Post("/v1/chat/completions", streamed, "application/json");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->get_header_value("X-Rewind"), "hit");
  const std::string text = JoinedContent(st->body);
  for (const char* kind : {"<email:", "<phone:", "<card:", "<token:"}) {
    EXPECT_NE(text.find(kind), std::string::npos) << kind << " in " << text;
  }
  ExpectClean("the replayed stream's text", text);
  EXPECT_EQ(RunRewind("scan --db " + db, &out), 0) << out;

  auto other = c.Get("/v1/users/ann@other.org/profile");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->get_header_value("X-Rewind"), "hit");
  // Not an e-mail: a miss.
  auto miss = c.Post("/v1/chat/completions?user=nobody", ChatBody("nobody"),
                     "application/json");
  ASSERT_TRUE(miss);
  EXPECT_EQ(miss->status, 404);
}

TEST_F(ScrubRecord, ScanFindsWhatAPlainRecordingHoldsAndScrubTakesItOut) {
  const std::string db = dir_.File("plain.sqlite");
  {
    RewindProcess record({"record", "--backend", backend_.url(), "--db", db,
                          "--listen", "127.0.0.1:0", "--quiet"});
    ASSERT_GT(record.port(), 0) << record.first_line();
    httplib::Client c("127.0.0.1", record.port());
    c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    auto r =
        c.Post("/v1/chat/completions", ChatBody(kEmail), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    record.Signal(SIGTERM);
    ASSERT_EQ(record.Wait(), 0);
  }
  EXPECT_NE(ReadFile(db).find(kEmail), std::string::npos);
  std::string out;
  EXPECT_EQ(RunRewind("scan --db " + db, &out), 1) << out;
  EXPECT_NE(out.find("#1 POST /v1/chat/completions"), std::string::npos) << out;
  EXPECT_NE(out.find("request.body: email 3, phone 1, card 1, token 1"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("response.header.X-Echo-User: email 1"), std::string::npos)
      << out;
  ExpectClean("scan's report", out);
  // Only what is asked for.
  EXPECT_EQ(RunRewind("scan --db " + db + " --scrub iban", &out), 0) << out;
  EXPECT_NE(out.find("no match of iban in 1 exchanges"), std::string::npos)
      << out;

  ASSERT_EQ(RunRewind("scrub --db " + db + " --scrub all", &out), 0) << out;
  EXPECT_NE(out.find("scrubbed 1 exchanges (email 5"), std::string::npos)
      << out;
  ExpectClean("the scrubbed recording", ReadFile(db));
  EXPECT_FALSE(std::filesystem::exists(db + ".scrubbing"));
  EXPECT_EQ(RunRewind("scan --db " + db, &out), 0) << out;
  EXPECT_EQ(RunRewind("verify --db " + db, &out), 0) << out;
  // Scrubbing again changes nothing that was scrubbed.
  ASSERT_EQ(
      RunRewind("scrub --db " + db + " --scrub-key 0123456789abcdef0", &out), 0)
      << out;
  EXPECT_NE(out.find("nothing found"), std::string::npos) << out;

  RewindProcess replay({"replay", "--db", db, "--listen", "127.0.0.1:0"});
  ASSERT_GT(replay.port(), 0);
  httplib::Client c("127.0.0.1", replay.port());
  c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
  auto r = c.Post("/v1/chat/completions", ChatBody("ann.other@example.org"),
                  "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("X-Rewind"), "hit") << r->body;
}

TEST_F(ScrubRecord, EncodedBodiesAreRelayedButNotRecorded) {
  std::atomic<bool> saw_accept_encoding{false};
  BackgroundServer gz;
  gz.server().Post(
      "/gz", [&](const httplib::Request& req, httplib::Response& res) {
        if (req.has_header("Accept-Encoding")) saw_accept_encoding = true;
        res.set_header("Content-Encoding", "gzip");
        res.set_content(std::string("\x1f\x8b not really gzip ") + kEmail,
                        "text/plain");
      });
  gz.Start();
  const std::string db = dir_.File("gz.sqlite");
  const std::string log = dir_.File("gz.log");
  {
    RewindProcess record({"record", "--backend", gz.url(), "--db", db,
                          "--listen", "127.0.0.1:0", "--log-file", log,
                          "--scrub", "email"});
    ASSERT_GT(record.port(), 0) << record.first_line();
    httplib::Client c("127.0.0.1", record.port());
    c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
    c.set_decompress(false);
    auto r = c.Post("/gz", {{"Accept-Encoding", "gzip"}}, "hi", "text/plain");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    // The client gets the answer as it came.
    EXPECT_NE(r->body.find(kEmail), std::string::npos);
    auto metrics = c.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find(
                  "rewind_record_skipped_total{reason=\"unscrubbable\"} 1\n"),
              std::string::npos)
        << metrics->body;
    record.Signal(SIGTERM);
    EXPECT_EQ(record.Wait(), 0);
  }
  EXPECT_FALSE(saw_accept_encoding) << "Accept-Encoding was forwarded";
  ExpectClean("the recording", ReadFile(db));
  EXPECT_NE(ReadFile(log).find("cannot scrub"), std::string::npos)
      << ReadFile(log);
  std::string out;
  EXPECT_EQ(RunRewind("ls --db " + db + " --json", &out), 0) << out;
  EXPECT_EQ(out.find("\"id\""), std::string::npos) << out;
}

TEST_F(ScrubRecord, BadScrubFlagsCreateNoFile) {
  const std::string db = dir_.File("bad.sqlite");
  std::string out;
  EXPECT_EQ(RunRewind("record --backend " + backend_.url() + " --db " + db +
                          " --scrub emails",
                      &out),
            2);
  EXPECT_NE(out.find("unknown scrub kind \"emails\""), std::string::npos)
      << out;
  EXPECT_EQ(RunRewind("record --backend " + backend_.url() + " --db " + db +
                          " --scrub-pattern 'x=('",
                      &out),
            2);
  EXPECT_NE(out.find("--scrub-pattern x"), std::string::npos) << out;
  EXPECT_EQ(RunRewind("record --backend " + backend_.url() + " --db " + db +
                          " --scrub email --scrub-key short",
                      &out),
            2);
  EXPECT_NE(out.find("at least 16"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(db));
}

}  // namespace
}  // namespace rwd
