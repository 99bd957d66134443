// The text a streamed answer carries one token per event: where each piece
// of it sits in the stream, so that a value split across events (an e-mail
// streamed as "bob", "@", "example", ".com") can be found in the joined
// text and taken out of the events that hold it.
//
// A token field is a string at one of these JSON paths in an event ("#" is
// any array index):
//   choices.#.delta.content            OpenAI chat completions (and vLLM,
//   choices.#.delta.reasoning_content  TGI, llama.cpp), with reasoning and
//   choices.#.delta.reasoning          tool-call arguments
//   choices.#.delta.tool_calls.#.function.arguments
//   choices.#.text                     OpenAI completions
//   delta                              OpenAI Responses API (*.delta events)
//   delta.text, delta.partial_json,    Anthropic Messages
//   delta.thinking
//   message.content, response          Ollama (chat, generate)
//   token.text                         TGI generate_stream
//   candidates.#.content.parts.#.text  Gemini
// Pieces of one text share a path, indexes included: choice 0's content
// and choice 1's are two texts. An array element's "index" field stands for
// its position (OpenAI streams each choice at position 0, "index" saying
// which), and an event's own "index", "output_index" and "content_index"
// (Anthropic's content blocks, the Responses API's output items) begin the
// path: "index=1 delta.text".
#ifndef REWIND_SCRUB_STREAM_TEXT_H_
#define REWIND_SCRUB_STREAM_TEXT_H_

#include <string>
#include <string_view>
#include <vector>

namespace rwd::scrub {

// One event's piece of a streamed text.
struct StreamPiece {
  size_t begin = 0;  // the string literal in the body, quotes included
  size_t end = 0;
  std::string value;  // decoded
};

// The pieces of one text, in stream order.
struct StreamText {
  std::string path;  // "choices.0.delta.content"
  std::vector<StreamPiece> pieces;
};

// Calls fn(payload, offset, is_data) for each line of a streamed body:
// with "sse", a "data:" line's payload after the prefix (is_data true) and
// any other line whole (false); else every line whole (true). "offset" is
// the payload's first byte in "body".
template <typename Fn>
void ForEachLine(std::string_view body, bool sse, Fn fn) {
  size_t start = 0;
  while (start < body.size()) {
    size_t nl = body.find('\n', start);
    size_t end = nl == std::string_view::npos ? body.size() : nl;
    std::string_view line = body.substr(start, end - start);
    const bool data = !sse || line.substr(0, 5) == "data:";
    const size_t skip = sse && data ? 5 : 0;
    fn(line.substr(skip), start + skip, data);
    start = end + 1;
  }
}

// The texts of a streamed body: SSE ("data: {...}" lines) when "sse", else
// one JSON document per line (NDJSON). Lines that are not JSON, and JSON
// nested deeper than the paths above, are skipped.
std::vector<StreamText> StreamTexts(std::string_view body, bool sse);

}  // namespace rwd::scrub

#endif  // REWIND_SCRUB_STREAM_TEXT_H_
