#include "synth/dialect.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "util/text.h"

namespace rwd {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Words for generated string values.
const char* const kWords[] = {"alpha", "river", "blue",  "seven", "Paris",
                              "quiet", "cache", "north", "lemon", "stone"};

constexpr int kMaxSchemaDepth = 32;

void WriteString(Writer* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

int64_t Int(const rapidjson::Value& v, const char* name, int64_t fallback) {
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsNumber()) return fallback;
  const double d = it->value.GetDouble();
  if (!std::isfinite(d) || d > 1e15 || d < -1e15) return fallback;
  return static_cast<int64_t>(std::ceil(d));
}

double Num(const rapidjson::Value& v, const char* name, double fallback) {
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsNumber()) return fallback;
  const double d = it->value.GetDouble();
  return std::isfinite(d) ? d : fallback;
}

std::string TypeOf(const rapidjson::Value& schema) {
  auto it = schema.FindMember("type");
  if (it == schema.MemberEnd()) {
    if (schema.HasMember("properties")) return "object";
    if (schema.HasMember("items")) return "array";
    return "";
  }
  if (it->value.IsString()) return it->value.GetString();
  if (it->value.IsArray()) {
    for (const auto& t : it->value.GetArray()) {
      if (t.IsString() && std::string(t.GetString()) != "null")
        return t.GetString();
    }
    return "null";
  }
  return "";
}

void WriteValue(const rapidjson::Value& schema, std::mt19937_64& rng, Writer* w,
                int depth) {
  if (!schema.IsObject() || depth > kMaxSchemaDepth) {
    w->StartObject();
    w->EndObject();
    return;
  }
  if (auto c = schema.FindMember("const"); c != schema.MemberEnd()) {
    c->value.Accept(*w);
    return;
  }
  if (auto e = schema.FindMember("enum");
      e != schema.MemberEnd() && e->value.IsArray() && !e->value.Empty()) {
    const auto n = e->value.Size();
    e->value[static_cast<rapidjson::SizeType>(
                 std::uniform_int_distribution<unsigned>(0, n - 1)(rng))]
        .Accept(*w);
    return;
  }
  for (const char* any : {"anyOf", "oneOf", "allOf"}) {
    auto a = schema.FindMember(any);
    if (a != schema.MemberEnd() && a->value.IsArray() && !a->value.Empty()) {
      // allOf: the first part (enough for the usual single-schema wrapper).
      const auto n = a->value.Size();
      const unsigned i =
          std::string(any) == "allOf"
              ? 0
              : std::uniform_int_distribution<unsigned>(0, n - 1)(rng);
      WriteValue(a->value[i], rng, w, depth + 1);
      return;
    }
  }
  const std::string type = TypeOf(schema);
  if (type == "object" || type.empty()) {
    w->StartObject();
    auto props = schema.FindMember("properties");
    if (props != schema.MemberEnd() && props->value.IsObject()) {
      for (const auto& p : props->value.GetObject()) {
        w->Key(p.name.GetString(), p.name.GetStringLength());
        WriteValue(p.value, rng, w, depth + 1);
      }
    }
    w->EndObject();
  } else if (type == "array") {
    const int64_t min = std::max<int64_t>(0, Int(schema, "minItems", 1));
    const int64_t max = std::max(
        min, std::min<int64_t>(Int(schema, "maxItems", min + 2), min + 8));
    const int64_t n = std::uniform_int_distribution<int64_t>(min, max)(rng);
    static const rapidjson::Value kEmpty(rapidjson::kObjectType);
    auto items = schema.FindMember("items");
    const rapidjson::Value& item =
        items != schema.MemberEnd() ? items->value : kEmpty;
    w->StartArray();
    for (int64_t i = 0; i < n; ++i) WriteValue(item, rng, w, depth + 1);
    w->EndArray();
  } else if (type == "integer") {
    int64_t lo = Int(schema, "minimum", 0);
    int64_t hi = Int(schema, "maximum", lo + 100);
    if (schema.HasMember("exclusiveMinimum"))
      lo = Int(schema, "exclusiveMinimum", lo - 1) + 1;
    if (schema.HasMember("exclusiveMaximum"))
      hi = Int(schema, "exclusiveMaximum", hi + 1) - 1;
    if (hi < lo) hi = lo;
    w->Int64(std::uniform_int_distribution<int64_t>(lo, hi)(rng));
  } else if (type == "number") {
    const double lo =
        Num(schema, "minimum", Num(schema, "exclusiveMinimum", 0));
    double hi =
        Num(schema, "maximum", Num(schema, "exclusiveMaximum", lo + 100));
    if (hi < lo) hi = lo;
    // Two decimals, inside the bounds.
    double v =
        std::round(std::uniform_real_distribution<double>(lo, hi)(rng) * 100) /
        100;
    w->Double(std::clamp(v, lo, hi));
  } else if (type == "boolean") {
    w->Bool(std::uniform_int_distribution<int>(0, 1)(rng) == 1);
  } else if (type == "null") {
    w->Null();
  } else {  // string
    std::string format;
    if (auto f = schema.FindMember("format");
        f != schema.MemberEnd() && f->value.IsString()) {
      format = f->value.GetString();
    }
    std::string s;
    if (format == "date-time") {
      s = "2024-05-17T12:00:00Z";
    } else if (format == "date") {
      s = "2024-05-17";
    } else if (format == "email") {
      s = "user@example.com";
    } else if (format == "uri" || format == "url") {
      s = "https://example.com/";
    } else if (format == "uuid") {
      s = "123e4567-e89b-12d3-a456-426614174000";
    } else {
      const size_t words = sizeof(kWords) / sizeof(kWords[0]);
      s = kWords[std::uniform_int_distribution<size_t>(0, words - 1)(rng)];
    }
    const int64_t min = std::max<int64_t>(0, Int(schema, "minLength", 0));
    const int64_t max = Int(schema, "maxLength", -1);
    while (static_cast<int64_t>(s.size()) < min) s += 'x';
    if (max >= 0 && static_cast<int64_t>(s.size()) > max) {
      s.resize(static_cast<size_t>(std::max(max, min)));
    }
    WriteString(w, s);
  }
}

