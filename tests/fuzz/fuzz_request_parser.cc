// Fuzzes the request parser that frames every request the front serves.
// Properties, besides not crashing: reading the input in two pieces (split
// where the first byte says) gives what one read gives, and a parsed
// request written back to the wire (ToWire) parses to itself (nothing is
// lost or reinterpreted in the parsed form).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/request_parser.h"

namespace {

struct Outcome {
  rwd::RequestParser::State state;
  int status = 0;
  size_t consumed = 0;
  std::string normalized;
  std::string method;
};

Outcome Run(rwd::RequestParser* p, std::string_view in) {
  Outcome o;
  o.state = p->Parse(in);
  if (o.state == rwd::RequestParser::State::kError) o.status = p->status();
  if (o.state == rwd::RequestParser::State::kComplete) {
    o.consumed = p->consumed();
    rwd::ParsedRequest r = p->Take();
    o.normalized = rwd::ToWire(r);
    o.method = std::move(r.method);
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  rwd::RequestLimits limits;
  limits.max_body = 1 << 16;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = in.empty() ? 0 : data[0] % (in.size() + 1);

  rwd::RequestParser whole(limits);
  const Outcome a = Run(&whole, in);

  // What the parser decides on a prefix it must decide on the whole.
  rwd::RequestParser pieces(limits);
  Outcome b = Run(&pieces, in.substr(0, split));
  if (b.state == rwd::RequestParser::State::kIncomplete) b = Run(&pieces, in);
  if (a.state != b.state || a.status != b.status || a.consumed != b.consumed ||
      a.normalized != b.normalized) {
    std::abort();
  }
  if (a.state == rwd::RequestParser::State::kComplete) {
    rwd::RequestParser re(limits);
    const Outcome c = Run(&re, a.normalized);
    if (c.state != rwd::RequestParser::State::kComplete ||
        c.normalized != a.normalized || c.consumed != a.normalized.size()) {
      std::abort();
    }
  }
  return 0;
}
