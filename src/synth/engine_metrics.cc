#include "synth/engine_metrics.h"

#include <cstdio>

namespace rwd {
namespace {

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

void Gauge(const std::string& name, const std::string& help,
           const std::string& labels, double value, std::string* out) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" +
          name + "{" + labels + "} " + Number(value) + "\n";
}

void Counter(const std::string& name, const std::string& help,
             const std::string& labels, uint64_t value, std::string* out) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " counter\n" +
          name + "{" + labels + "} " + std::to_string(value) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::Render(const std::string& name, const std::string& labels,
                       std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? Number(bounds_[i]) : "+Inf";
    *out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " +
            std::to_string(cumulative) + "\n";
  }
  *out += name + "_sum{" + labels + "} " + Number(sum_) + "\n";
  *out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
}

EngineMetrics::EngineMetrics(std::string model)
    : labels_("model_name=\"" + model + "\""),
      ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
             1.0, 2.5, 5.0, 7.5, 10.0}),
      tpot_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
             1.0, 2.5}),
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
        {"vllm:time_per_output_token_seconds", "Time per output token.", &tpot_},
        {"vllm:e2e_request_latency_seconds", "End-to-end request latency.",
         &e2e_}}) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name +
           " histogram\n";
    h->Render(name, labels_, &out);
  }
  return out;
}

}  // namespace rwd
