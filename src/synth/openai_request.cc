#include <rapidjson/document.h>

#include "rewind/request_key.h"
#include "rewind/synth.h"
#include "synth/engine_util.h"
#include "synth/json_schema_gen.h"
#include "synth/tools.h"
#include "util/text.h"

namespace rwd {
namespace {

Status Bad(const std::string& message) {
  return Status::InvalidArgument(message);
}

int CountTokens(const std::string& text) {
  return static_cast<int>(Tokenize(text).size());
}

}  // namespace

// A message's content: a string, null, or an array of parts whose "text"
// parts are joined.
std::string ContentText(const rapidjson::Value& content) {
  if (content.IsString()) {
    return std::string(content.GetString(), content.GetStringLength());
  }
  std::string out;
  if (content.IsArray()) {
    for (const auto& part : content.GetArray()) {
      if (part.IsObject() && part.HasMember("text") &&
          part["text"].IsString()) {
        out.append(part["text"].GetString(), part["text"].GetStringLength());
      }
    }
  }
  return out;
}

Status ParseResponseFormat(const rapidjson::Value& format, bool responses_shape,
                           OpenAIRequest* r) {
  if (!format.IsObject() || !format.HasMember("type") ||
      !format["type"].IsString()) {
    return Bad("the response format must be an object with a string 'type'");
  }
  const std::string type = format["type"].GetString();
  if (type == "text") {
    r->format = OpenAIRequest::Format::kText;
  } else if (type == "json_object") {
    r->format = OpenAIRequest::Format::kJsonObject;
  } else if (type == "json_schema") {
    // Chat nests the schema in "json_schema"; Responses' text.format
    // holds it directly.
    const rapidjson::Value* holder = &format;
    if (!responses_shape) {
      auto js = format.FindMember("json_schema");
      if (js == format.MemberEnd() || !js->value.IsObject()) {
        return Bad(
            "'response_format' of type json_schema needs a 'json_schema' "
            "object");
      }
      holder = &js->value;
    }
    auto schema = holder->FindMember("schema");
    if (schema == holder->MemberEnd()) {
      r->schema = "{}";
    } else {
      r->schema = CompactJson(schema->value);
    }
    Result<JsonSchemaGenerator> g = JsonSchemaGenerator::Create(r->schema);
    if (!g.ok())
      return Bad("the response format's schema: " + g.status().message());
    r->format = OpenAIRequest::Format::kJsonSchema;
  } else {
    return Bad("unknown response format type '" + type +
               "': use text, json_object or json_schema");
  }
  return Status::Ok();
}

std::vector<std::string> Tokenize(const std::string& text) {
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() &&
           (text[i] == ' ' || text[i] == '\n' || text[i] == '\t'))
      ++i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n' &&
           text[i] != '\t')
      ++i;
    tokens.push_back(text.substr(start, i - start));
  }
  return tokens;
}

