// The front's paced path end to end: answers due later are written by the
// reactor on timers, so streams hold no worker thread, a slow reader holds
// only its own stream, and keep-alive and pipelining go on after a paced
// answer as after any other.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "rewind/latency.h"
#include "rewind/request_key.h"
#include "rewind/server.h"
#include "rewind/synth.h"
#include "testutil/raw_http.h"
#include "testutil/test_server.h"

namespace rwd {
namespace {

using namespace testing;  // NOLINT: the raw-HTTP helpers
using Steady = std::chrono::steady_clock;

// The dummy engine answering every chat request after "ttft" ms, then one
// token every "itl" ms, on "workers" worker threads.
ServerOptions PacedServe(const std::string& ttft, const std::string& itl,
                         size_t workers) {
  ServerOptions o;
  o.mode = ServerMode::kServe;
  o.front.quiet = true;
  o.front.max_connections = workers;
  o.synth.output =
      OutputMode::Parse("static:one two three four", nullptr).value();
  o.synth.ttft = Distribution::Parse(ttft).value();
  o.synth.itl = Distribution::Parse(itl).value();
  o.synth.deterministic_created = true;
  return o;
}

std::string Chat(bool stream, const std::string& extra_headers = "",
                 bool close = true) {
  const std::string body =
      std::string(
          R"({"model":"m","messages":[{"role":"user","content":"hi"}])") +
      (stream ? R"(,"stream":true})" : "}");
  std::string text =
      RequestText("POST", "/v1/chat/completions", body, extra_headers);
  if (!close) {
    const std::string header = "Connection: close\r\n";
    text.erase(text.find(header), header.size());
  }
  return text;
}

double MsSince(Steady::time_point t) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t).count();
}

// A stalled reader's receive buffer: small, so that an answer really
// stalls instead of landing whole in an autotuned buffer.
constexpr int kSmallWindow = 4096;

// Records "response" as the answer to POST "path" with body "{}".
void RecordOne(Store* store, const std::string& path, Response response) {
  Exchange e;
  e.request.method = "POST";
  e.request.path = path;
  e.request.body = "{}";
  e.key_hex = Canonicalizer(store->rules()).Key(e.request).ToHex();
  e.response = std::move(response);
  ASSERT_TRUE(store->WaitCommitted(store->Append(e)).ok());
}

