// Fuzzes the scrubber (src/scrub/) with every built-in detector: a body
// read as JSON, SSE, NDJSON, a form and text; a query, a path, a header; a
// response cut into chunks. Nothing may crash or leak (ASan, UBSan), a JSON
// document must stay JSON (a number replaced becomes a string), and a
// response must keep its chunks and their offsets.
//
// Scrubbing twice is not checked: it is not idempotent, as this target
// found. A placeholder can complete another match beside it ("+1 455 555
// 01 455 555 0132": the first pass replaces "455 555 0132", the second
// then reads "+1 455 555 01" as a phone), and in a body that only looks
// like JSON a number replaced by a quoted placeholder moves where later
// string literals begin. Both inputs are in the seed corpus.
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
  const bool json = IsJson(input);
  for (const char* type :
       {"application/json", "text/event-stream", "application/x-ndjson",
        "text/plain", "application/x-www-form-urlencoded"}) {
    if (!s.Body(input, type, "").ok()) __builtin_trap();
    Key().Body(input, type, "");
  }
  if (json) {
    auto out = s.Body(input, "application/json", "");
    if (!IsJson(out.value())) __builtin_trap();
  }
  s.Query(input);
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
