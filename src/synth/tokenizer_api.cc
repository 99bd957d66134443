// vLLM's POST /tokenize and POST /detokenize, with the engine's own
// tokenization (rwd::Tokenize).
#include <xxhash.h>

#include "synth/engine_util.h"
#include "synth/token_table.h"

namespace rwd {

int64_t TokenTable::Id(const std::string& token) {
  constexpr int64_t kMask = 0x7fffffff;
  int64_t id =
      static_cast<int64_t>(XXH32(token.data(), token.size(), 0)) & kMask;
  std::lock_guard<std::mutex> lock(mu_);
  // A collision (rare in 2^31) moves the later token to the next free id.
  for (int probe = 0; probe < 64; ++probe) {
    auto it = tokens_.find(id);
    if (it == tokens_.end()) {
      if (tokens_.size() < kMaxEntries) tokens_.emplace(id, token);
      return id;
    }
    if (it->second == token) return id;
    id = (id + 1) & kMask;
  }
  return id;
}

std::optional<std::string> TokenTable::Token(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tokens_.find(id);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

namespace {

Synthesizer::Reply BadRequest(const std::string& message) {
  return {400, OpenAIErrorBody(message, "invalid_request_error", "")};
}

}  // namespace

Synthesizer::Reply Synthesizer::Tokenize(const std::string& body) const {
  if (Status s = CheckRequestDepth(body); !s.ok())
    return BadRequest(s.message());
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject())
    return BadRequest("the request body is not a JSON object");
  std::string model;
  if (auto m = d.FindMember("model");
      m != d.MemberEnd() && !m->value.IsNull()) {
    if (!m->value.IsString()) return BadRequest("'model' must be a string");
    model = m->value.GetString();
  }
  if (!ServedModel(options_, model)) return {404, UnknownModelBody(model)};
  std::vector<std::string> tokens;
  if (auto p = d.FindMember("prompt"); p != d.MemberEnd()) {
    if (!p->value.IsString()) return BadRequest("'prompt' must be a string");
    tokens = rwd::Tokenize(
        std::string(p->value.GetString(), p->value.GetStringLength()));
  } else if (auto m = d.FindMember("messages");
             m != d.MemberEnd() && m->value.IsArray()) {
    for (const auto& message : m->value.GetArray()) {
      if (!message.IsObject())
        return BadRequest("each message must be an object");
      auto content = message.FindMember("content");
      if (content == message.MemberEnd()) continue;
      for (std::string& t : rwd::Tokenize(ContentText(content->value))) {
        tokens.push_back(std::move(t));
      }
    }
  } else {
    return BadRequest(
        "'prompt' (a string) or 'messages' (an array) is required");
  }
  bool with_strings = false;
  if (auto s = d.FindMember("return_token_strs");
      s != d.MemberEnd() && s->value.IsBool()) {
    with_strings = s->value.GetBool();
  }
  rapidjson::StringBuffer b;
  JsonWriter w(b);
  w.StartObject();
  w.Key("count");
  w.Uint64(tokens.size());
  w.Key("max_model_len");
  w.Int(options_.max_model_len);
  w.Key("tokens");
  w.StartArray();
  for (const std::string& t : tokens) w.Int64(tokens_->Id(t));
  w.EndArray();
  w.Key("token_strs");
  if (with_strings) {
    w.StartArray();
    for (const std::string& t : tokens) WriteString(&w, t);
    w.EndArray();
  } else {
    w.Null();
  }
  w.EndObject();
  return {200, TakeJson(&b)};
}

Synthesizer::Reply Synthesizer::Detokenize(const std::string& body) const {
  if (Status s = CheckRequestDepth(body); !s.ok())
    return BadRequest(s.message());
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject())
    return BadRequest("the request body is not a JSON object");
  std::string model;
  if (auto m = d.FindMember("model");
      m != d.MemberEnd() && !m->value.IsNull()) {
    if (!m->value.IsString()) return BadRequest("'model' must be a string");
    model = m->value.GetString();
  }
  if (!ServedModel(options_, model)) return {404, UnknownModelBody(model)};
  auto t = d.FindMember("tokens");
  if (t == d.MemberEnd() || !t->value.IsArray()) {
    return BadRequest("'tokens' must be an array of token ids");
  }
  std::string text;
  for (const auto& id : t->value.GetArray()) {
    if (!id.IsInt64())
      return BadRequest("'tokens' must be an array of token ids");
    std::optional<std::string> token = tokens_->Token(id.GetInt64());
    if (!token) {
      return BadRequest("token id " + std::to_string(id.GetInt64()) +
                        " was not given out by this engine's /tokenize");
    }
    text += *token;
  }
  rapidjson::StringBuffer b;
  JsonWriter w(b);
  w.StartObject();
  w.Key("prompt");
  WriteString(&w, text);
  w.EndObject();
  return {200, TakeJson(&b)};
}

}  // namespace rwd
