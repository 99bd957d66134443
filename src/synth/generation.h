// One generated answer (a "choice") of the dummy engine, before any API
// shapes it: text tokens, or tool calls, with the finish reason and, when
// asked, log probabilities. Chat and text completions and the Responses
// API render the same PlannedChoice. Internal to src/synth/.
#ifndef REWIND_SRC_SYNTH_GENERATION_H_
#define REWIND_SRC_SYNTH_GENERATION_H_

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "rewind/synth.h"
#include "synth/engine_util.h"

namespace rwd {

struct TokenLogprob {
  std::string token;
  double logprob = 0;
  // The most likely tokens at this position, best first; the chosen token
  // leads. top_logprobs entries (at least the chosen one).
  std::vector<std::pair<std::string, double>> top;
};

struct PlannedCall {
  std::string id;  // "call_..."
  std::string name;
  std::string arguments;  // JSON text
  // The arguments in the pieces a stream sends, in order.
  std::vector<std::string> fragments;
};

struct PlannedChoice {
  std::vector<std::string> tokens;  // a text answer, after stop and max_tokens
  std::vector<PlannedCall> calls;   // or tool calls (tokens then empty)
  std::string finish_reason;        // "stop", "length" or "tool_calls"
  std::vector<TokenLogprob> logprobs;  // one per token, when asked

  // The pieces a stream sends, each one generated token: the text's
  // tokens, or per call its name and then its argument fragments.
  size_t Steps() const;
  std::string Text() const;
};

// One token's log probability as chat's logprobs.content and the Responses
// API's output_text logprobs carry it: token, logprob, bytes, and the
// first "top" alternatives (the chosen token leads).
void WriteTokenLogprob(JsonWriter* w, const TokenLogprob& lp, int top);

// Plans one answer to "request": tool calls when ChooseToolCalls makes
// them; else the output mode's text, shaped as JSON when the request asks
// for a response format (never cut by stop or max_tokens then), else cut
// at a stop string or max_tokens.
PlannedChoice PlanChoice(const OpenAIRequest& request,
                         const SynthOptions& options, std::mt19937_64& rng);

}  // namespace rwd

#endif  // REWIND_SRC_SYNTH_GENERATION_H_
