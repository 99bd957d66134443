// JSON helpers behind the request key: canonical form, field-level diff and
// redaction. Internal to rewind; RapidJSON stays out of the public headers.
//
// Every function here reads with RapidJSON's iterative SAX parser, numbers
// kept as their text (kParseNumbersAsStringsFlag), and walks what it built
// without recursion deeper than kMaxJsonDepth (rewind/request_key.h), so no
// input can exhaust the stack.
#ifndef REWIND_SRC_KEY_JSON_H_
#define REWIND_SRC_KEY_JSON_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rewind/request_key.h"
#include "rewind/status.h"

namespace re2 {
class RE2;
}

namespace rwd {

// Dotted paths split into their segments: {"metadata", "trace_id"}.
using FieldPaths = std::vector<std::vector<std::string>>;

// A Normalizer compiled (src/key/normalize.cc). Immutable; safe for
// concurrent use (RE2 objects are).
class CompiledNormalizer {
 public:
  // Fails as Normalizer::Check() does.
  static Result<std::shared_ptr<const CompiledNormalizer>> Compile(
      const Normalizer& normalizer);
  ~CompiledNormalizer();

  const std::vector<std::string>& path() const { return path_; }
  // Whether "segment" of a value's path is matched by path()[i]: "*" any,
  // else the member name, or the array index written in decimal.
  bool SegmentMatches(size_t i, std::string_view name, bool is_index,
                      size_t index) const;
  // Writes "text" with every match of the pattern replaced to *out and
  // returns true; returns false, *out untouched, when nothing matches.
  bool Apply(std::string_view text, std::string* out) const;

 private:
  CompiledNormalizer() = default;
  std::vector<std::string> path_;
  std::vector<int64_t> index_;  // path_[i] as an array index, or -1
  std::unique_ptr<re2::RE2> re_;
  std::string rewrite_;
};

// What the canonical form applies to a JSON body, in this order: leaves
// out the ignored paths, then (content_equivalence) makes each
// messages[i].content holding one text part that part's text, then
// rewrites string values with each normalizer in turn. With tool_sets, the
// root's "tools" and "functions" lists of named tools are written ordered
// by name (src/key/json_tree.h: IsToolSet).
struct BodyRules {
  FieldPaths ignore;
  bool content_equivalence = false;
  bool tool_sets = false;
  std::vector<std::shared_ptr<const CompiledNormalizer>> normalizers;
};

// Appends the canonical text of the JSON number "number" (RFC 8259's
// grammar, which the caller has checked) to *out. Exact: it depends only on
// the number's value, so "1.0", "1e0", "10E-1" and "0.1e1" all give "1",
// "-0" and "0e5" give "0", and two numbers of different value never share a
// form. The form is the shortest digit string D (no leading or trailing
// zeros) with the decimal exponent S of its first digit, written plainly
// when -7 < S < 21 ("1500", "0.25", "0.000001", "18446744073709551617") and
// as "D[0].D[1..]eS" otherwise ("1e21", "1.23e-7", "2.4703282292062328e-324").
void AppendCanonicalNumber(std::string_view number, std::string* out);

// If "text" is a JSON document that, its ignored paths left out, nests at
// most kMaxJsonDepth levels, writes its canonical form to *out and returns
// true: object members sorted by name (bytewise; members of one name keep
// their order), no insignificant whitespace, numbers in
// AppendCanonicalNumber's form, every occurrence of an ignored path
// removed, then "rules"' rewrites applied. Returns false, leaving *out
// unspecified, otherwise.
bool CanonicalJson(const std::string& text, const BodyRules& rules,
                   std::string* out);

// If both texts are JSON documents as CanonicalJson accepts them, appends up
// to "limit" fields where they differ ("messages[1].content",
// "temperature") to *out and returns true; none exactly when their
// canonical forms are equal. The first "shown" of them carry excerpts of
// both values (FieldDifference). With rules.tool_sets, the items of a tool
// set are paired by name and each item that differs is one field
// ("tools[get_weather]" added or removed, "tools[get_weather].parameters"
// changed: the path its differences share). Returns false when either text
// is not JSON.
bool DiffJson(const std::string& a, const std::string& b,
              const BodyRules& rules, size_t limit, size_t shown,
              std::vector<FieldDifference>* out);

// Replaces the value of every member at one of the dotted "paths" (object
// members from the root; every occurrence, duplicate names included) with
// the string "[REDACTED]" and rewrites *body compactly, member order,
// strings and number texts kept. Returns whether anything was replaced; a
// body that is not JSON, or holds none of the paths, is left as it is.
// Fails, leaving *body as it was, when a secret might stay in the body or
// the redacted body would not key as the original did: a body that looks
// like JSON (its first byte past whitespace and a UTF-8 byte order mark is
// '{' or '[') but does not parse, or one that, the redacted values left
// out, nests deeper than kMaxJsonDepth and holds one of the paths.
Result<bool> RedactJsonFields(std::string* body,
                              const std::vector<std::string>& paths);

}  // namespace rwd

#endif  // REWIND_SRC_KEY_JSON_H_
