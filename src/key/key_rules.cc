#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "rewind/request_key.h"
#include "scrub/detectors.h"

namespace rwd {
namespace {

void WriteList(rapidjson::Writer<rapidjson::StringBuffer>* w, const char* name,
               const std::vector<std::string>& list) {
  w->Key(name);
  w->StartArray();
  for (const std::string& s : list) {
    w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  w->EndArray();
}

Status ReadList(const rapidjson::Value& obj, const char* name,
                std::vector<std::string>* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsArray()) {
    return Status::Corruption(std::string("key rules lack the list \"") + name +
                              "\"");
  }
  for (const auto& v : it->value.GetArray()) {
    if (!v.IsString()) {
      return Status::Corruption(std::string("key rules: \"") + name +
                                "\" holds a non-string");
    }
    out->emplace_back(v.GetString(), v.GetStringLength());
  }
  return Status::Ok();
}

Status ReadString(const rapidjson::Value& obj, const char* name,
                  std::string* out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return Status::Ok();  // absent: empty
  if (!it->value.IsString()) {
    return Status::Corruption(std::string("key rules: a normalizer's \"") +
                              name + "\" is not a string");
  }
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return Status::Ok();
}

// Rules stored before normalizers existed have no "normalize": none.
Status ReadNormalizers(const rapidjson::Value& obj,
                       std::vector<Normalizer>* out) {
  auto it = obj.FindMember("normalize");
  if (it == obj.MemberEnd()) return Status::Ok();
  if (!it->value.IsArray()) {
    return Status::Corruption("key rules: \"normalize\" is not a list");
  }
  for (const auto& v : it->value.GetArray()) {
    if (!v.IsObject()) {
      return Status::Corruption("key rules: a normalizer is not an object");
    }
    Normalizer n;
    for (auto [field, into] :
         {std::pair<const char*, std::string*>{"path", &n.path},
          {"name", &n.name},
          {"pattern", &n.pattern},
          {"replacement", &n.replacement}}) {
      Status s = ReadString(v, field, into);
      if (!s.ok()) return s;
    }
    Status s = n.Check();
    if (!s.ok()) {
      return Status::Corruption("key rules: the normalizer " + n.ToString() +
                                ": " + s.message());
    }
    out->push_back(std::move(n));
  }
  return Status::Ok();
}

}  // namespace

bool KeyRules::operator==(const KeyRules& other) const {
  return ignore_fields == other.ignore_fields &&
         match_headers == other.match_headers && scrub == other.scrub &&
         scrub_patterns == other.scrub_patterns &&
         normalizers == other.normalizers &&
         content_equivalence == other.content_equivalence &&
         tool_sets == other.tool_sets;
}

bool KeyRules::NeedsMatchingRules() const {
  return !normalizers.empty() || content_equivalence || tool_sets ||
         !scrub.empty() || !scrub_patterns.empty();
}

std::string KeyRules::ToJson() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  WriteList(&w, "ignore_fields", ignore_fields);
  WriteList(&w, "match_headers", match_headers);
  if (!scrub.empty() || !scrub_patterns.empty()) {
    WriteList(&w, "scrub", scrub);
    WriteList(&w, "scrub_patterns", scrub_patterns);
  }
  if (!normalizers.empty()) {
    w.Key("normalize");
    w.StartArray();
    auto str = [&w](const std::string& s) {
      w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    };
    for (const Normalizer& n : normalizers) {
      w.StartObject();
      w.Key("path");
      str(n.path);
      if (n.name.empty()) {
        w.Key("pattern");
        str(n.pattern);
        w.Key("replacement");
        str(n.replacement);
      } else {
        w.Key("name");
        str(n.name);
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("content_equivalence");
  w.Bool(content_equivalence);
  if (tool_sets) {
    w.Key("tool_sets");
    w.Bool(true);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<KeyRules> KeyRules::FromJson(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::Corruption("key rules are not a JSON object: " + json);
  }
  KeyRules rules;
  Status s = ReadList(doc, "ignore_fields", &rules.ignore_fields);
  if (s.ok()) s = ReadList(doc, "match_headers", &rules.match_headers);
  if (s.ok() && doc.HasMember("scrub")) {
    s = ReadList(doc, "scrub", &rules.scrub);
    if (s.ok()) s = ReadList(doc, "scrub_patterns", &rules.scrub_patterns);
    if (s.ok()) {
      Status valid = ValidateScrubRules(rules);
      if (!valid.ok()) {
        s = Status::Corruption("key rules: " + valid.message());
      }
    }
  }
  if (s.ok()) s = ReadNormalizers(doc, &rules.normalizers);
  if (!s.ok()) return s;
  // Rules stored before content equivalence existed lack it: their keys
  // were made without it, so it stays off for them.
  auto eq = doc.FindMember("content_equivalence");
  if (eq == doc.MemberEnd()) {
    rules.content_equivalence = false;
  } else if (eq->value.IsBool()) {
    rules.content_equivalence = eq->value.GetBool();
  } else {
    return Status::Corruption(
        "key rules: \"content_equivalence\" is not true or false");
  }
  // Likewise tool sets.
  auto tools = doc.FindMember("tool_sets");
  if (tools == doc.MemberEnd()) {
    rules.tool_sets = false;
  } else if (tools->value.IsBool()) {
    rules.tool_sets = tools->value.GetBool();
  } else {
    return Status::Corruption("key rules: \"tool_sets\" is not true or false");
  }
  return rules;
}

Status ValidateScrubRules(const KeyRules& rules) {
  if (rules.scrub.empty() && rules.scrub_patterns.empty()) return Status::Ok();
  return scrub::Detectors::Make(rules.scrub, rules.scrub_patterns).status();
}

}  // namespace rwd
