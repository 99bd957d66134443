#include "synth/json_schema_gen.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <set>
#include <utility>
#include <vector>

#include "synth/engine_util.h"

namespace rwd {

struct JsonSchemaGenerator::Impl {
  rapidjson::Document schema;
};

namespace {

using rapidjson::Value;

// Beyond this depth the generator keeps its choices minimal, so that
// recursive schemas (a tree whose children are trees) end quickly.
constexpr int kSoftDepth = 5;
// Integers stay within what a double holds exactly.
constexpr double kMaxExact = 9007199254740992.0;  // 2^53

const char* const kWords[] = {
    "alpha",  "blue",  "cedar", "delta", "ember",  "fjord",  "green",  "harbor",
    "iris",   "jade",  "kite",  "lemon", "maple",  "north",  "ocean",  "pearl",
    "quill",  "river", "stone", "tulip", "umber",  "violet", "willow", "yarrow",
    "zephyr", "Paris", "seven", "quiet", "bright", "engine", "token",  "cache"};
constexpr size_t kWordCount = sizeof(kWords) / sizeof(kWords[0]);

// Looks up a local JSON pointer ("#", "#/$defs/Name", "#/a/0/b").
const Value* ResolvePointer(const Value& root, const std::string& ref) {
  if (ref.empty() || ref[0] != '#') return nullptr;
  const Value* at = &root;
  size_t pos = 1;
  if (pos < ref.size() && ref[pos] != '/') return nullptr;
  while (pos < ref.size()) {
    ++pos;  // the '/'
    size_t end = ref.find('/', pos);
    if (end == std::string::npos) end = ref.size();
    std::string token;
    for (size_t i = pos; i < end; ++i) {
      if (ref[i] == '~' && i + 1 < end &&
          (ref[i + 1] == '0' || ref[i + 1] == '1')) {
        token += ref[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        token += ref[i];
      }
    }
    pos = end;
    if (at->IsObject()) {
      auto m = at->FindMember(
          Value(token.data(), static_cast<rapidjson::SizeType>(token.size())));
      if (m == at->MemberEnd()) return nullptr;
      at = &m->value;
    } else if (at->IsArray()) {
      char* stop = nullptr;
      const unsigned long i = std::strtoul(token.c_str(), &stop, 10);
      if (token.empty() || *stop || i >= at->Size()) return nullptr;
      at = &(*at)[static_cast<rapidjson::SizeType>(i)];
    } else {
      return nullptr;
    }
  }
  return at;
}

const Value* Member(const Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto m = object.FindMember(name);
  return m == object.MemberEnd() ? nullptr : &m->value;
}

bool NumberMember(const Value& s, const char* name, double* out) {
  const Value* v = Member(s, name);
  if (v == nullptr || !v->IsNumber()) return false;
  *out = v->GetDouble();
  return true;
}

bool UintMember(const Value& s, const char* name, uint64_t* out) {
  double d;
  if (!NumberMember(s, name, &d) || d < 0) return false;
  *out = static_cast<uint64_t>(std::min(d, 1e6));
  return true;
}

class Generation {
 public:
  Generation(const Value& root, std::mt19937_64& rng)
      : root_(root), rng_(rng) {}

  std::string Take() { return std::move(out_); }

  void Generate(const Value& s, int depth) {
    if (depth > JsonSchemaGenerator::kMaxSchemaDepth) {
      out_ += "null";
      return;
    }
    if (s.IsBool()) {
      if (s.GetBool()) {
        String(Words(1, 2));
      } else {
        out_ += "null";  // nothing validates against false
      }
      return;
    }
    if (!s.IsObject()) {
      String(Words(1, 2));
      return;
    }
    if (const Value* ref = Member(s, "$ref"); ref && ref->IsString()) {
      const Value* target = ResolvePointer(root_, ref->GetString());
      if (target != nullptr) {
        Generate(*target, depth + 1);
        return;
      }
    }
    if (const Value* c = Member(s, "const")) {
      WriteSpacedJson(*c, &out_);
      return;
    }
    if (const Value* e = Member(s, "enum"); e && e->IsArray() && !e->Empty()) {
      WriteSpacedJson((*e)[static_cast<rapidjson::SizeType>(Below(e->Size()))],
                      &out_);
      return;
    }
    for (const char* name : {"anyOf", "oneOf"}) {
      const Value* branches = Member(s, name);
      if (branches && branches->IsArray() && !branches->Empty()) {
        Generate(PickBranch(*branches, depth), depth + 1);
        return;
      }
    }
    if (const Value* all = Member(s, "allOf");
        all && all->IsArray() && !all->Empty()) {
      rapidjson::Document merged;
      Merge(s, *all, depth, &merged);
      Generate(merged, depth + 1);
      return;
    }
    const std::string type = PickType(s, depth);
    if (type == "null") {
      out_ += "null";
    } else if (type == "boolean") {
      out_ += Below(2) ? "true" : "false";
    } else if (type == "integer") {
      Integer(s);
    } else if (type == "number") {
      Number(s);
    } else if (type == "object") {
      Object(s, depth);
    } else if (type == "array") {
      Array(s, depth);
    } else {
      StringValue(s);
    }
  }

 private:
  uint64_t Below(uint64_t n) {
    return n <= 1 ? 0 : std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_);
  }
  int64_t Between(int64_t lo, int64_t hi) {
    return lo >= hi ? lo : std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool Chance(double p) {
    return std::uniform_real_distribution<double>(0, 1)(rng_) < p;
  }

  std::string Words(int lo, int hi) {
    const int n = static_cast<int>(Between(lo, hi));
    std::string s;
    for (int i = 0; i < n; ++i) {
      if (i) s += ' ';
      s += kWords[Below(kWordCount)];
    }
    return s;
  }

  void String(const std::string& s) {
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    out_.append(b.GetString(), b.GetSize());
  }

  // The branch of anyOf/oneOf to follow: any, or past kSoftDepth the
  // first that ends the recursion soonest (null, then a scalar).
  const Value& PickBranch(const Value& branches, int depth) {
    if (depth >= kSoftDepth) {
      int best = -1;
      int best_rank = 3;
      for (rapidjson::SizeType i = 0; i < branches.Size(); ++i) {
        const Value* b = &branches[i];
        if (const Value* ref = Member(*b, "$ref"); ref && ref->IsString()) {
          const Value* t = ResolvePointer(root_, ref->GetString());
          if (t) b = t;
        }
        const Value* type = Member(*b, "type");
        int rank = 2;
        if (type && type->IsString()) {
          const std::string t = type->GetString();
          rank = t == "null" ? 0 : (t == "object" || t == "array") ? 2 : 1;
        }
        if (rank < best_rank) {
          best_rank = rank;
          best = static_cast<int>(i);
        }
      }
      if (best >= 0) return branches[static_cast<rapidjson::SizeType>(best)];
    }
    return branches[static_cast<rapidjson::SizeType>(Below(branches.Size()))];
  }

  // allOf: the parent's keywords and each branch's, "properties" and
  // "required" combined, the first occurrence of any other keyword kept.
  void Merge(const Value& parent, const Value& all, int depth,
             rapidjson::Document* merged) {
    auto& a = merged->GetAllocator();
    merged->SetObject();
    Value properties(rapidjson::kObjectType);
    Value required(rapidjson::kArrayType);
    std::set<std::string> required_names;
    auto add = [&](const Value& s, auto& self, int level) -> void {
      if (level > JsonSchemaGenerator::kMaxSchemaDepth || !s.IsObject()) return;
      if (const Value* ref = Member(s, "$ref"); ref && ref->IsString()) {
        if (const Value* t = ResolvePointer(root_, ref->GetString()))
          self(*t, self, level + 1);
      }
      for (const auto& m : s.GetObject()) {
        const std::string name(m.name.GetString(), m.name.GetStringLength());
        if (name == "allOf" && m.value.IsArray()) {
          for (const auto& b : m.value.GetArray()) self(b, self, level + 1);
        } else if (name == "properties" && m.value.IsObject()) {
          for (const auto& p : m.value.GetObject()) {
            if (!properties.HasMember(p.name)) {
              properties.AddMember(Value(p.name, a), Value(p.value, a), a);
            }
          }
        } else if (name == "required" && m.value.IsArray()) {
          for (const auto& r : m.value.GetArray()) {
            if (r.IsString() && required_names.insert(r.GetString()).second) {
              required.PushBack(Value(r, a), a);
            }
          }
        } else if (name != "$ref" && !merged->HasMember(m.name)) {
          merged->AddMember(Value(m.name, a), Value(m.value, a), a);
        }
      }
    };
    add(parent, add, depth);
    if (!properties.ObjectEmpty())
      merged->AddMember("properties", properties, a);
    if (!required.Empty()) merged->AddMember("required", required, a);
  }

  std::string PickType(const Value& s, int depth) {
    std::vector<std::string> types;
    if (const Value* t = Member(s, "type")) {
      if (t->IsString()) {
        types.emplace_back(t->GetString());
      } else if (t->IsArray()) {
        for (const auto& e : t->GetArray()) {
          if (e.IsString()) types.emplace_back(e.GetString());
        }
      }
    }
    if (types.empty()) {
      auto has = [&](std::initializer_list<const char*> names) {
        for (const char* n : names) {
          if (Member(s, n)) return true;
        }
        return false;
      };
      if (has({"properties", "required", "additionalProperties",
               "minProperties"})) {
        types.emplace_back("object");
      } else if (has({"items", "prefixItems", "minItems", "maxItems"})) {
        types.emplace_back("array");
      } else if (has({"minimum", "maximum", "exclusiveMinimum",
                      "exclusiveMaximum", "multipleOf"})) {
        types.emplace_back("number");
      } else {
        types.emplace_back("string");
      }
    }
    if (const Value* n = Member(s, "nullable");
        n && n->IsBool() && n->GetBool()) {
      if (depth >= kSoftDepth || Chance(0.2)) return "null";
    }
    if (types.size() > 1 && depth >= kSoftDepth &&
        std::find(types.begin(), types.end(), "null") != types.end()) {
      return "null";
    }
    return types[Below(types.size())];
  }

  // The bounds of a number: [lo, hi], each end possibly exclusive.
  struct Bounds {
    bool has_lo = false, has_hi = false;
    double lo = 0, hi = 0;
    bool lo_excl = false, hi_excl = false;
  };

  static Bounds ReadBounds(const Value& s) {
    Bounds b;
    double v;
    if (NumberMember(s, "minimum", &v)) {
      b.has_lo = true;
      b.lo = v;
    }
    if (NumberMember(s, "maximum", &v)) {
      b.has_hi = true;
      b.hi = v;
    }
    if (const Value* e = Member(s, "exclusiveMinimum")) {
      if (e->IsBool()) {
        b.lo_excl = e->GetBool() && b.has_lo;  // draft 4
      } else if (e->IsNumber() && (!b.has_lo || e->GetDouble() >= b.lo)) {
        b.has_lo = true;
        b.lo = e->GetDouble();
        b.lo_excl = true;
      }
    }
    if (const Value* e = Member(s, "exclusiveMaximum")) {
      if (e->IsBool()) {
        b.hi_excl = e->GetBool() && b.has_hi;
      } else if (e->IsNumber() && (!b.has_hi || e->GetDouble() <= b.hi)) {
        b.has_hi = true;
        b.hi = e->GetDouble();
        b.hi_excl = true;
      }
    }
    if (!b.has_lo && !b.has_hi) {
      b.lo = 0;
      b.hi = 100;
    } else if (!b.has_lo) {
      b.lo = b.hi - 100;
    } else if (!b.has_hi) {
      b.hi = b.lo + 100;
    }
    b.lo = std::clamp(b.lo, -kMaxExact, kMaxExact);
    b.hi = std::clamp(b.hi, -kMaxExact, kMaxExact);
    return b;
  }

  void Integer(const Value& s) {
    const Bounds b = ReadBounds(s);
    double lo = std::ceil(b.lo);
    if (b.lo_excl && lo == b.lo) lo += 1;
    double hi = std::floor(b.hi);
    if (b.hi_excl && hi == b.hi) hi -= 1;
    double m = 0;
    int64_t value;
    if (NumberMember(s, "multipleOf", &m) && m >= 1 && m == std::floor(m)) {
      const double kmin = std::ceil(lo / m), kmax = std::floor(hi / m);
      value = kmin <= kmax ? static_cast<int64_t>(m) *
                                 Between(static_cast<int64_t>(kmin),
                                         static_cast<int64_t>(kmax))
                           : static_cast<int64_t>(lo);
    } else {
      value = Between(static_cast<int64_t>(lo),
                      static_cast<int64_t>(std::max(lo, hi)));
    }
    out_ += std::to_string(value);
  }

  void Number(const Value& s) {
    const Bounds b = ReadBounds(s);
    double m = 0;
    double value;
    if (NumberMember(s, "multipleOf", &m) && m > 0) {
      double kmin = std::ceil(b.lo / m), kmax = std::floor(b.hi / m);
      if (b.lo_excl && kmin * m <= b.lo) kmin += 1;
      if (b.hi_excl && kmax * m >= b.hi) kmax -= 1;
      const int64_t k = kmin <= kmax ? Between(static_cast<int64_t>(kmin),
                                               static_cast<int64_t>(kmax))
                                     : static_cast<int64_t>(kmin);
      value = static_cast<double>(k) * m;
    } else {
      value = std::uniform_real_distribution<double>(b.lo, b.hi)(rng_);
      const double rounded = std::round(value * 100) / 100;
      auto inside = [&](double v) {
        return (b.lo_excl ? v > b.lo : v >= b.lo) &&
               (b.hi_excl ? v < b.hi : v <= b.hi);
      };
      if (inside(rounded)) {
        value = rounded;
      } else if (!inside(value)) {
        value = (b.lo + b.hi) / 2;
      }
    }
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.Double(value);
    out_.append(buf.GetString(), buf.GetSize());
  }

  std::string Formatted(const std::string& format) {
    char buf[64];
    if (format == "date-time" || format == "date" || format == "time") {
      const int y = static_cast<int>(Between(2000, 2030));
      const int mo = static_cast<int>(Between(1, 12)),
                d = static_cast<int>(Between(1, 28));
      const int h = static_cast<int>(Between(0, 23)),
                mi = static_cast<int>(Between(0, 59)),
                sec = static_cast<int>(Between(0, 59));
      if (format == "date") {
        std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d", y, mo, d);
      } else if (format == "time") {
        std::snprintf(buf, sizeof(buf), "%02d:%02d:%02dZ", h, mi, sec);
      } else {
        std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo,
                      d, h, mi, sec);
      }
      return buf;
    }
    auto word = [&] {
      std::string w = kWords[Below(kWordCount)];
      std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
      });
      return w;
    };
    if (format == "email") return word() + "@" + word() + ".example";
    if (format == "uri" || format == "url")
      return "https://" + word() + ".example/" + word();
    if (format == "hostname") return word() + ".example";
    if (format == "ipv4") {
      std::snprintf(buf, sizeof(buf), "%d.%d.%d.%d",
                    static_cast<int>(Between(1, 254)),
                    static_cast<int>(Below(256)), static_cast<int>(Below(256)),
                    static_cast<int>(Between(1, 254)));
      return buf;
    }
    if (format == "uuid") {
      const uint64_t a = rng_(), b = rng_();
      std::snprintf(buf, sizeof(buf),
                    "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64
                    "-%012" PRIx64,
                    a >> 32, (a >> 16) & 0xffff, a & 0xfff,
                    static_cast<uint64_t>(0x8000 | (b >> 48 & 0x3fff)),
                    static_cast<uint64_t>(b & 0xffffffffffffULL));
      return buf;
    }
    return "";
  }

