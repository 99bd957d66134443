#include <rapidjson/document.h>

#include "rewind/request_key.h"
#include "rewind/synth.h"
#include "util/text.h"

namespace rwd {
namespace {

Status Bad(const std::string& message) {
  return Status::InvalidArgument(message);
}

// A message's content: a string, null, or an array of parts whose "text"
// parts are joined.
std::string ContentText(const rapidjson::Value& content) {
  if (content.IsString()) {
    return std::string(content.GetString(), content.GetStringLength());
  }
  std::string out;
  if (content.IsArray()) {
    for (const auto& part : content.GetArray()) {
      if (part.IsObject() && part.HasMember("text") && part["text"].IsString()) {
        out.append(part["text"].GetString(), part["text"].GetStringLength());
      }
    }
  }
  return out;
}

int CountTokens(const std::string& text) {
  return static_cast<int>(Tokenize(text).size());
}

}  // namespace

std::vector<std::string> Tokenize(const std::string& text) {
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t')) ++i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n' && text[i] != '\t') ++i;
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
      if (std::string(m["role"].GetString()) == "user") {
        r.prompt = text;
        have_user = true;
      }
    }
    if (!have_user) r.prompt = last_any;
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
        if (!s.IsString()) return Bad("'stop' must be a string or up to 4 strings");
        r.stop.push_back(s.GetString());
      }
    } else {
      return Bad("'stop' must be a string or up to 4 strings");
    }
  }
  if (auto it = doc.FindMember("n"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsInt() || it->value.GetInt() < 1 || it->value.GetInt() > 128) {
      return Bad("'n' must be an integer from 1 to 128");
    }
    r.n = it->value.GetInt();
  }
  if (auto it = doc.FindMember("stream"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (!it->value.IsBool()) return Bad("'stream' must be a boolean");
    r.stream = it->value.GetBool();
  }
  if (auto it = doc.FindMember("stream_options");
      it != doc.MemberEnd() && it->value.IsObject()) {
    auto u = it->value.FindMember("include_usage");
    r.include_usage = u != it->value.MemberEnd() && u->value.IsBool() &&
                      u->value.GetBool();
  }
  return r;
}

}  // namespace rwd
