// The dummy inference engine: OpenAI-compatible answers without a model.
//
// A Synthesizer turns a request to /v1/chat/completions or /v1/completions
// into a planned response (a Response whose chunks carry their offsets), so
// the server sends synthesized answers with the same paced writer as
// recorded ones. The text comes from an OutputMode; the timing from TTFT
// and inter-token distributions scaled by a load factor; faults are drawn
// per request. Everything random is drawn from a per-request seed, so a
// given --seed gives the same bytes and timings run to run.
//
// Admission models capacity: at most max_concurrency requests generate at
// once, up to max_queue more wait, the rest are refused (429).
//
// Thread-safety: Synthesizer is immutable after Create() and safe for
// concurrent use; Admission is safe for concurrent use.
#ifndef REWIND_SYNTH_H_
#define REWIND_SYNTH_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "rewind/exchange.h"
#include "rewind/latency.h"
#include "rewind/status.h"

namespace rwd {

class Store;

// Splits text into tokens the way the engine counts them: each run of
// non-space characters with the spaces before it ("Hello", " world", "!").
std::vector<std::string> Tokenize(const std::string& text);

// What the engine understood of an OpenAI request.
struct OpenAIRequest {
  enum class Kind { kChat, kCompletion };
  Kind kind = Kind::kChat;
  std::string model;
  // The last user message (chat) or the prompt (completions): what echo
  // repeats and rules match.
  std::string prompt;
  int prompt_tokens = 0;  // all messages' or prompts' tokens
  int max_tokens = -1;    // -1: not given
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool include_usage = false;

  // InvalidArgument (an OpenAI 400) when "body" is not a valid request.
  static Result<OpenAIRequest> Parse(Kind kind, const std::string& body);
};

// Where the text of an answer comes from.
class OutputMode {
 public:
  // "static:TEXT", "echo", "random", "rules:FILE", "history". "history"
  // needs "store" (a recording; must outlive the OutputMode).
  static Result<OutputMode> Parse(const std::string& spec, Store* store);

  // The full answer before max_tokens and stop are applied.
  std::string Generate(const OpenAIRequest& request, std::mt19937_64& rng) const;

  std::string ToString() const { return spec_; }

 private:
  enum class Kind { kStatic, kEcho, kRandom, kRules, kHistory };
  struct Rule;
  Kind kind_ = Kind::kEcho;
  std::string spec_ = "echo";
  std::string text_;                       // static text, or rules' default
  std::shared_ptr<const std::vector<Rule>> rules_;
  // history: recorded answers by "path model", and by "path" alone.
  std::shared_ptr<const std::vector<std::pair<std::string, std::string>>>
      history_;
};

enum class FaultType { kNone, k429, k500, k503, k400, kTimeout, kDrop, kStall, kGarbage };

Result<FaultType> ParseFaultType(const std::string& name);
const char* FaultTypeName(FaultType type);

struct FaultSpec {
  double rate = 0;                // share of requests that fail
  std::vector<FaultType> types;   // drawn uniformly among these
  int64_t stall_ms = 5000;        // how long a stall lasts
  int64_t timeout_ms = 120000;    // how long a "timeout" holds the request

  // "rate=0.05,types=429|500|timeout[,stall_ms=N][,timeout_ms=N]", or "".
  static Result<FaultSpec> Parse(const std::string& spec);
};

struct SynthOptions {
  // Where the text comes from. Default: echo.
  OutputMode output;
  // Time to first token. Default: fixed:0.
  Distribution ttft;
  // Time between tokens. Default: fixed:0.
  Distribution itl;
  // Added to the TTFT per prompt token, ms. Default: 0.
  double prefill_per_token_ms = 0;
  // Latency multiplier at max_concurrency running requests; grows linearly
  // from 1 at one running request. Default: 1 (no slowdown).
  double load_factor = 1;
  // Requests generating at once; 0 = unlimited. Default: 0.
  size_t max_concurrency = 0;
  // Requests waiting for a slot beyond that; more get 429. Default: 0.
  size_t max_queue = 0;
  // Simulated KV-cache capacity in tokens, for the usage metric.
  // Default: 65536.
  int64_t kv_cache_tokens = 65536;
  // Faults to inject. Default: none.
  FaultSpec faults;
  // Seeds text, latency and faults. Default: 0.
  uint64_t seed = 0;
  // Fixed "created" timestamps, so the same seed gives the same bytes.
  // Default: false (wall clock).
  bool deterministic_created = false;
  // Listed by GET /v1/models. Default: "rewind-dummy".
  std::string model = "rewind-dummy";
};

// A synthesized answer, ready for the paced writer.
struct SynthPlan {
  Response response;      // chunk offsets are from request receipt
  bool abort = false;     // break the connection after the last chunk
  // Content-Length to announce for a non-chunked body; 0 = the chunks'
  // total. A "drop" fault announces more than it sends.
  size_t content_length = 0;
  FaultType fault = FaultType::kNone;
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// The inputs of one plan that the server knows and the engine does not.
struct SynthContext {
  uint64_t seed = 0;           // per-request seed (see RequestSeed)
  int64_t admitted_us = 0;     // offset of admission from receipt (queueing)
  double load_multiplier = 1;  // from the load factor at admission
  int64_t created = 0;         // Unix seconds for "created"
  std::optional<FaultType> forced_fault;  // X-Rewind-Fault
};

class Synthesizer {
 public:
  explicit Synthesizer(SynthOptions options);

  const SynthOptions& options() const { return options_; }

  // Plans the answer to "request" (POST /v1/chat/completions or
  // /v1/completions; also Anthropic's POST /v1/messages and Ollama's
  // POST /api/chat and /api/generate, see src/synth/dialect.h). A request
  // the engine cannot serve gets an error plan (400, 404) in the shape of
  // the API its path belongs to.
  SynthPlan Plan(const Request& request, const SynthContext& context) const;

  // GET /v1/models.
  std::string ModelsBody() const;

  // The load multiplier with "running" requests generating.
  double LoadMultiplier(size_t running) const;

 private:
  SynthOptions options_;
};

// OpenAI's error body: {"error":{"message":..,"type":..,"param":null,"code":..}}
std::string OpenAIErrorBody(const std::string& message, const std::string& type,
                            const std::string& code);

// Admission control for the dummy engine.
class Admission {
 public:
  // A held slot; releasing it (destroying the last reference) admits the
  // next waiter.
  class Slot;

  // max_concurrency 0 = unlimited.
  Admission(size_t max_concurrency, size_t max_queue);
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // Waits for a slot. Returns nullptr at once when max_queue requests are
  // already waiting.
  std::shared_ptr<Slot> Enter();
  // Counts "tokens" toward the simulated KV cache while "slot" is held.
  void AddTokens(Slot* slot, int64_t tokens);

  size_t running() const;
  size_t waiting() const;
  int64_t tokens() const;

 private:
  void Leave(const Slot& slot);

  const size_t max_concurrency_;
  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t running_ = 0;   // guarded by mu_
  size_t waiting_ = 0;   // guarded by mu_
  uint64_t next_ticket_ = 0;  // guarded by mu_; FIFO order of waiters
  uint64_t serving_ = 0;      // guarded by mu_
  int64_t tokens_ = 0;   // guarded by mu_
};

}  // namespace rwd

#endif  // REWIND_SYNTH_H_