  void StringValue(const Value& s) {
    uint64_t min_len = 0, max_len = UINT64_MAX;
    UintMember(s, "minLength", &min_len);
    UintMember(s, "maxLength", &max_len);
    if (const Value* f = Member(s, "format"); f && f->IsString()) {
      std::string v = Formatted(f->GetString());
      if (!v.empty() && v.size() >= min_len && v.size() <= max_len) {
        String(v);
        return;
      }
    }
    std::string text = Words(1, 3);
    if (max_len != UINT64_MAX || text.size() < min_len) {
      const uint64_t hi =
          std::min<uint64_t>(max_len, std::max<uint64_t>(min_len, 24) + 8);
      const uint64_t target = static_cast<uint64_t>(
          Between(static_cast<int64_t>(min_len), static_cast<int64_t>(hi)));
      while (text.size() < target)
        text += " " + std::string(kWords[Below(kWordCount)]);
      text.resize(target);
      if (!text.empty() && text.back() == ' ') text.back() = 'a';
    }
    String(text);
  }

  void Object(const Value& s, int depth) {
    const Value* properties = Member(s, "properties");
    if (properties && !properties->IsObject()) properties = nullptr;
    std::set<std::string> required;
    if (const Value* r = Member(s, "required"); r && r->IsArray()) {
      for (const auto& name : r->GetArray()) {
        if (name.IsString()) required.insert(name.GetString());
      }
    }
    const Value* extra = Member(s, "additionalProperties");
    const bool closed = extra && extra->IsBool() && !extra->GetBool();
    uint64_t min_props = 0;
    UintMember(s, "minProperties", &min_props);

    std::vector<std::pair<std::string, const Value*>> chosen;
    std::vector<std::pair<std::string, const Value*>> left_out;
    std::set<std::string> names;
    if (properties) {
      for (const auto& p : properties->GetObject()) {
        std::string name(p.name.GetString(), p.name.GetStringLength());
        const bool take =
            required.count(name) || (depth < kSoftDepth && Chance(0.5));
        (take ? chosen : left_out).emplace_back(name, &p.value);
        names.insert(std::move(name));
      }
    }
    static const Value kAnything(true);
    const Value* extra_schema = extra && !closed ? extra : &kAnything;
    for (const std::string& name : required) {
      if (!names.count(name)) {
        chosen.emplace_back(name, extra_schema);
        names.insert(name);
      }
    }
    for (auto& p : left_out) {
      if (chosen.size() >= min_props) break;
      chosen.push_back(p);
    }
    for (int i = 1; chosen.size() < min_props && !closed && i < 1000; ++i) {
      std::string name = "key" + std::to_string(i);
      if (names.insert(name).second) chosen.emplace_back(name, extra_schema);
    }
    out_ += '{';
    for (size_t i = 0; i < chosen.size(); ++i) {
      if (i) out_ += ", ";
      String(chosen[i].first);
      out_ += ": ";
      Generate(*chosen[i].second, depth + 1);
    }
    out_ += '}';
  }

