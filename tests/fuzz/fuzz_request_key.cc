// Fuzzes the canonical form and key of a request, the field diff and body
// redaction. Input: the first line is the query string, the rest the body.
// Checks, besides not crashing: the key is deterministic; the diff against
// another request is empty exactly when the keys are equal; a redacted
// body (redacted fields being ignored ones) keys as the original did.
#include <cstdint>
#include <string>

#include "key/json.h"
#include "rewind/request_key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const rwd::Canonicalizer canon(
      rwd::KeyRules{{"user", "metadata.trace", "a.b.c"}, {"x-model"}});
  static const std::vector<std::string> kRedacted = {"user", "a.b.c"};
  const std::string input(reinterpret_cast<const char*>(data), size);
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
  if (canon.Diff(r, other).empty() != (canon.Key(other) == key)) __builtin_trap();
  if (!canon.Diff(r, r).empty()) __builtin_trap();
  rwd::Request redacted = r;
  rwd::Result<bool> changed = rwd::RedactJsonFields(&redacted.body, kRedacted);
  if (changed.ok() && changed.value()) {
    if (!(canon.Key(redacted) == key)) __builtin_trap();
    if (!canon.Diff(r, redacted).empty()) __builtin_trap();
  } else if (redacted.body != r.body) {
    __builtin_trap();  // unchanged unless redacted
  }
  return 0;
}
