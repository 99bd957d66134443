// The HTTP front as a client or an attacker meets it on the wire: framing,
// pipelining, methods, limits, slow clients, a busy port. Real servers on
// 127.0.0.1, raw sockets.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rewind/request_key.h"
#include "rewind/server.h"
#include "rewind/store.h"
#include "testutil/raw_http.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using namespace std::chrono_literals;
using testing::Connect;
using testing::HeaderOf;
using testing::InProcessRewind;
using testing::ListenLoopback;
using testing::OpenTestStore;
using testing::ParseRawResponse;
using testing::RawExchange;
using testing::RawResponse;
using testing::ReadToEnd;
using testing::RequestText;
using testing::RunRewind;
using testing::TempDir;

using Steady = std::chrono::steady_clock;

double MsSince(Steady::time_point t) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t).count();
}

// A backend on raw sockets that accepts any method (cpp-httplib's server
// refuses the ones it does not know) and answers each request with what it
// saw: {"method":..,"path":..,"body_bytes":N}, keeping each request head.
class RawBackend {
 public:
  RawBackend() {
    fd_ = ListenLoopback(&port_);
    thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~RawBackend() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (auto& t : connections_) t.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  std::vector<std::string> heads() {
    std::lock_guard<std::mutex> lock(mu_);
    return heads_;
  }
  std::vector<std::string> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      connections_.emplace_back([this, c] { Serve(c); });
    }
  }
  void Serve(int c) {
    std::string in;
    char buf[65536];
    while (!stop_) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        pollfd p{c, POLLIN, 0};
        if (poll(&p, 1, 200) == 0) {
          if (stop_) break;
          continue;
        }
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0) {
          close(c);
          return;
        }
        in.append(buf, static_cast<size_t>(n));
      }
      if (stop_) break;
      const std::string head = in.substr(0, end);
      std::string lower = head;
      for (char& ch : lower) ch = static_cast<char>(tolower(ch));
      size_t length = 0;
      size_t cl = lower.find("\r\ncontent-length:");
      if (cl != std::string::npos) length = std::stoul(lower.substr(cl + 17));
      while (in.size() < end + 4 + length) {
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0) {
          close(c);
          return;
        }
        in.append(buf, static_cast<size_t>(n));
      }
      const std::string body = in.substr(end + 4, length);
      in.erase(0, end + 4 + length);
      {
        std::lock_guard<std::mutex> lock(mu_);
        heads_.push_back(head);
        bodies_.push_back(body);
      }
      const size_t sp1 = head.find(' ');
      const size_t sp2 = head.find(' ', sp1 + 1);
      const std::string reply =
          "{\"method\":\"" + head.substr(0, sp1) + "\",\"path\":\"" +
          head.substr(sp1 + 1, sp2 - sp1 - 1) +
          "\",\"body_bytes\":" + std::to_string(body.size()) + "}";
      const std::string response =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          "Content-Length: " +
          std::to_string(reply.size()) + "\r\n\r\n" + reply;
      send(c, response.data(), response.size(), MSG_NOSIGNAL);
    }
    close(c);
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> connections_;
  std::mutex mu_;
  std::vector<std::string> heads_;
  std::vector<std::string> bodies_;
};

ServerOptions RecordTo(Store* store, const std::string& backend) {
  ServerOptions o;
  o.mode = ServerMode::kRecord;
  o.store = store;
  o.upstream.backend = backend;
  o.front.quiet = true;
  return o;
}

ServerOptions ReplayFrom(Store* store) {
  ServerOptions o;
  o.mode = ServerMode::kReplay;
  o.store = store;
  o.replay.latency = LatencyModel::Parse("none").value();
  o.front.quiet = true;
  return o;
}

// Stores METHOD PATH answered 200 with "body" (application/octet-stream)
// as one piece at "offset_us".
void StoreBinaryAnswer(Store* store, const std::string& method,
                       const std::string& path, std::string body,
                       int64_t offset_us) {
  Exchange e;
  e.request.method = method;
  e.request.path = path;
  e.key_hex = Canonicalizer(store->rules()).Key(e.request).ToHex();
  e.response.status = 200;
  e.response.headers = {{"Content-Type", "application/octet-stream"}};
  e.response.chunks = {{offset_us, std::move(body)}};
  ASSERT_TRUE(store->WaitCommitted(store->Append(e)).ok());
}

