// rewind-bench-fidelity: how faithfully `rewind replay` paces streams.
//
// Writes a recording holding one SSE stream with a known, uneven timeline,
// starts `rewind replay` on it as a child process, opens N concurrent
// streams from one epoll loop, timestamps every chunk as it completes, and
// reports the error of each arrival against request-sent + offset × scale,
// plus the replay process's peak RSS.
//
// "offset error" is each chunk's arrival against request-sent + recorded
// offset × scale, as the client sees it; "first chunk late" is that error
// for the first chunk alone (accepting and dispatching the request). The N
// streams open evenly over --ramp-ms (default half the stream's duration),
// so N streams are in flight at once without N simultaneous connects.
//
//   rewind-bench-fidelity --rewind build/rewind [--streams N] [--events E]
//                         [--duration-ms D] [--scale K] [--ramp-ms R]
//                         [--via-record 1]
//
// --via-record 1 puts `rewind record` between the client and the replay
// server (which then plays the backend): the difference from a direct run
// is what recording adds to each chunk's delivery. RSS is then record's.
//
// --serve 1 measures `rewind serve` (the dummy engine) instead: 10-token
// chat streams with --ttft-ms and --itl-ms (defaults 1000 and 500). Its
// schedule is what one stream alone receives, measured first in the same
// run. --defaults 1 starts rewind with no capacity flags (what a user
// gets), instead of --max-connections sized to the streams.
//
// Besides the offset errors it reports each stream's total time against
// one stream alone (p99 / alone) and the completion rate against the ideal
// (every stream taking exactly its schedule).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "rewind/request_key.h"
#include "rewind/store.h"

namespace {

using Clock = std::chrono::steady_clock;

// The recorded stream's headers come 0.5 ms after the request.
constexpr int64_t kHeadersUs = 500;

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             Clock::now().time_since_epoch())
      .count();
}

struct Flags {
  std::string rewind;
  int streams = 1;
  int events = 20;
  int duration_ms = 1000;
  double scale = 1.0;
  int ramp_ms = -1;  // streams open evenly over this time; default duration/2
  bool via_record = false;  // put `rewind record` between client and replay
  bool serve = false;       // measure `rewind serve` instead of replay
  bool defaults = false;    // no --max-connections
  int ttft_ms = 1000;       // with --serve
  int itl_ms = 500;         // with --serve
};

// Starts build/rewind with "args" and returns its pid; *port gets the port
// from its "listening on" line.
pid_t StartRewind(const std::string& binary, std::vector<std::string> args,
                  int* port) {
  int out[2];
  if (pipe(out) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  FILE* child = fdopen(out[0], "r");
  char line[256] = {0};
  if (!fgets(line, sizeof(line), child) || !strrchr(line, ':')) {
    std::cerr << "rewind did not start\n";
    std::exit(2);
  }
  *port = std::atoi(strrchr(line, ':') + 1);
  return pid;
}

void WaitUntilServing(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string health =
        "GET /__rewind/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send(fd, health.data(), health.size(), MSG_NOSIGNAL);
    char tmp[1024];
    while (read(fd, tmp, sizeof(tmp)) > 0) {
    }
  }
  close(fd);
}

struct Conn {
  int fd = -1;
  double sent_ms = 0;
  std::vector<double> arrivals;  // each chunk's, from sent_ms
  double total_ms = 0;
  std::string buf;
  bool headers_done = false;
  size_t pos = 0;
  size_t next_chunk = 0;
  bool done = false;
};

std::vector<int64_t> Offsets(const Flags& f) {
  // Uneven gaps: alternating short and long, summing to duration_ms.
  std::vector<int64_t> offsets;
  const double base = static_cast<double>(f.duration_ms) / f.events;
  double at = 0;
  for (int i = 0; i < f.events; ++i) {
    at += base * (i % 2 == 0 ? 0.5 : 1.5);
    offsets.push_back(static_cast<int64_t>(at * 1000));
  }
  return offsets;
}

long PeakRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  return v[i];
}

// What one run of N streams saw.
struct Run {
  std::vector<Conn> conns;
  size_t finished = 0;
  double begin_ms = 0;
  double wall_ms = 0;
  double last_open_ms = 0;  // when the last stream opened, from begin_ms
};

