// The record path's forwarder against real servers on 127.0.0.1: memory
// stays bounded whatever the answer's size, answers beyond
// --max-record-bytes are relayed but not stored, a client that goes away
// stops the backend's transfer, and request headers are forwarded in
// linear time.
#include "http/forwarder.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>

#include "rewind/clock.h"
#include "rewind/server.h"
#include "testutil/raw_http.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using namespace std::chrono_literals;
using testing::BackgroundServer;
using testing::RewindProcess;
using testing::TempDir;

using Steady = std::chrono::steady_clock;

constexpr size_t kPiece = 64 * 1024;

// Under a sanitizer the process's memory is the sanitizer's (shadow
// memory, a quarantine of freed blocks): its resident size says nothing
// about what rewind holds, so the bounds on it are checked only without.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kMemoryIsMeasurable = false;
#else
constexpr bool kMemoryIsMeasurable = true;
#endif

// The byte at "offset" of every body the backend sends.
char PatternAt(uint64_t offset) { return static_cast<char>('a' + offset % 26); }

void FillPattern(uint64_t offset, size_t n, std::string* out) {
  out->resize(n);
  for (size_t i = 0; i < n; ++i) (*out)[i] = PatternAt(offset + i);
}

// A backend that makes its bodies up piece by piece (it holds none whole):
//   GET /length/N   N bytes with a Content-Length
//   GET /chunked/N  N bytes, chunked
//   GET /endless    chunked, as fast as it can, until the write fails
class FastBackend {
 public:
  FastBackend() {
    httplib::Server& s = bg_.server();
    s.Get(R"(/length/(\d+))",
          [](const httplib::Request& req, httplib::Response& res) {
            const size_t n = std::stoull(req.matches[1]);
            res.set_content_provider(
                n, "application/octet-stream",
                [](size_t offset, size_t length, httplib::DataSink& sink) {
                  std::string piece;
                  FillPattern(offset, std::min(length, kPiece), &piece);
                  return sink.write(piece.data(), piece.size());
                });
          });
    s.Get(R"(/chunked/(\d+))",
          [](const httplib::Request& req, httplib::Response& res) {
            const size_t n = std::stoull(req.matches[1]);
            res.set_chunked_content_provider(
                "application/octet-stream",
                [n](size_t offset, httplib::DataSink& sink) {
                  if (offset >= n) {
                    sink.done();
                    return true;
                  }
                  std::string piece;
                  FillPattern(offset, std::min(n - offset, kPiece), &piece);
                  return sink.write(piece.data(), piece.size());
                });
          });
    s.Get("/endless", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider(
          "application/octet-stream",
          [this](size_t offset, httplib::DataSink& sink) {
            std::string piece;
            FillPattern(offset, kPiece, &piece);
            // Bounded: 16 GB or 30 s, far beyond what any test waits for.
            if (offset > (16ull << 30) ||
                Steady::now() - endless_start_ > 30s ||
                !sink.write(piece.data(), piece.size())) {
              endless_sent_ = offset;
              endless_broke_ = Steady::now();
              endless_broken_ = true;
              return false;
            }
            return true;
          });
    });
    bg_.Start();
  }
  std::string url() const { return bg_.url(); }
  void StartEndless() { endless_start_ = Steady::now(); }
  bool endless_broken() const { return endless_broken_; }
  Steady::time_point endless_broke() const { return endless_broke_; }
  uint64_t endless_sent() const { return endless_sent_; }

 private:
  BackgroundServer bg_;
  std::atomic<bool> endless_broken_{false};
  std::atomic<uint64_t> endless_sent_{0};
  Steady::time_point endless_broke_;
  Steady::time_point endless_start_ = Steady::now();
};

// A field of /proc/PID/status in kB ("VmHWM", "VmRSS"), or -1.
long StatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0)
      return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// GETs "path" and checks every byte of the body against the pattern
// without keeping it. Returns the number of body bytes, or -1 on a bad
// byte or a broken transfer.
int64_t FetchAndCheck(int port, const std::string& path, int* status) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  c.set_decompress(false);
  uint64_t got = 0;
  bool same = true;
  auto res = c.Get(path, [&](const char* data, size_t n) {
    for (size_t i = 0; i < n && same; ++i) same = data[i] == PatternAt(got + i);
    got += n;
    return same;
  });
  if (!res) return -1;
  *status = res->status;
  return same ? static_cast<int64_t>(got) : -1;
}

std::string Metrics(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);  // a sanitizer build under load is slow
  auto res = c.Get("/metrics");
  return res ? res->body : "";
}

int CountExchanges(const std::string& path) {
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  return db.execAndGet("SELECT count(*) FROM exchanges").getInt();
}

size_t CountOf(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + 1))
    ++n;
  return n;
}