// "s" in lower case: header names compared as HTTP compares them.
std::string Lowered(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(c));
  return s;
}

// Every response on one connection after sending "bytes" in one write.
std::vector<RawResponse> SendInOneWrite(int port, const std::string& bytes) {
  std::vector<RawResponse> out;
  int fd = Connect(port);
  if (fd < 0) return out;
  send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  const std::string data = ReadToEnd(fd);
  close(fd);
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t before = pos;
    out.push_back(ParseRawResponse(data, &pos));
    if (pos == before) break;
  }
  return out;
}

TEST(Front, BusyPortIsRefusedInEveryMode) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  InProcessRewind first(ReplayFrom(store.get()));
  const std::string where = "127.0.0.1:" + std::to_string(first.port());
  ServerOptions o = ReplayFrom(store.get());
  o.front.host = "127.0.0.1";
  o.front.port = first.port();
  auto second = Server::Create(o);
  ASSERT_TRUE(second.ok());
  Result<int> bound = second.value()->Bind();
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(bound.status().message(), where + " is already in use");

  for (const std::string& mode :
       {std::string("serve"), "replay --db " + dir.File("rec.sqlite"),
        "record --db " + dir.File("other.sqlite") +
            " --backend http://127.0.0.1:9"}) {
    std::string out;
    EXPECT_EQ(RunRewind(mode + " --listen " + where, &out), 2) << out;
    EXPECT_NE(out.find(where + " is already in use"), std::string::npos)
        << mode << ": " << out;
  }
  // The first one still serves alone.
  EXPECT_EQ(
      RawExchange(first.port(), RequestText("GET", "/__rewind/health", ""))
          .status,
      200);
}

TEST(Front, WhitespaceBeforeColonAndFoldedLinesNeverReachTheBackend) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  RawBackend backend;
  InProcessRewind rec(RecordTo(store.get(), backend.url()));
  const std::string bad_name =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
      "Authorization : Bearer SECRET\r\nContent-Length: 2\r\n\r\n{}";
  const std::string folded =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n"
      " Content-Length: 9\r\nContent-Length: 2\r\n\r\n{}";
  for (const std::string& request : {bad_name, folded}) {
    RawResponse r = RawExchange(rec.port(), request);
    EXPECT_EQ(r.status, 400) << request;
    EXPECT_EQ(HeaderOf(r, "Connection"), "close");
    EXPECT_NE(r.body.find("rewind_bad_request"), std::string::npos);
  }
  // A well-formed request on the same server still goes through.
  RawResponse ok = RawExchange(rec.port(), RequestText("POST", "/ok", "{}"));
  EXPECT_EQ(ok.status, 200);
  ASSERT_EQ(backend.heads().size(), 1u);
  EXPECT_EQ(backend.heads()[0].rfind("POST /ok ", 0), 0u);
}

TEST(Front, FramingInDoubtIsRefused) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  RawBackend backend;
  InProcessRewind rec(RecordTo(store.get(), backend.url()));
  struct Case {
    std::string head;
    int status;
  };
  const std::vector<Case> cases = {
      {"Content-Length: 2\r\nContent-Length: 3\r\n", 400},
      {"Content-Length: 2, 3\r\n", 400},
      {"Content-Length: -1\r\n", 400},
      {"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", 400},
      {"Transfer-Encoding: gzip, chunked\r\n", 501},
      {"X-Bad: a\x01b\r\nContent-Length: 2\r\n", 400},
  };
  for (const Case& c : cases) {
    const std::string request =
        "POST /x HTTP/1.1\r\nHost: x\r\n" + c.head + "\r\n{}";
    EXPECT_EQ(RawExchange(rec.port(), request).status, c.status) << c.head;
  }
  EXPECT_TRUE(backend.heads().empty());
  // The same length twice is one length.
  RawResponse same =
      RawExchange(rec.port(),
                  "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: "
                  "2\r\nContent-Length: 2\r\n"
                  "Connection: close\r\n\r\n{}");
  EXPECT_EQ(same.status, 200);
  EXPECT_NE(same.body.find("\"body_bytes\":2"), std::string::npos);
}

