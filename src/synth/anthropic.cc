// Anthropic Messages (POST /v1/messages) in the dummy engine: a message
// with a text or tool_use content block, streamed as message_start,
// content_block_start, ping, content_block_delta (text_delta or
// input_json_delta), content_block_stop, message_delta (stop_reason and
// usage) and message_stop events.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cinttypes>
#include <cstdio>

#include "rewind/request_key.h"
#include "synth/dialect.h"
#include "util/text.h"

namespace rwd {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

Status Bad(const std::string& message) {
  return Status::InvalidArgument(message);
}

std::string Serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  Writer w(b);
  v.Accept(w);
  return std::string(b.GetString(), b.GetSize());
}

void Str(Writer* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// The text of a content value: a string, or the text of its text blocks
// (and of tool results, which hold text or blocks themselves).
std::string ContentText(const rapidjson::Value& content, bool* has_tool_result,
                        int depth = 0) {
  if (content.IsString()) return content.GetString();
  std::string out;
  if (!content.IsArray() || depth > 2) return out;
  for (const auto& block : content.GetArray()) {
    if (!block.IsObject()) continue;
    auto type = block.FindMember("type");
    const std::string t = type != block.MemberEnd() && type->value.IsString()
                              ? type->value.GetString()
                              : "";
    if (t == "text" && block.HasMember("text") && block["text"].IsString()) {
      out += block["text"].GetString();
    } else if (t == "tool_result") {
      if (has_tool_result) *has_tool_result = true;
      if (block.HasMember("content")) {
        out += ContentText(block["content"], nullptr, depth + 1);
      }
    }
  }
  return out;
}

Result<DialectTurn> Parse(const std::string& body) {
  // Values of the request are written back with RapidJSON's recursive
  // Accept(): nothing deeper than kMaxJsonDepth gets that far.
  if (JsonNestsDeeperThan(body, kMaxJsonDepth)) {
    return Bad("the request body nests objects and arrays deeper than " +
               std::to_string(kMaxJsonDepth) + " levels");
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Bad("the request body is not a JSON object");
  }
  DialectTurn turn;
  OpenAIRequest& r = turn.text;
  r.kind = OpenAIRequest::Kind::kChat;
  auto model = doc.FindMember("model");
  if (model == doc.MemberEnd() || !model->value.IsString()) {
    return Bad("model: Field required (a string)");
  }
  r.model = model->value.GetString();
  auto max = doc.FindMember("max_tokens");
  if (max == doc.MemberEnd() || !max->value.IsInt() ||
      max->value.GetInt() < 1) {
    return Bad("max_tokens: Field required (a positive integer)");
  }
  r.max_tokens = max->value.GetInt();
  if (auto s = doc.FindMember("system");
      s != doc.MemberEnd() && !s->value.IsNull()) {
    if (!s->value.IsString() && !s->value.IsArray()) {
      return Bad("system: must be a string or a list of text blocks");
    }
    r.prompt_tokens +=
        static_cast<int>(Tokenize(ContentText(s->value, nullptr)).size());
  }
  auto messages = doc.FindMember("messages");
  if (messages == doc.MemberEnd() || !messages->value.IsArray() ||
      messages->value.Empty()) {
    return Bad("messages: Field required (a non-empty list)");
  }
  std::string last_any;
  bool have_user = false;
  for (const auto& m : messages->value.GetArray()) {
    if (!m.IsObject() || !m.HasMember("role") || !m["role"].IsString()) {
      return Bad("messages: each message needs a string 'role'");
    }
    const std::string role = m["role"].GetString();
    if (role != "user" && role != "assistant") {
      return Bad("messages: role must be 'user' or 'assistant', not '" + role +
                 "'");
    }
    if (!m.HasMember("content") ||
        !(m["content"].IsString() || m["content"].IsArray())) {
      return Bad(
          "messages: each message needs 'content' (a string or a list of "
          "blocks)");
    }
    bool tool_result = false;
    std::string text = ContentText(m["content"], &tool_result);
    r.prompt_tokens += static_cast<int>(Tokenize(text).size());
    last_any = text;
    turn.after_tool = role == "user" && tool_result;
    if (role == "user") {
      r.prompt = text;
      have_user = true;
    }
  }
  if (!have_user) r.prompt = last_any;
  if (auto s = doc.FindMember("stop_sequences");
      s != doc.MemberEnd() && !s->value.IsNull()) {
    if (!s->value.IsArray())
      return Bad("stop_sequences: must be a list of strings");
    for (const auto& v : s->value.GetArray()) {
      if (!v.IsString())
        return Bad("stop_sequences: must be a list of strings");
      r.stop.push_back(v.GetString());
    }
  }
  if (auto s = doc.FindMember("stream");
      s != doc.MemberEnd() && !s->value.IsNull()) {
    if (!s->value.IsBool()) return Bad("stream: must be a boolean");
    r.stream = s->value.GetBool();
  }
  if (auto t = doc.FindMember("tools");
      t != doc.MemberEnd() && !t->value.IsNull()) {
    if (!t->value.IsArray()) return Bad("tools: must be a list");
    for (const auto& tool : t->value.GetArray()) {
      if (!tool.IsObject() || !tool.HasMember("name") ||
          !tool["name"].IsString()) {
        return Bad("tools: each tool needs a string 'name'");
      }
      DialectTool dt;
      dt.name = tool["name"].GetString();
      if (auto s = tool.FindMember("input_schema"); s != tool.MemberEnd()) {
        dt.schema = Serialize(s->value);
      }
      turn.tools.push_back(std::move(dt));
    }
  }
  if (auto c = doc.FindMember("tool_choice");
      c != doc.MemberEnd() && c->value.IsObject()) {
    auto type = c->value.FindMember("type");
    const std::string t = type != c->value.MemberEnd() && type->value.IsString()
                              ? type->value.GetString()
                              : "";
    using TC = DialectTurn::ToolChoice;
    if (t == "auto") {
      turn.tool_choice = TC::kAuto;
    } else if (t == "any") {
      turn.tool_choice = TC::kAny;
    } else if (t == "none") {
      turn.tool_choice = TC::kNone;
    } else if (t == "tool") {
      auto name = c->value.FindMember("name");
      if (name == c->value.MemberEnd() || !name->value.IsString()) {
        return Bad("tool_choice: type 'tool' needs a 'name'");
      }
      turn.tool_choice = TC::kNamed;
      turn.tool_name = name->value.GetString();
      bool known = false;
      for (const DialectTool& dt : turn.tools)
        known = known || dt.name == turn.tool_name;
      if (!known)
        return Bad("tool_choice: no tool named '" + turn.tool_name +
                   "' in tools");
    } else {
      return Bad("tool_choice: type must be auto, any, tool or none");
    }
  }
  return turn;
}

const char* StopReason(const std::string& finish) {
  if (finish == "length") return "max_tokens";
  if (finish == "stop_sequence") return "stop_sequence";
  if (finish == "tool") return "tool_use";
  return "end_turn";
}

void StopSequence(Writer* w, const Draft& d) {
  w->Key("stop_sequence");
  if (d.finish == "stop_sequence") {
    Str(w, d.stop_sequence);
  } else {
    w->Null();
  }
}

// The content block as it starts: an empty text, or the tool with an
// empty input.
void StartBlock(Writer* w, const Draft& d, const std::string& tool_id) {
  w->StartObject();
  w->Key("type");
  if (d.tool_call) {
    w->String("tool_use");
    w->Key("id");
    Str(w, tool_id);
    w->Key("name");
    Str(w, d.tool_name);
    w->Key("input");
    w->StartObject();
    w->EndObject();
  } else {
    w->String("text");
    w->Key("text");
    w->String("");
  }
  w->EndObject();
}

std::string Event(const char* name, const rapidjson::StringBuffer& json) {
  return std::string("event: ") + name +
         "\ndata: " + std::string(json.GetString(), json.GetSize()) + "\n\n";
}

}  // namespace

