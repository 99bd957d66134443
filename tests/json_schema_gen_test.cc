// The schema-driven JSON generator: each keyword it claims, and a check by
// an independent validator over many seeded values.
#include "synth/json_schema_gen.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <string>

namespace rwd {
namespace {

using rapidjson::Value;

// ---- A small JSON Schema validator, for the keywords the generator claims.

std::string Dump(const Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return b.GetString();
}

const Value* Get(const Value& s, const char* name) {
  if (!s.IsObject()) return nullptr;
  auto m = s.FindMember(name);
  return m == s.MemberEnd() ? nullptr : &m->value;
}

const Value* Resolve(const Value& root, const std::string& ref) {
  if (ref == "#") return &root;
  const Value* at = &root;
  size_t pos = 2;  // after "#/"
  while (pos <= ref.size()) {
    size_t end = ref.find('/', pos);
    if (end == std::string::npos) end = ref.size();
    const std::string token = ref.substr(pos, end - pos);
    if (!at->IsObject() || !at->HasMember(token.c_str())) return nullptr;
    at = &(*at)[token.c_str()];
    pos = end + 1;
  }
  return at;
}

bool HasType(const Value& v, const std::string& type) {
  if (type == "null") return v.IsNull();
  if (type == "boolean") return v.IsBool();
  if (type == "integer")
    return v.IsInt64() ||
           (v.IsDouble() && v.GetDouble() == std::floor(v.GetDouble()));
  if (type == "number") return v.IsNumber();
  if (type == "string") return v.IsString();
  if (type == "object") return v.IsObject();
  if (type == "array") return v.IsArray();
  return false;
}

bool Validate(const Value& root, const Value& s, const Value& v,
              std::string* why) {
  auto fail = [&](const std::string& m) {
    *why = m + " at " + Dump(v);
    return false;
  };
  if (s.IsBool()) return s.GetBool() ? true : fail("false schema");
  if (const Value* ref = Get(s, "$ref")) {
    const Value* t = Resolve(root, ref->GetString());
    if (!t) return fail("bad ref");
    return Validate(root, *t, v, why);
  }
  if (const Value* n = Get(s, "nullable"); n && n->GetBool() && v.IsNull())
    return true;
  if (const Value* c = Get(s, "const"); c && !(*c == v)) return fail("const");
  if (const Value* e = Get(s, "enum")) {
    bool found = false;
    for (const auto& x : e->GetArray()) found = found || x == v;
    if (!found) return fail("enum");
  }
  if (const Value* a = Get(s, "anyOf")) {
    bool any = false;
    std::string ignored;
    for (const auto& b : a->GetArray())
      any = any || Validate(root, b, v, &ignored);
    if (!any) return fail("anyOf");
  }
  if (const Value* a = Get(s, "oneOf")) {
    int n = 0;
    std::string ignored;
    for (const auto& b : a->GetArray()) n += Validate(root, b, v, &ignored);
    if (n != 1) return fail("oneOf matched " + std::to_string(n));
  }
  if (const Value* a = Get(s, "allOf")) {
    for (const auto& b : a->GetArray()) {
      if (!Validate(root, b, v, why)) return false;
    }
  }
  if (const Value* t = Get(s, "type")) {
    bool ok = false;
    if (t->IsString()) {
      ok = HasType(v, t->GetString());
    } else {
      for (const auto& x : t->GetArray()) ok = ok || HasType(v, x.GetString());
    }
    if (!ok) return fail("type");
  }
  if (v.IsNumber()) {
    const double x = v.GetDouble();
    const Value* emin = Get(s, "exclusiveMinimum");
    const Value* emax = Get(s, "exclusiveMaximum");
    if (const Value* m = Get(s, "minimum")) {
      if (emin && emin->IsBool() && emin->GetBool() ? x <= m->GetDouble()
                                                    : x < m->GetDouble()) {
        return fail("minimum");
      }
    }
    if (const Value* m = Get(s, "maximum")) {
      if (emax && emax->IsBool() && emax->GetBool() ? x >= m->GetDouble()
                                                    : x > m->GetDouble()) {
        return fail("maximum");
      }
    }
    if (emin && emin->IsNumber() && x <= emin->GetDouble())
      return fail("exclusiveMinimum");
    if (emax && emax->IsNumber() && x >= emax->GetDouble())
      return fail("exclusiveMaximum");
    if (const Value* m = Get(s, "multipleOf")) {
      const double q = x / m->GetDouble();
      if (std::fabs(q - std::round(q)) > 1e-9) return fail("multipleOf");
    }
  }
  if (v.IsString()) {
    const size_t n = v.GetStringLength();
    if (const Value* m = Get(s, "minLength"); m && n < m->GetUint64())
      return fail("minLength");
    if (const Value* m = Get(s, "maxLength"); m && n > m->GetUint64())
      return fail("maxLength");
    if (const Value* f = Get(s, "format")) {
      static const std::map<std::string, std::regex> kFormats = {
          {"date-time", std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")},
          {"date", std::regex(R"(\d{4}-\d\d-\d\d)")},
          {"time", std::regex(R"(\d\d:\d\d:\d\dZ)")},
          {"email", std::regex(R"([a-z]+@[a-z]+\.[a-z]+)")},
          {"uri", std::regex(R"(https://[a-z.]+/[a-z]+)")},
          {"hostname", std::regex(R"([a-z]+\.[a-z]+)")},
          {"ipv4", std::regex(R"((\d{1,3}\.){3}\d{1,3})")},
          {"uuid",
           std::regex(
               R"([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})")}};
      auto it = kFormats.find(f->GetString());
      if (it != kFormats.end() &&
          !std::regex_match(v.GetString(), it->second)) {
        return fail(std::string("format ") + f->GetString());
      }
    }
  }
  if (v.IsObject()) {
    const Value* props = Get(s, "properties");
    if (const Value* r = Get(s, "required")) {
      for (const auto& name : r->GetArray()) {
        if (!v.HasMember(name))
          return fail(std::string("required ") + name.GetString());
      }
    }
    if (const Value* m = Get(s, "minProperties");
        m && v.MemberCount() < m->GetUint()) {
      return fail("minProperties");
    }
    const Value* extra = Get(s, "additionalProperties");
    for (const auto& m : v.GetObject()) {
      if (props && props->HasMember(m.name)) {
        if (!Validate(root, (*props)[m.name], m.value, why)) return false;
      } else if (extra && extra->IsBool() && !extra->GetBool()) {
        return fail(std::string("additional property ") + m.name.GetString());
      } else if (extra && extra->IsObject()) {
        if (!Validate(root, *extra, m.value, why)) return false;
      }
    }
  }
  if (v.IsArray()) {
    if (const Value* m = Get(s, "minItems"); m && v.Size() < m->GetUint())
      return fail("minItems");
    if (const Value* m = Get(s, "maxItems"); m && v.Size() > m->GetUint())
      return fail("maxItems");
    const Value* prefix = Get(s, "prefixItems");
    const Value* items = Get(s, "items");
    if (items && items->IsArray()) {
      prefix = items;
      items = Get(s, "additionalItems");
    }
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      const Value* schema =
          prefix && i < prefix->Size() ? &(*prefix)[i] : items;
      if (schema && !Validate(root, *schema, v[i], why)) return false;
    }
    if (const Value* u = Get(s, "uniqueItems"); u && u->GetBool()) {
      std::set<std::string> seen;
      for (const auto& x : v.GetArray()) {
        if (!seen.insert(Dump(x)).second) return fail("uniqueItems");
      }
    }
  }
  return true;
}

// ---- Helpers.

std::string Gen(const std::string& schema, uint64_t seed) {
  Result<JsonSchemaGenerator> g = JsonSchemaGenerator::Create(schema);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  if (!g.ok()) return "";
  std::mt19937_64 rng(seed);
  return g->Generate(rng);
}

// Generates "count" values, checks each parses and validates, returns them.
std::vector<std::string> Valid(const std::string& schema, int count = 300) {
  rapidjson::Document s;
  s.Parse(schema.c_str());
  EXPECT_FALSE(s.HasParseError()) << schema;
  Result<JsonSchemaGenerator> g = JsonSchemaGenerator::Create(schema);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  std::vector<std::string> out;
  if (!g.ok()) return out;
  for (int seed = 0; seed < count; ++seed) {
    std::mt19937_64 rng(static_cast<uint64_t>(seed));
    std::string text = g->Generate(rng);
    rapidjson::Document v;
    v.Parse(text.c_str());
    EXPECT_FALSE(v.HasParseError()) << text;
    std::string why;
    EXPECT_TRUE(Validate(s, s, v, &why)) << schema << "\n"
                                         << text << "\n"
                                         << why;
    out.push_back(text);
  }
  return out;
}

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

// ---- One test per keyword.

TEST(JsonSchemaGen, EachTypeGivesThatType) {
  for (const char* type :
       {"string", "integer", "number", "boolean", "null", "object", "array"}) {
    const std::string schema = std::string(R"({"type":")") + type + "\"}";
    for (const std::string& v : Valid(schema, 50)) {
      EXPECT_TRUE(HasType(Parse(v), type)) << type << ": " << v;
    }
  }
}

TEST(JsonSchemaGen, TypeUnionPicksEachMember) {
  std::set<std::string> seen;
  for (const std::string& v :
       Valid(R"({"type":["string","integer","null"]})")) {
    rapidjson::Document d = Parse(v);
    seen.insert(d.IsString()  ? "string"
                : d.IsInt64() ? "integer"
                : d.IsNull()  ? "null"
                              : "?");
  }
  EXPECT_EQ(seen, (std::set<std::string>{"integer", "null", "string"}));
}

TEST(JsonSchemaGen, RequiredAlwaysPresentOptionalSometimes) {
  int with_optional = 0;
  const auto values = Valid(
      R"({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},
          "required":["a"],"additionalProperties":false})");
  for (const std::string& v : values) {
    rapidjson::Document d = Parse(v);
    EXPECT_TRUE(d.HasMember("a"));
    with_optional += d.HasMember("b");
  }
  EXPECT_GT(with_optional, 50);
  EXPECT_LT(with_optional, 250);
}

TEST(JsonSchemaGen, RequiredNamesOutsidePropertiesAndMinProperties) {
  for (const std::string& v : Valid(
           R"({"type":"object","required":["x"],"minProperties":3,
               "additionalProperties":{"type":"integer"}})")) {
    rapidjson::Document d = Parse(v);
    EXPECT_TRUE(d["x"].IsInt64()) << v;
    EXPECT_GE(d.MemberCount(), 3u);
  }
}

