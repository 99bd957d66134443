// Comparing a recorded response with a new one, as `rewind check` does:
// status, chosen headers, and the body JSON-aware. A token stream (SSE) is
// compared by its content (text and tool calls per choice, finish reasons,
// usage), not by how its bytes were chunked; an NDJSON stream line by line,
// each line as JSON.
#ifndef REWIND_SRC_CLI_COMPARE_H_
#define REWIND_SRC_CLI_COMPARE_H_

#include <string>
#include <vector>

#include "rewind/exchange.h"

namespace rwd {

struct CompareOptions {
  // Member names ignored wherever they appear (volatile per call).
  // Ollama's created_at and measured durations among them.
  std::vector<std::string> volatile_names = {"id",
                                             "created",
                                             "system_fingerprint",
                                             "service_tier",
                                             "obfuscation",
                                             "created_at",
                                             "total_duration",
                                             "load_duration",
                                             "prompt_eval_duration",
                                             "eval_duration"};
  // Dotted paths ignored; "*" matches any array index or member.
  std::vector<std::string> ignore_fields;
  // Headers whose values must match (case-insensitive names).
  std::vector<std::string> headers;
  // Numbers within this absolute difference are equal. 0: exact.
  double float_tolerance = 0;
};

struct Difference {
  std::string path;  // "status", "header.x-model", "choices[0].message.content"
  std::string was;   // compact JSON (or text) of the recorded value
  std::string now;   // of the new value
};

// The content of a response body, as compared: the JSON value, or for an
// SSE stream a JSON summary {"choices":[{"index","text","tool_calls",
// "finish_reason"}],"usage":...}; non-JSON bodies stay bytes. Exposed for
// tests and the fuzzer.
std::string StreamSummary(const std::string& sse_body);

// An NDJSON body (Content-Type application/x-ndjson, Ollama's streams) as
// one JSON array of its lines, compared line by line; a line that is not
// JSON stays as a string. Blank lines are skipped.
std::string NdjsonArray(const std::string& body);

std::vector<Difference> CompareResponses(const Response& recorded,
                                         const Response& now,
                                         const CompareOptions& options,
                                         size_t limit = 50);

}  // namespace rwd

#endif  // REWIND_SRC_CLI_COMPARE_H_
