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

// "; messages[0].content: recorded "…Italy?" sent "…France?"" for each
// difference shown with its values.
std::string ShownValues(const std::vector<FieldDifference>& shown) {
  std::string out;
  for (const FieldDifference& d : shown) {
    if (!d.shown) continue;
    out += "; " + d.path + ": recorded " + (d.a.empty() ? "nothing" : d.a) +
           " sent " + (d.b.empty() ? "nothing" : d.b);
  }
  return out;
}

std::string ValuesJson(const std::vector<FieldDifference>& shown) {
  std::string out = "[";
  for (const FieldDifference& d : shown) {
    if (!d.shown) continue;
    if (out.size() > 1) out += ",";
    out += "{\"field\":" + JsonQuote(d.path) +
           ",\"recorded\":" + (d.a.empty() ? "null" : JsonQuote(d.a)) +
           ",\"sent\":" + (d.b.empty() ? "null" : JsonQuote(d.b)) + "}";
  }
  return out + "]";
}

// The shape fields as a person names them.
std::string ShapeWords(const std::vector<std::string>& shape) {
  std::vector<std::string> words;
  for (const std::string& f : shape) {
    words.push_back(f == "method"            ? "JSON-RPC method"
                    : f == "tools"           ? "tool names"
                    : f == "response_format" ? "response format"
                                             : f);
  }
  return Joined(words);
}

}  // namespace

Result<MissPolicy> ParseMissPolicy(const std::string& name) {
  if (name == "error") return MissPolicy::kError;
  if (name == "passthrough") return MissPolicy::kPassthrough;
  if (name == "record") return MissPolicy::kRecord;
  if (name == "synthesize") return MissPolicy::kSynthesize;
  if (name == "convert") return MissPolicy::kConvert;
  if (name == "nearest") return MissPolicy::kNearest;
  return Status::InvalidArgument(
      "unknown miss policy \"" + name +
      "\": use error, passthrough, record, synthesize, convert or nearest");
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
    case MissPolicy::kNearest:
      return "nearest";
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

bool NearestMode::Within(const NearestMatch& match) const {
  // Diffed field by field, of the request's shape, and not much else.
  if (!match.diffed || !match.shape.empty() ||
      match.differences.size() > max_fields_) {
    return false;
  }
  for (const std::string& d : match.differences) {
    // The body as a whole ("body": not JSON; "(body)": another type at
    // the top; a top-level member named "body" reads the same and is
    // taken as such), or the model.
    if (d == "body" || d == "(body)" || d == "model" ||
        d.rfind("model.", 0) == 0 || d.rfind("model[", 0) == 0) {
      return false;
    }
  }
  return !index_->IsIncomplete(match.id);
}

std::string NearestMode::Header(int64_t id,
                                const std::vector<std::string>& differences) {
  std::string out = "#" + std::to_string(id);
  if (differences.empty()) return out;
  out += "; differs in: ";
  for (size_t i = 0; i < differences.size(); ++i) {
    if (i > 0) out += ", ";
    // Field paths hold the request's JSON member names: no control
    // character (CR, LF, NUL...) reaches the header, and no long name.
    std::string field;
    for (char c : differences[i]) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) continue;
      field += c;
    }
    if (field.size() > kMaxShownField) {
      size_t cut = kMaxShownField;
      // Not inside a UTF-8 sequence.
      while (cut > 0 && (static_cast<unsigned char>(field[cut]) & 0xC0) == 0x80)
        --cut;
      field.resize(cut);
      field += "...";
    }
    out += field;
  }
  return out;
}

std::optional<Answer> NearestMode::TryServe(
    const Call& call, std::optional<NearestMatch>* nearest) {
  const Request& request = call.request;
  NearestSearch search =
      FindNearestWithin(store_, *index_, *canonicalizer_, request,
                        [this](const NearestMatch& m) { return Within(m); });
  *nearest = std::move(search.nearest);
  if (!search.within) return std::nullopt;
  const NearestMatch& match = *search.within;
  Answer answer;
  answer.keyed = false;
  Result<LatencyModel> model = pacing_->ModelFor(request);
  if (!model.ok()) {
    answer.timeline = ErrorTimeline(request.path, 400, "rewind_bad_latency",
                                    model.status().message());
    return answer;
  }
  Result<std::shared_ptr<const Exchange>> exchange = cache_->Get(match.id);
  if (!exchange.ok()) {
    counters_->errors++;
    answer.timeline = ErrorTimeline(request.path, 500, "rewind_store_error",
                                    exchange.status().ToString());
    return answer;
  }
  const std::shared_ptr<const Exchange>& e = exchange.value();
  if (!e->complete) return std::nullopt;
  counters_->near++;
  answer.outcome = "near";
  answer.keyed = true;
  answer.exchange = match.id;
  answer.near_differences =
      std::make_shared<const std::vector<std::string>>(match.differences);
  answer.headers.emplace_back("X-Rewind-Near",
                              Header(match.id, match.differences));
  // One recording answers every repeat: occurrence 0.
  answer.timeline =
      pacing_->Pace(std::shared_ptr<const Response>(e, &e->response),
                    model.value(), request, call.key, 0);
  return answer;
}

Answer MissMode::Serve(const Call& call) {
  Result<bool> exact = DemandsExactMatch(call.request);
  if (!exact.ok()) {
    Answer answer;
    answer.keyed = false;
    answer.timeline = ErrorTimeline(call.request.path, 400, "rewind_bad_match",
                                    exact.status().message());
    return answer;
  }
  std::optional<NearestMatch> nearest;
  bool searched = false;
  if (!exact.value()) {
    if (policy_ == MissPolicy::kConvert) {
      if (std::optional<Answer> converted = wrapped_.convert->TryServe(call)) {
        return std::move(*converted);
      }
    }
    // A request recorded incomplete is explained as such.
    if (policy_ == MissPolicy::kNearest &&
        index_->Incomplete(call.key).empty()) {
      if (std::optional<Answer> near =
              wrapped_.nearest->TryServe(call, &nearest)) {
        return std::move(*near);
      }
      searched = true;
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
    case MissPolicy::kNearest:
      break;
  }
  return Explain(call, searched ? &nearest : nullptr);
}

void MissMode::Reset() {
  if (wrapped_.convert != nullptr) wrapped_.convert->Reset();
  if (wrapped_.synth != nullptr) wrapped_.synth->Reset();
}

Answer MissMode::Explain(const Call& call,
                         const std::optional<NearestMatch>* searched) {
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
  if (searched != nullptr) {
    nearest = *searched;
  } else if (incomplete.empty()) {
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
    std::string why = "; nearest recording is #" + std::to_string(nearest->id) +
                      ", which differs in: " + Joined(nearest->differences) +
                      ShownValues(nearest->shown);
    if (searched != nullptr && !nearest->shape.empty()) {
      why += "; #" + std::to_string(nearest->id) +
             " cannot answer it: it differs in " + ShapeWords(nearest->shape) +
             " (a near answer keeps the request's shape: model, stream, "
             "JSON-RPC method, tool names, response format)";
    }
    message += why;
    logged += why;
    extra += ",\"nearest\":{\"id\":" + std::to_string(nearest->id) +
             ",\"key\":" + JsonQuote(nearest->key_hex) +
             ",\"differences\":" + JsonList(nearest->differences) +
             ",\"values\":" + ValuesJson(nearest->shown) +
             ",\"shape\":" + JsonList(nearest->shape) + "}";
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
