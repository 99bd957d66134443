#include "modes/replay_mode.h"

#include <utility>

#include "modes/errors.h"
#include "modes/scope.h"
#include "util/text.h"

namespace rwd {

std::shared_ptr<const LatencySamples> EndpointSamples::For(
    const std::string& method, const std::string& path) {
  const std::string endpoint = method + " " + path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_endpoint_.find(endpoint);
    if (it != by_endpoint_.end()) return it->second;
  }
  auto samples = std::make_shared<LatencySamples>();
  for (int64_t id : index_->SamePath(method, path, kMaxSamples)) {
    Result<std::shared_ptr<const Exchange>> e = cache_->Get(id);
    if (e.ok()) samples->Add(e.value()->response);
  }
  std::lock_guard<std::mutex> lock(mu_);
  return by_endpoint_.emplace(endpoint, std::move(samples)).first->second;
}

Result<LatencyModel> Pacing::ModelFor(const Request& request) const {
  const std::string override = FindHeader(request.headers, "X-Rewind-Latency");
  if (override.empty()) return latency;
  return LatencyModel::Parse(override);
}

Timeline Pacing::Pace(std::shared_ptr<const Response> answer,
                      const LatencyModel& model, const Request& request,
                      const RequestKey& key, uint64_t occurrence) const {
  std::shared_ptr<const LatencySamples> recorded;
  if (model.kind() == LatencyModel::Kind::kEmpirical && samples != nullptr) {
    recorded = samples->For(request.method, request.path);
  }
  Timeline t;
  t.at =
      model.Apply(*answer, RequestSeed(seed, key, occurrence), recorded.get());
  t.response = std::move(answer);
  return t;
}

Result<bool> DemandsExactMatch(const Request& request) {
  bool exact = false;
  for (const auto& [name, value] : request.headers) {
    if (!HeaderNameEquals(name, kMatchHeader) || value.empty()) continue;
    if (!HeaderNameEquals(value, "exact")) {
      return Status::InvalidArgument(
          std::string(kMatchHeader) + ": " + QuotedBytes(value.substr(0, 64)) +
          " is not a matching rule; the allowed value is \"exact\" (answer "
          "only from a recording of this very request); leave the header "
          "out, or empty, for the server's --on-miss policy");
    }
    exact = true;
  }
  return exact;
}

bool ReplayMode::AnswersAtOnce(const Call& call) {
  // The empirical model reads samples of the endpoint's recordings.
  if (pacing_.latency.kind() == LatencyModel::Kind::kEmpirical ||
      !FindHeader(call.request.headers, "X-Rewind-Latency").empty()) {
    return false;
  }
  return index_->EveryId(call.key,
                         [this](int64_t id) { return cache_->Contains(id); });
}

Answer ReplayMode::Serve(const Call& call) {
  if (Result<bool> exact = DemandsExactMatch(call.request); !exact.ok()) {
    Answer answer;
    answer.keyed = false;
    answer.timeline = ErrorTimeline(call.request.path, 400, "rewind_bad_match",
                                    exact.status().message());
    return answer;
  }
  std::optional<ReplayIndex::Pick> pick =
      index_->Select(call.key, call.scope ? &call.scope->replay : nullptr);
  if (!pick) return on_miss_->Serve(call);
  Answer answer;
  answer.keyed = false;
  Result<LatencyModel> model = pacing_.ModelFor(call.request);
  if (!model.ok()) {
    answer.timeline = ErrorTimeline(
        call.request.path, 400, "rewind_bad_latency", model.status().message());
    return answer;
  }
  Result<std::shared_ptr<const Exchange>> exchange = cache_->Get(pick->id);
  if (!exchange.ok()) {
    counters_->errors++;
    answer.timeline =
        ErrorTimeline(call.request.path, 500, "rewind_store_error",
                      exchange.status().ToString());
    return answer;
  }
  counters_->hits++;
  const std::shared_ptr<const Exchange>& e = exchange.value();
  answer.outcome = "hit";
  answer.keyed = true;
  answer.exchange = pick->id;
  answer.timeline =
      pacing_.Pace(std::shared_ptr<const Response>(e, &e->response),
                   model.value(), call.request, call.key, pick->occurrence);
  return answer;
}

void ReplayMode::Reset() {
  index_->Reset();
  on_miss_->Reset();
}

}  // namespace rwd
