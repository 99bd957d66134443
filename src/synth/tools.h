// Tool calls in the dummy engine: the "tools" and "tool_choice" a request
// carries, and the calls an answer makes.
//
// The decision, per answer: no tools or tool_choice "none": text.
// "required" or a named function: always a call. "auto": text when the
// last message is a tool's result; else a rules file's tool call when one
// matches; else a call with probability SynthOptions::tool_rate. The tool
// is drawn from those offered (or is the named one) and its arguments are
// generated from its "parameters" schema (JsonSchemaGenerator). Internal
// to src/synth/.
#ifndef REWIND_SRC_SYNTH_TOOLS_H_
#define REWIND_SRC_SYNTH_TOOLS_H_

#include <rapidjson/document.h>

#include <random>
#include <vector>

#include "rewind/status.h"
#include "rewind/synth.h"

namespace rwd {

// Reads a request's "tools" into request->tools: chat's
// {"type":"function","function":{"name":..,"parameters":..}} or, with
// "responses_shape", the Responses API's {"type":"function","name":..,
// "parameters":..}. Tools of other types (web_search, ...) are skipped.
// InvalidArgument for a malformed tool or an unusable schema.
Status ParseTools(const rapidjson::Value& tools, bool responses_shape,
                  OpenAIRequest* request);

// Reads "tool_choice": "auto", "none", "required", or a named function
// ({"type":"function","function":{"name":..}} or {"type":"function",
// "name":..}). Other objects (allowed_tools, a built-in tool) mean auto.
// Call after ParseTools: a named function must be among the tools.
Status ParseToolChoice(const rapidjson::Value& choice, OpenAIRequest* request);

// The calls this answer makes; empty for a text answer.
std::vector<ToolCall> ChooseToolCalls(const OpenAIRequest& request,
                                      const SynthOptions& options,
                                      std::mt19937_64& rng);

}  // namespace rwd

#endif  // REWIND_SRC_SYNTH_TOOLS_H_
