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
#include <memory>
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
  // Detectors applied before keying and storing (record --scrub): built-in
  // kinds ("email", "phone", ...) and "NAME=REGEX" patterns. A value they
  // find, and a placeholder a recording holds instead ("<email:3f9a1c2b>"),
  // are keyed as their type ("<email>"), so a request carrying any e-mail
  // keys like the recorded one. Stored (never the secret) so that replay
  // scrubs a live request the same way. Default: none.
  std::vector<std::string> scrub = {};
  std::vector<std::string> scrub_patterns = {};

  bool operator==(const KeyRules& other) const;

  // The rules as stored in a recording: a JSON object. The scrub lists are
  // written only when set, so a recording without them keeps its bytes.
  std::string ToJson() const;
  static Result<KeyRules> FromJson(const std::string& json);
};

namespace scrub {
class Scrubber;
}

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
  // REQUIRES: the rules' scrub lists are valid (KeyRules::FromJson and the
  // command line check them); invalid ones are not applied.
  explicit Canonicalizer(KeyRules rules);
  ~Canonicalizer();
  Canonicalizer(const Canonicalizer&);
  Canonicalizer& operator=(const Canonicalizer&);

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
  // The request as keyed: scrubbed to types when the rules scrub.
  const Request& Keyed(const Request& request, Request* scratch) const;
  std::string CanonicalOf(const Request& request) const;

  KeyRules rules_;
  std::vector<std::vector<std::string>> ignore_paths_;  // split on '.'
  std::shared_ptr<const scrub::Scrubber> scrubber_;     // kKey mode, or null
};

// OK when the scrub lists of the rules name known kinds and valid patterns.
Status ValidateScrubRules(const KeyRules& rules);

// XXH3-128 of arbitrary bytes.
RequestKey HashBytes(const std::string& bytes);

}  // namespace rwd

#endif  // REWIND_REQUEST_KEY_H_
