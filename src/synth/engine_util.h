// Pieces shared by the dummy engine's API surfaces (chat and text
// completions, the Responses API, embeddings): JSON helpers, error and
// fault plans, pacing, and the models the engine serves. Internal to
// src/synth/.
#ifndef REWIND_SRC_SYNTH_ENGINE_UTIL_H_
#define REWIND_SRC_SYNTH_ENGINE_UTIL_H_

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <random>
#include <string>

#include "rewind/request_key.h"
#include "rewind/synth.h"

namespace rwd {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Deepest nesting the engine accepts in a request body (a tool's schema
// included): deeper requests get a 400 (CheckRequestDepth).
constexpr int kMaxRequestDepth = kMaxJsonDepth;

// InvalidArgument when "body" nests objects and arrays deeper than
// kMaxRequestDepth, counted on its bytes before any DOM is built.
Status CheckRequestDepth(const std::string& body);

// True when "v" nests at most "max_depth" levels (a scalar is level 0).
// Iterative: any depth is safe to ask about.
bool JsonDepthAtMost(const rapidjson::Value& v, int max_depth);

// Appends "v" as JSON with ", " and ": " between items, as Python's
// json.dumps writes it. REQUIRES: JsonDepthAtMost(v, kMaxRequestDepth).
void WriteSpacedJson(const rapidjson::Value& v, std::string* out);

// "v" as compact JSON. REQUIRES: JsonDepthAtMost(v, kMaxRequestDepth).
std::string CompactJson(const rapidjson::Value& v);

inline void WriteString(JsonWriter* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

inline std::string TakeJson(rapidjson::StringBuffer* b) {
  return std::string(b->GetString(), b->GetSize());
}

// "prefix" followed by 16 hex digits of "value".
std::string HexId(const char* prefix, uint64_t value);

// A plan answering with an OpenAI error body at "at_us".
SynthPlan ErrorPlan(int status, const std::string& message,
                    const std::string& type, const std::string& code,
                    int64_t at_us);

// The fault for this request: forced by the context, or drawn at the
// configured rate. Always takes one draw from "rng" first, so a seed fails
// the same requests whatever else the request asks for.
FaultType DrawFault(const SynthOptions& options, const SynthContext& ctx,
                    std::mt19937_64& rng);

// The answer of an error fault (429, 500, 503, 400, timeout), or nullopt
// for the others (none, drop, stall, garbage).
std::optional<SynthPlan> ErrorFaultPlan(FaultType fault,
                                        const SynthOptions& options,
                                        int64_t start);

// Offset of the first token: admission + (TTFT + prefill) x load.
int64_t FirstTokenAt(const SynthOptions& options, const SynthContext& ctx,
                     int prompt_tokens, std::mt19937_64& rng);

// One inter-token gap, x load.
int64_t TokenGap(const SynthOptions& options, const SynthContext& ctx,
                 std::mt19937_64& rng);

// A non-streamed body at "at": whole, or stalled, garbled or cut by
// "fault" (drop, stall, garbage).
void SetBody(std::string body, int64_t at, FaultType fault,
             const SynthOptions& options, SynthPlan* plan);

// Applies a stream fault (drop, stall, garbage) to a planned stream at a
// seeded event after the first and before the last; "garbage" replaces
// that event with "garbage_event".
void BreakStream(FaultType fault, const SynthOptions& options,
                 const std::string& garbage_event, std::mt19937_64& rng,
                 SynthPlan* plan);

// A message's content as text: a string, or the "text" of each part of a
// list joined (input_text, output_text and text parts all carry one); ""
// for anything else. Defined in openai_request.cc.
std::string ContentText(const rapidjson::Value& content);

// Reads a response format: chat's response_format ({"type":"json_schema",
// "json_schema":{"schema":..}}) or, with "responses_shape", the Responses
// API's text.format ({"type":"json_schema","schema":..}). Defined in
// openai_request.cc.
Status ParseResponseFormat(const rapidjson::Value& format, bool responses_shape,
                           OpenAIRequest* request);

// The name a request's "model" is answered as: itself, or the first
// --model when it is empty. nullopt when the engine does not serve it.
std::optional<std::string> ServedModel(const SynthOptions& options,
                                       const std::string& asked);

// OpenAI's 404 for a model the engine does not serve.
SynthPlan UnknownModelPlan(const std::string& model, int64_t at_us);
std::string UnknownModelBody(const std::string& model);

}  // namespace rwd

#endif  // REWIND_SRC_SYNTH_ENGINE_UTIL_H_