TEST(JsonSchemaGen, AdditionalPropertiesFalseAddsNothing) {
  for (
      const std::string& v : Valid(
          R"({"type":"object","properties":{"a":{"type":"boolean"}},"minProperties":1,
               "additionalProperties":false})")) {
    EXPECT_EQ(Parse(v).MemberCount(), 1u) << v;
  }
}

TEST(JsonSchemaGen, EnumDrawsEveryValue) {
  std::set<std::string> seen;
  for (const std::string& v : Valid(R"({"enum":["red","green",3,null]})"))
    seen.insert(v);
  EXPECT_EQ(seen, (std::set<std::string>{"\"red\"", "\"green\"", "3", "null"}));
}

TEST(JsonSchemaGen, ConstIsCopied) {
  for (const std::string& v : Valid(R"({"const":{"k":[1,"two"]}})", 20)) {
    EXPECT_EQ(v, R"({"k": [1, "two"]})");
  }
}

TEST(JsonSchemaGen, ItemsWithinMinAndMaxItems) {
  std::set<size_t> sizes;
  for (
      const std::string& v : Valid(
          R"({"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":4})")) {
    sizes.insert(Parse(v).Size());
  }
  EXPECT_EQ(sizes, (std::set<size_t>{2, 3, 4}));
  for (const std::string& v : Valid(
           R"({"type":"array","items":{"type":"string"},"minItems":6})", 50)) {
    EXPECT_GE(Parse(v).Size(), 6u);
  }
  for (const std::string& v : Valid(R"({"type":"array","maxItems":0})", 20))
    EXPECT_EQ(v, "[]");
}

