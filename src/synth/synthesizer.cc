#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "rewind/synth.h"
#include "synth/dialect.h"

namespace rwd {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string Done(rapidjson::StringBuffer* b) {
  return std::string(b->GetString(), b->GetSize());
}

struct Choice {
  std::vector<std::string> tokens;  // after stop and max_tokens
  std::string finish_reason;        // "stop" or "length"
};

Choice Finish(std::string text, const OpenAIRequest& r) {
  Choice c;
  c.finish_reason = "stop";
  size_t cut = std::string::npos;
  for (const std::string& s : r.stop) {
    if (!s.empty()) cut = std::min(cut, text.find(s));
  }
  if (cut != std::string::npos) text.resize(cut);
  c.tokens = Tokenize(text);
  if (r.max_tokens > 0 && static_cast<int>(c.tokens.size()) > r.max_tokens) {
    c.tokens.resize(static_cast<size_t>(r.max_tokens));
    c.finish_reason = "length";
  }
  return c;
}

std::string Join(const std::vector<std::string>& tokens) {
  std::string s;
  for (const std::string& t : tokens) s += t;
  return s;
}

void Usage(Writer* w, int prompt, int completion) {
  w->Key("usage");
  w->StartObject();
  w->Key("prompt_tokens");
  w->Int(prompt);
  w->Key("completion_tokens");
  w->Int(completion);
  w->Key("total_tokens");
  w->Int(prompt + completion);
  w->EndObject();
}

// Common head of every response object: id, object, created, model.
void Head(Writer* w, const std::string& id, const char* object, int64_t created,
          const std::string& model) {
  w->Key("id");
  Str(w, id);
  w->Key("object");
  w->String(object);
  w->Key("created");
  w->Int64(created);
  w->Key("model");
  Str(w, model);
}

std::string SseEvent(const std::string& json) { return "data: " + json + "\n\n"; }

}  // namespace

Result<FaultType> ParseFaultType(const std::string& name) {
  for (FaultType t : {FaultType::k429, FaultType::k500, FaultType::k503,
                      FaultType::k400, FaultType::kTimeout, FaultType::kDrop,
                      FaultType::kStall, FaultType::kGarbage}) {
    if (name == FaultTypeName(t)) return t;
  }
  return Status::InvalidArgument(
      "unknown fault \"" + name +
      "\": use 429, 500, 503, 400, timeout, drop, stall or garbage");
}

const char* FaultTypeName(FaultType type) {
  switch (type) {
    case FaultType::kNone: return "none";
    case FaultType::k429: return "429";
    case FaultType::k500: return "500";
    case FaultType::k503: return "503";
    case FaultType::k400: return "400";
    case FaultType::kTimeout: return "timeout";
    case FaultType::kDrop: return "drop";
    case FaultType::kStall: return "stall";
    case FaultType::kGarbage: return "garbage";
  }
  return "?";
}

Result<FaultSpec> FaultSpec::Parse(const std::string& spec) {
  FaultSpec f;
  if (spec.empty()) return f;
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(
        "bad --fault \"" + spec + "\": " + why +
        " (expected rate=0.05,types=429|500|503|400|timeout|drop|stall|garbage"
        "[,stall_ms=N][,timeout_ms=N])");
  };
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(pos, comma - pos);
    pos = comma + 1;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return bad("\"" + item + "\" is not NAME=VALUE");
    const std::string name = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    char* end = nullptr;
    if (name == "rate") {
      f.rate = std::strtod(value.c_str(), &end);
      if (value.empty() || *end || !(f.rate >= 0 && f.rate <= 1)) {
        return bad("rate must be from 0 to 1");
      }
    } else if (name == "types") {
      size_t p = 0;
      while (p <= value.size()) {
        size_t bar = value.find('|', p);
        if (bar == std::string::npos) bar = value.size();
        Result<FaultType> t = ParseFaultType(value.substr(p, bar - p));
        if (!t.ok()) return bad(t.status().message());
        f.types.push_back(t.value());
        p = bar + 1;
      }
    } else if (name == "stall_ms" || name == "timeout_ms") {
      long long v = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end || v < 0) return bad(name + " must be >= 0");
      (name == "stall_ms" ? f.stall_ms : f.timeout_ms) = v;
    } else {
      return bad("unknown key \"" + name + "\"");
    }
  }
  if (f.rate > 0 && f.types.empty()) return bad("a rate needs types");
  return f;
}

