// Synth: the dummy inference engine as a mode (rewind serve, and replay's
// --on-miss synthesize).
//
// Serve() answers the engine's whole surface: GET /health, GET /v1/models,
// POST /tokenize and /detokenize, GET /api/tags, and the generating
// endpoints (Synthesizer::Generates), which Generate() answers alone:
// admission (a queue, or 429 at capacity), a plan from the Synthesizer
// seeded by the request's key and occurrence, and its Timeline, which
// holds the admission slot until its last byte is written.
//
// Thread-safety: safe for concurrent use.
#ifndef REWIND_SRC_MODES_SYNTH_MODE_H_
#define REWIND_SRC_MODES_SYNTH_MODE_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "rewind/clock.h"
#include "rewind/mode.h"
#include "rewind/synth.h"
#include "synth/engine_metrics.h"

namespace rwd {

class SynthMode final : public Mode {
 public:
  // "clock" and "counters" must outlive the mode.
  SynthMode(const SynthOptions& options, Clock* clock, ModeCounters* counters);

  Answer Serve(const Call& call) override;
  // Without --max-concurrency nothing waits for capacity.
  bool AnswersAtOnce(const Call& /*call*/) override {
    return admission_.unlimited();
  }
  // A POST to a generating endpoint (Generates()).
  Answer Generate(const Call& call);
  static bool Generates(const std::string& path) {
    return Synthesizer::Generates(path);
  }
  // Restarts the occurrence counts that seed repeated requests.
  void Reset() override;

  // The engine's Prometheus metrics (vLLM's names).
  std::string RenderMetrics() const;
  // The engine's options as the members of a JSON object, for
  // GET /__rewind/config.
  std::string ConfigJson() const;

 private:
  uint64_t NextOccurrence(const RequestKey& key);

  Synthesizer synth_;
  Admission admission_;
  EngineMetrics metrics_;
  Clock* const clock_;
  ModeCounters* const counters_;
  std::mutex occurrences_mu_;
  std::unordered_map<RequestKey, uint64_t, RequestKeyHash>
      occurrences_;  // guarded by occurrences_mu_
};

}  // namespace rwd

#endif  // REWIND_SRC_MODES_SYNTH_MODE_H_