// 40 streams of ~400 ms on 2 workers: with a worker per stream they would
// take 20 rounds (8 s); on timers they run side by side.
TEST(PacedFront, StreamsOutnumberingTheWorkersRunSideBySide) {
  InProcessRewind serve(PacedServe("fixed:100", "fixed:100", 2));
  std::atomic<int> complete{0};
  std::vector<std::thread> clients;
  const Steady::time_point start = Steady::now();
  for (int i = 0; i < 40; ++i) {
    clients.emplace_back([&] {
      RawResponse r = RawExchange(serve.port(), Chat(true));
      if (r.status == 200 && r.complete &&
          r.body.find("data: [DONE]") != std::string::npos) {
        complete++;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(complete.load(), 40);
  // One stream takes ~400 ms; generous room for a loaded machine, far
  // below the 8 s of one worker per stream.
  EXPECT_LT(MsSince(start), 3000.0);
}

// The head of a non-streamed answer is due after its time to first token,
// and a worker is not what waits for it.
TEST(PacedFront, AWholeAnswerDueLaterWaitsOnATimerNotAWorker) {
  InProcessRewind serve(PacedServe("fixed:300", "fixed:0", 1));
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  const Steady::time_point start = Steady::now();
  for (int i = 0; i < 10; ++i) {
    clients.emplace_back([&] {
      RawResponse r = RawExchange(serve.port(), Chat(false));
      if (r.status == 200 && r.complete) ok++;
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 10);
  const double ms = MsSince(start);
  EXPECT_GE(ms, 290.0);   // each waited for its first token
  EXPECT_LT(ms, 2000.0);  // one worker would take 10 x 300 ms
}

// After a paced answer the connection carries the next request, pipelined
// behind it or sent later.
TEST(PacedFront, KeepAliveAndPipeliningGoOnAfterAPacedAnswer) {
  InProcessRewind serve(PacedServe("fixed:20", "fixed:10", 4));
  const int fd = Connect(serve.port());
  ASSERT_GE(fd, 0);
  const std::string two = Chat(true, "", false) + Chat(false, "", false);
  ASSERT_EQ(send(fd, two.data(), two.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(two.size()));
  std::string data;
  char buf[4096];
  size_t pos = 0;
  std::vector<RawResponse> got;
  const Steady::time_point start = Steady::now();
  while (got.size() < 3 && MsSince(start) < 10000) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
    while (true) {
      size_t at = pos;
      RawResponse r = ParseRawResponse(data, &at);
      if (!r.complete) break;
      pos = at;
      got.push_back(r);
      if (got.size() == 2) {  // the third, sent after both answers
        const std::string third = Chat(false);
        send(fd, third.data(), third.size(), MSG_NOSIGNAL);
      }
    }
  }
  close(fd);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[0].chunked);
  EXPECT_NE(got[0].body.find("data: [DONE]"), std::string::npos);
  EXPECT_FALSE(got[1].chunked);
  EXPECT_NE(got[1].body.find("one two three four"), std::string::npos);
  EXPECT_NE(got[2].head.find("Connection: close"), std::string::npos);
}

// A client that stops reading holds its own stream, not a worker and not
// the others; it is cut once it makes no progress for --client-timeout.
TEST(PacedFront, AStalledReaderIsCutAndHoldsNoOneElseUp) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Response big;
  big.status = 200;
  big.chunked = true;
  big.headers_us = 1000;
  // 32 MiB: more than the server's send buffer (at most 4 MiB here) and the
  // client's small window hold.
  for (int i = 0; i < 512; ++i) {
    big.chunks.push_back({2000, std::string(64 * 1024, 'x')});
  }
  RecordOne(store.get(), "/big", std::move(big));
  ServerOptions o;
  o.mode = ServerMode::kReplay;
  o.store = store.get();
  o.front.quiet = true;
  o.front.max_connections = 1;
  o.front.client_timeout_s = 3;
  o.replay.latency = LatencyModel::Parse("recorded").value();
  InProcessRewind replay(o);

  const int stalled = Connect(replay.port(), kSmallWindow);
  ASSERT_GE(stalled, 0);
  const std::string request = RequestText("POST", "/big", "{}");
  send(stalled, request.data(), request.size(), MSG_NOSIGNAL);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Others are served meanwhile, on the one worker, long before the
  // stalled stream is cut (a worker held by it would answer them only
  // then, after 3 s).
  const Steady::time_point others = Steady::now();
  for (int i = 0; i < 3; ++i) {
    RawResponse r =
        RawExchange(replay.port(), RequestText("GET", "/__rewind/health", ""));
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_LT(MsSince(others), 2000.0);
  // Cut after --client-timeout without progress: what the client then
  // reads ends well short of the body, with no last chunk.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  const Steady::time_point read_start = Steady::now();
  const std::string got = ReadToEnd(stalled);
  close(stalled);
  EXPECT_LT(MsSince(read_start), 5000.0);
  EXPECT_LT(got.size(), 512u * 64 * 1024);
  EXPECT_EQ(got.find("\r\n0\r\n\r\n"), std::string::npos);
}

// A replayed hit whose recording is cached is answered on the event loop:
// it does not wait for a worker, even when every worker is busy with a
// request that blocks (here a miss passed through to a slow backend).
TEST(LoopServing, ACachedHitIsAnsweredWhileEveryWorkerIsBusy) {
  testing::BackgroundServer backend;
  backend.server().Post(
      "/slow", [](const httplib::Request&, httplib::Response& res) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        res.set_content("{}", "application/json");
      });
  backend.Start();
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Response recorded;
  recorded.status = 200;
  recorded.headers = {{"Content-Type", "application/json"}};
  recorded.chunks = {{0, "{\"hit\":true}"}};
  RecordOne(store.get(), "/hit", std::move(recorded));
  ServerOptions o;
  o.mode = ServerMode::kReplay;
  o.store = store.get();
  o.front.quiet = true;
  o.front.max_connections = 1;  // one worker
  o.replay.latency = LatencyModel::Parse("none").value();
  o.replay.on_miss = MissPolicy::kPassthrough;
  o.upstream.backend = backend.url();
  InProcessRewind replay(o);
  // The first hit reads the recording (on the worker) into the cache.
  RawResponse first =
      RawExchange(replay.port(), RequestText("POST", "/hit", "{}"));
  ASSERT_EQ(first.status, 200);
  ASSERT_EQ(first.body, "{\"hit\":true}");

  std::thread slow([&] {
    RawResponse r =
        RawExchange(replay.port(), RequestText("POST", "/slow", "{}"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(HeaderOf(r, "X-Rewind"), "passthrough");
  });
  std::this_thread::sleep_for(
      std::chrono::milliseconds(300));  // it holds the worker
  const Steady::time_point asked = Steady::now();
  RawResponse hit =
      RawExchange(replay.port(), RequestText("POST", "/hit", "{}"));
  const double ms = MsSince(asked);
  slow.join();
  EXPECT_EQ(hit.status, 200);
  EXPECT_EQ(hit.body, "{\"hit\":true}");
  EXPECT_EQ(HeaderOf(hit, "X-Rewind"), "hit");
  // The worker is busy for 1.2 s more: an answer that waited for it would
  // take that long.
  EXPECT_LT(ms, 600.0);
}

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// A large answer is sent from the cached recording, not copied for each
// request: 40 clients that ask for an 8 MiB answer and do not read hold
// their sockets' buffers (kernel memory), not 320 MiB of copies.
TEST(PacedFront, StalledReadersOfALargeAnswerShareTheRecording) {
  TempDir dir;
  auto store = OpenTestStore(dir.File("rec.sqlite"));
  Response large;
  large.status = 200;
  large.headers = {{"Content-Type", "application/octet-stream"}};
  large.chunks = {{0, std::string(8 << 20, 'x')}};
  RecordOne(store.get(), "/large", std::move(large));
  ServerOptions o;
  o.mode = ServerMode::kReplay;
  o.store = store.get();
  o.front.quiet = true;
  o.replay.latency = LatencyModel::Parse("none").value();
  InProcessRewind replay(o);
  // Read once in full: the recording is then in the cache.
  RawResponse whole =
      RawExchange(replay.port(), RequestText("POST", "/large", "{}"));
  ASSERT_EQ(whole.status, 200);
  ASSERT_EQ(whole.body.size(), 8u << 20);
  const long before = RssKb();
  std::vector<int> stalled;
  const std::string request = RequestText("POST", "/large", "{}");
  for (int i = 0; i < 40; ++i) {
    const int fd = Connect(replay.port(), kSmallWindow);
    ASSERT_GE(fd, 0);
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    stalled.push_back(fd);
  }
  // Each answer has begun: its head is readable.
  for (int fd : stalled) {
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 10000), 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const long grown_mb = (RssKb() - before) / 1024;
  for (int fd : stalled) close(fd);
  EXPECT_LT(grown_mb, 100) << "RSS grew by " << grown_mb << " MB";
}

}  // namespace
}  // namespace rwd
