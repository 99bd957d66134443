// Fuzzes the dummy engine: OpenAI request parsing and planning (streamed
// and not, with every fault forced), on an arbitrary request body, for
// chat and text completions, the Responses API and embeddings; and the
// /tokenize and /detokenize answers.
#include <cstdint>
#include <string>

#include "rewind/synth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const rwd::Synthesizer synth([] {
    rwd::SynthOptions o;
    o.output = rwd::OutputMode::Parse("echo", nullptr).value();
    o.ttft = rwd::Distribution::Parse("uniform:0..5").value();
    o.itl = rwd::Distribution::Parse("normal:1,1").value();
    o.prefill_per_token_ms = 0.1;
    return o;
  }());
  rwd::Request r;
  r.method = "POST";
  r.body.assign(reinterpret_cast<const char*>(data), size);
  for (const char* path : {"/v1/chat/completions", "/v1/completions",
                           "/v1/responses", "/v1/embeddings"}) {
    r.path = path;
    for (int fault = 0; fault <= static_cast<int>(rwd::FaultType::kGarbage);
         ++fault) {
      rwd::SynthContext ctx;
      ctx.seed = size;
      ctx.forced_fault = static_cast<rwd::FaultType>(fault);
      rwd::SynthPlan plan = synth.Plan(r, ctx);
      int64_t last = plan.response.headers_us;
      for (const rwd::Chunk& c : plan.response.chunks) {
        if (c.offset_us < 0) __builtin_trap();
        last = c.offset_us;
      }
      (void)last;
    }
  }
  for (const char* path : {"/tokenize", "/detokenize"}) {
    r.path = path;
    (void)synth.Immediate(r);
  }
  return 0;
}