TEST(Front, PipelinedRequestsAreAllAnsweredInOrder) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  RawBackend backend;
  InProcessRewind rec(RecordTo(store.get(), backend.url()));
  std::string three;
  for (const char* path : {"/a", "/b", "/c"}) {
    three += std::string("POST ") + path +
             " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
  }
  three += "GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  std::vector<RawResponse> got = SendInOneWrite(rec.port(), three);
  ASSERT_EQ(got.size(), 4u);
  const char* paths[] = {"/a", "/b", "/c", "/d"};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(got[i].status, 200);
    EXPECT_NE(got[i].body.find(std::string("\"path\":\"") + paths[i] + "\""),
              std::string::npos)
        << got[i].body;
  }
  // And in replay, from the recording just made.
  InProcessRewind replay(ReplayFrom(store.get()));
  got = SendInOneWrite(replay.port(), three);
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(HeaderOf(got[i], "X-Rewind"), "hit");
    EXPECT_NE(got[i].body.find(std::string("\"path\":\"") + paths[i] + "\""),
              std::string::npos);
  }
}

TEST(Front, PostWithoutLengthHasAnEmptyBodyAndIsAnsweredAtOnce) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  InProcessRewind replay(ReplayFrom(store.get()));
  const auto start = Steady::now();
  RawResponse r = RawExchange(
      replay.port(),
      "POST /__rewind/reset HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(MsSince(start), 1000.0);
}

TEST(Front, AnyMethodIsForwardedRecordedAndReplayed) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  RawBackend backend;
  {
    InProcessRewind rec(RecordTo(store.get(), backend.url()));
    for (const char* method : {"PROPFIND", "PURGE", "MKCOL"}) {
      RawResponse r =
          RawExchange(rec.port(), RequestText(method, "/dav/x", "<a/>"));
      EXPECT_EQ(r.status, 200) << method;
      EXPECT_NE(r.body.find(std::string("\"method\":\"") + method + "\""),
                std::string::npos)
          << r.body;
      EXPECT_NE(r.body.find("\"body_bytes\":4"), std::string::npos);
    }
    // A GET with a body keeps both.
    RawResponse get =
        RawExchange(rec.port(), RequestText("GET", "/search", "{\"q\":1}"));
    EXPECT_NE(get.body.find("\"method\":\"GET\""), std::string::npos);
    EXPECT_NE(get.body.find("\"body_bytes\":7"), std::string::npos);
  }
  ASSERT_EQ(backend.heads().size(), 4u);
  EXPECT_EQ(backend.heads()[0].rfind("PROPFIND /dav/x HTTP/1.1", 0), 0u);
  InProcessRewind replay(ReplayFrom(store.get()));
  RawResponse r =
      RawExchange(replay.port(), RequestText("PURGE", "/dav/x", "<a/>"));
  EXPECT_EQ(HeaderOf(r, "X-Rewind"), "hit");
  EXPECT_NE(r.body.find("\"method\":\"PURGE\""), std::string::npos);
}

TEST(Front, BodiesReachTheBackendWhateverTheirContentType) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  RawBackend backend;
  InProcessRewind rec(RecordTo(store.get(), backend.url()));
  const std::string form = "a=" + std::string(100000, 'x');
  RawResponse r = RawExchange(
      rec.port(),
      "POST /form HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
          std::to_string(form.size()) + "\r\n\r\n" + form);
  EXPECT_EQ(r.status, 200);
  const std::string multipart =
      "--XX\r\nContent-Disposition: form-data; name=\"file\"; "
      "filename=\"a.wav\"\r\n\r\nRIFF....\r\n--XX--\r\n";
  RawResponse m = RawExchange(
      rec.port(),
      "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nConnection: "
      "close\r\n"
      "Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: " +
          std::to_string(multipart.size()) + "\r\n\r\n" + multipart);
  EXPECT_EQ(m.status, 200);
  ASSERT_EQ(backend.bodies().size(), 2u);
  EXPECT_EQ(backend.bodies()[0], form);
  EXPECT_EQ(backend.bodies()[1], multipart);
  const std::string lower = Lowered(backend.heads()[1]);
  EXPECT_NE(lower.find("content-type: multipart/form-data; boundary=xx"),
            std::string::npos);
}

