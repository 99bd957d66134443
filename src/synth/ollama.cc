// Ollama (POST /api/chat, POST /api/generate, GET /api/tags) in the dummy
// engine. Streams are NDJSON, one object per token with "done": false and
// a last one with "done": true, "done_reason" and the timing fields
// (nanoseconds): total_duration, load_duration, prompt_eval_count,
// prompt_eval_duration, eval_count, eval_duration. "stream": false gives
// that last object alone, with the whole answer. Streaming is the default.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "rewind/request_key.h"
#include "synth/dialect.h"
#include "util/text.h"

namespace rwd {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

Status Bad(const std::string& message) {
  return Status::InvalidArgument(message);
}

void Str(Writer* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string Serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  Writer w(b);
  v.Accept(w);
  return std::string(b.GetString(), b.GetSize());
}

int CountTokens(const std::string& text) {
  return static_cast<int>(Tokenize(text).size());
}

// options.num_predict and options.stop.
Status ParseOptions(const rapidjson::Value& doc, OpenAIRequest* r) {
  auto o = doc.FindMember("options");
  if (o == doc.MemberEnd() || o->value.IsNull()) return Status::Ok();
  if (!o->value.IsObject()) return Bad("options must be an object");
  if (auto n = o->value.FindMember("num_predict");
      n != o->value.MemberEnd() && !n->value.IsNull()) {
    if (!n->value.IsInt()) return Bad("options.num_predict must be an integer");
    // Ollama: -1 = no limit (and -2 = fill the context).
    if (n->value.GetInt() > 0) r->max_tokens = n->value.GetInt();
  }
  if (auto s = o->value.FindMember("stop");
      s != o->value.MemberEnd() && !s->value.IsNull()) {
    if (s->value.IsString()) {
      r->stop.push_back(s->value.GetString());
    } else if (s->value.IsArray()) {
      for (const auto& v : s->value.GetArray()) {
        if (!v.IsString()) return Bad("options.stop must be strings");
        r->stop.push_back(v.GetString());
      }
    } else {
      return Bad("options.stop must be a string or strings");
    }
  }
  return Status::Ok();
}

// An empty "messages" (chat) or "prompt" (generate) only loads the model.
Result<DialectTurn> Parse(bool chat, const std::string& body, bool* load_only) {
  // Values of the request are written back with RapidJSON's recursive
  // Accept(): nothing deeper than kMaxJsonDepth gets that far.
  if (JsonNestsDeeperThan(body, kMaxJsonDepth)) {
    return Bad("the request body nests objects and arrays deeper than " +
               std::to_string(kMaxJsonDepth) + " levels");
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) return Bad("invalid JSON body");
  DialectTurn turn;
  OpenAIRequest& r = turn.text;
  r.kind = chat ? OpenAIRequest::Kind::kChat : OpenAIRequest::Kind::kCompletion;
  r.stream = true;
  auto model = doc.FindMember("model");
  if (model == doc.MemberEnd() || !model->value.IsString() ||
      model->value.GetStringLength() == 0) {
    return Bad("model is required");
  }
  r.model = model->value.GetString();
  if (auto s = doc.FindMember("stream");
      s != doc.MemberEnd() && !s->value.IsNull()) {
    if (!s->value.IsBool()) return Bad("stream must be a boolean");
    r.stream = s->value.GetBool();
  }
  Status options = ParseOptions(doc, &r);
  if (!options.ok()) return options;
  if (chat) {
    auto messages = doc.FindMember("messages");
    if (messages != doc.MemberEnd() && !messages->value.IsNull() &&
        !messages->value.IsArray()) {
      return Bad("messages must be an array");
    }
    *load_only = messages == doc.MemberEnd() || messages->value.IsNull() ||
                 messages->value.Empty();
    std::string last_any;
    bool have_user = false;
    if (!*load_only) {
      for (const auto& m : messages->value.GetArray()) {
        if (!m.IsObject() || !m.HasMember("role") || !m["role"].IsString()) {
          return Bad("each message needs a string role");
        }
        const std::string role = m["role"].GetString();
        std::string text;
        if (auto c = m.FindMember("content");
            c != m.MemberEnd() && !c->value.IsNull()) {
          if (!c->value.IsString())
            return Bad("message content must be a string");
          text = c->value.GetString();
        }
        r.prompt_tokens += CountTokens(text);
        last_any = text;
        turn.after_tool = role == "tool";
        if (role == "user") {
          r.prompt = text;
          have_user = true;
        }
      }
    }
    if (!have_user) r.prompt = last_any;
    if (auto t = doc.FindMember("tools");
        t != doc.MemberEnd() && !t->value.IsNull()) {
      if (!t->value.IsArray()) return Bad("tools must be an array");
      for (const auto& tool : t->value.GetArray()) {
        const rapidjson::Value* fn = nullptr;
        if (tool.IsObject() && tool.HasMember("function") &&
            tool["function"].IsObject()) {
          fn = &tool["function"];
        }
        if (!fn || !fn->HasMember("name") || !(*fn)["name"].IsString()) {
          return Bad("each tool needs function.name");
        }
        DialectTool dt;
        dt.name = (*fn)["name"].GetString();
        if (auto p = fn->FindMember("parameters"); p != fn->MemberEnd()) {
          dt.schema = Serialize(p->value);
        }
        turn.tools.push_back(std::move(dt));
      }
    }
  } else {
    auto prompt = doc.FindMember("prompt");
    if (prompt != doc.MemberEnd() && !prompt->value.IsNull()) {
      if (!prompt->value.IsString()) return Bad("prompt must be a string");
      r.prompt = prompt->value.GetString();
    }
    *load_only = r.prompt.empty();
    r.prompt_tokens = CountTokens(r.prompt);
    if (auto s = doc.FindMember("system");
        s != doc.MemberEnd() && s->value.IsString()) {
      r.prompt_tokens += CountTokens(s->value.GetString());
    }
  }
  return turn;
}

// Fields every object of an answer starts with.
void Head(Writer* w, const std::string& model, const std::string& created_at) {
  w->Key("model");
  Str(w, model);
  w->Key("created_at");
  Str(w, created_at);
}

void Message(Writer* w, const std::string& content, const Draft* tool) {
  w->Key("message");
  w->StartObject();
  w->Key("role");
  w->String("assistant");
  w->Key("content");
  Str(w, content);
  if (tool) {
    w->Key("tool_calls");
    w->StartArray();
    w->StartObject();
    w->Key("function");
    w->StartObject();
    w->Key("name");
    Str(w, tool->tool_name);
    w->Key("arguments");
    w->RawValue(tool->tool_arguments.data(), tool->tool_arguments.size(),
                rapidjson::kObjectType);
    w->EndObject();
    w->EndObject();
    w->EndArray();
  }
  w->EndObject();
}

// The "done" fields and timings of the last object.
void Done(Writer* w, const Draft& d) {
  w->Key("done");
  w->Bool(true);
  w->Key("done_reason");
  w->String(d.finish == "length" ? "length" : "stop");
  const int64_t ttft = std::max(d.ttft_us, d.start_us);
  const int64_t end = std::max(d.end_us, ttft);
  w->Key("total_duration");
  w->Int64(end * 1000);
  w->Key("load_duration");
  w->Int64(d.start_us * 1000);
  w->Key("prompt_eval_count");
  w->Int(d.prompt_tokens);
  w->Key("prompt_eval_duration");
  w->Int64((ttft - d.start_us) * 1000);
  w->Key("eval_count");
  w->Int(d.completion_tokens);
  w->Key("eval_duration");
  w->Int64((end - ttft) * 1000);
}

std::string Line(const rapidjson::StringBuffer& b) {
  return std::string(b.GetString(), b.GetSize()) + "\n";
}

}  // namespace

