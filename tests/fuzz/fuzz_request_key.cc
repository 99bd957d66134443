// Fuzzes the canonical form and key of a request, the field diff and body
// redaction, under plain rules and under rules with normalizers (every
// ready-made one, custom ones under paths) and content equivalence.
// Input: the first line is the query string, the rest the body.
// Checks, besides not crashing: the key is deterministic; the diff against
// another request is empty exactly when the keys are equal; a redacted
// body (redacted fields being ignored ones) keys as the original did.
#include <cstdint>
#include <string>

#include "key/json.h"
#include "rewind/request_key.h"

namespace {

rwd::KeyRules Plain() {
  rwd::KeyRules rules{{"user", "metadata.trace", "a.b.c"}, {"x-model"}};
  rules.content_equivalence = false;
  return rules;
}

rwd::KeyRules Matching() {
  rwd::KeyRules rules{{"user", "metadata.trace", "a.b.c"}, {"x-model"}};
  for (const char* spec : {"date", "timestamp", "uuid", "hex-id",
                           "messages.*.content:(\\w+)@(\\w+)=>\\2 at \\1",
                           "*.1:x*=>", "a.b:.=>\\0\\0"}) {
    rules.normalizers.push_back(rwd::Normalizer::Parse(spec).value());
  }
  return rules;
}

void Check(const rwd::Canonicalizer& canon, const std::string& input) {
  static const std::vector<std::string> kRedacted = {"user", "a.b.c"};
  rwd::Request r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  const size_t nl = input.find('\n');
  r.query = input.substr(0, nl);
  r.body = nl == std::string::npos ? "" : input.substr(nl + 1);
  r.headers = {{"X-Model", r.query}};
  const rwd::RequestKey key = canon.Key(r);
  if (!(key == canon.Key(r))) __builtin_trap();  // deterministic
  rwd::Request other = r;
  other.body = R"({"model":"m","messages":[{"role":"user","content":"x"}]})";
  if (canon.Diff(r, other).empty() != (canon.Key(other) == key))
    __builtin_trap();
  if (!canon.Diff(r, r).empty()) __builtin_trap();
  rwd::Request redacted = r;
  rwd::Result<bool> changed = rwd::RedactJsonFields(&redacted.body, kRedacted);
  if (changed.ok() && changed.value()) {
    if (!(canon.Key(redacted) == key)) __builtin_trap();
    if (!canon.Diff(r, redacted).empty()) __builtin_trap();
  } else if (redacted.body != r.body) {
    __builtin_trap();  // unchanged unless redacted
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const rwd::Canonicalizer plain(Plain());
  static const rwd::Canonicalizer matching(Matching());
  const std::string input(reinterpret_cast<const char*>(data), size);
  Check(plain, input);
  Check(matching, input);
  return 0;
}