  void Array(const Value& s, int depth) {
    uint64_t min_items = 0, max_items = UINT64_MAX;
    UintMember(s, "minItems", &min_items);
    UintMember(s, "maxItems", &max_items);
    const Value* prefix = Member(s, "prefixItems");
    const Value* items = Member(s, "items");
    if (items && items->IsArray()) {  // draft 4 tuples
      prefix = items;
      items = Member(s, "additionalItems");
    }
    if (prefix && !prefix->IsArray()) prefix = nullptr;
    const size_t prefix_size = prefix ? prefix->Size() : 0;
    const bool closed = items && items->IsBool() && !items->GetBool();
    static const Value kAnything(true);
    const Value* rest = items ? items : &kAnything;

    uint64_t n;
    if (depth >= kSoftDepth) {
      n = min_items;
    } else {
      const uint64_t hi =
          std::min<uint64_t>(max_items, std::max<uint64_t>(min_items, 1) + 2);
      n = static_cast<uint64_t>(
          Between(static_cast<int64_t>(std::min(min_items, hi)),
                  static_cast<int64_t>(hi)));
    }
    if (prefix && n < std::min<uint64_t>(prefix_size, max_items) &&
        depth < kSoftDepth) {
      n = std::min<uint64_t>(prefix_size, max_items);
    }
    if (closed) n = std::min<uint64_t>(n, prefix_size);
    const Value* unique = Member(s, "uniqueItems");
    const bool distinct = unique && unique->IsBool() && unique->GetBool();

    std::set<std::string> seen;
    std::vector<std::string> values;
    for (uint64_t i = 0; i < n; ++i) {
      const Value& schema = i < prefix_size
                                ? (*prefix)[static_cast<rapidjson::SizeType>(i)]
                                : *rest;
      std::string value;
      for (int attempt = 0; attempt < 16; ++attempt) {
        Generation inner(root_, rng_);
        inner.Generate(schema, depth + 1);
        value = inner.Take();
        if (!distinct || !seen.count(value)) break;
      }
      if (distinct && seen.count(value) && values.size() >= min_items) break;
      seen.insert(value);
      values.push_back(std::move(value));
    }
    out_ += '[';
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) out_ += ", ";
      out_ += values[i];
    }
    out_ += ']';
  }

  const Value& root_;
  std::mt19937_64& rng_;
  std::string out_;
};

}  // namespace

