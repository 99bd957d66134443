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
    return Status::Corruption(std::string("key rules lack the list \"") +
                              name + "\"");
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

}  // namespace

bool KeyRules::operator==(const KeyRules& other) const {
  return ignore_fields == other.ignore_fields &&
         match_headers == other.match_headers && scrub == other.scrub &&
         scrub_patterns == other.scrub_patterns;
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
  if (!s.ok()) return s;
  return rules;
}

Status ValidateScrubRules(const KeyRules& rules) {
  if (rules.scrub.empty() && rules.scrub_patterns.empty()) return Status::Ok();
  return scrub::Detectors::Make(rules.scrub, rules.scrub_patterns).status();
}

}  // namespace rwd
