#include <rapidjson/document.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "rewind/store.h"
#include "rewind/synth.h"
#include "synth/engine_util.h"

namespace rwd {

struct OutputMode::Rule {
  std::regex pattern;
  std::string source;
  bool has_reply = false;
  std::string reply;
  std::vector<ToolCall> tool_calls;  // arguments as spaced JSON
};

namespace {

// Words for the random output mode.
const char* const kVocabulary[] = {
    "the",   "model",  "answer", "is",     "a",       "token", "stream",
    "of",    "text",   "that",   "rewind", "made",    "up",    "for",
    "your",  "test",   "with",   "no",     "GPU",     "and",   "it",
    "keeps", "coming", "until",  "the",    "limit",   "or",    "a",
    "stop",  "word",   "Paris",  "blue",   "quickly", "seven", "river",
    "under", "bright", "quiet",  "engine", "latency", "cache", "batch"};

std::string ChoiceText(const rapidjson::Value& choice) {
  if (!choice.IsObject()) return "";
  for (const char* field : {"delta", "message"}) {
    auto m = choice.FindMember(field);
    if (m != choice.MemberEnd() && m->value.IsObject() &&
        m->value.HasMember("content") && m->value["content"].IsString()) {
      return m->value["content"].GetString();
    }
  }
  if (choice.HasMember("text") && choice["text"].IsString()) {
    return choice["text"].GetString();
  }
  return "";
}

std::string FirstChoiceText(const std::string& json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("choices") ||
      !d["choices"].IsArray() || d["choices"].Empty()) {
    return "";
  }
  return ChoiceText(d["choices"][0]);
}

// The answer text of a recorded OpenAI response: a JSON body, or an SSE
// stream whose deltas are concatenated.
std::string AnswerText(const std::string& body) {
  if (body.rfind("data:", 0) != 0) return FirstChoiceText(body);
  std::string text;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data:", 0) != 0) continue;
    std::string payload = line.substr(5);
    if (!payload.empty() && payload[0] == ' ') payload.erase(0, 1);
    if (payload == "[DONE]") break;
    text += FirstChoiceText(payload);
  }
  return text;
}

std::string RequestModel(const std::string& body) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (!d.HasParseError() && d.IsObject() && d.HasMember("model") &&
      d["model"].IsString()) {
    return d["model"].GetString();
  }
  return "";
}

}  // namespace

