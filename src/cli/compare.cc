#include "cli/compare.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "rewind/request_key.h"
#include "util/text.h"

namespace rwd {
namespace {

std::string Compact(const rapidjson::Value& v, size_t max = 120) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  std::string s(b.GetString(), b.GetSize());
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

bool IsStream(const Response& r, const std::string& body) {
  return FindHeader(r.headers, "Content-Type").find("text/event-stream") !=
             std::string::npos ||
         body.rfind("data:", 0) == 0;
}

// Newline-delimited JSON (Ollama's streams): one JSON value per line.
bool IsNdjson(const Response& r) {
  const std::string type = FindHeader(r.headers, "Content-Type");
  return type.find("ndjson") != std::string::npos ||
         type.find("jsonl") != std::string::npos ||
         type.find("json-lines") != std::string::npos;
}

std::string Str(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return "";
  auto it = obj.FindMember(name);
  return it != obj.MemberEnd() && it->value.IsString() ? it->value.GetString()
                                                       : "";
}

struct Split {
  std::vector<std::string> parts;
};

std::vector<std::string> SplitDots(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == '.') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

void RemovePath(rapidjson::Value& v, const std::vector<std::string>& path,
                size_t i) {
  if (i >= path.size()) return;
  const std::string& seg = path[i];
  const bool last = i + 1 == path.size();
  if (v.IsObject()) {
    if (seg == "*") {
      for (auto m = v.MemberBegin(); m != v.MemberEnd();) {
        if (last) {
          m = v.EraseMember(m);
        } else {
          RemovePath(m->value, path, i + 1);
          ++m;
        }
      }
      return;
    }
    auto m = v.FindMember(rapidjson::StringRef(
        seg.data(), static_cast<rapidjson::SizeType>(seg.size())));
    if (m == v.MemberEnd()) return;
    if (last) {
      v.EraseMember(m);
    } else {
      RemovePath(m->value, path, i + 1);
    }
  } else if (v.IsArray()) {
    for (rapidjson::SizeType k = 0; k < v.Size(); ++k) {
      if (seg == "*" || seg == std::to_string(k)) {
        if (!last) RemovePath(v[k], path, i + 1);
      }
    }
  }
}

// Bodies are parsed only when they nest at most kMaxJsonDepth levels
// (ParseBounded), so these walks and Compact() recurse at most that deep.
void RemoveNames(rapidjson::Value& v, const std::vector<std::string>& names,
                 int depth) {
  if (depth > kMaxJsonDepth) return;
  if (v.IsObject()) {
    for (auto m = v.MemberBegin(); m != v.MemberEnd();) {
      const std::string name(m->name.GetString(), m->name.GetStringLength());
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        m = v.EraseMember(m);
      } else {
        RemoveNames(m->value, names, depth + 1);
        ++m;
      }
    }
  } else if (v.IsArray()) {
    for (auto& e : v.GetArray()) RemoveNames(e, names, depth + 1);
  }
}

void Diff(const rapidjson::Value& a, const rapidjson::Value& b,
          const std::string& path, const CompareOptions& o, size_t limit,
          std::vector<Difference>* out, int depth) {
  if (out->size() >= limit) return;
  const std::string here = path.empty() ? "body" : path;
  if (depth > kMaxJsonDepth) return;
  if (a.IsNumber() && b.IsNumber()) {
    const double x = a.GetDouble(), y = b.GetDouble();
    const bool same =
        o.float_tolerance > 0 ? std::fabs(x - y) <= o.float_tolerance : a == b;
    if (!same) out->push_back({here, Compact(a), Compact(b)});
    return;
  }
  if (a.GetType() != b.GetType()) {
    out->push_back({here, Compact(a), Compact(b)});
    return;
  }
  if (a.IsObject()) {
    std::vector<std::string> names;
    for (auto m = a.MemberBegin(); m != a.MemberEnd(); ++m)
      names.emplace_back(m->name.GetString());
    for (auto m = b.MemberBegin(); m != b.MemberEnd(); ++m)
      names.emplace_back(m->name.GetString());
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (const std::string& n : names) {
      const std::string p = path.empty() ? n : path + "." + n;
      auto ma = a.FindMember(n.c_str());
      auto mb = b.FindMember(n.c_str());
      if (ma == a.MemberEnd()) {
        out->push_back({p, "(absent)", Compact(mb->value)});
      } else if (mb == b.MemberEnd()) {
        out->push_back({p, Compact(ma->value), "(absent)"});
      } else {
        Diff(ma->value, mb->value, p, o, limit, out, depth + 1);
      }
      if (out->size() >= limit) return;
    }
    return;
  }
  if (a.IsArray()) {
    const rapidjson::SizeType n = std::max(a.Size(), b.Size());
    for (rapidjson::SizeType i = 0; i < n && out->size() < limit; ++i) {
      const std::string p = path + "[" + std::to_string(i) + "]";
      if (i >= a.Size()) {
        out->push_back({p, "(absent)", Compact(b[i])});
      } else if (i >= b.Size()) {
        out->push_back({p, Compact(a[i]), "(absent)"});
      } else {
        Diff(a[i], b[i], p, o, limit, out, depth + 1);
      }
    }
    return;
  }
  if (a != b) out->push_back({here, Compact(a), Compact(b)});
}

// Parses "text" when it is JSON nested at most kMaxJsonDepth levels; deeper
// text is compared as bytes, like any other non-JSON body.
bool ParseBounded(const std::string& text, rapidjson::Document* d) {
  if (text.empty() || JsonNestsDeeperThan(text, kMaxJsonDepth)) return false;
  d->Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  return !d->HasParseError();
}

std::string Quote(const std::string& s, size_t max = 120) {
  rapidjson::Value v(rapidjson::StringRef(
      s.data(), static_cast<rapidjson::SizeType>(s.size())));
  return Compact(v, max);
}

}  // namespace