Result<JsonSchemaGenerator> JsonSchemaGenerator::Create(
    const std::string& schema_json) {
  auto impl = std::make_shared<Impl>();
  rapidjson::Document& d = impl->schema;
  d.Parse<rapidjson::kParseIterativeFlag>(schema_json.data(),
                                          schema_json.size());
  if (d.HasParseError() || !(d.IsObject() || d.IsBool())) {
    return Status::InvalidArgument("the JSON schema is not a JSON object");
  }
  if (!JsonDepthAtMost(d, kMaxSchemaDepth)) {
    return Status::InvalidArgument("the JSON schema nests deeper than " +
                                   std::to_string(kMaxSchemaDepth) + " levels");
  }
  // Every $ref must point into the schema itself.
  std::vector<const Value*> stack{&d};
  while (!stack.empty()) {
    const Value* v = stack.back();
    stack.pop_back();
    if (v->IsObject()) {
      for (const auto& m : v->GetObject()) {
        if (std::string(m.name.GetString()) == "$ref" && m.value.IsString() &&
            ResolvePointer(d, m.value.GetString()) == nullptr) {
          return Status::InvalidArgument(
              std::string("the JSON schema's $ref \"") + m.value.GetString() +
              "\" does not point into the schema (only local "
              "references such as #/$defs/NAME are followed)");
        }
        stack.push_back(&m.value);
      }
    } else if (v->IsArray()) {
      for (const auto& e : v->GetArray()) stack.push_back(&e);
    }
  }
  JsonSchemaGenerator g;
  g.impl_ = std::move(impl);
  return g;
}

std::string JsonSchemaGenerator::Generate(std::mt19937_64& rng) const {
  Generation g(impl_->schema, rng);
  g.Generate(impl_->schema, 0);
  return g.Take();
}

}  // namespace rwd