std::string OpenAIErrorBody(const std::string& message, const std::string& type,
                            const std::string& code) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("message");
  Str(&w, message);
  w.Key("type");
  Str(&w, type);
  w.Key("param");
  w.Null();
  w.Key("code");
  if (code.empty()) {
    w.Null();
  } else {
    Str(&w, code);
  }
  w.EndObject();
  w.EndObject();
  return Done(&b) + "\n";
}

Synthesizer::Synthesizer(SynthOptions options) : options_(std::move(options)) {}

double Synthesizer::LoadMultiplier(size_t running) const {
  const size_t max = options_.max_concurrency;
  if (options_.load_factor == 1 || max <= 1 || running <= 1) return 1;
  const double share = static_cast<double>(std::min(running, max) - 1) /
                       static_cast<double>(max - 1);
  return 1 + (options_.load_factor - 1) * share;
}

std::string Synthesizer::ModelsBody() const {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("object");
  w.String("list");
  w.Key("data");
  w.StartArray();
  w.StartObject();
  w.Key("id");
  Str(&w, options_.model);
  w.Key("object");
  w.String("model");
  w.Key("created");
  w.Int64(0);
  w.Key("owned_by");
  w.String("rewind");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return Done(&b);
}

namespace {

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

}  // namespace

SynthPlan Synthesizer::Plan(const Request& http, const SynthContext& ctx) const {
  // Other API dialects have their own planners (synth/dialect.h).
  switch (DialectOf(http.path)) {
    case Dialect::kAnthropic: return PlanAnthropic(options_, http, ctx);
    case Dialect::kOllama: return PlanOllama(options_, http, ctx);
    case Dialect::kOpenAI: break;
  }
  const int64_t start = ctx.admitted_us;
  OpenAIRequest::Kind kind;
  if (http.path == "/v1/chat/completions") {
    kind = OpenAIRequest::Kind::kChat;
  } else if (http.path == "/v1/completions") {
    kind = OpenAIRequest::Kind::kCompletion;
  } else {
    return ErrorPlan(404, "rewind's dummy engine does not serve " + http.path,
                     "invalid_request_error", "unknown_url", start);
  }
  Result<OpenAIRequest> parsed = OpenAIRequest::Parse(kind, http.body);
  if (!parsed.ok()) {
    return ErrorPlan(400, parsed.status().message(), "invalid_request_error",
                     "", start);
  }
  const OpenAIRequest& r = parsed.value();
  std::mt19937_64 rng(ctx.seed);

  // Faults are drawn first so that a given seed fails the same requests
  // whatever the output mode.
  FaultType fault = FaultType::kNone;
  const double draw = std::uniform_real_distribution<double>(0, 1)(rng);
  if (ctx.forced_fault) {
    fault = *ctx.forced_fault;
  } else if (draw < options_.faults.rate && !options_.faults.types.empty()) {
    fault = options_.faults.types[std::uniform_int_distribution<size_t>(
        0, options_.faults.types.size() - 1)(rng)];
  }
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
                       start + options_.faults.timeout_ms * 1000);
      break;
    default:
      break;
  }
  if (plan.response.status != 0) {
    plan.fault = fault;
    plan.prompt_tokens = r.prompt_tokens;
    return plan;
  }

  std::vector<Choice> choices;
  for (int i = 0; i < r.n; ++i) {
    choices.push_back(Finish(options_.output.Generate(r, rng), r));
  }
  const double mult = ctx.load_multiplier;
  const int64_t ttft =
      start + static_cast<int64_t>(
                  (static_cast<double>(options_.ttft.SampleMicros(rng)) +
                   options_.prefill_per_token_ms * 1000.0 * r.prompt_tokens) *
                  mult);
  auto itl = [&] {
    return static_cast<int64_t>(
        static_cast<double>(options_.itl.SampleMicros(rng)) * mult);
  };

  int completion_tokens = 0;
  for (const Choice& c : choices) {
    completion_tokens += static_cast<int>(c.tokens.size());
  }
  char id_buf[40];
  std::snprintf(id_buf, sizeof(id_buf), "%s%016" PRIx64,
                kind == OpenAIRequest::Kind::kChat ? "chatcmpl-" : "cmpl-",
                ctx.seed);
  const std::string id = id_buf;
  const std::string model = r.model.empty() ? options_.model : r.model;
  const bool chat = kind == OpenAIRequest::Kind::kChat;
  const char* object = chat ? "chat.completion" : "text_completion";
  const char* chunk_object = chat ? "chat.completion.chunk" : "text_completion";

  plan.prompt_tokens = r.prompt_tokens;
  plan.completion_tokens = completion_tokens;
  plan.fault = fault;
  Response& res = plan.response;
  res.status = 200;

  if (!r.stream) {
    int64_t at = ttft;
    size_t longest = 0;
    for (const Choice& c : choices) longest = std::max(longest, c.tokens.size());
    for (size_t t = 1; t < longest; ++t) at += itl();
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    Head(&w, id, object, ctx.created, model);
    w.Key("choices");
    w.StartArray();
    for (size_t i = 0; i < choices.size(); ++i) {
      w.StartObject();
      w.Key("index");
      w.Int(static_cast<int>(i));
      if (chat) {
        w.Key("message");
        w.StartObject();
        w.Key("role");
        w.String("assistant");
        w.Key("content");
        Str(&w, Join(choices[i].tokens));
        w.EndObject();
      } else {
        w.Key("text");
        Str(&w, Join(choices[i].tokens));
      }
      w.Key("logprobs");
      w.Null();
      w.Key("finish_reason");
      Str(&w, choices[i].finish_reason);
      w.EndObject();
    }
    w.EndArray();
    Usage(&w, r.prompt_tokens, completion_tokens);
    w.EndObject();
    std::string body = Done(&b);
    res.headers = {{"Content-Type", "application/json"}};
    res.headers_us = at;
    switch (fault) {
      case FaultType::kStall:
        res.headers_us = at += options_.faults.stall_ms * 1000;
        res.chunks = {{at, body}};
        break;
      case FaultType::kGarbage:
        res.chunks = {{at, body.substr(0, body.size() / 2) + "\x01}{garbage"}};
        break;
      case FaultType::kDrop:
        // Content-Length announces the whole body; half of it arrives.
        plan.content_length = body.size();
        res.chunks = {{at, body.substr(0, body.size() / 2)}};
        plan.abort = true;
        break;
      default:
        res.chunks = {{at, std::move(body)}};
    }
    return plan;
  }

  res.chunked = true;
  res.headers = {{"Content-Type", "text/event-stream"},
                 {"Cache-Control", "no-cache"}};
  res.headers_us = start;
  auto chunk_json = [&](size_t index, const std::string* text,
                        const std::string* finish, bool role) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    Head(&w, id, chunk_object, ctx.created, model);
    w.Key("choices");
    w.StartArray();
    w.StartObject();
    w.Key("index");
    w.Int(static_cast<int>(index));
    if (chat) {
      w.Key("delta");
      w.StartObject();
      if (role) {
        w.Key("role");
        w.String("assistant");
      }
      if (text) {
        w.Key("content");
        Str(&w, *text);
      }
      w.EndObject();
    } else {
      w.Key("text");
      Str(&w, text ? *text : std::string());
    }
    w.Key("logprobs");
    w.Null();
    w.Key("finish_reason");
    if (finish) {
      Str(&w, *finish);
    } else {
      w.Null();
    }
    w.EndObject();
    w.EndArray();
    w.EndObject();
    return SseEvent(Done(&b));
  };
  int64_t at = ttft;
  if (chat) {
    const std::string empty;
    for (size_t i = 0; i < choices.size(); ++i) {
      res.chunks.push_back({at, chunk_json(i, &empty, nullptr, true)});
    }
  }
  size_t longest = 0;
  for (const Choice& c : choices) longest = std::max(longest, c.tokens.size());
  for (size_t t = 0; t < longest; ++t) {
    if (t > 0) at += itl();
    for (size_t i = 0; i < choices.size(); ++i) {
      if (t < choices[i].tokens.size()) {
        res.chunks.push_back({at, chunk_json(i, &choices[i].tokens[t], nullptr, false)});
      }
    }
  }
  for (size_t i = 0; i < choices.size(); ++i) {
    res.chunks.push_back({at, chunk_json(i, nullptr, &choices[i].finish_reason, false)});
  }
  if (r.include_usage) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    Head(&w, id, chunk_object, ctx.created, model);
    w.Key("choices");
    w.StartArray();
    w.EndArray();
    Usage(&w, r.prompt_tokens, completion_tokens);
    w.EndObject();
    res.chunks.push_back({at, SseEvent(Done(&b))});
  }
  res.chunks.push_back({at, "data: [DONE]\n\n"});

  if (fault == FaultType::kDrop || fault == FaultType::kStall ||
      fault == FaultType::kGarbage) {
    // Somewhere after the first event and before [DONE].
    const size_t k = std::uniform_int_distribution<size_t>(
        1, std::max<size_t>(1, res.chunks.size() - 2))(rng);
    if (fault == FaultType::kDrop) {
      res.chunks.resize(k);
      plan.abort = true;
    } else if (fault == FaultType::kStall) {
      for (size_t i = k; i < res.chunks.size(); ++i) {
        res.chunks[i].offset_us += options_.faults.stall_ms * 1000;
      }
    } else {
      res.chunks[k].data = "data: {\"id\":\"" + id + "\",\"choices\":[{\x01\n\n";
    }
  }
  return plan;
}

