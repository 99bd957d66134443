// The cost of the request key under each kind of key rule: plain, content
// equivalence, the ready-made normalizers, a custom one under a path.
// Bodies: OpenAI chat requests of about 1 KB and 1 MB (1,000 messages)
// with a date in the system prompt, and 1 MB in one string with two ids
// every 180 bytes (about 12,000 replacements).
// Usage: rewind-bench-key [MILLISECONDS per case, default 1000]
// Prints the CPU time per key (median of runs) and the throughput.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "rewind/request_key.h"

namespace {

using Clock = std::chrono::steady_clock;

// This thread's CPU time: a shared machine's other load does not count.
double CpuMicros() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 +
         static_cast<double>(t.tv_nsec) / 1e3;
}

// Prose, and prose with two ids in every 180 bytes (every string has
// matches to replace).
const char kProse[] =
    "The quick brown fox jumps over the lazy dog; a session and a trace "
    "and lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
    "eiusmod tempor incididunt ut labore et dolore magna aliqua. ";
const char kIds[] =
    "The quick brown fox jumps over the lazy dog; session "
    "123e4567-e89b-12d3-a456-426614174000 trace "
    "0af7651916cd43dd8448eb211c80319c "
    "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. ";

std::string Text(size_t bytes, const char* filler) {
  std::string s;
  while (s.size() < bytes) s += filler;
  s.resize(bytes);
  return s;
}

// A chat request of about "bytes" bytes in "messages" messages after the
// system prompt (one part list among them, for content equivalence).
rwd::Request Chat(size_t bytes, size_t messages, const char* filler = kProse) {
  std::string body =
      R"({"model":"gpt-4o","temperature":0.2,"messages":[{"role":"system","content":)"
      R"("You are terse. Today is 2026-11-29T10:04:05Z."})";
  const size_t each = bytes / messages;
  for (size_t i = 0; i < messages; ++i) {
    const std::string role = i % 2 == 0 ? "user" : "assistant";
    if (i == 0) {
      body += R"(,{"role":"user","content":[{"type":"text","text":")" +
              Text(each, filler) + R"("}]})";
    } else {
      body += R"(,{"role":")" + role + R"(","content":")" + Text(each, filler) +
              R"("})";
    }
  }
  body += "]}";
  rwd::Request r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.body = std::move(body);
  return r;
}

rwd::KeyRules Rules(std::vector<std::string> normalizers,
                    bool content_equivalence) {
  rwd::KeyRules rules{rwd::DefaultIgnoredFields(), {}};
  for (const std::string& spec : normalizers) {
    rwd::Result<rwd::Normalizer> n = rwd::Normalizer::Parse(spec);
    if (!n.ok()) {
      std::fprintf(stderr, "%s: %s\n", spec.c_str(),
                   n.status().message().c_str());
      std::exit(2);
    }
    rules.normalizers.push_back(n.value());
  }
  rules.content_equivalence = content_equivalence;
  return rules;
}

// Median microseconds per key over runs of about "budget_ms".
double MicrosPerKey(const rwd::Canonicalizer& c, const rwd::Request& r,
                    int budget_ms) {
  std::vector<double> runs;
  const auto end = Clock::now() + std::chrono::milliseconds(budget_ms);
  uint64_t sink = 0;
  do {
    const double t0 = CpuMicros();
    sink ^= c.Key(r).low;
    runs.push_back(CpuMicros() - t0);
  } while (Clock::now() < end && runs.size() < 100000);
  if (sink == 42) std::printf(" ");
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int budget_ms = argc > 1 ? std::atoi(argv[1]) : 1000;
  struct Body {
    const char* name;
    rwd::Request request;
  };
  const std::vector<Body> bodies = {
      {"1 KB, 4 messages", Chat(1000, 4)},
      {"1 MB, 1,000 messages", Chat(1 << 20, 1000)},
      {"1 MB of ids, 1 string", Chat(1 << 20, 1, kIds)}};
  struct Case {
    const char* name;
    rwd::KeyRules rules;
  };
  const std::vector<Case> cases = {
      {"plain (v2 rules)", Rules({}, false)},
      {"content equivalence", Rules({}, true)},
      {"--normalize date", Rules({"date"}, true)},
      {"date timestamp uuid hex-id",
       Rules({"date", "timestamp", "uuid", "hex-id"}, true)},
      {"custom under messages.*.content",
       Rules({R"(messages.*.content:session [0-9a-f-]{36}=>session S)"}, true)},
  };
  std::printf("%-34s %-22s %12s %10s\n", "rules", "body", "per key", "MB/s");
  for (const Body& b : bodies) {
    // A first pass settles the allocator (its mmap threshold grows to the
    // largest buffer freed) so that no case pays for it.
    MicrosPerKey(rwd::Canonicalizer(cases.front().rules), b.request,
                 budget_ms / 2);
    for (const Case& c : cases) {
      const rwd::Canonicalizer canon(c.rules);
      const double us = MicrosPerKey(canon, b.request, budget_ms);
      const double mb = static_cast<double>(b.request.body.size()) / (1 << 20);
      std::printf("%-34s %-22s %9.1f us %10.0f\n", c.name, b.name, us,
                  mb / (us / 1e6));
    }
  }
  return 0;
}
