#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <functional>

#include "rewind/synth.h"
#include "synth/dialect.h"
#include "synth/engine_util.h"
#include "synth/generation.h"
#include "synth/token_table.h"

namespace rwd {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string Done(rapidjson::StringBuffer* b) {
  return std::string(b->GetString(), b->GetSize());
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

std::string SseEvent(const std::string& json) {
  return "data: " + json + "\n\n";
}

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
    case FaultType::kNone:
      return "none";
    case FaultType::k429:
      return "429";
    case FaultType::k500:
      return "500";
    case FaultType::k503:
      return "503";
    case FaultType::k400:
      return "400";
    case FaultType::kTimeout:
      return "timeout";
    case FaultType::kDrop:
      return "drop";
    case FaultType::kStall:
      return "stall";
    case FaultType::kGarbage:
      return "garbage";
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
    if (eq == std::string::npos)
      return bad("\"" + item + "\" is not NAME=VALUE");
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

Synthesizer::Synthesizer(SynthOptions options)
    : options_(std::move(options)), tokens_(std::make_shared<TokenTable>()) {}

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
  auto entry = [&](const std::string& id, const std::string* parent) {
    w.StartObject();
    w.Key("id");
    Str(&w, id);
    w.Key("object");
    w.String("model");
    w.Key("created");
    w.Int64(0);
    w.Key("owned_by");
    w.String("rewind");
    w.Key("root");
    Str(&w, id);
    w.Key("parent");
    if (parent) {
      Str(&w, *parent);
    } else {
      w.Null();
    }
    w.Key("max_model_len");
    w.Int(options_.max_model_len);
    w.EndObject();
  };
  if (options_.models.empty()) {
    entry(options_.model, nullptr);
  } else {
    for (const std::string& m : options_.models) entry(m, nullptr);
  }
  for (const auto& [adapter, parent] : options_.adapters)
    entry(adapter, &parent);
  w.EndArray();
  w.EndObject();
  return Done(&b);
}

bool Synthesizer::Generates(const std::string& path) {
  return path == "/v1/chat/completions" || path == "/v1/completions" ||
         path == "/v1/responses" || path == "/v1/embeddings" ||
         IsDialectEnginePath(path);
}

std::string Synthesizer::Endpoints() {
  return "GET /v1/models, POST /v1/chat/completions, POST /v1/completions, "
         "POST /v1/responses, POST /v1/embeddings, POST /tokenize, "
         "POST /detokenize, POST /v1/messages, POST /api/chat, "
         "POST /api/generate, GET /api/tags, GET /health and GET /metrics";
}

std::optional<Synthesizer::Reply> Synthesizer::Immediate(
    const Request& request) const {
  if ((request.method == "GET" || request.method == "HEAD") &&
      request.path == "/v1/models") {
    return Reply{200, ModelsBody()};
  }
  if (request.method == "POST" && request.path == "/tokenize")
    return Tokenize(request.body);
  if (request.method == "POST" && request.path == "/detokenize") {
    return Detokenize(request.body);
  }
  return std::nullopt;
}

namespace {

// Chat's "logprobs" member for tokens [from, to) of a choice.
void ChatLogprobs(Writer* w, const OpenAIRequest& r, const PlannedChoice& c,
                  size_t from, size_t to) {
  w->Key("logprobs");
  if (!r.logprobs) {
    w->Null();
    return;
  }
  w->StartObject();
  w->Key("content");
  if (!c.calls.empty()) {
    w->Null();
  } else {
    w->StartArray();
    for (size_t i = from; i < to && i < c.logprobs.size(); ++i) {
      WriteTokenLogprob(w, c.logprobs[i], r.top_logprobs);
    }
    w->EndArray();
  }
  w->Key("refusal");
  w->Null();
  w->EndObject();
}

// Text completions' "logprobs" member for tokens [from, to); "offset" is
// the first token's offset in the answer's text.
void CompletionLogprobs(Writer* w, const OpenAIRequest& r,
                        const PlannedChoice& c, size_t from, size_t to,
                        size_t offset) {
  w->Key("logprobs");
  if (!r.logprobs) {
    w->Null();
    return;
  }
  to = std::min(to, c.logprobs.size());
  w->StartObject();
  w->Key("tokens");
  w->StartArray();
  for (size_t i = from; i < to; ++i) Str(w, c.logprobs[i].token);
  w->EndArray();
  w->Key("token_logprobs");
  w->StartArray();
  for (size_t i = from; i < to; ++i) w->Double(c.logprobs[i].logprob);
  w->EndArray();
  w->Key("top_logprobs");
  w->StartArray();
  for (size_t i = from; i < to; ++i) {
    w->StartObject();
    for (const auto& [token, lp] : c.logprobs[i].top) {
      Str(w, token);
      w->Double(lp);
    }
    w->EndObject();
  }
  w->EndArray();
  w->Key("text_offset");
  w->StartArray();
  for (size_t i = from; i < to; ++i) {
    w->Uint64(offset);
    offset += c.logprobs[i].token.size();
  }
  w->EndArray();
  w->EndObject();
}

// A tool call in a chat message, whole; or, as a stream's delta, its
// head (id, type, name and empty arguments) or one argument fragment.
void ToolCallJson(Writer* w, const PlannedCall& call, size_t index, bool head,
                  const std::string* fragment) {
  w->StartObject();
  if (fragment || head) {
    w->Key("index");
    w->Uint64(index);
  }
  if (!fragment) {
    w->Key("id");
    Str(w, call.id);
    w->Key("type");
    w->String("function");
  }
  w->Key("function");
  w->StartObject();
  if (!fragment) {
    w->Key("name");
    Str(w, call.name);
  }
  w->Key("arguments");
  Str(w, fragment ? *fragment : head ? std::string() : call.arguments);
  w->EndObject();
  w->EndObject();
}

// One chat or text completion, planned: what the whole body and the
// stream are written from.
struct PlannedCompletion {
  const OpenAIRequest& r;
  const std::vector<PlannedChoice>& choices;
  std::string id;
  std::string model;
  bool chat = true;
  int64_t created = 0;
  int completion_tokens = 0;
  size_t longest = 0;  // steps of the longest choice
};

// The answer as one JSON body (stream: false).
std::string CompletionBody(const PlannedCompletion& p) {
  const OpenAIRequest& r = p.r;
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  Head(&w, p.id, p.chat ? "chat.completion" : "text_completion", p.created,
       p.model);
  w.Key("choices");
  w.StartArray();
  for (size_t i = 0; i < p.choices.size(); ++i) {
    const PlannedChoice& c = p.choices[i];
    w.StartObject();
    w.Key("index");
    w.Int(static_cast<int>(i));
    if (p.chat) {
      w.Key("message");
      w.StartObject();
      w.Key("role");
      w.String("assistant");
      w.Key("content");
      if (c.calls.empty()) {
        Str(&w, c.Text());
      } else {
        w.Null();
        w.Key("tool_calls");
        w.StartArray();
        for (size_t k = 0; k < c.calls.size(); ++k) {
          ToolCallJson(&w, c.calls[k], k, /*head=*/false, nullptr);
        }
        w.EndArray();
      }
      w.EndObject();
      ChatLogprobs(&w, r, c, 0, c.tokens.size());
    } else {
      w.Key("text");
      Str(&w, c.Text());
      CompletionLogprobs(&w, r, c, 0, c.tokens.size(), 0);
    }
    w.Key("finish_reason");
    Str(&w, c.finish_reason);
    w.EndObject();
  }
  w.EndArray();
  Usage(&w, r.prompt_tokens, p.completion_tokens);
  w.EndObject();
  return Done(&b);
}

// The answer as server-sent events into "res", the first token at "ttft"
// and each next step "itl()" later (drawn in step order): per choice a role
// chunk (chat), one chunk per step (a token, or a tool call's head or
// argument fragment), a finish chunk; the usage chunk when asked; [DONE].
void StreamCompletion(const PlannedCompletion& p, int64_t ttft,
                      const std::function<int64_t()>& itl, Response* res) {
  const OpenAIRequest& r = p.r;
  const bool chat = p.chat;
  const char* chunk_object = chat ? "chat.completion.chunk" : "text_completion";
  // One event of choice "index": "choice" writes its delta (chat) or text
  // and logprobs; "done" is how many tokens it has generated, for
  // continuous usage stats.
  auto event = [&](size_t index, const auto& choice, const std::string* finish,
                   size_t done) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    Head(&w, p.id, chunk_object, p.created, p.model);
    w.Key("choices");
    w.StartArray();
    w.StartObject();
    w.Key("index");
    w.Int(static_cast<int>(index));
    choice(&w);
    w.Key("finish_reason");
    if (finish) {
      Str(&w, *finish);
    } else {
      w.Null();
    }
    w.EndObject();
    w.EndArray();
    if (r.continuous_usage) Usage(&w, r.prompt_tokens, static_cast<int>(done));
    w.EndObject();
    return SseEvent(Done(&b));
  };
  int64_t at = ttft;
  if (chat) {
    for (size_t i = 0; i < p.choices.size(); ++i) {
      res->chunks.push_back({at, event(
                                     i,
                                     [&](Writer* w) {
                                       w->Key("delta");
                                       w->StartObject();
                                       w->Key("role");
                                       w->String("assistant");
                                       w->Key("content");
                                       w->String("");
                                       w->EndObject();
                                       w->Key("logprobs");
                                       w->Null();
                                     },
                                     nullptr, 0)});
    }
  }
  // The chunk of step "t" of choice "c": a token, or a tool call's head
  // or argument fragment.
  auto step = [&](size_t i, const PlannedChoice& c, size_t t) {
    if (!c.calls.empty()) {
      size_t k = 0, s = t;
      while (s > c.calls[k].fragments.size())
        s -= 1 + c.calls[k++].fragments.size();
      const PlannedCall& call = c.calls[k];
      return event(
          i,
          [&](Writer* w) {
            w->Key("delta");
            w->StartObject();
            w->Key("tool_calls");
            w->StartArray();
            ToolCallJson(w, call, k, s == 0,
                         s == 0 ? nullptr : &call.fragments[s - 1]);
            w->EndArray();
            w->EndObject();
            w->Key("logprobs");
            w->Null();
          },
          nullptr, t + 1);
    }
    size_t offset = 0;
    for (size_t j = 0; j < t; ++j) offset += c.tokens[j].size();
    return event(
        i,
        [&](Writer* w) {
          if (chat) {
            w->Key("delta");
            w->StartObject();
            w->Key("content");
            Str(w, c.tokens[t]);
            w->EndObject();
            ChatLogprobs(w, r, c, t, t + 1);
          } else {
            w->Key("text");
            Str(w, c.tokens[t]);
            CompletionLogprobs(w, r, c, t, t + 1, offset);
          }
        },
        nullptr, t + 1);
  };
  for (size_t t = 0; t < p.longest; ++t) {
    if (t > 0) at += itl();
    for (size_t i = 0; i < p.choices.size(); ++i) {
      if (t < p.choices[i].Steps())
        res->chunks.push_back({at, step(i, p.choices[i], t)});
    }
  }
  for (size_t i = 0; i < p.choices.size(); ++i) {
    res->chunks.push_back(
        {at, event(
                 i,
                 [&](Writer* w) {
                   if (chat) {
                     w->Key("delta");
                     w->StartObject();
                     w->EndObject();
                   } else {
                     w->Key("text");
                     w->String("");
                   }
                   w->Key("logprobs");
                   w->Null();
                 },
                 &p.choices[i].finish_reason, p.choices[i].Steps())});
  }
  if (r.include_usage) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    Head(&w, p.id, chunk_object, p.created, p.model);
    w.Key("choices");
    w.StartArray();
    w.EndArray();
    Usage(&w, r.prompt_tokens, p.completion_tokens);
    w.EndObject();
    res->chunks.push_back({at, SseEvent(Done(&b))});
  }
  res->chunks.push_back({at, "data: [DONE]\n\n"});
}

}  // namespace