Admission::Admission(size_t max_concurrency, size_t max_queue)
    : max_concurrency_(max_concurrency), max_queue_(max_queue) {}

class Admission::Slot {
 public:
  explicit Slot(Admission* owner) : owner_(owner) {}
  ~Slot() { owner_->Leave(*this); }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  friend class Admission;
  Admission* const owner_;
  int64_t tokens_ = 0;  // guarded by the owner's mu_
};

std::shared_ptr<Admission::Slot> Admission::Enter() {
  std::unique_lock<std::mutex> lock(mu_);
  const bool unlimited = max_concurrency_ == 0;
  if (!unlimited && (running_ >= max_concurrency_ || waiting_ > 0)) {
    if (waiting_ >= max_queue_) return nullptr;
    const uint64_t ticket = next_ticket_++;
    ++waiting_;
    cv_.wait(lock, [&] {
      return ticket == serving_ && running_ < max_concurrency_;
    });
    --waiting_;
    ++serving_;
    cv_.notify_all();  // the next in line may fit too
  }
  ++running_;
  return std::make_shared<Slot>(this);
}

void Admission::AddTokens(Slot* slot, int64_t tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  slot->tokens_ += tokens;
  tokens_ += tokens;
}

void Admission::Leave(const Slot& slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
    tokens_ -= slot.tokens_;
  }
  cv_.notify_all();
}

size_t Admission::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

size_t Admission::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_;
}

int64_t Admission::tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_;
}

}  // namespace rwd