TEST(Front, ChunkedRequestsWithExtensionsAndTrailersAreDecoded) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  RawBackend backend;
  InProcessRewind rec(RecordTo(store.get(), backend.url()));
  RawResponse r = RawExchange(
      rec.port(),
      "POST /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Transfer-Encoding: chunked\r\n\r\n"
      "4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Checksum: abc\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(backend.bodies().size(), 1u);
  EXPECT_EQ(backend.bodies()[0], "{\"a\":1}");
  // Malformed chunk sizes are refused, never forwarded.
  RawResponse bad = RawExchange(
      rec.port(),
      "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "zz\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(backend.bodies().size(), 1u);
}

TEST(Front, LimitsOnTheHeadAnswer414And431) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  RawBackend backend;
  InProcessRewind rec(RecordTo(store.get(), backend.url()));
  RawResponse long_target = RawExchange(
      rec.port(), RequestText("GET", "/" + std::string(9000, 'a'), ""));
  EXPECT_EQ(long_target.status, 414);
  std::string many;
  for (int i = 0; i < 1001; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(RawExchange(rec.port(), RequestText("GET", "/", "", many)).status,
            431);
  RawResponse long_line = RawExchange(
      rec.port(),
      RequestText("GET", "/", "", "X-Big: " + std::string(9000, 'v') + "\r\n"));
  EXPECT_EQ(long_line.status, 431);
  // 100,000 headers: refused at once, without reading them one by one.
  std::string huge;
  for (int i = 0; i < 100000; ++i) huge += "X-H: v\r\n";
  const auto start = Steady::now();
  EXPECT_EQ(RawExchange(rec.port(), RequestText("GET", "/", "", huge)).status,
            431);
  EXPECT_LT(MsSince(start), 2000.0);
  EXPECT_TRUE(backend.heads().empty());
}

TEST(Front, ExpectContinueGetsAnInterimAnswerBeforeTheBody) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  RawBackend backend;
  InProcessRewind rec(RecordTo(store.get(), backend.url()));
  int fd = Connect(rec.port());
  ASSERT_GE(fd, 0);
  const std::string head =
      "POST /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  send(fd, head.data(), head.size(), MSG_NOSIGNAL);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[64] = {0};
  ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)),
            "HTTP/1.1 100 Continue\r\n\r\n");
  send(fd, "{}", 2, MSG_NOSIGNAL);
  const std::string rest = ReadToEnd(fd);
  close(fd);
  size_t pos = 0;
  RawResponse r = ParseRawResponse(rest, &pos);
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(backend.heads().size(), 1u);
  EXPECT_EQ(backend.heads()[0].find("Expect"), std::string::npos);
}

// An exchange for "POST /sse" with body "{}" keyed as "store" keys it.
Exchange StreamExchange(const Store& store) {
  Exchange e;
  e.request.method = "POST";
  e.request.path = "/sse";
  e.request.body = "{}";
  e.key_hex = Canonicalizer(store.rules()).Key(e.request).ToHex();
  e.response.status = 200;
  e.response.chunked = true;
  e.response.headers = {{"Content-Type", "text/event-stream"}};
  e.response.chunks = {{1000, "data: 1\n\n"}, {2000, "data: 2\n\n"}};
  return e;
}

