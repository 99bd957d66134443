#include "synth/engine_util.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>
#include <vector>

#include "util/text.h"

namespace rwd {

Status CheckRequestDepth(const std::string& body) {
  if (JsonNestsDeeperThan(body, kMaxRequestDepth)) {
    return Status::InvalidArgument(
        "the request body nests objects and arrays deeper than " +
        std::to_string(kMaxRequestDepth) + " levels");
  }
  return Status::Ok();
}

bool JsonDepthAtMost(const rapidjson::Value& v, int max_depth) {
  std::vector<std::pair<const rapidjson::Value*, int>> stack{{&v, 0}};
  while (!stack.empty()) {
    auto [at, depth] = stack.back();
    stack.pop_back();
    if (at->IsObject()) {
      if (depth + 1 > max_depth && !at->ObjectEmpty()) return false;
      for (const auto& m : at->GetObject())
        stack.emplace_back(&m.value, depth + 1);
    } else if (at->IsArray()) {
      if (depth + 1 > max_depth && !at->Empty()) return false;
      for (const auto& e : at->GetArray()) stack.emplace_back(&e, depth + 1);
    }
  }
  return true;
}

void WriteSpacedJson(const rapidjson::Value& v, std::string* out) {
  if (v.IsObject()) {
    *out += '{';
    bool first = true;
    for (const auto& m : v.GetObject()) {
      if (!first) *out += ", ";
      first = false;
      WriteSpacedJson(m.name, out);
      *out += ": ";
      WriteSpacedJson(m.value, out);
    }
    *out += '}';
  } else if (v.IsArray()) {
    *out += '[';
    bool first = true;
    for (const auto& e : v.GetArray()) {
      if (!first) *out += ", ";
      first = false;
      WriteSpacedJson(e, out);
    }
    *out += ']';
  } else {
    *out += CompactJson(v);
  }
}

std::string CompactJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  JsonWriter w(b);
  v.Accept(w);
  return TakeJson(&b);
}

std::string HexId(const char* prefix, uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, value);
  return prefix + std::string(buf);
}

SynthPlan ErrorPlan(int status, const std::string& message,
                    const std::string& type, const std::string& code,
                    int64_t at_us) {
  SynthPlan p;
  p.response.status = status;
  p.response.headers = {{"Content-Type", "application/json"}};
  p.response.headers_us = at_us;
  p.response.chunks = {{at_us, OpenAIErrorBody(message, type, code)}};
  return p;
}

FaultType DrawFault(const SynthOptions& options, const SynthContext& ctx,
                    std::mt19937_64& rng) {
  const double draw = std::uniform_real_distribution<double>(0, 1)(rng);
  if (ctx.forced_fault) return *ctx.forced_fault;
  const FaultSpec& f = options.faults;
  if (draw < f.rate && !f.types.empty()) {
    return f.types[std::uniform_int_distribution<size_t>(
        0, f.types.size() - 1)(rng)];
  }
  return FaultType::kNone;
}

std::optional<SynthPlan> ErrorFaultPlan(FaultType fault,
                                        const SynthOptions& options,
                                        int64_t start) {
  SynthPlan plan;
  switch (fault) {
    case FaultType::k429:
      plan = ErrorPlan(429, "Rate limit reached (injected by rewind)",
                       "rate_limit_error", "rate_limit_exceeded", start);
      break;
    case FaultType::k500:
      plan = ErrorPlan(500, "The server had an error (injected by rewind)",
                       "server_error", "", start);
      break;
    case FaultType::k503:
      plan = ErrorPlan(503, "The engine is overloaded (injected by rewind)",
                       "server_error", "overloaded", start);
      break;
    case FaultType::k400:
      plan = ErrorPlan(400, "Invalid request (injected by rewind)",
                       "invalid_request_error", "", start);
      break;
    case FaultType::kTimeout:
      plan = ErrorPlan(504, "No answer in time (injected by rewind)",
                       "server_error", "timeout",
                       start + options.faults.timeout_ms * 1000);
      break;
    default:
      return std::nullopt;
  }
  plan.fault = fault;
  return plan;
}

int64_t FirstTokenAt(const SynthOptions& options, const SynthContext& ctx,
                     int prompt_tokens, std::mt19937_64& rng) {
  return ctx.admitted_us +
         static_cast<int64_t>(
             (static_cast<double>(options.ttft.SampleMicros(rng)) +
              options.prefill_per_token_ms * 1000.0 * prompt_tokens) *
             ctx.load_multiplier);
}

int64_t TokenGap(const SynthOptions& options, const SynthContext& ctx,
                 std::mt19937_64& rng) {
  return static_cast<int64_t>(
      static_cast<double>(options.itl.SampleMicros(rng)) * ctx.load_multiplier);
}

void SetBody(std::string body, int64_t at, FaultType fault,
             const SynthOptions& options, SynthPlan* plan) {
  Response& res = plan->response;
  res.headers = {{"Content-Type", "application/json"}};
  res.headers_us = at;
  switch (fault) {
    case FaultType::kStall:
      res.headers_us = at += options.faults.stall_ms * 1000;
      res.chunks = {{at, std::move(body)}};
      break;
    case FaultType::kGarbage:
      res.chunks = {{at, body.substr(0, body.size() / 2) + "\x01}{garbage"}};
      break;
    case FaultType::kDrop:
      // Content-Length announces the whole body; half of it arrives.
      plan->content_length = body.size();
      res.chunks = {{at, body.substr(0, body.size() / 2)}};
      plan->abort = true;
      break;
    default:
      res.chunks = {{at, std::move(body)}};
  }
}

void BreakStream(FaultType fault, const SynthOptions& options,
                 const std::string& garbage_event, std::mt19937_64& rng,
                 SynthPlan* plan) {
  if (fault != FaultType::kDrop && fault != FaultType::kStall &&
      fault != FaultType::kGarbage) {
    return;
  }
  std::vector<Chunk>& chunks = plan->response.chunks;
  if (chunks.empty()) return;
  // Somewhere after the first event and before the last.
  const size_t k = std::min(
      chunks.size() - 1, std::uniform_int_distribution<size_t>(
                             1, std::max<size_t>(1, chunks.size() - 2))(rng));
  if (fault == FaultType::kDrop) {
    chunks.resize(k);
    plan->abort = true;
  } else if (fault == FaultType::kStall) {
    for (size_t i = k; i < chunks.size(); ++i) {
      chunks[i].offset_us += options.faults.stall_ms * 1000;
    }
  } else {
    chunks[k].data = garbage_event;
  }
}

std::optional<std::string> ServedModel(const SynthOptions& options,
                                       const std::string& asked) {
  if (asked.empty())
    return options.models.empty() ? options.model : options.models.front();
  if (options.models.empty()) return asked;
  for (const std::string& m : options.models) {
    if (m == asked) return asked;
  }
  for (const auto& [adapter, parent] : options.adapters) {
    if (adapter == asked) return asked;
  }
  return std::nullopt;
}

std::string UnknownModelBody(const std::string& model) {
  return OpenAIErrorBody("The model `" + model + "` does not exist.",
                         "invalid_request_error", "model_not_found");
}

SynthPlan UnknownModelPlan(const std::string& model, int64_t at_us) {
  SynthPlan p = ErrorPlan(404, "", "", "", at_us);
  p.response.chunks = {{at_us, UnknownModelBody(model)}};
  return p;
}

}  // namespace rwd
