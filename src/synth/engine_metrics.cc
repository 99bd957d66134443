#include "synth/engine_metrics.h"

#include <cstdio>

namespace rwd {
namespace {

void Gauge(const std::string& name, const std::string& help,
           const std::string& labels, double value, std::string* out) {
  MetricHeader(name, "gauge", help, out);
  *out += name + "{" + labels + "} " + MetricNumber(value) + "\n";
}

void Counter(const std::string& name, const std::string& help,
             const std::string& labels, uint64_t value, std::string* out) {
  MetricHeader(name, "counter", help, out);
  *out += name + "{" + labels + "} " + std::to_string(value) + "\n";
}

}  // namespace

EngineMetrics::EngineMetrics(std::string model)
    : labels_("model_name=\"" + model + "\""),
      ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
             1.0, 2.5, 5.0, 7.5, 10.0}),
      tpot_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
             2.5}),
      e2e_({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
            40.0, 50.0, 60.0}) {}

void EngineMetrics::Observe(double ttft_s, double tpot_s, double e2e_s,
                            int prompt_tokens, int generation_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.Observe(ttft_s);
  if (generation_tokens > 1) tpot_.Observe(tpot_s);
  e2e_.Observe(e2e_s);
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
  generation_tokens_ += static_cast<uint64_t>(generation_tokens);
  ++requests_;
}

std::string EngineMetrics::Render(size_t running, size_t waiting,
                                  double kv_usage) const {
  std::string out;
  Gauge("vllm:num_requests_running", "Requests generating now.", labels_,
        static_cast<double>(running), &out);
  Gauge("vllm:num_requests_waiting", "Requests waiting for a slot.", labels_,
        static_cast<double>(waiting), &out);
  Gauge("vllm:gpu_cache_usage_perc",
        "Simulated KV-cache usage: tokens of running sequences over "
        "--kv-cache-tokens (1 = full).",
        labels_, kv_usage, &out);
  std::lock_guard<std::mutex> lock(mu_);
  Counter("vllm:prompt_tokens_total", "Prompt tokens processed.", labels_,
          prompt_tokens_, &out);
  Counter("vllm:generation_tokens_total", "Tokens generated.", labels_,
          generation_tokens_, &out);
  Counter("vllm:request_success_total", "Requests answered by the engine.",
          labels_, requests_, &out);
  for (const auto& [name, help, h] :
       {std::tuple<const char*, const char*, const Histogram*>{
            "vllm:time_to_first_token_seconds", "Time to first token.", &ttft_},
        {"vllm:time_per_output_token_seconds", "Time per output token.",
         &tpot_},
        {"vllm:e2e_request_latency_seconds", "End-to-end request latency.",
         &e2e_}}) {
    MetricHeader(name, "histogram", help, &out);
    h->Render(name, labels_, &out);
  }
  return out;
}

}  // namespace rwd
