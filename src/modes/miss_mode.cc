#include "modes/miss_mode.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "modes/convert.h"
#include "modes/errors.h"
#include "modes/scope.h"
#include "util/text.h"

namespace rwd {
namespace {

std::string JsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += JsonQuote(items[i]);
  }
  return out + "]";
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

Result<MissPolicy> ParseMissPolicy(const std::string& name) {
  if (name == "error") return MissPolicy::kError;
  if (name == "passthrough") return MissPolicy::kPassthrough;
  if (name == "record") return MissPolicy::kRecord;
  if (name == "synthesize") return MissPolicy::kSynthesize;
  if (name == "convert") return MissPolicy::kConvert;
  return Status::InvalidArgument(
      "unknown miss policy \"" + name +
      "\": use error, passthrough, record, synthesize or convert");
}

const char* MissPolicyName(MissPolicy p) {
  switch (p) {
    case MissPolicy::kError:
      return "error";
    case MissPolicy::kPassthrough:
      return "passthrough";
    case MissPolicy::kRecord:
      return "record";
    case MissPolicy::kSynthesize:
      return "synthesize";
    case MissPolicy::kConvert:
      return "convert";
  }
  return "?";
}

Result<std::unique_ptr<ConvertMode>> ConvertMode::Load(
    Store* store, const ReplayIndex& index, const KeyRules& rules,
    RepeatPolicy repeat, ExchangeCache* cache, const Pacing* pacing,
    ModeCounters* counters, ModeEvents* events) {
  KeyRules stream_free = rules;
  stream_free.ignore_fields.push_back("stream");
  stream_free.ignore_fields.push_back("stream_options");
  std::unique_ptr<ConvertMode> mode(new ConvertMode(
      stream_free, repeat, pacing->seed, cache, pacing, counters, events));
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    for (int64_t id : index.SamePath("POST", path, SIZE_MAX)) {
      Result<Exchange> e = store->Get(id);
      if (!e.ok()) return e.status();
      mode->index_.Add(mode->stream_free_.Key(e->request), id, "POST", path);
    }
  }
  return mode;
}

std::optional<Answer> ConvertMode::TryServe(const Call& call) {
  const Request& request = call.request;
  const bool chat = request.path == "/v1/chat/completions";
  if (request.method != "POST" ||
      (!chat && request.path != "/v1/completions")) {
    return std::nullopt;
  }
  std::optional<ReplayIndex::Pick> pick = index_.Select(
      stream_free_.Key(request), call.scope ? &call.scope->convert : nullptr);
  if (!pick) return std::nullopt;
  Result<std::shared_ptr<const Exchange>> exchange = cache_->Get(pick->id);
  if (!exchange.ok()) return std::nullopt;
  const std::shared_ptr<const Exchange>& e = exchange.value();
  const StreamRequest want = StreamRequest::Of(request.body);
  std::shared_ptr<const Response> converted(e, &e->response);
  if (e->response.status == 200 && want.stream != IsEventStream(e->response)) {
    Result<Response> c =
        want.stream ? CompletionToStream(e->response, chat, want.include_usage)
                    : StreamToCompletion(e->response, chat);
    if (!c.ok()) {
      events_->Error("convert: recording #" + std::to_string(pick->id) +
                     " cannot answer " + request.path + ": " +
                     c.status().message());
      return std::nullopt;
    }
    converted = std::make_shared<const Response>(std::move(c.value()));
  }
  Answer answer;
  Result<LatencyModel> model = pacing_->ModelFor(request);
  if (!model.ok()) {
    answer.keyed = false;
    answer.timeline = ErrorTimeline(request.path, 400, "rewind_bad_latency",
                                    model.status().message());
    return answer;
  }
  counters_->converted++;
  answer.outcome = "converted";
  answer.exchange = pick->id;
  answer.timeline = pacing_->Pace(std::move(converted), model.value(), request,
                                  call.key, pick->occurrence);
  return answer;
}

Answer MissMode::Serve(const Call& call) {
  if (policy_ == MissPolicy::kConvert) {
    if (std::optional<Answer> converted = wrapped_.convert->TryServe(call)) {
      return std::move(*converted);
    }
  }
  counters_->misses++;
  switch (policy_) {
    case MissPolicy::kPassthrough:
    case MissPolicy::kRecord:
      return wrapped_.relay->Serve(call);
    case MissPolicy::kSynthesize:
      if (call.request.method == "POST" &&
          SynthMode::Generates(call.request.path)) {
        return wrapped_.synth->Generate(call);
      }
      break;
    case MissPolicy::kError:
    case MissPolicy::kConvert:
      break;
  }
  return Explain(call);
}

void MissMode::Reset() {
  if (wrapped_.convert != nullptr) wrapped_.convert->Reset();
  if (wrapped_.synth != nullptr) wrapped_.synth->Reset();
}

Answer MissMode::Explain(const Call& call) {
  const Request& request = call.request;
  const std::string key_hex = call.key.ToHex();
  // The answer names the query (the client sent it); the log line does
  // not, since query strings can carry secrets.
  std::string message = "no recorded response for " + request.method + " " +
                        request.Target() + " (key " + key_hex + ")";
  std::string logged = "miss: " + request.method + " " +
                       events_->LoggedPath(request.path) + " (key " + key_hex +
                       ")";
  std::string extra = ",\"key\":" + JsonQuote(key_hex) +
                      ",\"request\":{\"method\":" + JsonQuote(request.method) +
                      ",\"path\":" + JsonQuote(request.path) + "}";
  const std::vector<int64_t> incomplete = index_->Incomplete(call.key);
  std::optional<NearestMatch> nearest;
  if (incomplete.empty()) {
    nearest = FindNearest(store_, *index_, *canonicalizer_, request);
  }
  if (!incomplete.empty()) {
    // Recorded, but the response broke off: say so, and how to serve it.
    const std::string why = "; exchange #" + std::to_string(incomplete.back()) +
                            " recorded this request but is incomplete (its "
                            "response broke off while recording); replay "
                            "with --include-incomplete to serve it";
    message += why;
    logged += why;
    std::string ids;  // the newest ten
    for (size_t i = incomplete.size() > 10 ? incomplete.size() - 10 : 0;
         i < incomplete.size(); ++i) {
      ids += (ids.empty() ? "" : ",") + std::to_string(incomplete[i]);
    }
    extra += ",\"incomplete\":[" + ids + "],\"nearest\":null";
  } else if (nearest) {
    const std::string why =
        "; nearest recording is #" + std::to_string(nearest->id) +
        ", which differs in: " + Joined(nearest->differences);
    message += why;
    logged += why;
    extra += ",\"nearest\":{\"id\":" + std::to_string(nearest->id) +
             ",\"key\":" + JsonQuote(nearest->key_hex) +
             ",\"differences\":" + JsonList(nearest->differences) + "}";
  } else {
    const std::string why = "; nothing was recorded for " + request.method +
                            " " + events_->LoggedPath(request.path);
    message += why;
    logged += why;
    extra += ",\"nearest\":null";
  }
  events_->Error(logged);
  auto report = std::make_shared<MissReport>();
  report->explanation = message;
  report->logged = logged.substr(std::strlen("miss: "));
  if (nearest) {
    report->nearest_id = nearest->id;
    report->differences = nearest->differences;
  }
  Answer answer;
  answer.miss = std::move(report);
  answer.outcome = "miss";
  answer.timeline =
      ErrorTimeline(request.path, 404, "rewind_miss", message, extra);
  return answer;
}

}  // namespace rwd
