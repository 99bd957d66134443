// API dialects the dummy engine speaks beside OpenAI's: Anthropic Messages
// (POST /v1/messages) and Ollama (POST /api/chat, POST /api/generate,
// GET /api/tags), and the error bodies rewind writes in each.
//
// The dialect of a request is chosen by its path alone, so that an error
// rewind produces itself (a replay miss, a 502 from the backend, an
// injected fault, a 429 at capacity) reaches each client in the shape its
// library reads: the message a user sees is rewind's explanation.
//
// Thread-safety: free functions over values.
#ifndef REWIND_SRC_SYNTH_DIALECT_H_
#define REWIND_SRC_SYNTH_DIALECT_H_

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "rewind/synth.h"

namespace rwd {

enum class Dialect { kOpenAI, kAnthropic, kOllama };

// /v1/messages (and below it) is Anthropic's, /api/... Ollama's, anything
// else OpenAI's.
Dialect DialectOf(std::string_view path);

// The error body for "status" in the dialect's shape:
//   OpenAI     {"error":{"message":..,"type":..,"param":null,"code":..}}
//   Anthropic  {"type":"error","error":{"type":<by status>,"message":..}}
//   Ollama     {"error":"<message>"}
// "type" and "code" are OpenAI's (or rewind's own "rewind_..." type). In
// the other dialects a rewind_... type is kept as "code", and "extra"
// (serialized members, ",\"key\":...") joins the error object (Anthropic)
// or the top level (Ollama). Ends with a newline.
std::string DialectErrorBody(Dialect dialect, int status,
                             const std::string& message,
                             const std::string& type, const std::string& code,
                             const std::string& extra = "");

// The body of an error rewind writes itself ("rewind_..." types): OpenAI's
// {"error":{"type":..,"message":..EXTRA}}, else DialectErrorBody's shape.
std::string RewindErrorBody(Dialect dialect, int status,
                            const std::string& type, const std::string& message,
                            const std::string& extra = "");

// Anthropic's error type for an HTTP status: invalid_request_error,
// authentication_error, permission_error, not_found_error,
// request_too_large, rate_limit_error, api_error, overloaded_error,
// timeout_error.
const char* AnthropicErrorType(int status);

// What the dialect planners share: the parts of a request the engine acts
// on, however the dialect spells them.
struct DialectTool {
  std::string name;
  std::string schema;  // the JSON Schema of its input, serialized ("" = any)
};

struct DialectTurn {
  OpenAIRequest text;  // model, prompt, prompt_tokens, max_tokens, stop, stream
  std::vector<DialectTool> tools;
  enum class ToolChoice { kAuto, kAny, kNamed, kNone };
  ToolChoice tool_choice = ToolChoice::kAuto;
  std::string tool_name;    // kNamed
  bool after_tool = false;  // the last turn carries tool results
};

// One planned answer before it is written in a dialect's shape.
struct Draft {
  FaultType fault = FaultType::kNone;
  // Text pieces (tokens), or for a tool call the pieces of its arguments.
  std::vector<std::string> pieces;
  std::vector<int64_t> at_us;  // offset of each piece (ttft first)
  int64_t ttft_us = 0;         // first piece (or the end, with none)
  int64_t end_us = 0;          // last piece
  int64_t start_us = 0;        // admission
  // "stop", "length", "stop_sequence" (a stop string matched) or "tool".
  std::string finish = "stop";
  std::string stop_sequence;  // the matched stop string
  bool tool_call = false;
  std::string tool_name;
  std::string tool_arguments;  // JSON object text
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// Draws the fault, the text or tool call and the timing of an answer to
// "turn", exactly as the OpenAI planner does for chat: the same seed gives
// the same draft. Error faults (429, 500, 503, 400, timeout) leave
// "pieces" empty; the caller writes the error.
Draft MakeDraft(const SynthOptions& options, const DialectTurn& turn,
                const SynthContext& context);

// A JSON value that fits "schema" (a serialized JSON Schema): objects with
// every property (required ones always), arrays of minItems.., enums,
// consts, numbers within their bounds, strings of minLength... Seeded by
// "rng". Unknown or empty schemas give {}.
std::string ValueForSchema(const std::string& schema, std::mt19937_64& rng);

// An error plan in "dialect": status, JSON body, at "at_us".
SynthPlan DialectErrorPlan(Dialect dialect, int status,
                           const std::string& message, const std::string& type,
                           const std::string& code, int64_t at_us);

// The error plan for an error fault (429, 500, 503, 400, timeout), or a
// plan with status 0 for any other fault.
SynthPlan FaultErrorPlan(Dialect dialect, const SynthOptions& options,
                         const Draft& draft);

// Applies a body fault (stall, garbage, drop) to a planned non-streamed
// JSON answer, and a stream fault to a planned stream whose events are the
// plan's chunks; "garbage" is the malformed event to put in. The first
// event and the last stay whole.
void ApplyBodyFault(const SynthOptions& options, SynthPlan* plan);
void ApplyStreamFault(const SynthOptions& options, const std::string& garbage,
                      std::mt19937_64& rng, SynthPlan* plan);

// "2023-11-14T22:13:20.000000Z": Unix "seconds" plus "offset_us".
std::string Rfc3339(int64_t seconds, int64_t offset_us);

// Anthropic Messages: POST /v1/messages.
SynthPlan PlanAnthropic(const SynthOptions& options, const Request& request,
                        const SynthContext& context);

// Ollama: POST /api/chat and POST /api/generate (NDJSON streams by
// default, one JSON object with "stream": false).
SynthPlan PlanOllama(const SynthOptions& options, const Request& request,
                     const SynthContext& context);

// GET /api/tags: the served model.
std::string OllamaTagsBody(const SynthOptions& options);

// The dialects' engine paths: POST /v1/messages, /api/chat, /api/generate.
bool IsDialectEnginePath(std::string_view path);

}  // namespace rwd

#endif  // REWIND_SRC_SYNTH_DIALECT_H_
