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
// Two rules rewrite a JSON body after its ignored fields are left out and
// before it is hashed, so that requests that differ only in what a test
// cannot hold still share a key: content equivalence (a message's "content"
// given as one text part keys as the same text given as a string), then the
// normalizers in their order (a regular expression's matches in string
// values replaced, e.g. every ISO date with "<date>").
//
// The rules (ignored fields, matched headers, normalizers, content
// equivalence) are stored in every recording, with the canonicalizer's
// NameFor() them; replay refuses a recording made by a canonicalizer version
// this build does not read (`rewind rekey` re-keys it).
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

// A rule rewriting string values before they are hashed: every match of a
// regular expression (RE2 syntax) is replaced, in the strings at or under
// a dotted path. Either ready-made (a name, see ReadyMadeNormalizers()) or
// custom (a pattern and a replacement).
struct Normalizer {
  // Segments separated by '.': a member name, "*" (any member or array
  // index) or a number (that array index, or a member of that name). The
  // rule applies to every string value whose path starts with these
  // segments; empty: every string value in the body.
  std::string path;
  // A ready-made normalizer's name ("date", "timestamp", "uuid", "hex-id");
  // empty for a custom one.
  std::string name;
  // Custom: the regular expression and its replacement (RE2's rewrite
  // syntax: \0 the whole match, \1..\9 its groups, \\ a backslash).
  std::string pattern;
  std::string replacement;

  bool operator==(const Normalizer& other) const;

  // The flag's spelling: "[PATH:]NAME" or "[PATH:]REGEX=>REPLACEMENT" (a
  // leading ':' when the path is empty and the regex would read as one).
  std::string ToString() const;
  // Parses that spelling, checking the path, the name or the pattern (it
  // compiles) and the replacement (its \N refer to groups that exist).
  // The text before the first ':' is a path when it is made of path
  // segments (letters, digits, '_', '-', or "*"); ":REGEX=>..." is a regex
  // with no path. The regex ends at the last "=>".
  static Result<Normalizer> Parse(const std::string& spec);
  // Checks a normalizer read from a recording as Parse() checks a flag.
  Status Check() const;
};

struct ReadyMadeNormalizer {
  const char* name;
  const char* pattern;      // RE2 syntax
  const char* replacement;  // RE2 rewrite
  const char* help;         // what it matches, for --help and errors
};

// date, timestamp, uuid, hex-id. Their patterns are part of the key of
// every recording that uses them: never change one (add a new name).
const std::vector<ReadyMadeNormalizer>& ReadyMadeNormalizers();

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
  // Applied in their order, after content equivalence. Default: none.
  std::vector<Normalizer> normalizers = {};
  // Whether the "content" of each member of a top-level "messages" array,
  // given as a list of exactly one text part ([{"type":"text","text":T}],
  // nothing else in the part), keys as the string T: OpenAI's and
  // Anthropic's APIs accept both, and clients differ in which they send.
  // On for new rules; a recording whose stored rules predate it (no
  // "content_equivalence" member) reads as off, so its keys stay as made.
  bool content_equivalence = true;
  // Whether the body's top-level "tools" and "functions" lists key as
  // sets: when every item names a tool ("name", as the Responses,
  // Anthropic and Ollama APIs and OpenAI's "functions" write it;
  // "function.name", as OpenAI's chat API does; else a built-in tool's
  // "type"), the items are ordered by that name before hashing, so the
  // same tools offered in another order are the same request. Items of
  // one name keep their order; a list with an unnamed item is left as
  // sent. On for new rules; a recording whose stored rules predate it (no
  // "tool_sets" member) reads as off, so its keys stay as made.
  bool tool_sets = true;

  bool operator==(const KeyRules& other) const;
  // Whether the rules use anything a rewind older than normalizers, content
  // equivalence and scrub detectors cannot apply (Canonicalizer::NameFor()).
  bool NeedsMatchingRules() const;

  // The rules as stored in a recording: a JSON object. The scrub lists and
  // the normalizers are written only when set, so a recording without them
  // keeps its bytes; content equivalence always (absent, it reads as off);
  // tool sets only when on (absent, they read as off).
  // FromJson() checks every normalizer (a bad one is Corruption).
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

struct BodyRules;

// One field two requests differ in (Canonicalizer::DiffFields).
struct FieldDifference {
  // As Canonicalizer::Diff names it: "messages[0].content", "query.v".
  std::string path;
  // Whether the values below are set: only for a field of a JSON body.
  bool shown = false;
  // Excerpts of the field's value in each request, as JSON text (a
  // string in quotes, control characters escaped): at most about 80 bytes
  // plus "…" where cut, the first byte that differs in view
  // (`"…Now is 2026-11-30…"`). Empty where the field is absent. Taken
  // from the requests as keyed: a value the rules' detectors find is its
  // type ("<email>"); ignored (and so redacted) fields never differ.
  std::string a, b;
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
  // The name a recording made under "rules" is stamped with: Name(),
  // "rewind.json-v3" when the rules use normalizers, content equivalence or
  // scrub detectors (the same encoding, plus those rules), or
  // "rewind.json-v4" when they use tool sets, so that a rewind older than
  // a rule refuses the recording instead of keying its requests without it.
  static const char* NameFor(const KeyRules& rules);
  // Whether this build reads keys stamped "name" (v2, v3 and v4).
  static bool Reads(const std::string& name);

  const KeyRules& rules() const { return rules_; }

  // The exact bytes that are hashed: a normalized string appears as it is
  // hashed ("Today is <date>").
  std::string Canonical(const Request& request) const;
  RequestKey Key(const Request& request) const;
  // Key() of a request the rules' detectors have already scrubbed for
  // storing (its values are placeholders): equal to Key() of the original,
  // without scanning it again. Key() otherwise.
  RequestKey KeyOfScrubbed(const Request& scrubbed) const;

  // Human-readable differences between two requests under these rules, as
  // field paths: "query.stream", "header.x-model", "messages[1].content",
  // "temperature", or "body" for non-JSON bodies. Empty when they would
  // hash alike. At most "limit" entries.
  std::vector<std::string> Diff(const Request& a, const Request& b,
                                size_t limit = 20) const;
  // Diff(), each field with excerpts of its two values for the first
  // "shown" differences in the JSON body.
  std::vector<FieldDifference> DiffFields(const Request& a, const Request& b,
                                          size_t limit, size_t shown) const;

 private:
  // The request as keyed: scrubbed to types when the rules scrub.
  const Request& Keyed(const Request& request, Request* scratch,
                       const scrub::Scrubber* scrubber) const;
  std::string CanonicalOf(const Request& request) const;

  KeyRules rules_;
  std::shared_ptr<const scrub::Scrubber> scrubber_;  // kKey mode, or null
  // What the body's canonical form applies: the ignored paths, content
  // equivalence, the normalizers compiled (src/key/json.h); shared by copies.
  std::shared_ptr<const BodyRules> body_rules_;
  std::shared_ptr<const scrub::Scrubber> placeholders_;  // placeholders only
};

// OK when the scrub lists of the rules name known kinds and valid patterns.
Status ValidateScrubRules(const KeyRules& rules);

// XXH3-128 of arbitrary bytes.
RequestKey HashBytes(const std::string& bytes);

}  // namespace rwd

#endif  // REWIND_REQUEST_KEY_H_