SynthPlan PlanOllama(const SynthOptions& options, const Request& http,
                     const SynthContext& ctx) {
  const int64_t start = ctx.admitted_us;
  const bool chat = http.path == "/api/chat";
  if (!chat && http.path != "/api/generate") {
    return DialectErrorPlan(Dialect::kOllama, 404,
                            "rewind's dummy engine does not serve " + http.path,
                            "invalid_request_error", "unknown_url", start);
  }
  bool load_only = false;
  Result<DialectTurn> parsed = Parse(chat, http.body, &load_only);
  if (!parsed.ok()) {
    return DialectErrorPlan(Dialect::kOllama, 400, parsed.status().message(),
                            "invalid_request_error", "", start);
  }
  const DialectTurn& turn = parsed.value();
  const std::string& model = turn.text.model;
  SynthPlan plan;
  Response& res = plan.response;
  if (load_only) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    Head(&w, model, Rfc3339(ctx.created, start));
    if (chat) {
      Message(&w, "", nullptr);
    } else {
      w.Key("response");
      w.String("");
    }
    w.Key("done_reason");
    w.String("load");
    w.Key("done");
    w.Bool(true);
    w.EndObject();
    res.status = 200;
    res.headers = {{"Content-Type", "application/json; charset=utf-8"}};
    res.headers_us = start;
    res.chunks = {{start, Line(b)}};
    return plan;
  }
  const Draft d = MakeDraft(options, turn, ctx);
  plan = FaultErrorPlan(Dialect::kOllama, options, d);
  if (plan.response.status != 0) return plan;
  plan.fault = d.fault;
  plan.prompt_tokens = d.prompt_tokens;
  plan.completion_tokens = d.completion_tokens;
  res.status = 200;
  const int64_t end = std::max(d.end_us, d.ttft_us);

  if (!turn.text.stream) {
    std::string text;
    if (!d.tool_call) {
      for (const std::string& p : d.pieces) text += p;
    }
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    Head(&w, model, Rfc3339(ctx.created, end));
    if (chat) {
      Message(&w, text, d.tool_call ? &d : nullptr);
    } else {
      w.Key("response");
      Str(&w, text);
    }
    Done(&w, d);
    w.EndObject();
    res.headers = {{"Content-Type", "application/json; charset=utf-8"}};
    res.headers_us = end;
    res.chunks = {{end, Line(b)}};
    ApplyBodyFault(options, &plan);
    return plan;
  }

  res.chunked = true;
  res.headers = {{"Content-Type", "application/x-ndjson"}};
  res.headers_us = start;
  auto piece = [&](const std::string& text, const Draft* tool, int64_t at) {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    Head(&w, model, Rfc3339(ctx.created, at));
    if (chat) {
      Message(&w, text, tool);
    } else {
      w.Key("response");
      Str(&w, text);
    }
    w.Key("done");
    w.Bool(false);
    w.EndObject();
    res.chunks.push_back({at, Line(b)});
  };
  if (d.tool_call) {
    // Ollama sends a tool call whole, in one object.
    piece("", &d, end);
  } else {
    for (size_t i = 0; i < d.pieces.size(); ++i)
      piece(d.pieces[i], nullptr, d.at_us[i]);
  }
  {
    rapidjson::StringBuffer b;
    Writer w(b);
    w.StartObject();
    Head(&w, model, Rfc3339(ctx.created, end));
    if (chat) {
      Message(&w, "", nullptr);
    } else {
      w.Key("response");
      w.String("");
    }
    Done(&w, d);
    w.EndObject();
    res.chunks.push_back({end, Line(b)});
  }
  std::mt19937_64 rng(ctx.seed ^ 0x0DDBA11u);
  ApplyStreamFault(options, "{\"model\":\x01\n", rng, &plan);
  return plan;
}

std::string OllamaTagsBody(const SynthOptions& options) {
  std::string name = options.model;
  if (name.find(':') == std::string::npos) name += ":latest";
  const RequestKey digest = HashBytes(name);
  const std::string hex = digest.ToHex() + HashBytes(name + "#").ToHex();
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("models");
  w.StartArray();
  w.StartObject();
  w.Key("name");
  Str(&w, name);
  w.Key("model");
  Str(&w, name);
  w.Key("modified_at");
  w.String("2024-01-01T00:00:00Z");
  w.Key("size");
  w.Int(0);
  w.Key("digest");
  Str(&w, hex);
  w.Key("details");
  w.StartObject();
  w.Key("parent_model");
  w.String("");
  w.Key("format");
  w.String("gguf");
  w.Key("family");
  w.String("rewind");
  w.Key("families");
  w.StartArray();
  w.String("rewind");
  w.EndArray();
  w.Key("parameter_size");
  w.String("0B");
  w.Key("quantization_level");
  w.String("none");
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

}  // namespace rwd