SynthPlan PlanAnthropic(const SynthOptions& options, const Request& http,
                        const SynthContext& ctx) {
  const int64_t start = ctx.admitted_us;
  if (http.path != "/v1/messages") {
    return DialectErrorPlan(Dialect::kAnthropic, 404,
                            "rewind's dummy engine does not serve " + http.path,
                            "invalid_request_error", "unknown_url", start);
  }
  Result<DialectTurn> parsed = Parse(http.body);
  if (!parsed.ok()) {
    return DialectErrorPlan(Dialect::kAnthropic, 400, parsed.status().message(),
                            "invalid_request_error", "", start);
  }
  const DialectTurn& turn = parsed.value();
  const Draft d = MakeDraft(options, turn, ctx);
  SynthPlan plan = FaultErrorPlan(Dialect::kAnthropic, options, d);
  if (plan.response.status != 0) return plan;

  char id_buf[40];
  std::snprintf(id_buf, sizeof(id_buf), "msg_%016" PRIx64, ctx.seed);
  const std::string id = id_buf;
  std::snprintf(id_buf, sizeof(id_buf), "toolu_%016" PRIx64,
                ctx.seed ^ 0x5bd1e995u);
  const std::string tool_id = id_buf;
  std::snprintf(id_buf, sizeof(id_buf), "req_%016" PRIx64, ctx.seed);
  const std::string request_id = id_buf;
  const std::string& model = turn.text.model;

  plan.fault = d.fault;
  plan.prompt_tokens = d.prompt_tokens;
  plan.completion_tokens = d.completion_tokens;
  Response& res = plan.response;
  res.status = 200;

  if (!turn.text.stream) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    w.Key("id");
    Str(&w, id);
    w.Key("type");
    w.String("message");
    w.Key("role");
    w.String("assistant");
    w.Key("model");
    Str(&w, model);
    w.Key("content");
    w.StartArray();
    if (d.tool_call) {
      w.StartObject();
      w.Key("type");
      w.String("tool_use");
      w.Key("id");
      Str(&w, tool_id);
      w.Key("name");
      Str(&w, d.tool_name);
      w.Key("input");
      w.RawValue(d.tool_arguments.data(), d.tool_arguments.size(),
                 rapidjson::kObjectType);
      w.EndObject();
    } else {
      std::string text;
      for (const std::string& p : d.pieces) text += p;
      w.StartObject();
      w.Key("type");
      w.String("text");
      w.Key("text");
      Str(&w, text);
      w.EndObject();
    }
    w.EndArray();
    w.Key("stop_reason");
    w.String(StopReason(d.finish));
    StopSequence(&w, d);
    w.Key("usage");
    w.StartObject();
    w.Key("input_tokens");
    w.Int(d.prompt_tokens);
    w.Key("output_tokens");
    w.Int(d.completion_tokens);
    w.EndObject();
    w.EndObject();
    res.headers = {{"Content-Type", "application/json"},
                   {"request-id", request_id}};
    res.headers_us = d.end_us;
    res.chunks = {{d.end_us, std::string(b.GetString(), b.GetSize())}};
    ApplyBodyFault(options, &plan);
    return plan;
  }

  res.chunked = true;
  res.headers = {{"Content-Type", "text/event-stream; charset=utf-8"},
                 {"Cache-Control", "no-cache"},
                 {"request-id", request_id}};
  res.headers_us = start;
  {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    w.Key("type");
    w.String("message_start");
    w.Key("message");
    w.StartObject();
    w.Key("id");
    Str(&w, id);
    w.Key("type");
    w.String("message");
    w.Key("role");
    w.String("assistant");
    w.Key("model");
    Str(&w, model);
    w.Key("content");
    w.StartArray();
    w.EndArray();
    w.Key("stop_reason");
    w.Null();
    w.Key("stop_sequence");
    w.Null();
    w.Key("usage");
    w.StartObject();
    w.Key("input_tokens");
    w.Int(d.prompt_tokens);
    w.Key("output_tokens");
    w.Int(1);
    w.EndObject();
    w.EndObject();
    w.EndObject();
    res.chunks.push_back({d.ttft_us, Event("message_start", b)});
  }
  {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    w.Key("type");
    w.String("content_block_start");
    w.Key("index");
    w.Int(0);
    w.Key("content_block");
    StartBlock(&w, d, tool_id);
    w.EndObject();
    res.chunks.push_back({d.ttft_us, Event("content_block_start", b)});
  }
  res.chunks.push_back(
      {d.ttft_us, "event: ping\ndata: {\"type\":\"ping\"}\n\n"});
  for (size_t i = 0; i < d.pieces.size(); ++i) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    w.Key("type");
    w.String("content_block_delta");
    w.Key("index");
    w.Int(0);
    w.Key("delta");
    w.StartObject();
    w.Key("type");
    if (d.tool_call) {
      w.String("input_json_delta");
      w.Key("partial_json");
    } else {
      w.String("text_delta");
      w.Key("text");
    }
    Str(&w, d.pieces[i]);
    w.EndObject();
    w.EndObject();
    res.chunks.push_back({d.at_us[i], Event("content_block_delta", b)});
  }
  const int64_t end = std::max(d.end_us, d.ttft_us);
  res.chunks.push_back({end,
                        "event: content_block_stop\ndata: "
                        "{\"type\":\"content_block_stop\",\"index\":0}\n\n"});
  {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    w.Key("type");
    w.String("message_delta");
    w.Key("delta");
    w.StartObject();
    w.Key("stop_reason");
    w.String(StopReason(d.finish));
    StopSequence(&w, d);
    w.EndObject();
    w.Key("usage");
    w.StartObject();
    w.Key("output_tokens");
    w.Int(d.completion_tokens);
    w.EndObject();
    w.EndObject();
    res.chunks.push_back({end, Event("message_delta", b)});
  }
  res.chunks.push_back(
      {end, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"});
  std::mt19937_64 rng(ctx.seed ^ 0xA4A4A4A4u);
  ApplyStreamFault(options,
                   "event: content_block_delta\ndata: "
                   "{\"type\":\"content_block_delta\",\x01\n\n",
                   rng, &plan);
  return plan;
}

}  // namespace rwd
