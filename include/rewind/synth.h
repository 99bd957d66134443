// The dummy inference engine: OpenAI-compatible answers without a model.
//
// A Synthesizer turns a request to /v1/chat/completions, /v1/completions,
// /v1/responses or /v1/embeddings into a planned response (a Response
// whose chunks carry their offsets), so
// the server sends synthesized answers with the same paced writer as
// recorded ones. The text comes from an OutputMode; the timing from TTFT
// and inter-token distributions scaled by a load factor; faults are drawn
// per request. Everything random is drawn from a per-request seed, so a
// given --seed gives the same bytes and timings run to run.
//
// Admission models capacity: at most max_concurrency requests generate at
// once, up to max_queue more wait, the rest are refused (429).
//
// Thread-safety: Synthesizer is safe for concurrent use (its options are
// immutable; the token table behind /tokenize has its own lock);
// Admission is safe for concurrent use.
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
class TokenTable;

// Splits text into tokens the way the engine counts them: each run of
// non-space characters with the spaces before it ("Hello", " world", "!").
std::vector<std::string> Tokenize(const std::string& text);

// A function the client offers the model ("tools").
struct ToolSpec {
  std::string name;
  std::string parameters;  // its JSON Schema as JSON text; "" = none
};

// A call of one of those functions, as the engine answers it.
struct ToolCall {
  std::string name;
  std::string arguments;  // JSON text
};

// What the engine understood of an OpenAI request.
struct OpenAIRequest {
  enum class Kind { kChat, kCompletion, kResponses };
  enum class ToolChoice { kAuto, kNone, kRequired, kFunction };
  enum class Format { kText, kJsonObject, kJsonSchema };
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
  // stream_options.continuous_usage_stats (vLLM): usage in every chunk.
  bool continuous_usage = false;

  // Tools offered, and whether and which the model may call.
  std::vector<ToolSpec> tools;
  ToolChoice tool_choice = ToolChoice::kAuto;
  std::string tool_choice_name;  // kFunction: the function named
  // The last message is a tool's result ("tool" role, or a Responses
  // function_call_output): the turn that answers it.
  bool after_tool_result = false;

  // response_format (chat) or text.format (Responses).
  Format format = Format::kText;
  std::string schema;  // kJsonSchema: the schema as JSON text

  // Log probabilities: chat's logprobs/top_logprobs, completions'
  // logprobs N (then logprobs is set and top_logprobs is N).
  bool logprobs = false;
  int top_logprobs = 0;

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
  std::string Generate(const OpenAIRequest& request,
                       std::mt19937_64& rng) const;

  // rules: the tool calls of the first rule that matches the request and
  // names only tools it offers (and, for a named tool_choice, that one).
  // False, leaving *calls empty, when no such rule exists.
  bool RuleToolCalls(const OpenAIRequest& request,
                     std::vector<ToolCall>* calls) const;

  std::string ToString() const { return spec_; }

 private:
  enum class Kind { kStatic, kEcho, kRandom, kRules, kHistory };
  struct Rule;
  Kind kind_ = Kind::kEcho;
  std::string spec_ = "echo";
  std::string text_;  // static text, or rules' default
  std::shared_ptr<const std::vector<Rule>> rules_;
  // history: recorded answers by "path model", and by "path" alone.
  std::shared_ptr<const std::vector<std::pair<std::string, std::string>>>
      history_;
};

enum class FaultType {
  kNone,
  k429,
  k500,
  k503,
  k400,
  kTimeout,
  kDrop,
  kStall,
  kGarbage
};

Result<FaultType> ParseFaultType(const std::string& name);
const char* FaultTypeName(FaultType type);

struct FaultSpec {
  double rate = 0;               // share of requests that fail
  std::vector<FaultType> types;  // drawn uniformly among these
  int64_t stall_ms = 5000;       // how long a stall lasts
  int64_t timeout_ms = 120000;   // how long a "timeout" holds the request

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
  // The model answers are attributed to when a request names none, listed
  // by GET /v1/models. Default: "rewind-dummy".
  std::string model = "rewind-dummy";
  // Models served (--model, repeatable; the first is "model"). Empty:
  // "model" is listed and any requested name is answered. Otherwise a
  // request for another name gets a 404 model_not_found.
  std::vector<std::string> models;
  // LoRA-style adapters (--lora NAME=PARENT): served and listed with
  // their parent model.
  std::vector<std::pair<std::string, std::string>> adapters;
  // Share of requests offering tools (tool_choice "auto") answered with a
  // tool call. Default: 0.5.
  double tool_rate = 0.5;
  // Length of /v1/embeddings vectors when a request does not ask for
  // "dimensions". Default: 1536.
  int embedding_dimensions = 1536;
  // The context length reported by /v1/models and /tokenize.
  // Default: 32768.
  int max_model_len = 32768;
};

// A synthesized answer, ready for the paced writer.
struct SynthPlan {
  Response response;   // chunk offsets are from request receipt
  bool abort = false;  // break the connection after the last chunk
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

  // True for the paths Plan answers (POST): /v1/chat/completions,
  // /v1/completions, /v1/responses, /v1/embeddings, and the other
  // dialects' (src/synth/dialect.h).
  static bool Generates(const std::string& path);
  // What the engine serves, for a 404's explanation.
  static std::string Endpoints();

  // Plans the answer to "request" (POST to a path Generates() accepts:
  // OpenAI's, and Anthropic's POST /v1/messages and Ollama's POST /api/chat
  // and /api/generate, see src/synth/dialect.h). A request the engine
  // cannot serve gets an error plan (400, 404) in the shape of the API its
  // path belongs to.
  SynthPlan Plan(const Request& request, const SynthContext& context) const;

  // Answers at once, without admission, latency or faults: GET /v1/models,
  // POST /tokenize, POST /detokenize. nullopt for any other request.
  struct Reply {
    int status = 200;
    std::string body;  // JSON
  };
  std::optional<Reply> Immediate(const Request& request) const;

  // GET /v1/models.
  std::string ModelsBody() const;

  // The load multiplier with "running" requests generating.
  double LoadMultiplier(size_t running) const;

 private:
  SynthPlan PlanResponses(const Request& request,
                          const SynthContext& context) const;
  SynthPlan PlanEmbeddings(const Request& request,
                           const SynthContext& context) const;
  Reply Tokenize(const std::string& body) const;
  Reply Detokenize(const std::string& body) const;

  SynthOptions options_;
  // Token ids /tokenize gave out, so /detokenize can read them back.
  std::shared_ptr<TokenTable> tokens_;
};

// OpenAI's error body:
// {"error":{"message":..,"type":..,"param":null,"code":..}}
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
  // No limit: Enter() never waits.
  bool unlimited() const { return max_concurrency_ == 0; }
  int64_t tokens() const;

 private:
  void Leave(const Slot& slot);

  const size_t max_concurrency_;
  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t running_ = 0;        // guarded by mu_
  size_t waiting_ = 0;        // guarded by mu_
  uint64_t next_ticket_ = 0;  // guarded by mu_; FIFO order of waiters
  uint64_t serving_ = 0;      // guarded by mu_
  int64_t tokens_ = 0;        // guarded by mu_
};

}  // namespace rwd

#endif  // REWIND_SYNTH_H_