// 64 MB answers through `rewind record --max-record-bytes 1048576`: the
// client gets every byte, nothing is stored, each is logged once and
// counted, and the recorder's memory hardly grows (it held each answer
// three times over, 190 MB and more, before).
TEST(RecordLimits, AnswerBeyondMaxRecordBytesIsRelayedWholeButNotStored) {
  TempDir dir;
  FastBackend backend;
  const std::string db = dir.File("rec.sqlite");
  const std::string log = dir.File("rewind.log");
  RewindProcess rec({"record", "--backend", backend.url(), "--db", db,
                     "--listen", "127.0.0.1:0", "--max-record-bytes", "1048576",
                     "--log-file", log});
  ASSERT_GT(rec.port(), 0) << rec.first_line();
  const long rss_before = StatusKb(rec.pid(), "VmRSS");
  ASSERT_GT(rss_before, 0);
  constexpr int64_t kSize = 64 << 20;
  for (const std::string path : {"/length/", "/chunked/"}) {
    int status = 0;
    EXPECT_EQ(FetchAndCheck(rec.port(), path + std::to_string(kSize), &status),
              kSize)
        << path;
    EXPECT_EQ(status, 200);
  }
  const long peak = StatusKb(rec.pid(), "VmHWM");
  if (kMemoryIsMeasurable) {
    EXPECT_LT(peak - rss_before, 16 * 1024)
        << "the recorder grew by " << (peak - rss_before)
        << " kB for 64 MB answers";
  }
  EXPECT_NE(Metrics(rec.port())
                .find("rewind_record_skipped_total{reason=\"too_large\"} 2"),
            std::string::npos)
      << Metrics(rec.port());
  rec.Signal(SIGTERM);
  ASSERT_EQ(rec.Wait(), 0);
  EXPECT_EQ(CountExchanges(db), 0);
  const std::string logged = testing::ReadFile(log);
  EXPECT_EQ(CountOf(logged, "larger than --max-record-bytes"), 2u) << logged;
}

// Within the limit an answer is recorded whole, and the recorder holds it
// about twice at most (its one copy, and SQLite's row while it commits).
TEST(RecordLimits, LargeAnswerWithinTheLimitIsRecordedWithBoundedMemory) {
  TempDir dir;
  FastBackend backend;
  const std::string db = dir.File("rec.sqlite");
  RewindProcess rec({"record", "--backend", backend.url(), "--db", db,
                     "--listen", "127.0.0.1:0", "--quiet"});
  ASSERT_GT(rec.port(), 0) << rec.first_line();
  const long rss_before = StatusKb(rec.pid(), "VmRSS");
  constexpr int64_t kSize = 32 << 20;
  int status = 0;
  EXPECT_EQ(
      FetchAndCheck(rec.port(), "/chunked/" + std::to_string(kSize), &status),
      kSize);
  const long grew_kb = StatusKb(rec.pid(), "VmHWM") - rss_before;
  if (kMemoryIsMeasurable) {
    EXPECT_LT(grew_kb, 5 * (kSize >> 10) / 2)
        << "the recorder grew by " << grew_kb << " kB for a 32 MB answer";
  }
  rec.Signal(SIGTERM);
  ASSERT_EQ(rec.Wait(), 0);
  SQLite::Database sql(db, SQLite::OPEN_READONLY);
  SQLite::Statement st(sql,
                       "SELECT length(response_body), complete FROM exchanges");
  ASSERT_TRUE(st.executeStep());
  EXPECT_EQ(st.getColumn(0).getInt64(), kSize);
  EXPECT_EQ(st.getColumn(1).getInt(), 1);
}

using testing::Connect;

// However fast the backend streams, a client that goes away ends the
// backend's transfer at once, and the stream's first megabyte past the
// limit is all the recorder kept.
TEST(RecordLimits, ClientGoneCancelsAFastBackendAtOnce) {
  TempDir dir;
  FastBackend backend;
  const std::string db = dir.File("rec.sqlite");
  RewindProcess rec({"record", "--backend", backend.url(), "--db", db,
                     "--listen", "127.0.0.1:0", "--max-record-bytes", "1048576",
                     "--quiet"});
  ASSERT_GT(rec.port(), 0) << rec.first_line();
  int fd = Connect(rec.port());
  ASSERT_GE(fd, 0);
  backend.StartEndless();
  const std::string request =
      "GET /endless HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  size_t got = 0;
  char buf[65536];
  while (got < (8u << 20)) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    got += static_cast<size_t>(n);
  }
  close(fd);  // unread data: the kernel resets the connection
  const auto closed = Steady::now();
  for (int i = 0; i < 500 && !backend.endless_broken(); ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(backend.endless_broken()) << "the backend kept streaming";
  const double cancel_ms = std::chrono::duration<double, std::milli>(
                               backend.endless_broke() - closed)
                               .count();
  std::printf("client gone -> backend transfer ended: %.1f ms\n", cancel_ms);
  EXPECT_LT(cancel_ms, 500.0);
  rec.Signal(SIGTERM);
  ASSERT_EQ(rec.Wait(), 0);
  EXPECT_EQ(CountExchanges(db), 0);
}

}  // namespace
}  // namespace rwd