SynthPlan Synthesizer::Plan(const Request& http,
                            const SynthContext& ctx) const {
  // Other API dialects have their own planners (synth/dialect.h).
  switch (DialectOf(http.path)) {
    case Dialect::kAnthropic:
      return PlanAnthropic(options_, http, ctx);
    case Dialect::kOllama:
      return PlanOllama(options_, http, ctx);
    case Dialect::kOpenAI:
      break;
  }
  const int64_t start = ctx.admitted_us;
  if (http.path == "/v1/responses") return PlanResponses(http, ctx);
  if (http.path == "/v1/embeddings") return PlanEmbeddings(http, ctx);
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
  const std::optional<std::string> served = ServedModel(options_, r.model);
  if (!served) return UnknownModelPlan(r.model, start);
  std::mt19937_64 rng(ctx.seed);

  // Faults are drawn first so that a given seed fails the same requests
  // whatever the output mode.
  const FaultType fault = DrawFault(options_, ctx, rng);
  if (std::optional<SynthPlan> failed =
          ErrorFaultPlan(fault, options_, start)) {
    failed->prompt_tokens = r.prompt_tokens;
    return std::move(*failed);
  }

  std::vector<PlannedChoice> choices;
  for (int i = 0; i < r.n; ++i) choices.push_back(PlanChoice(r, options_, rng));
  const int64_t ttft = FirstTokenAt(options_, ctx, r.prompt_tokens, rng);
  const std::function<int64_t()> itl = [&] {
    return TokenGap(options_, ctx, rng);
  };

  const bool chat = kind == OpenAIRequest::Kind::kChat;
  PlannedCompletion planned{
      r,       choices, HexId(chat ? "chatcmpl-" : "cmpl-", ctx.seed),
      *served, chat,    ctx.created};
  for (const PlannedChoice& c : choices) {
    planned.completion_tokens += static_cast<int>(c.Steps());
    planned.longest = std::max(planned.longest, c.Steps());
  }

  SynthPlan plan;
  plan.prompt_tokens = r.prompt_tokens;
  plan.completion_tokens = planned.completion_tokens;
  plan.fault = fault;
  plan.response.status = 200;
  if (!r.stream) {
    int64_t at = ttft;
    for (size_t t = 1; t < planned.longest; ++t) at += itl();
    SetBody(CompletionBody(planned), at, fault, options_, &plan);
    return plan;
  }
  Response& res = plan.response;
  res.chunked = true;
  res.headers = {{"Content-Type", "text/event-stream"},
                 {"Cache-Control", "no-cache"}};
  res.headers_us = start;
  StreamCompletion(planned, ttft, itl, &res);
  BreakStream(fault, options_,
              "data: {\"id\":\"" + planned.id + "\",\"choices\":[{\x01\n\n",
              rng, &plan);
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
    cv_.wait(lock,
             [&] { return ticket == serving_ && running_ < max_concurrency_; });
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
