// Fuzzes the canonical form and key of a request, and the field diff.
// Input: the first line is the query string, the rest the body.
#include <cstdint>
#include <string>

#include "rewind/request_key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const rwd::Canonicalizer canon(
      rwd::KeyRules{{"user", "metadata.trace", "a.b.c"}, {"x-model"}});
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
  canon.Diff(r, other);
  canon.Diff(r, r);
  return 0;
}
