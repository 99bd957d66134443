// Prometheus text-format metrics of the dummy engine, named as vLLM names
// them so dashboards and autoscalers built for vLLM read them unchanged.
#ifndef REWIND_SRC_SYNTH_ENGINE_METRICS_H_
#define REWIND_SRC_SYNTH_ENGINE_METRICS_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "util/prometheus.h"

namespace rwd {

// Thread-safety: safe for concurrent use.
class EngineMetrics {
 public:
  explicit EngineMetrics(std::string model);

  // One finished plan: its TTFT, mean time per output token and end-to-end
  // latency (seconds, as planned), and its token counts.
  void Observe(double ttft_s, double tpot_s, double e2e_s, int prompt_tokens,
               int generation_tokens);

  std::string Render(size_t running, size_t waiting, double kv_usage) const;

 private:
  const std::string labels_;
  mutable std::mutex mu_;
  Histogram ttft_;                  // guarded by mu_
  Histogram tpot_;                  // guarded by mu_
  Histogram e2e_;                   // guarded by mu_
  uint64_t prompt_tokens_ = 0;      // guarded by mu_
  uint64_t generation_tokens_ = 0;  // guarded by mu_
  uint64_t requests_ = 0;           // guarded by mu_
};

}  // namespace rwd

#endif  // REWIND_SRC_SYNTH_ENGINE_METRICS_H_