// Splits JSON text into pieces of about eight bytes, never inside a UTF-8
// sequence.
std::vector<std::string> JsonPieces(const std::string& json) {
  std::vector<std::string> pieces;
  size_t i = 0;
  while (i < json.size()) {
    size_t end = std::min(json.size(), i + 8);
    while (end < json.size() &&
           (static_cast<unsigned char>(json[end]) & 0xC0) == 0x80) {
      ++end;
    }
    pieces.push_back(json.substr(i, end - i));
    i = end;
  }
  return pieces;
}

}  // namespace

Dialect DialectOf(std::string_view path) {
  if (path == "/v1/messages" || path.rfind("/v1/messages/", 0) == 0) {
    return Dialect::kAnthropic;
  }
  if (path.rfind("/api/", 0) == 0) return Dialect::kOllama;
  return Dialect::kOpenAI;
}

bool IsDialectEnginePath(std::string_view path) {
  return path == "/v1/messages" || path == "/api/chat" ||
         path == "/api/generate";
}

const char* AnthropicErrorType(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    case 504:
      return "timeout_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

std::string DialectErrorBody(Dialect dialect, int status,
                             const std::string& message,
                             const std::string& type, const std::string& code,
                             const std::string& extra) {
  const bool rewinds = type.rfind("rewind_", 0) == 0;
  const std::string own_code =
      rewinds ? ",\"code\":" + JsonQuote(type) : std::string();
  switch (dialect) {
    case Dialect::kAnthropic:
      return std::string("{\"type\":\"error\",\"error\":{\"type\":\"") +
             AnthropicErrorType(status) +
             "\",\"message\":" + JsonQuote(message) + own_code + extra + "}}\n";
    case Dialect::kOllama:
      return "{\"error\":" + JsonQuote(message) + own_code + extra + "}\n";
    case Dialect::kOpenAI:
      break;
  }
  if (!extra.empty() || rewinds) {
    // rewind's own errors keep their established shape.
    return "{\"error\":{\"type\":" + JsonQuote(type) +
           ",\"message\":" + JsonQuote(message) + extra + "}}\n";
  }
  return OpenAIErrorBody(message, type, code);
}

std::string RewindErrorBody(Dialect dialect, int status,
                            const std::string& type, const std::string& message,
                            const std::string& extra) {
  if (dialect == Dialect::kOpenAI) {
    return "{\"error\":{\"type\":" + JsonQuote(type) +
           ",\"message\":" + JsonQuote(message) + extra + "}}\n";
  }
  return DialectErrorBody(dialect, status, message, type, "", extra);
}

std::string ValueForSchema(const std::string& schema, std::mt19937_64& rng) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(schema.data(), schema.size());
  rapidjson::StringBuffer b;
  Writer w(b);
  if (d.HasParseError()) {
    w.StartObject();
    w.EndObject();
  } else {
    WriteValue(d, rng, &w, 0);
  }
  return std::string(b.GetString(), b.GetSize());
}