// Opens "streams" connections to "port" evenly over "ramp_ms", sends
// "request" on each, and reads every chunked answer from one epoll loop,
// timestamping each chunk as it completes. Gives up after "limit_ms".
Run RunStreams(int port, int streams, int ramp_ms, const std::string& request,
               double limit_ms) {
  Run run;
  int ep = epoll_create1(0);
  run.conns.resize(static_cast<size_t>(streams));
  auto& conns = run.conns;
  size_t opened = 0;
  auto open_one = [&](size_t i) {
    Conn& c = conns[i];
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      std::perror("connect");
      std::exit(2);
    }
    send(c.fd, request.data(), request.size(), MSG_NOSIGNAL);
    c.sent_ms = NowMs();
    fcntl(c.fd, F_SETFL, O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  };
  run.begin_ms = NowMs();
  auto open_at = [&](size_t i) {
    return run.begin_ms + static_cast<double>(ramp_ms) *
                              static_cast<double>(i) /
                              static_cast<double>(conns.size());
  };
  run.last_open_ms = open_at(conns.size() - 1) - run.begin_ms;
  std::vector<epoll_event> events(1024);
  char buf[65536];
  const double deadline = NowMs() + limit_ms;
  while (run.finished < conns.size() && NowMs() < deadline) {
    while (opened < conns.size() && NowMs() >= open_at(opened)) {
      open_one(opened++);
    }
    const int wait_ms = opened < conns.size() ? 1 : 100;
    int n =
        epoll_wait(ep, events.data(), static_cast<int>(events.size()), wait_ms);
    for (int k = 0; k < n; ++k) {
      Conn& c = conns[events[k].data.u64];
      ssize_t r;
      while ((r = read(c.fd, buf, sizeof(buf))) > 0)
        c.buf.append(buf, static_cast<size_t>(r));
      const double now = NowMs();
      if (r == 0 && !c.done) {  // closed before its last chunk
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        close(c.fd);
        c.fd = -1;
        continue;
      }
      if (!c.headers_done) {
        size_t end = c.buf.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        c.headers_done = true;
        c.pos = end + 4;
      }
      while (!c.done) {
        size_t eol = c.buf.find("\r\n", c.pos);
        if (eol == std::string::npos) break;
        size_t size = std::stoul(c.buf.substr(c.pos, eol - c.pos), nullptr, 16);
        if (eol + 2 + size + 2 > c.buf.size()) break;
        c.pos = eol + 2 + size + 2;
        if (size == 0) {
          c.done = true;
          c.total_ms = now - c.sent_ms;
          ++run.finished;
          epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          close(c.fd);
          c.fd = -1;
          break;
        }
        c.arrivals.push_back(now - c.sent_ms);
      }
    }
  }
  run.wall_ms = NowMs() - run.begin_ms;
  for (Conn& c : conns) {
    if (c.fd >= 0) close(c.fd);
    c.buf.clear();
    c.buf.shrink_to_fit();
  }
  close(ep);
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--rewind")
      f.rewind = v;
    else if (k == "--streams")
      f.streams = std::stoi(v);
    else if (k == "--events")
      f.events = std::stoi(v);
    else if (k == "--duration-ms")
      f.duration_ms = std::stoi(v);
    else if (k == "--scale")
      f.scale = std::stod(v);
    else if (k == "--ramp-ms")
      f.ramp_ms = std::stoi(v);
    else if (k == "--via-record")
      f.via_record = v == "1";
    else if (k == "--serve")
      f.serve = v == "1";
    else if (k == "--defaults")
      f.defaults = v == "1";
    else if (k == "--ttft-ms")
      f.ttft_ms = std::stoi(v);
    else if (k == "--itl-ms")
      f.itl_ms = std::stoi(v);
    else {
      std::cerr << "unknown flag " << k << "\n";
      return 2;
    }
  }
  if (f.rewind.empty()) {
    std::cerr << "usage: rewind-bench-fidelity --rewind PATH [--streams N] "
                 "[--events E] [--duration-ms D] [--scale K]\n";
    return 2;
  }
  if (f.ramp_ms < 0) f.ramp_ms = f.duration_ms / 2;
  rlimit nofile{65536, 65536};
  setrlimit(RLIMIT_NOFILE, &nofile);

  // 1. A recording with one stream of known timing.
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("rewind-fidelity-" + std::to_string(getpid())))
                        .string();
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/stream.sqlite";
  const std::vector<int64_t> offsets = Offsets(f);
  {
    rwd::StoreOptions so;
    so.path = db;
    so.create_if_missing = true;
    auto store = rwd::Store::Open(so);
    if (!store.ok()) {
      std::cerr << store.status().ToString() << "\n";
      return 2;
    }
    rwd::Exchange e;
    e.request.method = "POST";
    e.request.path = "/v1/chat/completions";
    e.request.body = "{\"stream\":true}";
    e.key_hex =
        rwd::Canonicalizer(store.value()->rules()).Key(e.request).ToHex();
    e.response.status = 200;
    e.response.chunked = true;
    e.response.headers = {{"Content-Type", "text/event-stream"}};
    e.response.headers_us = kHeadersUs;
    for (size_t i = 0; i < offsets.size(); ++i) {
      e.response.chunks.push_back(
          {offsets[i], "data: {\"choices\":[{\"delta\":{\"content\":\"t" +
                           std::to_string(i) + "\"}}]}\n\n"});
    }
    store.value()->WaitCommitted(store.value()->Append(e));
  }

  // 2. rewind as a child process (and rewind record in front).
  std::vector<std::string> capacity;
  if (!f.defaults) {
    capacity = {"--max-connections",
                std::to_string(std::max(1024, f.streams + 64))};
  }
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), capacity.begin(), capacity.end());
    return args;
  };
  int port = 0;
  pid_t pid = -1;
  std::string request;
  if (f.serve) {
    pid = StartRewind(
        f.rewind,
        with({"serve", "--listen", "127.0.0.1:0", "--quiet", "--ttft",
              "fixed:" + std::to_string(f.ttft_ms), "--itl",
              "fixed:" + std::to_string(f.itl_ms), "--output",
              "static:one two three four five six seven eight nine ten"}),
        &port);
    const std::string body =
        "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
        "\"content\":\"hi\"}]}";
    request =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
  } else {
    const std::string scale = "scaled:" + std::to_string(f.scale);
    pid = StartRewind(f.rewind,
                      with({"replay", "--db", db, "--listen", "127.0.0.1:0",
                            "--latency", scale, "--quiet"}),
                      &port);
    request =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n"
        "{\"stream\":true}";
  }
  WaitUntilServing(port);
  pid_t record_pid = -1;
  if (f.via_record) {
    const std::string backend = "http://127.0.0.1:" + std::to_string(port);
    record_pid = StartRewind(
        f.rewind,
        with({"record", "--backend", backend, "--db", dir + "/through.sqlite",
              "--listen", "127.0.0.1:0", "--quiet"}),
        &port);
    WaitUntilServing(port);
  }

  // 3. One stream alone: the reference for stream time (and, for serve,
  // the schedule).
  const double limit_ms =
      (f.serve ? f.ttft_ms + 12.0 * f.itl_ms : f.duration_ms * f.scale) * 3 +
      30000;
  Run alone = RunStreams(port, 1, 0, request, limit_ms);
  if (alone.finished != 1) {
    std::cerr << "a lone stream did not complete\n";
    return 2;
  }
  std::vector<double> schedule = alone.conns[0].arrivals;
  if (!f.serve) {
    schedule.clear();
    for (int64_t o : offsets) schedule.push_back(o / 1000.0 * f.scale);
  }
  const double alone_ms = alone.conns[0].total_ms;

  // 4. N streams from one epoll loop.
  Run run = RunStreams(port, f.streams, f.ramp_ms, request, limit_ms);
  const long rss_kb = PeakRssKb(f.via_record ? record_pid : pid);
  if (record_pid > 0) {
    kill(record_pid, SIGTERM);
    waitpid(record_pid, nullptr, 0);
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::filesystem::remove_all(dir);

  std::vector<double> errors, abs_err, first_errors, totals;
  size_t wrong_shape = 0;  // streams whose chunks differ in number
  for (const Conn& c : run.conns) {
    if (!c.done) continue;
    totals.push_back(c.total_ms);
    if (c.arrivals.size() != schedule.size()) ++wrong_shape;
    for (size_t i = 0; i < c.arrivals.size() && i < schedule.size(); ++i) {
      const double e = c.arrivals[i] - schedule[i];
      errors.push_back(e);
      abs_err.push_back(std::abs(e));
      if (i == 0) first_errors.push_back(e);
    }
  }
  // The last stream opens at ramp × (N-1)/N and lasts its schedule.
  const double ideal_ms = run.last_open_ms + alone_ms;
  std::printf(
      "%s%sstreams=%d finished=%zu failed=%zu wrong_shape=%zu chunks=%zu "
      "offset_err_ms p50=%.3f p99=%.3f max=%.3f earliest=%.3f "
      "first_chunk_late_ms p50=%.3f p99=%.3f alone_ms=%.1f "
      "stream_ms p50=%.1f p99=%.1f p99_vs_alone=%.3f "
      "wall_ms=%.0f ideal_ms=%.0f rate_vs_ideal=%.3f rss_peak_mb=%.1f\n",
      f.serve ? "serve: " : "", f.via_record ? "via record: " : "", f.streams,
      run.finished, run.conns.size() - run.finished, wrong_shape, errors.size(),
      Percentile(abs_err, 0.5), Percentile(abs_err, 0.99),
      Percentile(abs_err, 1.0),
      errors.empty() ? 0.0 : *std::min_element(errors.begin(), errors.end()),
      Percentile(first_errors, 0.5), Percentile(first_errors, 0.99), alone_ms,
      Percentile(totals, 0.5), Percentile(totals, 0.99),
      Percentile(totals, 0.99) / alone_ms, run.wall_ms, ideal_ms,
      ideal_ms / run.wall_ms, rss_kb / 1024.0);
  return run.finished == run.conns.size() ? 0 : 1;
}
