// The request key: which recorded exchange answers a request.
//
// A key is XXH3-128 over a canonical, length-prefixed encoding of the method,
// the path, the query parameters (sorted by name, parameters of one name in
// their order), the chosen headers and the body. A JSON body is
// canonicalized first (object members sorted by name, members of one name
// in their order, whitespace dropped, each number in an exact canonical
// form, every occurrence of an ignored field removed); any other body, and
// a JSON body nested deeper than kMaxJsonDepth, is hashed as its bytes. The
// encoding is "<len>:<bytes>" per field, so no two different requests can
// produce the same input to the hash.
//
// The rules (ignored fields, matched headers) are stored in every recording,
// with the canonicalizer's Name(); replay refuses a recording made by another
// canonicalizer version (`rewind rekey` re-keys it).
//
// Thread-safety: a Canonicalizer is immutable after construction and safe for
// concurrent use.
#ifndef REWIND_REQUEST_KEY_H_
#define REWIND_REQUEST_KEY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "rewind/exchange.h"
#include "rewind/status.h"

namespace rwd {

// The deepest nesting of objects and arrays rewind treats as JSON: a body
// nested deeper (its ignored fields left out) is opaque bytes everywhere,
// the same way each time: keyed from its bytes, diffed as "body", shown and
// compared by `check` as bytes. Such a body that holds a --redact-field is
// forwarded but not recorded. `import` refuses a file nested deeper.
constexpr int kMaxJsonDepth = 256;

struct KeyRules {
  // Dotted JSON paths removed from the body before hashing ("user",
  // "metadata.trace_id"). Default: the volatile per-call fields of
  // OpenAI-compatible APIs (see DefaultIgnoredFields()).
  std::vector<std::string> ignore_fields;
  // Header names (case-insensitive) whose values join the key. Default: none.
  std::vector<std::string> match_headers;

  bool operator==(const KeyRules& other) const;

  // The rules as stored in a recording: a JSON object.
  std::string ToJson() const;
  static Result<KeyRules> FromJson(const std::string& json);
};

// user, request_id, metadata, store, service_tier, safety_identifier,
// prompt_cache_key.
std::vector<std::string> DefaultIgnoredFields();

struct RequestKey {
  uint64_t high = 0;
  uint64_t low = 0;

  bool operator==(const RequestKey& o) const {
    return high == o.high && low == o.low;
  }
  // 32 lowercase hex digits.
  std::string ToHex() const;
  static Result<RequestKey> FromHex(const std::string& hex);
};

struct RequestKeyHash {
  size_t operator()(const RequestKey& k) const {
    return static_cast<size_t>(k.low ^ (k.high * 0x9E3779B97F4A7C15ull));
  }
};

class Canonicalizer {
 public:
  explicit Canonicalizer(KeyRules rules);

  // Identifies the canonical encoding. Stored in recordings; changes
  // whenever the encoding of any request would change.
  // v2: numbers keyed by their exact value, all members of a repeated
  // name kept in order, repeated query parameters kept in order.
  static const char* Name() { return "rewind.json-v2"; }

  const KeyRules& rules() const { return rules_; }

  // The exact bytes that are hashed.
  std::string Canonical(const Request& request) const;
  RequestKey Key(const Request& request) const;

  // Human-readable differences between two requests under these rules, as
  // field paths: "query.stream", "header.x-model", "messages[1].content",
  // "temperature", or "body" for non-JSON bodies. Empty when they would
  // hash alike. At most "limit" entries.
  std::vector<std::string> Diff(const Request& a, const Request& b,
                                size_t limit = 20) const;

 private:
  KeyRules rules_;
  std::vector<std::vector<std::string>> ignore_paths_;  // split on '.'
};

// XXH3-128 of arbitrary bytes.
RequestKey HashBytes(const std::string& bytes);

}  // namespace rwd

#endif  // REWIND_REQUEST_KEY_H_
