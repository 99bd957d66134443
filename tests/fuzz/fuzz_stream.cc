// Fuzzes the stream comparison of `rewind check`: SSE bodies summarized
// by content and compared, recorded against new.
#include <cstdint>
#include <string>

#include "cli/compare.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  rwd::StreamSummary(input);
  const size_t half = size / 2;
  rwd::Response a, b;
  a.headers = b.headers = {{"Content-Type", "text/event-stream"}};
  a.chunks = {{0, input.substr(0, half)}, {1, input.substr(half)}};
  b.chunks = {{0, input}};
  // The same bytes cut differently compare equal.
  if (!rwd::CompareResponses(a, b, {}).empty()) __builtin_trap();
  rwd::CompareOptions loose;
  loose.float_tolerance = 0.5;
  loose.ignore_fields = {"choices.*.text", "usage"};
  b.headers = {{"Content-Type", "application/json"}};
  rwd::CompareResponses(a, b, loose);
  return 0;
}