TEST(Front, Http10ClientsGetStreamsWithoutChunking) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  ASSERT_TRUE(store->WaitCommitted(store->Append(StreamExchange(*store))).ok());
  InProcessRewind replay(ReplayFrom(store.get()));
  RawResponse r = RawExchange(
      replay.port(), "POST /sse HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.chunked) << r.head;
  EXPECT_EQ(HeaderOf(r, "Connection"), "close");
  EXPECT_EQ(r.body, "data: 1\n\ndata: 2\n\n");
  // HTTP/1.1 still gets the recorded chunks.
  RawResponse r11 =
      RawExchange(replay.port(), RequestText("POST", "/sse", "{}"));
  EXPECT_TRUE(r11.chunked);
  EXPECT_EQ(r11.chunks.size(), 2u);
  // Relayed by record, the backend's chunked stream reaches an HTTP/1.0
  // client the same way.
  auto recording = OpenTestStore(dir.File("relay.sqlite"));
  InProcessRewind rec(RecordTo(
      recording.get(), "http://127.0.0.1:" + std::to_string(replay.port())));
  RawResponse relayed = RawExchange(
      rec.port(), "POST /sse HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(relayed.status, 200);
  EXPECT_FALSE(relayed.chunked) << relayed.head;
  EXPECT_EQ(HeaderOf(relayed, "Connection"), "close");
  EXPECT_EQ(relayed.body, "data: 1\n\ndata: 2\n\n");
}

// What a HEAD or a 304 says its body would be is kept through record and
// replay (it is not framing: no body follows).
TEST(Front, TheLengthOfAHeadOrA304IsRelayedRecordedAndReplayed) {
  testing::BackgroundServer backend;
  backend.server().Get(
      "/file", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(std::string(12345, 'x'), "application/octet-stream");
      });
  backend.server().Get("/etag",
                       [](const httplib::Request&, httplib::Response& res) {
                         res.status = 304;
                         res.set_header("ETag", "\"v1\"");
                         res.set_header("Content-Length", "100");
                       });
  backend.Start();
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  const std::string head_file =
      "HEAD /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string get_etag =
      "GET /etag HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  {
    InProcessRewind rec(RecordTo(store.get(), backend.url()));
    RawResponse head = RawExchange(rec.port(), head_file);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(HeaderOf(head, "Content-Length"), "12345") << head.head;
    RawResponse etag = RawExchange(rec.port(), get_etag);
    EXPECT_EQ(etag.status, 304);
    EXPECT_EQ(HeaderOf(etag, "Content-Length"), "100") << etag.head;
  }
  InProcessRewind replay(ReplayFrom(store.get()));
  RawResponse head = RawExchange(replay.port(), head_file);
  EXPECT_EQ(HeaderOf(head, "X-Rewind"), "hit") << head.head;
  EXPECT_EQ(HeaderOf(head, "Content-Length"), "12345") << head.head;
  RawResponse etag = RawExchange(replay.port(), get_etag);
  EXPECT_EQ(etag.status, 304);
  EXPECT_EQ(HeaderOf(etag, "Content-Length"), "100") << etag.head;
  EXPECT_EQ(HeaderOf(etag, "ETag"), "\"v1\"");
}

// A client that pipelines more after a Connection: close request still gets
// the whole answer: the server drops the unread rest instead of closing on
// it (which resets the connection and can destroy the answer's tail).
TEST(Front, AnAnswerBeforeACloseIsNotCutByUnreadInput) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  StoreBinaryAnswer(store.get(), "GET", "/big", std::string(4 << 20, 'x'), 0);
  InProcessRewind replay(ReplayFrom(store.get()));
  for (int run = 0; run < 3; ++run) {
    int fd = Connect(replay.port());
    ASSERT_GE(fd, 0);
    const std::string more(1 << 20, 'y');
    const std::string bytes =
        "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        "POST /more HTTP/1.1\r\nHost: x\r\nContent-Length: " +
        std::to_string(more.size()) + "\r\n\r\n" + more;
    std::thread sender(
        [&] { send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL); });
    std::this_thread::sleep_for(100ms);  // the answer fills the buffers
    const std::string data = ReadToEnd(fd);
    sender.join();
    close(fd);
    size_t pos = 0;
    RawResponse r = ParseRawResponse(data, &pos);
    EXPECT_EQ(r.status, 200) << "run " << run;
    EXPECT_EQ(r.body.size(), size_t{4} << 20) << "run " << run;
  }
}

// HEAD is answered as GET by the admin endpoints and the dummy engine (a
// health check's HEAD), without a body; each answer says X-Rewind once.
TEST(Front, HeadIsAnsweredAsGetByAdminAndServe) {
  ServerOptions o;
  o.mode = ServerMode::kServe;
  o.front.quiet = true;
  InProcessRewind serve(o);
  for (const char* path : {"/__rewind/health", "/__rewind/stats", "/metrics",
                           "/v1/models", "/health"}) {
    RawResponse get = RawExchange(serve.port(), RequestText("GET", path, ""));
    RawResponse head = RawExchange(serve.port(), RequestText("HEAD", path, ""));
    EXPECT_EQ(get.status, 200) << path;
    EXPECT_EQ(head.status, 200) << path;
    EXPECT_EQ(head.body, "") << path;
    // /metrics counts the requests themselves: its length moves.
    if (std::string(path) != "/metrics") {
      EXPECT_EQ(HeaderOf(head, "Content-Length"),
                std::to_string(get.body.size()))
          << path << "\n"
          << head.head;
    }
    size_t said = 0;
    for (size_t at = get.head.find("X-Rewind:"); at != std::string::npos;
         at = get.head.find("X-Rewind:", at + 1)) {
      ++said;
    }
    EXPECT_EQ(said, 1u) << path << "\n" << get.head;
  }
}

