// Fuzzes the scrubber (src/scrub/) with every built-in detector: a body
// read as JSON, SSE, NDJSON, a form and text; a query, a path, a header; a
// response cut into chunks. Checks what the scrubber promises:
//  - JSON stays JSON (a number replaced becomes a string);
//  - scrubbing what was scrubbed changes nothing;
//  - a response keeps its chunks and their offsets.
#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "scrub/detectors.h"
#include "scrub/scrubber.h"

namespace {

const rwd::scrub::Scrubber& Store() {
  static const rwd::scrub::Scrubber* s = [] {
    auto d = rwd::scrub::Detectors::Make(rwd::scrub::BuiltinKinds(),
                                         {"order=ORD-[0-9]{6}"});
    if (!d.ok()) __builtin_trap();
    return new rwd::scrub::Scrubber(d.value(), rwd::scrub::Mode::kStore,
                                    "a-fuzzing-key-of-some-length");
  }();
  return *s;
}

const rwd::scrub::Scrubber& Key() {
  static const rwd::scrub::Scrubber* s = [] {
    auto d = rwd::scrub::Detectors::Make(rwd::scrub::BuiltinKinds(), {});
    if (!d.ok()) __builtin_trap();
    return new rwd::scrub::Scrubber(d.value(), rwd::scrub::Mode::kKey);
  }();
  return *s;
}

bool IsJson(const std::string& s) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(s.data(), s.size());
  return !d.HasParseError();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const rwd::scrub::Scrubber& s = Store();
  for (const char* type :
       {"application/json", "text/event-stream", "application/x-ndjson",
        "text/plain", "application/x-www-form-urlencoded"}) {
    auto once = s.Body(input, type, "");
    if (!once.ok()) __builtin_trap();
    auto twice = s.Body(once.value(), type, "");
    if (!twice.ok() || twice.value() != once.value()) __builtin_trap();
    Key().Body(input, type, "");
  }
  if (IsJson(input)) {
    auto out = s.Body(input, "application/json", "");
    if (!IsJson(out.value())) __builtin_trap();
  }
  const std::string query = s.Query(input);
  if (s.Query(query) != query) __builtin_trap();
  s.Path(input);
  s.HeaderValue("X-Note", input);

  rwd::Response r;
  r.headers = {{"Content-Type", "text/event-stream"}};
  const size_t third = size / 3;
  r.chunks = {{10, input.substr(0, third)},
              {20, input.substr(third, third)},
              {30, input.substr(2 * third)}};
  if (!s.ScrubResponse(&r).ok() || r.chunks.size() != 3 ||
      r.chunks[0].offset_us != 10 || r.chunks[2].offset_us != 30) {
    __builtin_trap();
  }
  return 0;
}
