// One recording, streamed or not: turns a recorded OpenAI answer
// (/v1/chat/completions or /v1/completions) into the other framing, for
// replay --on-miss convert.
//
// A recorded SSE stream becomes one completion object, as the API would
// have answered without "stream": the deltas of each choice assembled
// (content, refusal, tool calls, logprobs), finish reasons and usage kept,
// delivered whole at the stream's last offset. A recorded completion
// becomes a stream: a role chunk, one chunk per token of each choice's
// content (tokens as the dummy engine counts them), tool calls as a name
// chunk and argument pieces, a finish chunk, a usage chunk when asked
// for, and [DONE]; spread evenly over the recorded total time, so the
// last byte arrives when the recorded answer did.
//
// Thread-safety: free functions over values.
#ifndef REWIND_SRC_MODES_CONVERT_H_
#define REWIND_SRC_MODES_CONVERT_H_

#include <string>

#include "rewind/exchange.h"
#include "rewind/status.h"

namespace rwd {

// What a request body asks of the framing: "stream": true, and
// "stream_options": {"include_usage": true}.
struct StreamRequest {
  bool stream = false;
  bool include_usage = false;
  static StreamRequest Of(const std::string& json_body);
};

// Whether "response" is an SSE stream (Content-Type text/event-stream).
bool IsEventStream(const Response& response);

// A recorded stream as one completion ("chat": chat.completion, else
// text_completion). InvalidArgument when it is not an OpenAI stream of
// that kind, or is encoded (Content-Encoding).
Result<Response> StreamToCompletion(const Response& stream, bool chat);

// A recorded completion as a stream. InvalidArgument when the body is not
// such a completion, or is encoded.
Result<Response> CompletionToStream(const Response& completion, bool chat,
                                    bool include_usage);

}  // namespace rwd

#endif  // REWIND_SRC_MODES_CONVERT_H_