Result<OutputMode> OutputMode::Parse(const std::string& spec, Store* store) {
  OutputMode m;
  m.spec_ = spec;
  if (spec == "echo") {
    m.kind_ = Kind::kEcho;
  } else if (spec == "random") {
    m.kind_ = Kind::kRandom;
  } else if (spec.rfind("static:", 0) == 0) {
    m.kind_ = Kind::kStatic;
    m.text_ = spec.substr(7);
  } else if (spec.rfind("rules:", 0) == 0) {
    m.kind_ = Kind::kRules;
    const std::string path = spec.substr(6);
    std::ifstream in(path);
    if (!in) return Status::IOError("cannot read rules file " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string json = ss.str();
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    auto bad = [&](const std::string& why) {
      return Status::InvalidArgument(
          "rules file " + path + ": " + why +
          R"( (expected {"rules":[{"pattern":"REGEX","reply":"TEXT"}],"default":"TEXT"};)"
          R"( a rule may give "tool_call":{"name":"F","arguments":{...}} or "tool_calls":[...]))");
    };
    if (d.HasParseError() || !d.IsObject()) return bad("not a JSON object");
    if (!JsonDepthAtMost(d, kMaxRequestDepth)) return bad("nested too deeply");
    if (!d.HasMember("rules") || !d["rules"].IsArray())
      return bad("no \"rules\" array");
    auto rules = std::make_shared<std::vector<Rule>>();
    for (const auto& r : d["rules"].GetArray()) {
      if (!r.IsObject() || !r.HasMember("pattern") ||
          !r["pattern"].IsString()) {
        return bad("each rule needs a string \"pattern\"");
      }
      Rule rule;
      rule.source = r["pattern"].GetString();
      try {
        rule.pattern =
            std::regex(rule.source, std::regex::ECMAScript | std::regex::icase);
      } catch (const std::regex_error& e) {
        return bad("bad pattern \"" + rule.source + "\": " + e.what());
      }
      if (auto reply = r.FindMember("reply"); reply != r.MemberEnd()) {
        if (!reply->value.IsString()) return bad("\"reply\" must be a string");
        rule.has_reply = true;
        rule.reply = reply->value.GetString();
      }
      std::vector<const rapidjson::Value*> calls;
      if (auto one = r.FindMember("tool_call"); one != r.MemberEnd()) {
        calls.push_back(&one->value);
      }
      if (auto many = r.FindMember("tool_calls"); many != r.MemberEnd()) {
        if (!many->value.IsArray())
          return bad("\"tool_calls\" must be an array");
        for (const auto& c : many->value.GetArray()) calls.push_back(&c);
      }
      for (const rapidjson::Value* c : calls) {
        if (!c->IsObject() || !c->HasMember("name") ||
            !(*c)["name"].IsString()) {
          return bad("each tool call needs a string \"name\"");
        }
        ToolCall call;
        call.name = (*c)["name"].GetString();
        call.arguments = "{}";
        if (auto args = c->FindMember("arguments"); args != c->MemberEnd()) {
          rapidjson::Document parsed;
          const rapidjson::Value* value = &args->value;
          if (value->IsString()) {  // JSON text, as the API carries it
            parsed.Parse(value->GetString(), value->GetStringLength());
            if (parsed.HasParseError() ||
                !JsonDepthAtMost(parsed, kMaxRequestDepth)) {
              return bad("the arguments of tool call \"" + call.name +
                         "\" are not JSON");
            }
            value = &parsed;
          }
          if (!value->IsObject()) {
            return bad("the arguments of tool call \"" + call.name +
                       "\" must be an object");
          }
          call.arguments.clear();
          WriteSpacedJson(*value, &call.arguments);
        }
        rule.tool_calls.push_back(std::move(call));
      }
      if (!rule.has_reply && rule.tool_calls.empty()) {
        return bad("rule \"" + rule.source +
                   "\" has neither \"reply\" nor a tool call");
      }
      rules->push_back(std::move(rule));
    }
    if (d.HasMember("default")) {
      if (!d["default"].IsString()) return bad("\"default\" must be a string");
      m.text_ = d["default"].GetString();
    }
    m.rules_ = std::move(rules);
  } else if (spec == "history") {
    m.kind_ = Kind::kHistory;
    if (store == nullptr) {
      return Status::InvalidArgument("--output history needs --db RECORDING");
    }
    auto history =
        std::make_shared<std::vector<std::pair<std::string, std::string>>>();
    std::vector<int64_t> ids;
    Status s = store->Scan([&](const ExchangeSummary& e) {
      if (e.complete && e.status == 200 &&
          (e.path == "/v1/chat/completions" || e.path == "/v1/completions")) {
        ids.push_back(e.id);
      }
    });
    if (!s.ok()) return s;
    for (int64_t id : ids) {
      Result<Exchange> e = store->Get(id);
      if (!e.ok()) continue;
      std::string text = AnswerText(e->response.Body());
      if (text.empty()) continue;
      history->emplace_back(
          e->request.path + " " + RequestModel(e->request.body),
          std::move(text));
    }
    if (history->empty()) {
      return Status::InvalidArgument(
          "--output history: the recording holds no answers to "
          "/v1/chat/completions or /v1/completions");
    }
    m.history_ = std::move(history);
  } else {
    return Status::InvalidArgument(
        "unknown output \"" + spec +
        "\": use static:TEXT, echo, random, rules:FILE or history");
  }
  return m;
}

std::string OutputMode::Generate(const OpenAIRequest& request,
                                 std::mt19937_64& rng) const {
  switch (kind_) {
    case Kind::kStatic:
      return text_;
    case Kind::kEcho:
      return request.prompt;
    case Kind::kRandom: {
      const int most = request.max_tokens > 0 ? request.max_tokens : 32;
      const int n = std::uniform_int_distribution<int>(1, most)(rng);
      const size_t words = sizeof(kVocabulary) / sizeof(kVocabulary[0]);
      std::string out;
      for (int i = 0; i < n; ++i) {
        if (i) out += ' ';
        out += kVocabulary[std::uniform_int_distribution<size_t>(
            0, words - 1)(rng)];
      }
      return out;
    }
    case Kind::kRules:
      for (const Rule& r : *rules_) {
        if (r.has_reply && std::regex_search(request.prompt, r.pattern))
          return r.reply;
      }
      return text_;
    case Kind::kHistory: {
      const std::string path = request.kind == OpenAIRequest::Kind::kCompletion
                                   ? "/v1/completions"
                                   : "/v1/chat/completions";
      std::vector<const std::string*> same_model, same_path;
      for (const auto& [key, text] : *history_) {
        if (key == path + " " + request.model) same_model.push_back(&text);
        if (key.rfind(path + " ", 0) == 0) same_path.push_back(&text);
      }
      const auto& pool = !same_model.empty() ? same_model : same_path;
      if (pool.empty()) {
        const auto& any = (*history_)[std::uniform_int_distribution<size_t>(
            0, history_->size() - 1)(rng)];
        return any.second;
      }
      return *pool[std::uniform_int_distribution<size_t>(0,
                                                         pool.size() - 1)(rng)];
    }
  }
  return "";
}

bool OutputMode::RuleToolCalls(const OpenAIRequest& request,
                               std::vector<ToolCall>* calls) const {
  calls->clear();
  if (kind_ != Kind::kRules) return false;
  auto offered = [&](const std::string& name) {
    if (request.tool_choice == OpenAIRequest::ToolChoice::kFunction &&
        name != request.tool_choice_name) {
      return false;
    }
    for (const ToolSpec& t : request.tools) {
      if (t.name == name) return true;
    }
    return false;
  };
  for (const Rule& r : *rules_) {
    if (r.tool_calls.empty() || !std::regex_search(request.prompt, r.pattern))
      continue;
    bool all = true;
    for (const ToolCall& c : r.tool_calls) all = all && offered(c.name);
    if (!all) continue;
    *calls = r.tool_calls;
    return true;
  }
  return false;
}

}  // namespace rwd