TEST(Front, HeadReplaySendsTheRecordedLength) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  StoreBinaryAnswer(store.get(), "HEAD", "/file", std::string(1234, 'x'), 1000);
  InProcessRewind replay(ReplayFrom(store.get()));
  int fd = Connect(replay.port());
  const std::string req =
      "HEAD /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  const std::string data = ReadToEnd(fd);
  close(fd);
  EXPECT_NE(data.find("Content-Length: 1234\r\n"), std::string::npos) << data;
  EXPECT_EQ(data.substr(data.find("\r\n\r\n") + 4), "");
}

// The backend gets the client's end-to-end headers in the order sent;
// hop-by-hop ones are the front's, and Accept-Encoding is left out so the
// answer comes without a Content-Encoding (readable when recorded).
TEST(Front, HeadersReachTheBackendInOrderWithoutHopByHopOrAcceptEncoding) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  RawBackend backend;
  InProcessRewind rec(RecordTo(store.get(), backend.url()));
  RawResponse r = RawExchange(
      rec.port(),
      "POST /x HTTP/1.1\r\nHost: x\r\nX-Zulu: 1\r\nAccept-Encoding: gzip, "
      "br\r\nX-Alpha: 2\r\nKeep-Alive: timeout=9\r\nTE: trailers\r\n"
      "X-Mike: 3\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\n"
      "Content-Length: 2\r\n\r\n{}");
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(backend.heads().size(), 1u);
  const std::string lower = Lowered(backend.heads()[0]);
  const size_t zulu = lower.find("\r\nx-zulu: 1");
  const size_t alpha = lower.find("\r\nx-alpha: 2");
  const size_t mike = lower.find("\r\nx-mike: 3");
  ASSERT_NE(zulu, std::string::npos) << lower;
  ASSERT_NE(alpha, std::string::npos) << lower;
  ASSERT_NE(mike, std::string::npos) << lower;
  EXPECT_LT(zulu, alpha);
  EXPECT_LT(alpha, mike);
  EXPECT_EQ(lower.find("accept-encoding"), std::string::npos) << lower;
  EXPECT_EQ(lower.find("keep-alive: timeout=9"), std::string::npos) << lower;
  EXPECT_EQ(lower.find("\r\nte:"), std::string::npos) << lower;
  // Named by Connection: hop-by-hop too.
  EXPECT_EQ(lower.find("x-hop"), std::string::npos) << lower;
}

TEST(Front, HeadersTheBackendsConnectionNamesAreNotRelayedOrRecorded) {
  testing::BackgroundServer backend;
  backend.server().Get("/",
                       [](const httplib::Request&, httplib::Response& res) {
                         res.set_header("Connection", "X-Hop");
                         res.set_header("X-Hop", "1");
                         res.set_header("X-End", "2");
                         res.set_content("{}", "application/json");
                       });
  backend.Start();
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  const std::string get =
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  {
    InProcessRewind rec(RecordTo(store.get(), backend.url()));
    RawResponse r = RawExchange(rec.port(), get);
    EXPECT_EQ(HeaderOf(r, "X-End"), "2") << r.head;
    EXPECT_EQ(HeaderOf(r, "X-Hop"), "") << r.head;
  }
  InProcessRewind replay(ReplayFrom(store.get()));
  RawResponse r = RawExchange(replay.port(), get);
  EXPECT_EQ(HeaderOf(r, "X-Rewind"), "hit") << r.head;
  EXPECT_EQ(HeaderOf(r, "X-End"), "2") << r.head;
  EXPECT_EQ(HeaderOf(r, "X-Hop"), "") << r.head;
}

