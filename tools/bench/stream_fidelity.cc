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

  // 2. rewind replay as a child process (and rewind record in front).
  const std::string max_conn = std::to_string(std::max(1024, f.streams + 64));
  const std::string scale = "scaled:" + std::to_string(f.scale);
  int port = 0;
  pid_t pid = StartRewind(f.rewind,
                          {"replay", "--db", db, "--listen", "127.0.0.1:0",
                           "--latency", scale, "--max-connections", max_conn},
                          &port);
  WaitUntilServing(port);
  pid_t record_pid = -1;
  if (f.via_record) {
    const std::string backend = "http://127.0.0.1:" + std::to_string(port);
    record_pid = StartRewind(
        f.rewind,
        {"record", "--backend", backend, "--db", dir + "/through.sqlite",
         "--listen", "127.0.0.1:0", "--max-connections", max_conn},
        &port);
    WaitUntilServing(port);
  }

  // 4. N streams from one epoll loop.
  const std::string request =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n"
      "{\"stream\":true}";
  int ep = epoll_create1(0);
  std::vector<Conn> conns(static_cast<size_t>(f.streams));
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
  const double begin_ms = NowMs();
  auto open_at = [&](size_t i) {
    return begin_ms + static_cast<double>(f.ramp_ms) * static_cast<double>(i) /
                          static_cast<double>(conns.size());
  };
  std::vector<double> errors;
  errors.reserve(conns.size() * offsets.size());
  std::vector<double> first_errors;  // the first chunk of each stream
  size_t finished = 0;
  std::vector<epoll_event> events(1024);
  char buf[65536];
  const double deadline = NowMs() + f.duration_ms * f.scale * 3 + 30000;
  while (finished < conns.size() && NowMs() < deadline) {
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
          ++finished;
          epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          close(c.fd);
          break;
        }
        if (c.next_chunk < offsets.size()) {
          double planned = c.sent_ms + offsets[c.next_chunk] / 1000.0 * f.scale;
          errors.push_back(now - planned);
          if (c.next_chunk == 0) first_errors.push_back(now - planned);
        }
        ++c.next_chunk;
      }
    }
  }
  const double wall_ms = NowMs() - begin_ms;
  const long rss_kb = PeakRssKb(f.via_record ? record_pid : pid);
  if (record_pid > 0) {
    kill(record_pid, SIGTERM);
    waitpid(record_pid, nullptr, 0);
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::filesystem::remove_all(dir);

  std::vector<double> abs_err;
  for (double e : errors) abs_err.push_back(std::abs(e));
  // The last stream opens at ramp × (N-1)/N and lasts the recorded time.
  const double ideal_ms =
      open_at(conns.size() - 1) - begin_ms + offsets.back() / 1000.0 * f.scale;
  std::printf(
      "%sstreams=%d finished=%zu chunks=%zu offset_err_ms p50=%.3f p99=%.3f "
      "max=%.3f earliest=%.3f first_chunk_late_ms p50=%.3f p99=%.3f "
      "wall_ms=%.0f ideal_ms=%.0f rate_vs_ideal=%.3f "
      "rss_peak_mb=%.1f\n",
      f.via_record ? "via record: " : "", f.streams, finished, errors.size(),
      Percentile(abs_err, 0.5), Percentile(abs_err, 0.99),
      Percentile(abs_err, 1.0),
      errors.empty() ? 0.0 : *std::min_element(errors.begin(), errors.end()),
      Percentile(first_errors, 0.5), Percentile(first_errors, 0.99), wall_ms,
      ideal_ms, ideal_ms / wall_ms, rss_kb / 1024.0);
  return finished == conns.size() ? 0 : 1;
}