TEST(JsonSchemaGen, PrefixItemsAndTuples) {
  for (
      const char* schema :
      {R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})",
       R"({"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false})"}) {
    for (const std::string& v : Valid(schema, 50)) {
      rapidjson::Document d = Parse(v);
      ASSERT_EQ(d.Size(), 2u) << v;
      EXPECT_TRUE(d[0].IsString());
      EXPECT_TRUE(d[1].IsInt64());
    }
  }
}

TEST(JsonSchemaGen, UniqueItems) {
  for (
      const std::string& v : Valid(
          R"({"type":"array","items":{"type":"integer","minimum":0,"maximum":5},
               "minItems":4,"maxItems":5,"uniqueItems":true})")) {
    EXPECT_GE(Parse(v).Size(), 4u);
  }
}

TEST(JsonSchemaGen, IntegerBoundsInclusiveAndExclusive) {
  std::set<int64_t> seen;
  for (const std::string& v :
       Valid(R"({"type":"integer","minimum":-2,"maximum":2})")) {
    seen.insert(Parse(v).GetInt64());
  }
  EXPECT_EQ(seen, (std::set<int64_t>{-2, -1, 0, 1, 2}));
  seen.clear();
  for (const std::string& v : Valid(
           R"({"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":3})")) {
    seen.insert(Parse(v).GetInt64());
  }
  EXPECT_EQ(seen, (std::set<int64_t>{1, 2}));
  // Draft 4's boolean form.
  for (const std::string& v : Valid(
           R"({"type":"integer","minimum":5,"exclusiveMinimum":true,"maximum":7,
               "exclusiveMaximum":true})")) {
    EXPECT_EQ(v, "6");
  }
  for (const std::string& v :
       Valid(R"({"type":"integer","minimum":1000000})", 50)) {
    EXPECT_GE(Parse(v).GetInt64(), 1000000);
  }
  for (const std::string& v :
       Valid(R"({"type":"integer","maximum":-50})", 50)) {
    EXPECT_LE(Parse(v).GetInt64(), -50);
  }
}