Result<OpenAIRequest> OpenAIRequest::Parse(Kind kind, const std::string& body) {
  // Values of the request (tool schemas) are written back with RapidJSON's
  // recursive Accept(): nothing deeper than kMaxJsonDepth gets that far.
  if (JsonNestsDeeperThan(body, kMaxJsonDepth)) {
    return Bad("the request body nests objects and arrays deeper than " +
               std::to_string(kMaxJsonDepth) + " levels");
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Bad("the request body is not a JSON object");
  }
  OpenAIRequest r;
  r.kind = kind;
  if (auto it = doc.FindMember("model"); it != doc.MemberEnd()) {
    if (!it->value.IsString()) return Bad("'model' must be a string");
    r.model = it->value.GetString();
  }
  if (kind == Kind::kChat) {
    auto it = doc.FindMember("messages");
    if (it == doc.MemberEnd() || !it->value.IsArray() || it->value.Empty()) {
      return Bad("'messages' must be a non-empty array");
    }
    std::string last_any;
    bool have_user = false;
    for (const auto& m : it->value.GetArray()) {
      if (!m.IsObject() || !m.HasMember("role") || !m["role"].IsString()) {
        return Bad("each message needs a string 'role'");
      }
      std::string text =
          m.HasMember("content") ? ContentText(m["content"]) : std::string();
      r.prompt_tokens += CountTokens(text);
      last_any = text;
      const std::string role = m["role"].GetString();
      if (role == "user") {
        r.prompt = text;
        have_user = true;
      }
      r.after_tool_result = role == "tool" || role == "function";
    }
    if (!have_user) r.prompt = last_any;
    if (auto t = doc.FindMember("tools"); t != doc.MemberEnd()) {
      if (Status s = ParseTools(t->value, /*responses_shape=*/false, &r);
          !s.ok())
        return s;
    }
    if (auto t = doc.FindMember("tool_choice"); t != doc.MemberEnd()) {
      if (Status s = ParseToolChoice(t->value, &r); !s.ok()) return s;
    }
    if (auto f = doc.FindMember("response_format");
        f != doc.MemberEnd() && !f->value.IsNull()) {
      if (Status s =
              ParseResponseFormat(f->value, /*responses_shape=*/false, &r);
          !s.ok()) {
        return s;
      }
    }
    if (auto lp = doc.FindMember("logprobs");
        lp != doc.MemberEnd() && !lp->value.IsNull()) {
      if (!lp->value.IsBool()) return Bad("'logprobs' must be a boolean");
      r.logprobs = lp->value.GetBool();
    }
    if (auto top = doc.FindMember("top_logprobs");
        top != doc.MemberEnd() && !top->value.IsNull()) {
      if (!top->value.IsInt() || top->value.GetInt() < 0 ||
          top->value.GetInt() > 20) {
        return Bad("'top_logprobs' must be an integer from 0 to 20");
      }
      if (!r.logprobs) return Bad("'top_logprobs' needs 'logprobs': true");
      r.top_logprobs = top->value.GetInt();
    }
  } else {
    auto it = doc.FindMember("prompt");
    if (it == doc.MemberEnd()) return Bad("'prompt' is required");
    if (it->value.IsString()) {
      r.prompt = it->value.GetString();
    } else if (it->value.IsArray() && !it->value.Empty() &&
               it->value[0].IsString()) {
      for (const auto& p : it->value.GetArray()) {
        if (!p.IsString()) return Bad("'prompt' must be a string or strings");
        r.prompt += p.GetString();
      }
    } else {
      return Bad("'prompt' must be a string or an array of strings");
    }
    r.prompt_tokens = CountTokens(r.prompt);
    if (auto lp = doc.FindMember("logprobs");
        lp != doc.MemberEnd() && !lp->value.IsNull()) {
      if (!lp->value.IsInt() || lp->value.GetInt() < 0 ||
          lp->value.GetInt() > 20) {
        return Bad("'logprobs' must be an integer from 0 to 20");
      }
      r.logprobs = true;
      r.top_logprobs = lp->value.GetInt();
    }
  }
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd() || it->value.IsNull()) continue;
    if (!it->value.IsInt() || it->value.GetInt() < 1) {
      return Bad(std::string("'") + name + "' must be a positive integer");
    }
    r.max_tokens = it->value.GetInt();
  }
  if (auto it = doc.FindMember("stop");
      it != doc.MemberEnd() && !it->value.IsNull()) {
    if (it->value.IsString()) {
      r.stop.push_back(it->value.GetString());
    } else if (it->value.IsArray() && it->value.Size() <= 4) {
      for (const auto& s : it->value.GetArray()) {
        if (!s.IsString())
          return Bad("'stop' must be a string or up to 4 strings");
        r.stop.push_back(s.GetString());
      }
    } else {
      return Bad("'stop' must be a string or up to 4 strings");
    }
  }
  if (auto it = doc.FindMember("n");
      it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsInt() || it->value.GetInt() < 1 ||
        it->value.GetInt() > 128) {
      return Bad("'n' must be an integer from 1 to 128");
    }
    r.n = it->value.GetInt();
  }
  if (auto it = doc.FindMember("stream");
      it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsBool()) return Bad("'stream' must be a boolean");
    r.stream = it->value.GetBool();
  }
  if (auto it = doc.FindMember("stream_options");
      it != doc.MemberEnd() && it->value.IsObject()) {
    auto u = it->value.FindMember("include_usage");
    r.include_usage =
        u != it->value.MemberEnd() && u->value.IsBool() && u->value.GetBool();
    // As vLLM: per-chunk usage only along with the final usage.
    auto c = it->value.FindMember("continuous_usage_stats");
    r.continuous_usage = r.include_usage && c != it->value.MemberEnd() &&
                         c->value.IsBool() && c->value.GetBool();
  }
  return r;
}

}  // namespace rwd
