#include "synth/generation.h"

#include <algorithm>
#include <cmath>

#include "synth/engine_util.h"
#include "synth/json_schema_gen.h"
#include "synth/tools.h"

namespace rwd {
namespace {

// Tokens offered as the less likely alternatives in top_logprobs.
const char* const kAlternatives[] = {
    "the",   "a",    "and",   "of",     "to", "it",  "is",   "that",
    "model", "text", "token", "answer", "in", "for", "with", "on",
    "as",    "was",  "be",    "this",   "by", "at",  "or",   "one"};
constexpr size_t kAlternativeCount =
    sizeof(kAlternatives) / sizeof(kAlternatives[0]);

// The JSON answer to a response_format: the text itself when it already
// is a JSON object (json_object), else {"answer": text}; a value generated
// from the schema (json_schema).
std::string StructuredText(const OpenAIRequest& r, const std::string& text,
                           std::mt19937_64& rng) {
  if (r.format == OpenAIRequest::Format::kJsonSchema) {
    Result<JsonSchemaGenerator> g = JsonSchemaGenerator::Create(r.schema);
    if (g.ok()) return g->Generate(rng);
  }
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  std::string out;
  if (!d.HasParseError() && d.IsObject() &&
      JsonDepthAtMost(d, kMaxRequestDepth)) {
    WriteSpacedJson(d, &out);
    return out;
  }
  rapidjson::Value s(text.data(),
                     static_cast<rapidjson::SizeType>(text.size()));
  return "{\"answer\": " + CompactJson(s) + "}";
}

std::vector<TokenLogprob> Logprobs(const std::vector<std::string>& tokens,
                                   int top, std::mt19937_64& rng) {
  std::vector<TokenLogprob> out;
  out.reserve(tokens.size());
  std::uniform_real_distribution<double> unit(0, 1);
  for (const std::string& token : tokens) {
    TokenLogprob lp;
    lp.token = token;
    const double u = unit(rng);
    lp.logprob = -std::round(u * u * 2.5 * 1e6) / 1e6;
    lp.top.emplace_back(token, lp.logprob);
    const bool spaced = !token.empty() && token[0] == ' ';
    double next = lp.logprob;
    size_t pick =
        std::uniform_int_distribution<size_t>(0, kAlternativeCount - 1)(rng);
    for (int i = 1; i < top; ++i) {
      next -= std::round((0.25 + unit(rng) * 1.5) * 1e6) / 1e6;
      std::string alt;
      do {
        alt = std::string(spaced ? " " : "") +
              kAlternatives[pick++ % kAlternativeCount];
      } while (alt == token);
      lp.top.emplace_back(std::move(alt), next);
    }
    out.push_back(std::move(lp));
  }
  return out;
}

void WriteBytes(JsonWriter* w, const std::string& token) {
  w->Key("bytes");
  w->StartArray();
  for (unsigned char c : token) w->Uint(c);
  w->EndArray();
}

}  // namespace

void WriteTokenLogprob(JsonWriter* w, const TokenLogprob& lp, int top) {
  w->StartObject();
  w->Key("token");
  WriteString(w, lp.token);
  w->Key("logprob");
  w->Double(lp.logprob);
  WriteBytes(w, lp.token);
  w->Key("top_logprobs");
  w->StartArray();
  for (size_t i = 0;
       i < lp.top.size() && i < static_cast<size_t>(std::max(top, 0)); ++i) {
    w->StartObject();
    w->Key("token");
    WriteString(w, lp.top[i].first);
    w->Key("logprob");
    w->Double(lp.top[i].second);
    WriteBytes(w, lp.top[i].first);
    w->EndObject();
  }
  w->EndArray();
  w->EndObject();
}

size_t PlannedChoice::Steps() const {
  if (calls.empty()) return tokens.size();
  size_t n = 0;
  for (const PlannedCall& c : calls) n += 1 + c.fragments.size();
  return n;
}

std::string PlannedChoice::Text() const {
  std::string s;
  for (const std::string& t : tokens) s += t;
  return s;
}

PlannedChoice PlanChoice(const OpenAIRequest& r, const SynthOptions& options,
                         std::mt19937_64& rng) {
  PlannedChoice c;
  std::vector<ToolCall> calls = ChooseToolCalls(r, options, rng);
  if (!calls.empty()) {
    for (ToolCall& call : calls) {
      PlannedCall p;
      p.id = HexId("call_", rng());
      p.name = std::move(call.name);
      p.arguments = std::move(call.arguments);
      p.fragments = rwd::Tokenize(p.arguments);
      c.calls.push_back(std::move(p));
    }
    c.finish_reason = "tool_calls";
    return c;
  }
  std::string text = options.output.Generate(r, rng);
  c.finish_reason = "stop";
  if (r.format != OpenAIRequest::Format::kText) {
    c.tokens = rwd::Tokenize(StructuredText(r, text, rng));
  } else {
    size_t cut = std::string::npos;
    for (const std::string& s : r.stop) {
      if (!s.empty()) cut = std::min(cut, text.find(s));
    }
    if (cut != std::string::npos) text.resize(cut);
    c.tokens = rwd::Tokenize(text);
    if (r.max_tokens > 0 && static_cast<int>(c.tokens.size()) > r.max_tokens) {
      c.tokens.resize(static_cast<size_t>(r.max_tokens));
      c.finish_reason = "length";
    }
  }
  if (r.logprobs) c.logprobs = Logprobs(c.tokens, r.top_logprobs, rng);
  return c;
}

}  // namespace rwd