TEST(JsonSchemaGen, NumberBoundsAndMultipleOf) {
  double lo = 1e9, hi = -1e9;
  for (const std::string& v :
       Valid(R"({"type":"number","minimum":0.5,"maximum":0.75})")) {
    const double x = Parse(v).GetDouble();
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  EXPECT_LT(lo, 0.55);
  EXPECT_GT(hi, 0.7);
  Valid(R"({"type":"number","exclusiveMinimum":0,"exclusiveMaximum":0.01})");
  Valid(R"({"type":"number","minimum":0,"maximum":1,"multipleOf":0.25})");
  for (const std::string& v : Valid(
           R"({"type":"integer","minimum":1,"maximum":100,"multipleOf":7})")) {
    EXPECT_EQ(Parse(v).GetInt64() % 7, 0) << v;
  }
}

TEST(JsonSchemaGen, StringLengths) {
  std::set<size_t> lengths;
  for (const std::string& v :
       Valid(R"({"type":"string","minLength":3,"maxLength":6})")) {
    lengths.insert(Parse(v).GetStringLength());
  }
  EXPECT_EQ(lengths, (std::set<size_t>{3, 4, 5, 6}));
  for (const std::string& v :
       Valid(R"({"type":"string","minLength":40})", 50)) {
    EXPECT_GE(Parse(v).GetStringLength(), 40u);
  }
  for (const std::string& v : Valid(R"({"type":"string","maxLength":0})", 20))
    EXPECT_EQ(v, "\"\"");
}

TEST(JsonSchemaGen, Formats) {
  for (const char* f : {"date-time", "date", "time", "email", "uri", "hostname",
                        "ipv4", "uuid"}) {
    Valid(std::string(R"({"type":"string","format":")") + f + "\"}", 100);
  }
}

TEST(JsonSchemaGen, AnyOfAndOneOfPickOneBranch) {
  for (const char* keyword : {"anyOf", "oneOf"}) {
    std::set<std::string> seen;
    for (const std::string& v :
         Valid(std::string("{\"") + keyword +
               R"(":[{"type":"string"},{"type":"integer"},
                                            {"type":"object","properties":{"k":{"const":1}},
                                             "required":["k"]}]})")) {
      rapidjson::Document d = Parse(v);
      seen.insert(d.IsString() ? "s" : d.IsInt64() ? "i" : "o");
    }
    EXPECT_EQ(seen.size(), 3u) << keyword;
  }
}

TEST(JsonSchemaGen, AllOfMergesObjectBranches) {
  for (
      const std::string& v : Valid(
          R"({"allOf":[{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]},
                        {"properties":{"b":{"type":"integer"}},"required":["b"]}]})")) {
    rapidjson::Document d = Parse(v);
    EXPECT_TRUE(d["a"].IsString() && d["b"].IsInt64()) << v;
  }
}