Draft MakeDraft(const SynthOptions& options, const DialectTurn& turn,
                const SynthContext& ctx) {
  Draft d;
  d.start_us = ctx.admitted_us;
  d.prompt_tokens = turn.text.prompt_tokens;
  std::mt19937_64 rng(ctx.seed);
  // The fault first, as for chat completions.
  const double draw = std::uniform_real_distribution<double>(0, 1)(rng);
  if (ctx.forced_fault) {
    d.fault = *ctx.forced_fault;
  } else if (draw < options.faults.rate && !options.faults.types.empty()) {
    d.fault = options.faults.types[std::uniform_int_distribution<size_t>(
        0, options.faults.types.size() - 1)(rng)];
  }
  switch (d.fault) {
    case FaultType::k429:
    case FaultType::k500:
    case FaultType::k503:
    case FaultType::k400:
    case FaultType::kTimeout:
      return d;
    default:
      break;
  }

  // A tool call when the request allows one and the last turn did not
  // already bring tool results (auto), or whenever it is required.
  const DialectTool* tool = nullptr;
  if (!turn.tools.empty()) {
    using TC = DialectTurn::ToolChoice;
    if (turn.tool_choice == TC::kNamed) {
      for (const DialectTool& t : turn.tools) {
        if (t.name == turn.tool_name) tool = &t;
      }
    } else if (turn.tool_choice == TC::kAny ||
               (turn.tool_choice == TC::kAuto && !turn.after_tool)) {
      tool = &turn.tools[std::uniform_int_distribution<size_t>(
          0, turn.tools.size() - 1)(rng)];
    }
  }
  if (tool) {
    d.tool_call = true;
    d.tool_name = tool->name;
    d.tool_arguments = ValueForSchema(tool->schema, rng);
    d.pieces = JsonPieces(d.tool_arguments);
    d.finish = "tool";
  } else {
    std::string text = options.output.Generate(turn.text, rng);
    size_t cut = std::string::npos;
    for (const std::string& s : turn.text.stop) {
      if (s.empty()) continue;
      const size_t at = text.find(s);
      if (at < cut) {
        cut = at;
        d.stop_sequence = s;
      }
    }
    if (cut != std::string::npos) {
      text.resize(cut);
      d.finish = "stop_sequence";
    }
    d.pieces = Tokenize(text);
    const int max = turn.text.max_tokens;
    if (max > 0 && static_cast<int>(d.pieces.size()) > max) {
      d.pieces.resize(static_cast<size_t>(max));
      d.finish = "length";
      d.stop_sequence.clear();
    }
  }
  d.completion_tokens = static_cast<int>(d.pieces.size());

  const double mult = ctx.load_multiplier;
  d.ttft_us = d.start_us +
              static_cast<int64_t>(
                  (static_cast<double>(options.ttft.SampleMicros(rng)) +
                   options.prefill_per_token_ms * 1000.0 * d.prompt_tokens) *
                  mult);
  int64_t at = d.ttft_us;
  for (size_t i = 0; i < d.pieces.size(); ++i) {
    if (i > 0) {
      at += static_cast<int64_t>(
          static_cast<double>(options.itl.SampleMicros(rng)) * mult);
    }
    d.at_us.push_back(at);
  }
  d.end_us = at;
  return d;
}