namespace rwd {
namespace {

// A backend on a raw socket that reads one request head, counts its
// header lines, and answers "ok".
class CountingBackend {
 public:
  CountingBackend() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(listen_fd_, 4);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CountingBackend() {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  // Header lines of the request received, or -1 before it came.
  long headers() const { return headers_; }

 private:
  void Serve() {
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    timeval tv{30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string head;
    char buf[65536];
    while (head.find("\r\n\r\n") == std::string::npos &&
           head.size() < (64u << 20)) {
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      head.append(buf, static_cast<size_t>(n));
    }
    const size_t end = head.find("\r\n\r\n");
    if (end != std::string::npos) {
      long lines = 0;
      for (size_t at = head.find("\r\n"); at < end;
           at = head.find("\r\n", at + 2))
        ++lines;
      headers_ = lines;
      const std::string answer =
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
    }
    close(fd);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<long> headers_{-1};
  std::thread thread_;
};

// Writes the body a Forward() left in "res" (whole, or by its provider).
std::string BodyOf(httplib::Response& res) {
  if (!res.content_provider_) return res.body;
  std::string out;
  httplib::DataSink sink;
  sink.write = [&](const char* d, size_t n) {
    out.append(d, n);
    return true;
  };
  sink.done = [] {};
  sink.is_writable = [] { return true; };
  res.content_provider_(0, res.content_length_, sink);
  return out;
}

// 100,000 request headers are forwarded in linear time (curl_slist_append
// walks its list on every call: 8 s for these, minutes for 300,000).
TEST(ForwardHeaders, HundredThousandHeadersAreForwardedInLinearTime) {
  CountingBackend backend;
  Forwarder forwarder(BackendUrl::Parse(backend.url()).value(), 30,
                      SystemClock());
  Request request;
  request.method = "GET";
  request.path = "/many";
  constexpr int kHeaders = 100000;
  for (int i = 0; i < kHeaders; ++i)
    request.headers.emplace_back("X-A", std::to_string(i % 10));
  httplib::Response res;
  const auto start = Steady::now();
  ASSERT_TRUE(
      forwarder.Forward(request, false, SystemClock()->NowMicros(), {}, &res))
      << res.body;
  const double ms =
      std::chrono::duration<double, std::milli>(Steady::now() - start).count();
  std::printf("forwarded %d headers in %.1f ms\n", kHeaders, ms);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(BodyOf(res), "ok");
  // The client's headers, and curl's own Host.
  EXPECT_EQ(backend.headers(), kHeaders + 1);
  EXPECT_LT(ms, 1500.0);
  forwarder.Shutdown();
}

// A head libcurl cannot send (its request buffer holds 1 MiB) is refused
// with 431 before the backend is contacted; it used to reach the client as
// "502 backend did not answer: Out of memory".
TEST(ForwardHeaders, HeadTooLargeToForwardGets431) {
  CountingBackend backend;
  Forwarder forwarder(BackendUrl::Parse(backend.url()).value(), 30,
                      SystemClock());
  Request request;
  request.method = "GET";
  request.path = "/many";
  for (int i = 0; i < 100000; ++i) {
    request.headers.emplace_back("X-Header-Number-" + std::to_string(i),
                                 "value");
  }
  httplib::Response res;
  EXPECT_FALSE(
      forwarder.Forward(request, false, SystemClock()->NowMicros(), {}, &res));
  EXPECT_EQ(res.status, 431);
  EXPECT_NE(res.body.find("rewind_headers_too_large"), std::string::npos)
      << res.body;
  EXPECT_EQ(backend.headers(), -1) << "the backend was sent a request";
  forwarder.Shutdown();
}

}  // namespace
}  // namespace rwd

namespace rwd {
namespace {

using testing::CountOf;
using testing::HeaderOf;
using testing::InProcessRewind;
using testing::RawExchange;
using testing::RawResponse;

const std::string kChainChat =
    R"({"model":"demo","messages":[{"role":"user","content":"hello chain"}]})";

std::string ChatRequest() {
  return testing::RequestText("POST", "/v1/chat/completions", kChainChat);
}

// X-Rewind*, X-Rewind-Key: what each of rewind's answers carries once.
void ExpectOneOfEach(const RawResponse& r, const std::string& outcome) {
  EXPECT_EQ(CountOf(r, "X-Rewind"), 1) << r.head;
  EXPECT_EQ(CountOf(r, "X-Rewind-Key"), 1) << r.head;
  EXPECT_EQ(HeaderOf(r, "X-Rewind"), outcome) << r.head;
}

std::string StoredHeaders(const std::string& db) {
  SQLite::Database sql(db, SQLite::OPEN_READONLY);
  return sql
      .execAndGet(
          "SELECT group_concat(request_headers || ' ' || response_headers, ' "
          "') "
          "FROM exchanges")
      .getString();
}

// `rewind serve` behind `rewind record` (the README's walk-through): the
// serve's own X-Rewind headers are neither relayed twice nor recorded, and
// replay answers with exactly one X-Rewind (hit) and one X-Rewind-Key, and
// counts a hit, not a synth.
TEST(RewindHeaders, ARewindBehindRecordLeavesNoRewindHeadersInTheRecording) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  auto store = testing::OpenTestStore(db);
  {
    ServerOptions serve;
    serve.mode = ServerMode::kServe;
    serve.synth.output = OutputMode::Parse("echo", nullptr).value();
    InProcessRewind engine(serve);
    ServerOptions record;
    record.mode = ServerMode::kRecord;
    record.store = store.get();
    record.upstream.backend =
        "http://127.0.0.1:" + std::to_string(engine.port());
    InProcessRewind rec(record);
    RawResponse r = RawExchange(
        rec.port(),
        testing::RequestText("POST", "/v1/chat/completions", kChainChat,
                             "X-Rewind-Latency: none\r\n"));
    EXPECT_EQ(r.status, 200);
    ExpectOneOfEach(r, "record");
    ASSERT_TRUE(rec.Stop().ok());
  }
  const std::string stored = StoredHeaders(db);
  EXPECT_NE(stored.find("Content-Type"), std::string::npos) << stored;
  EXPECT_EQ(stored.find("X-Rewind"), std::string::npos) << stored;
  ServerOptions replay;
  replay.mode = ServerMode::kReplay;
  replay.store = store.get();
  replay.replay.latency = LatencyModel::Parse("none").value();
  InProcessRewind rep(replay);
  RawResponse r = RawExchange(rep.port(), ChatRequest());
  EXPECT_EQ(r.status, 200);
  ExpectOneOfEach(r, "hit");
  const std::string metrics = Metrics(rep.port());
  EXPECT_NE(metrics.find("outcome=\"hit\",code=\"200\"} 1"), std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("outcome=\"synth\""), std::string::npos) << metrics;
}

TEST(RewindHeaders, RewindsOwnHeadersAreXRewindAndItsDashedFamily) {
  EXPECT_TRUE(IsRewindHeader("X-Rewind"));
  EXPECT_TRUE(IsRewindHeader("x-rewind-key"));
  EXPECT_TRUE(IsRewindHeader("X-REWIND-Latency"));
  EXPECT_FALSE(IsRewindHeader("X-Rewinder"));
  EXPECT_FALSE(IsRewindHeader("X-Rewin"));
  EXPECT_FALSE(IsRewindHeader("Content-Type"));
}

// A recording made before rewind left its own headers out still replays
// with one of each.
TEST(RewindHeaders, OldRecordingsWithRewindHeadersReplayOneOfEach) {
  TempDir dir;
  const std::string db = dir.File("rec.sqlite");
  auto store = testing::OpenTestStore(db);
  Exchange e;
  e.request.method = "POST";
  e.request.path = "/v1/chat/completions";
  e.request.headers = {{"Content-Type", "application/json"},
                       {"X-Rewind-Latency", "none"}};
  e.request.body = kChainChat;
  e.key_hex = Canonicalizer(store->rules()).Key(e.request).ToHex();
  e.response.status = 200;
  e.response.headers = {{"Content-Type", "application/json"},
                        {"X-Rewind", "synth"},
                        {"x-rewind-key", "0123456789abcdef0123456789abcdef"},
                        {"X-Rewind-Anything", "1"}};
  e.response.chunks = {Chunk{1000, "{\"ok\":true}"}};
  ASSERT_TRUE(store->WaitCommitted(store->Append(e)).ok());
  ServerOptions replay;
  replay.mode = ServerMode::kReplay;
  replay.store = store.get();
  replay.replay.latency = LatencyModel::Parse("none").value();
  InProcessRewind rep(replay);
  RawResponse r = RawExchange(rep.port(), ChatRequest());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"ok\":true}");
  ExpectOneOfEach(r, "hit");
  EXPECT_EQ(CountOf(r, "X-Rewind-Anything"), 0) << r.head;
  EXPECT_EQ(HeaderOf(r, "X-Rewind-Key"), e.key_hex);
}

}  // namespace
}  // namespace rwd