TEST(JsonSchemaGen, RefsToDefsAndDefinitionsAndRecursion) {
  for (
      const std::string& v : Valid(
          R"({"$defs":{"Pt":{"type":"object","properties":{"x":{"type":"number"}},
                              "required":["x"],"additionalProperties":false}},
               "type":"object","properties":{"at":{"$ref":"#/$defs/Pt"}},"required":["at"]})")) {
    EXPECT_TRUE(Parse(v)["at"]["x"].IsNumber()) << v;
  }
  Valid(R"({"definitions":{"Id":{"type":"integer","minimum":1}},
            "type":"array","items":{"$ref":"#/definitions/Id"},"minItems":1})");
  // A tree: each node may hold children; generation ends.
  for (const std::string& v : Valid(
           R"({"$defs":{"Node":{"type":"object","properties":{
                 "name":{"type":"string"},
                 "children":{"type":"array","items":{"$ref":"#/$defs/Node"}}},
                 "required":["name","children"]}},
               "$ref":"#/$defs/Node"})",
           100)) {
    EXPECT_LT(v.size(), 100000u);
  }
  // The root itself.
  Valid(
      R"({"type":"object","properties":{"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},
            "required":["next"]})",
      100);
}

TEST(JsonSchemaGen, NullableSometimesNull) {
  int nulls = 0;
  for (const std::string& v : Valid(R"({"type":"string","nullable":true})"))
    nulls += v == "null";
  EXPECT_GT(nulls, 20);
  EXPECT_LT(nulls, 150);
}

TEST(JsonSchemaGen, BooleanSchemas) {
  Valid("true", 20);
  EXPECT_EQ(
      Gen(R"({"type":"object","properties":{"a":true},"required":["a"]})", 1)
          .find("\"a\": "),
      1u);
}

TEST(JsonSchemaGen, RejectsWhatItCannotFollow) {
  for (const char* schema :
       {"", "[1]", "{\"type\":", R"({"$ref":"https://x.example/s.json"})",
        R"({"$ref":"#/$defs/Missing"})"}) {
    EXPECT_FALSE(JsonSchemaGenerator::Create(schema).ok()) << schema;
  }
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += R"({"type":"array","items":)";
  deep += "{}";
  for (int i = 0; i < 100; ++i) deep += "}";
  EXPECT_FALSE(JsonSchemaGenerator::Create(deep).ok());
}

TEST(JsonSchemaGen, SameSeedSameValueAndPythonSpacing) {
  const char* schema =
      R"({"type":"object","properties":{"a":{"type":"array","items":{"type":"integer"},
          "minItems":2},"b":{"type":"string"}},"required":["a","b"]})";
  EXPECT_EQ(Gen(schema, 9), Gen(schema, 9));
  EXPECT_NE(Gen(schema, 9), Gen(schema, 10));
  const std::string v = Gen(schema, 9);
  EXPECT_EQ(v.rfind("{\"a\": [", 0), 0u) << v;
  EXPECT_NE(v.find(", \"b\": "), std::string::npos) << v;
}

// A schema shaped as clients write them (zod-to-json-schema, OpenAI strict
// mode, Pydantic): every value of many seeds validates.
TEST(JsonSchemaGen, RealisticSchemasValidateOverManySeeds) {
  Valid(R"({
    "type":"object","additionalProperties":false,
    "required":["name","age","email","tags","address","role","score","nickname","events"],
    "properties":{
      "name":{"type":"string","minLength":1,"maxLength":40},
      "age":{"type":"integer","minimum":0,"maximum":130},
      "email":{"type":"string","format":"email"},
      "tags":{"type":"array","items":{"type":"string","enum":["a","b","c"]},"maxItems":3},
      "address":{"$ref":"#/$defs/Address"},
      "role":{"anyOf":[{"type":"string","const":"admin"},{"type":"string","const":"user"}]},
      "score":{"type":["number","null"],"minimum":0,"exclusiveMaximum":1},
      "nickname":{"type":"string","nullable":true},
      "events":{"type":"array","minItems":1,"items":{"oneOf":[
        {"type":"object","properties":{"kind":{"const":"click"},"x":{"type":"integer"}},
         "required":["kind","x"],"additionalProperties":false},
        {"type":"object","properties":{"kind":{"const":"key"},"code":{"type":"string"}},
         "required":["kind","code"],"additionalProperties":false}]}}},
    "$defs":{"Address":{"type":"object","additionalProperties":false,
      "required":["street","zip","at"],
      "properties":{"street":{"type":"string"},"zip":{"type":"string","minLength":5,"maxLength":5},
                    "at":{"type":"string","format":"date-time"}}}}})",
        1000);
}

}  // namespace
}  // namespace rwd