std::string StreamSummary(const std::string& body) {
  struct Tool {
    std::string name;
    std::string arguments;
  };
  struct Choice {
    std::string text;
    std::map<int, Tool> tools;
    std::string finish;
  };
  std::map<int, Choice> choices;
  std::string usage = "null";
  std::string raw;  // data of events that are not OpenAI JSON
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data:", 0) != 0) continue;
    std::string data = line.substr(5);
    if (!data.empty() && data[0] == ' ') data.erase(0, 1);
    if (data == "[DONE]") continue;
    rapidjson::Document d;
    if (!ParseBounded(data, &d) || !d.IsObject()) {
      raw += data + "\n";
      continue;
    }
    if (d.HasMember("usage") && d["usage"].IsObject())
      usage = Compact(d["usage"], 1 << 20);
    if (!d.HasMember("choices") || !d["choices"].IsArray()) continue;
    for (const auto& c : d["choices"].GetArray()) {
      if (!c.IsObject()) continue;
      const int index =
          c.HasMember("index") && c["index"].IsInt() ? c["index"].GetInt() : 0;
      Choice& ch = choices[index];
      ch.text += Str(c, "text");
      if (c.HasMember("delta") && c["delta"].IsObject()) {
        const auto& delta = c["delta"];
        ch.text += Str(delta, "content");
        if (delta.HasMember("tool_calls") && delta["tool_calls"].IsArray()) {
          for (const auto& t : delta["tool_calls"].GetArray()) {
            const int ti = t.HasMember("index") && t["index"].IsInt()
                               ? t["index"].GetInt()
                               : 0;
            if (t.HasMember("function") && t["function"].IsObject()) {
              ch.tools[ti].name += Str(t["function"], "name");
              ch.tools[ti].arguments += Str(t["function"], "arguments");
            }
          }
        }
      }
      if (c.HasMember("finish_reason") && c["finish_reason"].IsString()) {
        ch.finish = c["finish_reason"].GetString();
      }
    }
  }
  std::string out = "{\"choices\":[";
  bool first = true;
  for (const auto& [index, ch] : choices) {
    out += std::string(first ? "" : ",") +
           "{\"index\":" + std::to_string(index) +
           ",\"text\":" + Quote(ch.text, 1 << 30) + ",\"tool_calls\":[";
    bool ft = true;
    for (const auto& [ti, tool] : ch.tools) {
      out += std::string(ft ? "" : ",") +
             "{\"name\":" + Quote(tool.name, 1 << 30) +
             ",\"arguments\":" + Quote(tool.arguments, 1 << 30) + "}";
      ft = false;
    }
    out += "],\"finish_reason\":" +
           (ch.finish.empty() ? std::string("null") : Quote(ch.finish)) + "}";
    first = false;
  }
  out += "],\"usage\":" + usage;
  if (!raw.empty()) out += ",\"data\":" + Quote(raw, 1 << 30);
  return out + "}";
}

std::string NdjsonArray(const std::string& body) {
  std::string out = "[";
  size_t at = 0;
  bool first = true;
  while (at < body.size()) {
    size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(at, end - at);
    at = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    rapidjson::Document d;
    out += first ? "" : ",";
    first = false;
    out += ParseBounded(line, &d) ? line : Quote(line, 1 << 30);
  }
  return out + "]";
}

std::vector<Difference> CompareResponses(const Response& recorded,
                                         const Response& now,
                                         const CompareOptions& o,
                                         size_t limit) {
  std::vector<Difference> out;
  if (recorded.status != now.status) {
    out.push_back({"status", std::to_string(recorded.status),
                   std::to_string(now.status)});
  }
  for (const std::string& h : o.headers) {
    const std::string a = FindHeader(recorded.headers, h),
                      b = FindHeader(now.headers, h);
    if (a != b) {
      std::string lower = h;
      for (char& c : lower) c = static_cast<char>(std::tolower(c));
      out.push_back({"header." + lower, Quote(a), Quote(b)});
    }
  }
  std::string a = recorded.Body(), b = now.Body();
  const bool streams = IsStream(recorded, a) && IsStream(now, b);
  const bool lines = !streams && IsNdjson(recorded) && IsNdjson(now);
  if (streams) {
    a = StreamSummary(a);
    b = StreamSummary(b);
  } else if (lines) {
    a = NdjsonArray(a);
    b = NdjsonArray(b);
  }
  rapidjson::Document da, db;
  if (!ParseBounded(a, &da) || !ParseBounded(b, &db)) {
    if (a != b) out.push_back({"body", Quote(a), Quote(b)});
    return out;
  }
  for (rapidjson::Document* d : {&da, &db}) {
    RemoveNames(*d, o.volatile_names, 0);
    for (const std::string& f : o.ignore_fields) {
      // An NDJSON stream's paths are those of each line.
      if (lines) {
        for (auto& line : d->GetArray()) RemovePath(line, SplitDots(f), 0);
      } else {
        RemovePath(*d, SplitDots(f), 0);
      }
    }
  }
  Diff(da, db, streams || lines ? "stream" : "", o, limit, &out, 0);
  return out;
}

}  // namespace rwd
