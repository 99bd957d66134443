#include "key/json.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <iterator>
#include <vector>

namespace rwd {
namespace {

// Iterative: nesting depth cannot overflow the stack. Not
// kParseFullPrecisionFlag: RapidJSON 1.1's full-precision path calls
// __builtin_clzll(0) for numbers like "0e55" (undefined; found by
// fuzz_request_key), while the default path is plain IEEE arithmetic, the
// same on every machine, which is what a key needs.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag;

template <typename Doc>
bool Parse(const std::string& text, Doc* doc) {
  if (text.empty()) return false;
  doc->template Parse<kParseFlags>(text.data(), text.size());
  return !doc->HasParseError();
}

void RemovePath(rapidjson::Value* value, const std::vector<std::string>& path,
                size_t i) {
  if (!value->IsObject() || i >= path.size()) return;
  auto member = value->FindMember(rapidjson::StringRef(
      path[i].data(), static_cast<rapidjson::SizeType>(path[i].size())));
  if (member == value->MemberEnd()) return;
  if (i + 1 == path.size()) {
    value->EraseMember(member);
  } else {
    RemovePath(&member->value, path, i + 1);
  }
}

void RemoveIgnored(rapidjson::Value* doc, const FieldPaths& ignore) {
  for (const auto& path : ignore) RemovePath(doc, path, 0);
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

bool LessByName(const rapidjson::Value::Member* a,
                const rapidjson::Value::Member* b) {
  return std::lexicographical_compare(
      a->name.GetString(), a->name.GetString() + a->name.GetStringLength(),
      b->name.GetString(), b->name.GetString() + b->name.GetStringLength());
}

// Returns false when nesting exceeds kMaxJsonDepth.
template <typename W>
bool WriteSorted(const rapidjson::Value& v, W* w, int depth) {
  if (depth > kMaxJsonDepth) return false;
  if (v.IsObject()) {
    // Objects of a request body are small: sort pointers on the stack.
    using Member = rapidjson::Value::Member;
    const Member* small[16];
    std::vector<const Member*> large;
    const Member** members = small;
    const size_t count = v.MemberCount();
    if (count > std::size(small)) {
      large.resize(count);
      members = large.data();
    }
    size_t i = 0;
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) members[i++] = &*it;
    std::sort(members, members + count, LessByName);
    w->StartObject();
    for (size_t k = 0; k < count; ++k) {
      w->Key(members[k]->name.GetString(), members[k]->name.GetStringLength());
      if (!WriteSorted(members[k]->value, w, depth + 1)) return false;
    }
    w->EndObject();
    return true;
  }
  if (v.IsArray()) {
    w->StartArray();
    for (const auto& e : v.GetArray()) {
      if (!WriteSorted(e, w, depth + 1)) return false;
    }
    w->EndArray();
    return true;
  }
  // Scalars: the writer's own output is canonical (shortest round-trip
  // doubles, integers as integers).
  return v.Accept(*w);
}

std::string Join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

void Diff(const rapidjson::Value& a, const rapidjson::Value& b,
          const std::string& path, int depth, size_t limit,
          std::vector<std::string>* out) {
  if (out->size() >= limit) return;
  const std::string here = path.empty() ? "(body)" : path;
  if (depth > kMaxJsonDepth) {
    out->push_back(here);
    return;
  }
  if (a.GetType() != b.GetType() &&
      !(a.IsNumber() && b.IsNumber())) {
    out->push_back(here);
    return;
  }
  if (a.IsObject()) {
    std::vector<std::string> names;
    for (auto it = a.MemberBegin(); it != a.MemberEnd(); ++it) {
      names.emplace_back(it->name.GetString(), it->name.GetStringLength());
    }
    for (auto it = b.MemberBegin(); it != b.MemberEnd(); ++it) {
      names.emplace_back(it->name.GetString(), it->name.GetStringLength());
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (const std::string& name : names) {
      rapidjson::Value key(rapidjson::StringRef(
          name.data(), static_cast<rapidjson::SizeType>(name.size())));
      auto ma = a.FindMember(key);
      auto mb = b.FindMember(key);
      if (ma == a.MemberEnd() || mb == b.MemberEnd()) {
        if (out->size() < limit) out->push_back(Join(path, name));
      } else {
        Diff(ma->value, mb->value, Join(path, name), depth + 1, limit, out);
      }
    }
    return;
  }
  if (a.IsArray()) {
    rapidjson::SizeType n = std::max(a.Size(), b.Size());
    for (rapidjson::SizeType i = 0; i < n && out->size() < limit; ++i) {
      std::string item = path + "[" + std::to_string(i) + "]";
      if (i >= a.Size() || i >= b.Size()) {
        out->push_back(item);
      } else {
        Diff(a[i], b[i], item, depth + 1, limit, out);
      }
    }
    return;
  }
  if (a != b) out->push_back(here);
}

}  // namespace

bool RedactJsonFields(std::string* body, const std::vector<std::string>& paths) {
  rapidjson::Document doc;
  if (!Parse(*body, &doc)) return false;
  bool changed = false;
  for (const std::string& dotted : paths) {
    rapidjson::Value* v = &doc;
    size_t start = 0;
    while (v && v->IsObject()) {
      const size_t dot = dotted.find('.', start);
      const std::string name = dotted.substr(start, dot - start);
      auto m = v->FindMember(rapidjson::StringRef(
          name.data(), static_cast<rapidjson::SizeType>(name.size())));
      if (m == v->MemberEnd()) break;
      if (dot == std::string::npos) {
        m->value.SetString("[REDACTED]", doc.GetAllocator());
        changed = true;
        break;
      }
      v = &m->value;
      start = dot + 1;
    }
  }
  if (!changed) return false;
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  doc.Accept(writer);
  body->assign(buffer.GetString(), buffer.GetSize());
  return true;
}

bool CanonicalJson(const std::string& text, const FieldPaths& ignore,
                   std::string* out) {
  // This runs for every request: a request body of a few KB parses into
  // these stack buffers without touching the heap (larger ones spill over).
  using PoolAllocator = rapidjson::MemoryPoolAllocator<>;
  char value_buffer[8192];
  char stack_buffer[1024];
  PoolAllocator values(value_buffer, sizeof(value_buffer));
  PoolAllocator stack(stack_buffer, sizeof(stack_buffer));
  rapidjson::GenericDocument<rapidjson::UTF8<>, PoolAllocator, PoolAllocator>
      doc(&values, sizeof(stack_buffer), &stack);
  if (!Parse(text, &doc)) return false;
  RemoveIgnored(&doc, ignore);
  char out_buffer[4096];
  PoolAllocator out_pool(out_buffer, sizeof(out_buffer));
  rapidjson::GenericStringBuffer<rapidjson::UTF8<>, PoolAllocator> buffer(
      &out_pool, text.size() + 16);
  rapidjson::Writer<decltype(buffer), rapidjson::UTF8<>, rapidjson::UTF8<>,
                    PoolAllocator>
      writer(buffer, &stack);
  if (!WriteSorted(doc, &writer, 0)) return false;
  out->assign(buffer.GetString(), buffer.GetSize());
  return true;
}

bool DiffJson(const std::string& a, const std::string& b,
              const FieldPaths& ignore, size_t limit,
              std::vector<std::string>* out) {
  rapidjson::Document da, db;
  if (!Parse(a, &da) || !Parse(b, &db)) return false;
  RemoveIgnored(&da, ignore);
  RemoveIgnored(&db, ignore);
  Diff(da, db, "", 0, limit, out);
  return true;
}

}  // namespace rwd
