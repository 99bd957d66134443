// Fuzzes the HTTP front: each input is written as raw bytes to a replay
// server on 127.0.0.1 (recording in memory, misses synthesized), and the
// answer read until the server closes. rewind's connection layer frames
// the bytes, cpp-httplib routes; the handler, key, replay and dummy
// engine see what they accept.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "rewind/server.h"
#include "store/memory_store.h"

namespace {

struct Harness {
  rwd::MemoryStore store;
  std::unique_ptr<rwd::Server> server;
  std::thread thread;
  int port = 0;

  Harness() {
    rwd::Exchange e;
    e.request.method = "POST";
    e.request.path = "/v1/chat/completions";
    e.request.body =
        R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
    e.key_hex = rwd::Canonicalizer(store.rules()).Key(e.request).ToHex();
    e.response.status = 200;
    e.response.chunked = true;
    e.response.headers = {{"Content-Type", "text/event-stream"}};
    e.response.chunks = {{0, "data: {}\n\n"}, {10, "data: [DONE]\n\n"}};
    store.Append(e);
    rwd::ServerOptions o;
    o.mode = rwd::ServerMode::kReplay;
    o.store = &store;
    o.front.host = "127.0.0.1";
    o.front.port = 0;
    o.front.max_connections = 8;
    o.replay.on_miss = rwd::MissPolicy::kSynthesize;
    o.replay.latency = rwd::LatencyModel::Parse("none").value();
    o.synth.output = rwd::OutputMode::Parse("echo", nullptr).value();
    o.front.max_body_bytes = 1 << 20;
    server = std::move(rwd::Server::Create(o).value());
    port = server->Bind().value();
    thread = std::thread([this] { server->Run(); });
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* h = new Harness();  // lives for the whole run
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(h->port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return 0;
  }
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);  // no more requests: the server answers and closes
  char buf[65536];
  while (read(fd, buf, sizeof(buf)) > 0) {
  }
  close(fd);
  return 0;
}
