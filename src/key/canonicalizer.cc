#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string_view>

#include "key/json.h"
#include "rewind/request_key.h"
#include "scrub/scrubber.h"

namespace rwd {
namespace {

void AppendField(std::string* out, std::string_view field) {
  out->append(std::to_string(field.size()));
  out->push_back(':');
  out->append(field);
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string_view ParamName(std::string_view param) {
  return param.substr(0, param.find('='));
}

// The query's parameters sorted by name; parameters of one name keep their
// order, which servers give meaning to (?ids=1&ids=2 is not ?ids=2&ids=1).
std::vector<std::string> SortedQueryParams(const std::string& query) {
  std::vector<std::string> params;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    if (end > start) params.push_back(query.substr(start, end - start));
    start = end + 1;
  }
  std::stable_sort(params.begin(), params.end(),
                   [](const std::string& a, const std::string& b) {
                     return ParamName(a) < ParamName(b);
                   });
  return params;
}

// The values of each parameter name, in their order.
std::map<std::string_view, std::vector<std::string_view>> ParamsByName(
    const std::vector<std::string>& params) {
  std::map<std::string_view, std::vector<std::string_view>> out;
  for (const std::string& p : params) out[ParamName(p)].push_back(p);
  return out;
}

std::vector<std::string> SplitPath(const std::string& dotted) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = dotted.find('.', start);
    parts.push_back(dotted.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

}  // namespace

std::vector<std::string> DefaultIgnoredFields() {
  return {"user",         "request_id",        "metadata",        "store",
          "service_tier", "safety_identifier", "prompt_cache_key"};
}

std::string RequestKey::ToHex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(32, '0');
  for (int i = 0; i < 16; ++i) {
    hex[static_cast<size_t>(15 - i)] = kDigits[(high >> (4 * i)) & 0xF];
    hex[static_cast<size_t>(31 - i)] = kDigits[(low >> (4 * i)) & 0xF];
  }
  return hex;
}

Result<RequestKey> RequestKey::FromHex(const std::string& hex) {
  RequestKey key;
  bool ok = hex.size() == 32;
  for (size_t i = 0; ok && i < 32; ++i) {
    const char c = hex[i];
    uint64_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint64_t>(c - 'a' + 10);
    } else {
      ok = false;
      break;
    }
    uint64_t& half = i < 16 ? key.high : key.low;
    half = (half << 4) | digit;
  }
  if (!ok)
    return Status::InvalidArgument("a request key is 32 lowercase hex digits");
  return key;
}

RequestKey HashBytes(const std::string& bytes) {
  XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  return RequestKey{h.high64, h.low64};
}

const char* Canonicalizer::NameFor(const KeyRules& rules) {
  if (rules.tool_sets) return "rewind.json-v4";
  return rules.NeedsMatchingRules() ? "rewind.json-v3" : Name();
}

bool Canonicalizer::Reads(const std::string& name) {
  return name == Name() || name == "rewind.json-v3" || name == "rewind.json-v4";
}

Canonicalizer::Canonicalizer(KeyRules rules) : rules_(std::move(rules)) {
  auto body = std::make_shared<BodyRules>();
  for (const std::string& field : rules_.ignore_fields) {
    body->ignore.push_back(SplitPath(field));
  }
  body->content_equivalence = rules_.content_equivalence;
  body->tool_sets = rules_.tool_sets;
  for (const Normalizer& n : rules_.normalizers) {
    // Rules from a flag or a recording were checked (Normalizer::Parse,
    // KeyRules::FromJson); one built in code that fails is left out.
    auto compiled = CompiledNormalizer::Compile(n);
    if (compiled.ok()) body->normalizers.push_back(std::move(compiled.value()));
  }
  body_rules_ = std::move(body);
  for (std::string& name : rules_.match_headers) name = Lower(name);
  std::sort(rules_.match_headers.begin(), rules_.match_headers.end());
  if (!rules_.scrub.empty() || !rules_.scrub_patterns.empty()) {
    auto detectors =
        scrub::Detectors::Make(rules_.scrub, rules_.scrub_patterns);
    if (detectors.ok()) {
      placeholders_ = std::make_shared<const scrub::Scrubber>(
          detectors.value()->PlaceholdersOnly(), scrub::Mode::kKey);
      scrubber_ = std::make_shared<const scrub::Scrubber>(
          std::move(detectors).value(), scrub::Mode::kKey);
    }
  }
}