SynthPlan DialectErrorPlan(Dialect dialect, int status,
                           const std::string& message, const std::string& type,
                           const std::string& code, int64_t at_us) {
  SynthPlan p;
  p.response.status = status;
  p.response.headers = {{"Content-Type", "application/json"}};
  p.response.headers_us = at_us;
  p.response.chunks = {
      {at_us, DialectErrorBody(dialect, status, message, type, code)}};
  return p;
}

SynthPlan FaultErrorPlan(Dialect dialect, const SynthOptions& options,
                         const Draft& d) {
  SynthPlan plan;
  const int64_t at = d.start_us;
  switch (d.fault) {
    case FaultType::k429:
      plan = DialectErrorPlan(dialect, 429,
                              "Rate limit reached (injected by rewind)",
                              "rate_limit_error", "rate_limit_exceeded", at);
      break;
    case FaultType::k500:
      plan = DialectErrorPlan(dialect, 500,
                              "The server had an error (injected by rewind)",
                              "server_error", "", at);
      break;
    case FaultType::k503:
      plan = DialectErrorPlan(dialect, 503,
                              "The engine is overloaded (injected by rewind)",
                              "server_error", "overloaded", at);
      break;
    case FaultType::k400:
      plan =
          DialectErrorPlan(dialect, 400, "Invalid request (injected by rewind)",
                           "invalid_request_error", "", at);
      break;
    case FaultType::kTimeout:
      plan = DialectErrorPlan(
          dialect, 504, "No answer in time (injected by rewind)",
          "server_error", "timeout", at + options.faults.timeout_ms * 1000);
      break;
    default:
      return plan;
  }
  plan.fault = d.fault;
  plan.prompt_tokens = d.prompt_tokens;
  return plan;
}

void ApplyBodyFault(const SynthOptions& options, SynthPlan* plan) {
  Response& res = plan->response;
  if (res.chunks.empty()) return;
  Chunk& c = res.chunks.back();
  switch (plan->fault) {
    case FaultType::kStall:
      c.offset_us += options.faults.stall_ms * 1000;
      res.headers_us = c.offset_us;
      break;
    case FaultType::kGarbage:
      c.data = c.data.substr(0, c.data.size() / 2) + "\x01}{garbage";
      break;
    case FaultType::kDrop:
      plan->content_length = c.data.size();
      c.data.resize(c.data.size() / 2);
      plan->abort = true;
      break;
    default:
      break;
  }
}

void ApplyStreamFault(const SynthOptions& options, const std::string& garbage,
                      std::mt19937_64& rng, SynthPlan* plan) {
  std::vector<Chunk>& chunks = plan->response.chunks;
  const FaultType f = plan->fault;
  if (chunks.size() < 2 || (f != FaultType::kDrop && f != FaultType::kStall &&
                            f != FaultType::kGarbage)) {
    return;
  }
  // Somewhere after the first event and before the last.
  const size_t k = std::uniform_int_distribution<size_t>(
      1, std::max<size_t>(1, chunks.size() - 2))(rng);
  if (f == FaultType::kDrop) {
    chunks.resize(k);
    plan->abort = true;
  } else if (f == FaultType::kStall) {
    for (size_t i = k; i < chunks.size(); ++i) {
      chunks[i].offset_us += options.faults.stall_ms * 1000;
    }
  } else {
    chunks[k].data = garbage;
  }
}

std::string Rfc3339(int64_t seconds, int64_t offset_us) {
  const int64_t micros = seconds * 1000000 + offset_us;
  const time_t secs = static_cast<time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof(buf),
                "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRId64 "Z",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, micros % 1000000);
  return buf;
}

}  // namespace rwd
