// What the per-mode tests share: requests, recorded exchanges, a ModeEvents
// that keeps what it is told, and a Mode that counts its calls.
#ifndef REWIND_TESTS_TESTUTIL_MODE_FIXTURE_H_
#define REWIND_TESTS_TESTUTIL_MODE_FIXTURE_H_

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "rewind/mode.h"
#include "rewind/request_key.h"

namespace rwd::testing {

inline Request Post(const std::string& path, const std::string& body,
                    HeaderList headers = {}) {
  Request r;
  r.method = "POST";
  r.path = path;
  r.headers = std::move(headers);
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = body;
  return r;
}

// A recorded answer: headers at "headers_us", then one piece per offset.
inline Exchange Recorded(const Request& request, const Canonicalizer& keys,
                         int64_t headers_us, std::vector<int64_t> offsets,
                         bool stream = false) {
  Exchange e;
  e.request = request;
  e.key_hex = keys.Key(request).ToHex();
  e.response.status = 200;
  e.response.headers.emplace_back(
      "Content-Type", stream ? "text/event-stream" : "application/json");
  e.response.chunked = stream;
  e.response.headers_us = headers_us;
  for (size_t i = 0; i < offsets.size(); ++i) {
    e.response.chunks.push_back(Chunk{offsets[i], "piece" + std::to_string(i)});
  }
  return e;
}

inline std::string BodyOf(const Timeline& t) {
  return t.response ? t.response->Body() : std::string();
}

class RecordedEvents final : public ModeEvents {
 public:
  void Error(const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    errors.push_back(message);
  }
  void RecordSkipped(const char* reason) override {
    std::lock_guard<std::mutex> lock(mu_);
    skipped.emplace_back(reason);
  }
  std::vector<std::string> errors;
  std::vector<std::string> skipped;

 private:
  std::mutex mu_;
};

// Answers every call with a fixed outcome and counts calls and resets.
class CountingMode final : public Mode {
 public:
  explicit CountingMode(const char* outcome) : outcome_(outcome) {}
  Answer Serve(const Call&) override {
    ++calls;
    Answer a;
    a.outcome = outcome_;
    a.timeline = Timeline::Immediate(299, "text/plain", outcome_);
    return a;
  }
  void Reset() override { ++resets; }
  int calls = 0;
  int resets = 0;

 private:
  const char* outcome_;
};

}  // namespace rwd::testing

#endif  // REWIND_TESTS_TESTUTIL_MODE_FIXTURE_H_
