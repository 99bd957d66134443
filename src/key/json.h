// JSON helpers behind the request key: canonical form and field-level diff.
// Internal to rewind; RapidJSON stays out of the public headers.
#ifndef REWIND_SRC_KEY_JSON_H_
#define REWIND_SRC_KEY_JSON_H_

#include <string>
#include <vector>

namespace rwd {

// Dotted paths split into their segments: {"metadata", "trace_id"}.
using FieldPaths = std::vector<std::vector<std::string>>;

// Deepest nesting accepted as JSON; deeper documents are treated as bytes.
constexpr int kMaxJsonDepth = 256;

// If "text" is a JSON document, writes its canonical form (object members
// sorted by name, no insignificant whitespace, "ignore" paths removed) to
// *out and returns true. Returns false, leaving *out unspecified, otherwise.
bool CanonicalJson(const std::string& text, const FieldPaths& ignore,
                   std::string* out);

// If both texts are JSON documents, appends up to "limit" paths where they
// differ ("messages[1].content", "temperature") to *out and returns true.
// Returns false when either is not JSON.
bool DiffJson(const std::string& a, const std::string& b,
              const FieldPaths& ignore, size_t limit,
              std::vector<std::string>* out);

// If *body is a JSON document, replaces the value at each dotted path in
// "paths" that exists with the string "[REDACTED]" and rewrites *body
// (compact, member order kept). Returns whether anything was replaced.
bool RedactJsonFields(std::string* body, const std::vector<std::string>& paths);

}  // namespace rwd

#endif  // REWIND_SRC_KEY_JSON_H_
