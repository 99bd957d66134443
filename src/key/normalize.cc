// Normalizers: the ready-made ones, their flag spelling, and compiled with
// RE2 (linear time in the input whatever the pattern, no recursion:
// std::regex took 4x as long on a 1 MB string and overflowed the stack on
// "(a|b)*" over 100 KB; see README, Dependencies).
#include <re2/re2.h>

#include <algorithm>

#include "key/json.h"
#include "rewind/request_key.h"

namespace rwd {
namespace {

// An ISO 8601 date (a real month and day), and the time of day and zone
// when one follows: 2026-11-29, 2026-11-29T10:04:05.123Z,
// 2026-11-29 10:04+01:00.
#define REWIND_ISO_DATE R"(\b\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))"
#define REWIND_ISO_TIME \
  R"((?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?)"

const std::vector<ReadyMadeNormalizer>& Table() {
  // Part of the key of every recording that names them: never change one.
  static const std::vector<ReadyMadeNormalizer> table = {
      {"date", REWIND_ISO_DATE "(?:[T ]" REWIND_ISO_TIME ")?", "<date>",
       "ISO 8601 dates, with the time and zone when one follows "
       "(2026-11-29, 2026-11-29T10:04:05Z)"},
      {"timestamp",
       REWIND_ISO_DATE "[T ]" REWIND_ISO_TIME
                       R"(|\b1\d{9}(?:\d{3}){0,3}(?:\.\d+)?\b)",
       "<timestamp>",
       "ISO 8601 date-times, and Unix times in s, ms, us or ns "
       "(1764410645, 1764410645123)"},
      {"uuid",
       R"(\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b)",
       "<uuid>", "UUIDs (123e4567-e89b-12d3-a456-426614174000)"},
      {"hex-id", R"((\b|_)[0-9A-Fa-f]{16,}\b)", R"(\1<hex-id>)",
       "16 or more hex digits standing alone or after '_' (trace ids, "
       "req_0f3a..., digests; long decimal numbers too)"},
  };
  return table;
}

#undef REWIND_ISO_DATE
#undef REWIND_ISO_TIME

const ReadyMadeNormalizer* FindReadyMade(const std::string& name) {
  for (const ReadyMadeNormalizer& r : Table()) {
    if (name == r.name) return &r;
  }
  return nullptr;
}

std::string ReadyMadeNames() {
  std::string names;
  for (const ReadyMadeNormalizer& r : Table()) {
    if (!names.empty()) names += ", ";
    names += r.name;
  }
  return names;
}

bool IsSegment(std::string_view s) {
  if (s == "*") return true;
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  if (path.empty()) return out;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    out.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

bool IsPath(const std::string& s) {
  if (s.empty()) return false;
  for (const std::string& seg : Segments(s)) {
    if (!IsSegment(seg)) return false;
  }
  return true;
}

RE2::Options Quiet() {
  RE2::Options o;
  o.set_log_errors(false);  // errors are returned, never printed
  return o;
}

}  // namespace

const std::vector<ReadyMadeNormalizer>& ReadyMadeNormalizers() {
  return Table();
}

bool Normalizer::operator==(const Normalizer& o) const {
  return path == o.path && name == o.name && pattern == o.pattern &&
         replacement == o.replacement;
}

std::string Normalizer::ToString() const {
  const std::string what = name.empty() ? pattern + "=>" + replacement : name;
  if (!path.empty()) return path + ":" + what;
  const size_t colon = what.find(':');
  if (colon != std::string::npos &&
      (colon == 0 || IsPath(what.substr(0, colon)))) {
    return ":" + what;
  }
  return what;
}

Result<Normalizer> Normalizer::Parse(const std::string& spec) {
  Normalizer n;
  std::string rest = spec;
  const size_t colon = spec.find(':');
  if (colon != std::string::npos &&
      (colon == 0 || IsPath(spec.substr(0, colon)))) {
    n.path = spec.substr(0, colon);
    rest = spec.substr(colon + 1);
  }
  const size_t arrow = rest.rfind("=>");
  if (arrow == std::string::npos) {
    n.name = rest;
  } else {
    n.pattern = rest.substr(0, arrow);
    n.replacement = rest.substr(arrow + 2);
  }
  Status s = n.Check();
  if (!s.ok()) return s;
  return n;
}

Status Normalizer::Check() const {
  if (!path.empty() && !IsPath(path)) {
    return Status::InvalidArgument(
        "the path \"" + path +
        "\" is not dotted segments of letters, digits, '_', '-' or '*'");
  }
  const std::string choices = " (ready-made: " + ReadyMadeNames() +
                              "; custom: REGEX=>REPLACEMENT; either may "
                              "have PATH: before it)";
  if (!name.empty()) {
    if (!pattern.empty() || !replacement.empty()) {
      return Status::InvalidArgument(
          "a normalizer is a ready-made name or a pattern, not both");
    }
    if (!FindReadyMade(name)) {
      return Status::InvalidArgument(
          "\"" + name + "\" is not a ready-made normalizer" + choices);
    }
    return Status::Ok();
  }
  if (pattern.empty()) {
    return Status::InvalidArgument(
        replacement.empty() ? "nothing to normalize" + choices
                            : std::string("the regular expression is empty"));
  }
  if (replacement.find("=>") != std::string::npos) {
    return Status::InvalidArgument("the replacement cannot hold \"=>\"");
  }
  RE2 re(pattern, Quiet());
  if (!re.ok()) {
    return Status::InvalidArgument("the regular expression \"" + pattern +
                                   "\" does not compile: " + re.error() +
                                   " (RE2 syntax)");
  }
  std::string error;
  if (!re.CheckRewriteString(replacement, &error)) {
    return Status::InvalidArgument("the replacement \"" + replacement +
                                   "\": " + error);
  }
  return Status::Ok();
}

Result<std::shared_ptr<const CompiledNormalizer>> CompiledNormalizer::Compile(
    const Normalizer& normalizer) {
  Status s = normalizer.Check();
  if (!s.ok()) return s;
  std::shared_ptr<CompiledNormalizer> c(new CompiledNormalizer());
  c->path_ = Segments(normalizer.path);
  for (const std::string& seg : c->path_) {
    const bool digits =
        seg.size() <= 18 && std::all_of(seg.begin(), seg.end(), [](char ch) {
          return ch >= '0' && ch <= '9';
        });
    c->index_.push_back(digits ? std::stoll(seg) : -1);
  }
  if (normalizer.name.empty()) {
    c->re_ = std::make_unique<RE2>(normalizer.pattern, Quiet());
    c->rewrite_ = normalizer.replacement;
  } else {
    const ReadyMadeNormalizer* r = FindReadyMade(normalizer.name);
    c->re_ = std::make_unique<RE2>(r->pattern, Quiet());
    c->rewrite_ = r->replacement;
  }
  return std::shared_ptr<const CompiledNormalizer>(std::move(c));
}

CompiledNormalizer::~CompiledNormalizer() = default;

bool CompiledNormalizer::SegmentMatches(size_t i, std::string_view name,
                                        bool is_index, size_t index) const {
  const std::string& seg = path_[i];
  if (seg == "*") return true;
  if (is_index)
    return index_[i] >= 0 && static_cast<size_t>(index_[i]) == index;
  return seg == name;
}

bool CompiledNormalizer::Apply(std::string_view text, std::string* out) const {
  const re2::StringPiece piece(text.data(), text.size());
  // Most strings hold no match: one DFA scan, no copy.
  if (!RE2::PartialMatch(piece, *re_)) return false;
  std::string s(text);
  RE2::GlobalReplace(&s, *re_, rewrite_);
  *out = std::move(s);
  return true;
}

}  // namespace rwd