Canonicalizer::~Canonicalizer() = default;
Canonicalizer::Canonicalizer(const Canonicalizer&) = default;
Canonicalizer& Canonicalizer::operator=(const Canonicalizer&) = default;

const Request& Canonicalizer::Keyed(const Request& request, Request* scratch,
                                    const scrub::Scrubber* scrubber) const {
  if (scrubber == nullptr) return request;
  scratch->method = request.method;
  scratch->path = scrubber->Path(request.path);
  scratch->query = scrubber->Query(request.query);
  for (const std::string& name : rules_.match_headers) {
    std::string value = FindHeader(request.headers, name);
    scratch->headers.emplace_back(name, scrubber->HeaderValue(name, value));
  }
  // A body the scrubber cannot read (Content-Encoding) is keyed as it is;
  // record does not store such a body.
  Result<std::string> body =
      scrubber->Body(request.body, FindHeader(request.headers, "Content-Type"),
                     FindHeader(request.headers, "Content-Encoding"));
  scratch->body = body.ok() ? std::move(body).value() : request.body;
  return *scratch;
}

std::string Canonicalizer::Canonical(const Request& original) const {
  Request scratch;
  return CanonicalOf(Keyed(original, &scratch, scrubber_.get()));
}

std::string Canonicalizer::CanonicalOf(const Request& request) const {
  std::string out;
  out.reserve(request.body.size() + request.path.size() + 64);
  AppendField(&out, request.method);
  AppendField(&out, request.path);
  std::vector<std::string> params = SortedQueryParams(request.query);
  AppendField(&out, std::to_string(params.size()));
  for (const std::string& p : params) AppendField(&out, p);
  AppendField(&out, std::to_string(rules_.match_headers.size()));
  for (const std::string& name : rules_.match_headers) {
    AppendField(&out, name);
    AppendField(&out, FindHeader(request.headers, name));
  }
  std::string canonical_body;
  if (CanonicalJson(request.body, *body_rules_, &canonical_body)) {
    AppendField(&out, "json");
    AppendField(&out, canonical_body);
  } else {
    AppendField(&out, "bytes");
    AppendField(&out, request.body);
  }
  return out;
}

RequestKey Canonicalizer::Key(const Request& request) const {
  return HashBytes(Canonical(request));
}

RequestKey Canonicalizer::KeyOfScrubbed(const Request& scrubbed) const {
  Request scratch;
  return HashBytes(CanonicalOf(Keyed(scrubbed, &scratch, placeholders_.get())));
}

std::vector<std::string> Canonicalizer::Diff(const Request& a, const Request& b,
                                             size_t limit) const {
  std::vector<std::string> paths;
  for (FieldDifference& d : DiffFields(a, b, limit, 0)) {
    paths.push_back(std::move(d.path));
  }
  return paths;
}

std::vector<FieldDifference> Canonicalizer::DiffFields(
    const Request& original_a, const Request& original_b, size_t limit,
    size_t shown) const {
  Request scratch_a, scratch_b;
  const Request& a = Keyed(original_a, &scratch_a, scrubber_.get());
  const Request& b = Keyed(original_b, &scratch_b, scrubber_.get());
  std::vector<FieldDifference> diffs;
  auto add = [&](std::string what) {
    if (diffs.size() < limit) {
      diffs.push_back(FieldDifference{std::move(what), false, {}, {}});
    }
  };
  if (a.method != b.method) add("method");
  if (a.path != b.path) add("path");

  const std::vector<std::string> qa = SortedQueryParams(a.query);
  const std::vector<std::string> qb = SortedQueryParams(b.query);
  if (qa != qb) {
    auto na = ParamsByName(qa);
    auto nb = ParamsByName(qb);
    std::vector<std::string_view> names;
    for (const auto& [name, values] : na) {
      auto other = nb.find(name);
      if (other == nb.end() || other->second != values) names.push_back(name);
    }
    for (const auto& [name, values] : nb) {
      if (!na.count(name)) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    for (std::string_view n : names) add("query." + std::string(n));
  }
  for (const std::string& name : rules_.match_headers) {
    if (FindHeader(a.headers, name) != FindHeader(b.headers, name)) {
      add("header." + name);
    }
  }
  std::vector<FieldDifference> body_diffs;
  if (!DiffJson(a.body, b.body, *body_rules_, limit, shown, &body_diffs)) {
    if (a.body != b.body) add("body");
  } else {
    for (FieldDifference& d : body_diffs) {
      if (diffs.size() < limit) diffs.push_back(std::move(d));
    }
  }
  return diffs;
}

}  // namespace rwd
