// rewind-gen: writes a synthetic recording of N exchanges, for scale tests
// and benchmarks (export/import/verify times, replay start-up, memory).
//
//   rewind-gen --db big.sqlite --count 100000 [--stream-share 0.3] [--seed 1]
//
// Requests are OpenAI chat completions with distinct prompts; a share of
// answers are 20-event SSE streams, the rest ~1 KB JSON bodies.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>

#include "rewind/request_key.h"
#include "rewind/store.h"

int main(int argc, char** argv) {
  std::string db;
  long long count = 1000;
  double stream_share = 0.3;
  unsigned long long seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--db")
      db = v;
    else if (k == "--count")
      count = std::stoll(v);
    else if (k == "--stream-share")
      stream_share = std::stod(v);
    else if (k == "--seed")
      seed = std::stoull(v);
    else {
      std::cerr << "unknown flag " << k << "\n";
      return 2;
    }
  }
  if (db.empty() || count < 0) {
    std::cerr << "usage: rewind-gen --db FILE --count N [--stream-share F] "
                 "[--seed S]\n";
    return 2;
  }
  rwd::StoreOptions o;
  o.path = db;
  o.create_if_missing = true;
  auto opened = rwd::Store::Open(o);
  if (!opened.ok()) {
    std::cerr << "rewind-gen: " << opened.status().message() << "\n";
    return 2;
  }
  rwd::Store* store = opened.value().get();
  rwd::Canonicalizer canon(store->rules());
  std::mt19937_64 rng(seed);
  const auto start = std::chrono::steady_clock::now();
  const int64_t t0 = 1700000000000000;
  std::shared_ptr<rwd::Store::Ticket> last;
  for (long long i = 0; i < count; ++i) {
    rwd::Exchange e;
    e.request.method = "POST";
    e.request.path = "/v1/chat/completions";
    e.request.headers = {{"Content-Type", "application/json"},
                         {"Authorization", "[REDACTED]"}};
    const bool stream =
        std::uniform_real_distribution<double>(0, 1)(rng) < stream_share;
    e.request.body =
        "{\"model\":\"gen-model-" + std::to_string(i % 3) +
        "\",\"stream\":" + (stream ? "true" : "false") +
        ",\"messages\":[{\"role\":\"user\",\"content\":\"question number " +
        std::to_string(i) + "\"}]}";
    e.key_hex = canon.Key(e.request).ToHex();
    e.response.status = i % 50 == 0 ? 429 : 200;
    const int64_t ttft = 50000 + static_cast<int64_t>(rng() % 150000);
    e.response.headers_us = stream ? 300 : ttft;
    if (stream) {
      e.response.chunked = true;
      e.response.headers = {{"Content-Type", "text/event-stream"}};
      int64_t at = ttft;
      for (int k = 0; k < 20; ++k) {
        e.response.chunks.push_back(
            {at, "data: {\"choices\":[{\"delta\":{\"content\":\" tok" +
                     std::to_string(k) + "\"}}]}\n\n"});
        at += 10000 + static_cast<int64_t>(rng() % 30000);
      }
      e.response.chunks.push_back({at, "data: [DONE]\n\n"});
    } else {
      e.response.headers = {{"Content-Type", "application/json"}};
      e.response.chunks.push_back(
          {ttft + 100,
           "{\"id\":\"chatcmpl-" + std::to_string(i) +
               "\",\"object\":\"chat.completion\",\"choices\":[{\"message\":"
               "{\"role\":\"assistant\",\"content\":\"" +
               std::string(900, 'x') + "\"}}]}"});
    }
    e.started_at_us = t0 + i * 10000;
    e.arrival_offset_us = i * 10000;
    last = store->Append(std::move(e));
    if (i % 10000 == 9999) store->Flush();
  }
  rwd::Status s = store->Flush();
  if (!s.ok()) {
    std::cerr << "rewind-gen: " << s.message() << "\n";
    return 2;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf("wrote %lld exchanges to %s in %.1f s (%.0f/s)\n", count,
              db.c_str(), secs, static_cast<double>(count) / secs);
  return 0;
}
