#include "modes/synth_mode.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "modes/scope.h"
#include "rewind/replay.h"
#include "synth/dialect.h"
#include "util/text.h"

namespace rwd {
namespace {

// Seconds since the Unix epoch that synthesized answers report as
// "created" when they must be reproducible byte for byte.
constexpr int64_t kFixedCreated = 1700000000;

constexpr const char* kJson = "application/json";

Answer Immediate(int status, std::string body) {
  Answer a;
  a.outcome = "synth";
  a.keyed = false;
  a.timeline = Timeline::Immediate(status, kJson, std::move(body));
  return a;
}

}  // namespace

SynthMode::SynthMode(const SynthOptions& options, Clock* clock,
                     ModeCounters* counters)
    : synth_(options),
      admission_(options.max_concurrency, options.max_queue),
      metrics_(options.model),
      clock_(clock),
      counters_(counters) {}

Answer SynthMode::Serve(const Call& call) {
  const Request& request = call.request;
  // HEAD is answered as GET; the front leaves the body out.
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (get && request.path == "/health") {
    return Immediate(200, "{\"status\":\"ok\"}\n");
  }
  if (std::optional<Synthesizer::Reply> reply = synth_.Immediate(request)) {
    return Immediate(reply->status, std::move(reply->body));
  }
  if (get && request.path == "/api/tags") {
    return Immediate(200, OllamaTagsBody(synth_.options()));
  }
  if (request.method == "POST" && Generates(request.path))
    return Generate(call);
  return Immediate(
      404, DialectErrorBody(DialectOf(request.path), 404,
                            "rewind serve has no " + request.method + " " +
                                request.path + "; it serves " +
                                Synthesizer::Endpoints(),
                            "invalid_request_error", "unknown_url"));
}

uint64_t SynthMode::NextOccurrence(const RequestKey& key) {
  std::lock_guard<std::mutex> lock(occurrences_mu_);
  return occurrences_[key]++;
}

void SynthMode::Reset() {
  std::lock_guard<std::mutex> lock(occurrences_mu_);
  occurrences_.clear();
}

Answer SynthMode::Generate(const Call& call) {
  const Request& request = call.request;
  const SynthOptions& options = synth_.options();
  counters_->synthesized++;
  Answer answer;
  answer.outcome = "synth";
  SynthContext ctx;
  const std::string forced = FindHeader(request.headers, "X-Rewind-Fault");
  if (!forced.empty()) {
    Result<FaultType> f = ParseFaultType(forced);
    if (!f.ok()) {
      answer.timeline = Timeline::Immediate(
          400, kJson,
          DialectErrorBody(DialectOf(request.path), 400, f.status().message(),
                           "invalid_request_error", ""));
      return answer;
    }
    ctx.forced_fault = f.value();
  }
  std::shared_ptr<Admission::Slot> slot = admission_.Enter();
  if (!slot) {
    answer.timeline = Timeline::Immediate(
        429, kJson,
        DialectErrorBody(DialectOf(request.path), 429,
                         "rewind's dummy engine is at capacity: " +
                             std::to_string(options.max_concurrency) +
                             " running and " +
                             std::to_string(options.max_queue) + " waiting",
                         "rate_limit_error", "rate_limit_exceeded"));
    return answer;
  }
  ctx.admitted_us = clock_->NowMicros() - call.received_us;
  ctx.load_multiplier = synth_.LoadMultiplier(admission_.running());
  ctx.seed = RequestSeed(
      options.seed, call.key,
      call.scope ? call.scope->synth.Next(call.key) : NextOccurrence(call.key));
  ctx.created = options.deterministic_created ? kFixedCreated
                                              : clock_->WallMicros() / 1000000;
  SynthPlan plan = synth_.Plan(request, ctx);
  admission_.AddTokens(slot.get(), plan.prompt_tokens + plan.completion_tokens);
  if (plan.response.status == 200 && !plan.response.chunks.empty()) {
    const double first =
        static_cast<double>(plan.response.chunks.front().offset_us);
    const double last =
        static_cast<double>(plan.response.chunks.back().offset_us);
    metrics_.Observe(first / 1e6,
                     plan.completion_tokens > 1
                         ? (last - first) / 1e6 / (plan.completion_tokens - 1)
                         : 0,
                     last / 1e6, plan.prompt_tokens, plan.completion_tokens);
  }
  answer.timeline =
      Timeline::Of(std::make_shared<const Response>(std::move(plan.response)));
  answer.timeline.end =
      plan.abort ? Timeline::End::kAbort : Timeline::End::kClean;
  answer.timeline.content_length = plan.content_length;
  answer.timeline.hold = std::move(slot);
  return answer;
}

std::string SynthMode::RenderMetrics() const {
  return metrics_.Render(admission_.running(), admission_.waiting(),
                         static_cast<double>(admission_.tokens()) /
                             static_cast<double>(std::max<int64_t>(
                                 1, synth_.options().kv_cache_tokens)));
}

std::string SynthMode::ConfigJson() const {
  const SynthOptions& o = synth_.options();
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto string = [&w](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  string("output", o.output.ToString());
  string("ttft", o.ttft.ToString());
  string("itl", o.itl.ToString());
  w.Key("prefill_per_token_ms");
  w.Double(o.prefill_per_token_ms);
  w.Key("load_factor");
  w.Double(o.load_factor);
  w.Key("max_concurrency");
  w.Uint64(o.max_concurrency);
  w.Key("max_queue");
  w.Uint64(o.max_queue);
  w.Key("kv_cache_tokens");
  w.Int64(o.kv_cache_tokens);
  w.Key("fault_rate");
  w.Double(o.faults.rate);
  w.Key("seed");
  w.Uint64(o.seed);
  string("model", o.model);
  // --model and --lora ("base", "adapter=base").
  w.Key("models");
  w.StartArray();
  for (const std::string& m : o.models) {
    w.String(m.data(), static_cast<rapidjson::SizeType>(m.size()));
  }
  for (const auto& [adapter, parent] : o.adapters) {
    const std::string named = adapter + "=" + parent;
    w.String(named.data(), static_cast<rapidjson::SizeType>(named.size()));
  }
  w.EndArray();
  w.Key("tool_rate");
  w.Double(o.tool_rate);
  w.Key("embedding_dimensions");
  w.Int64(o.embedding_dimensions);
  w.Key("max_model_len");
  w.Int64(o.max_model_len);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace rwd