// An idle connection is closed after --keep-alive-timeout, and the
// Keep-Alive header says so (a client reusing it later would race the
// close).
TEST(Front, KeepAliveSaysTheIdleTimeoutTheServerKeeps) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  ServerOptions o = ReplayFrom(store.get());
  o.front.keep_alive_timeout_s = 1;
  InProcessRewind replay(o);
  int fd = Connect(replay.port());
  ASSERT_GE(fd, 0);
  const std::string req = "GET /__rewind/health HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(req.size()));
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 10000), 0) << head;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0) << head;
    head.append(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(head.find("\r\nKeep-Alive: timeout=1\r\n"), std::string::npos)
      << head;
  const auto idle = Steady::now();
  // The rest of the body, then the close.
  while (true) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 10000), 0) << "the idle connection was kept open";
    if (recv(fd, buf, sizeof(buf), 0) <= 0) break;
  }
  // Closed after about the second it announced (the reactor sweeps every
  // 100 ms), not at once and not after cpp-httplib's old 5 s; generous
  // bounds for a loaded or sanitized run.
  const double closed_after_ms = MsSince(idle);
  EXPECT_GT(closed_after_ms, 500.0);
  EXPECT_LT(closed_after_ms, 4000.0);
  close(fd);
}

// Slow clients trickling their requests a byte at a time hold no worker:
// with 4 workers and 40 such connections, normal requests are served at
// once, and the trickling ones are cut at --client-timeout.
TEST(Front, TricklingClientsDoNotStarveOthers) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  ServerOptions o = ReplayFrom(store.get());
  o.front.max_connections = 4;
  o.front.client_timeout_s = 2;
  InProcessRewind replay(o);
  std::vector<int> slow;
  for (int i = 0; i < 40; ++i) slow.push_back(Connect(replay.port()));
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    const std::string text =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n";
    for (size_t at = 0; at < text.size() && !done; ++at) {
      for (int fd : slow) send(fd, &text[at], 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(50ms);
    }
  });
  std::this_thread::sleep_for(200ms);
  double worst = 0;
  for (int i = 0; i < 30; ++i) {
    const auto start = Steady::now();
    RawResponse r =
        RawExchange(replay.port(), RequestText("GET", "/__rewind/health", ""));
    worst = std::max(worst, MsSince(start));
    EXPECT_EQ(r.status, 200);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_LT(worst, 500.0);
  done = true;
  trickle.join();
  // Each trickling client got 408 (or a close) once its time was up.
  int answered_408 = 0;
  for (int fd : slow) {
    timeval tv{4, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[16] = {0};
    if (recv(fd, buf, 12, MSG_WAITALL) == 12 &&
        std::string(buf, 12) == "HTTP/1.1 408") {
      answered_408++;
    }
    close(fd);
  }
  EXPECT_EQ(answered_408, 40);
}

// A backend whose every connection is handed to "script" on its own
// thread (raw socket: it may answer anything, or nothing).
class ScriptedBackend {
 public:
  explicit ScriptedBackend(std::function<void(int)> script)
      : script_(std::move(script)) {
    fd_ = ListenLoopback(&port_);
    thread_ = std::thread([this] {
      while (true) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        connections_.emplace_back([this, c] {
          script_(c);
          close(c);
        });
      }
    });
  }
  ~ScriptedBackend() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (auto& t : connections_) t.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

 private:
  std::function<void(int)> script_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::vector<std::thread> connections_;
};

TEST(Front, BackendTimeoutIsHonouredOnPost) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  // Reads the request, then says nothing for 2.5 s.
  ScriptedBackend silent([](int fd) {
    char buf[4096];
    recv(fd, buf, sizeof(buf), 0);
    std::this_thread::sleep_for(2500ms);
  });
  ServerOptions o = RecordTo(store.get(), silent.url());
  o.upstream.backend_timeout_s = 1;
  InProcessRewind rec(o);
  const auto start = Steady::now();
  RawResponse r = RawExchange(
      rec.port(), RequestText("POST", "/v1/chat/completions", "{}"));
  const double took = MsSince(start);
  EXPECT_EQ(r.status, 504);
  EXPECT_NE(r.body.find("--backend-timeout (1 s)"), std::string::npos)
      << r.body;
  EXPECT_GT(took, 900.0);
  EXPECT_LT(took, 2500.0);
}

TEST(Front, BackendClosingMidHeadersIsNamedAsSuch) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  ScriptedBackend broken([](int fd) {
    char buf[4096];
    recv(fd, buf, sizeof(buf), 0);
    const std::string part = "HTTP/1.1 200 OK\r\nContent-Type: appli";
    send(fd, part.data(), part.size(), MSG_NOSIGNAL);
  });
  InProcessRewind rec(RecordTo(store.get(), broken.url()));
  RawResponse r = RawExchange(
      rec.port(), RequestText("POST", "/v1/chat/completions", "{}"));
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(r.body.find("No error"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("did not answer"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace rwd
