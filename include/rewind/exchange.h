// The data rewind records and replays: one request, one response and the
// response's timeline.
//
// A Timeline is what every mode produces and the paced writer consumes: the
// offset (from request receipt) at which the response headers were ready and
// the ordered pieces of the body, each with its own offset. Offsets are
// microseconds.
//
// Thread-safety: plain values.
#ifndef REWIND_EXCHANGE_H_
#define REWIND_EXCHANGE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rwd {

// Header fields in arrival order; names keep their original case and are
// compared case-insensitively.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive ASCII comparison of header names.
bool HeaderNameEquals(std::string_view a, std::string_view b);

// True when the header can be written as one line: a non-empty name
// without ':', CR, LF or NUL, and a value without CR, LF or NUL. A
// recording can come from elsewhere (import); a line break in a header
// would let it add headers, or a body, of its own to a response.
bool IsWritableHeader(std::string_view name, std::string_view value);

// True for rewind's own headers: X-Rewind and every X-Rewind-* (any case).
// A rewind sets those of its answers itself: they are never relayed from
// a backend (which may be another rewind) nor recorded, and a recording
// that holds some (made before this rule) does not replay them.
bool IsRewindHeader(std::string_view name);

// Value of the first header named "name", or "" when absent.
std::string FindHeader(const HeaderList& headers, const std::string& name);

struct Request {
  std::string method;  // "POST"
  std::string path;    // raw path, without the query: "/v1/chat/completions"
  std::string query;   // raw query string without '?': "a=1&b=2", or ""
  HeaderList headers;  // end-to-end headers as the client sent them
  std::string body;

  // "/path?query", or "/path" when there is no query.
  std::string Target() const;
};

struct Chunk {
  int64_t offset_us = 0;  // from request receipt
  std::string data;
};

struct Response {
  int status = 0;
  HeaderList headers;       // end-to-end headers (no framing headers)
  bool chunked = false;     // sent with Transfer-Encoding: chunked
  int64_t headers_us = 0;   // offset at which the headers were ready
  std::vector<Chunk> chunks;

  // All chunk bytes concatenated.
  std::string Body() const;
  // Offset of the last byte: the last chunk's, or headers_us without body.
  int64_t TotalMicros() const;
};

struct Exchange {
  int64_t id = 0;        // assigned by the store; 0 before it is stored
  std::string key_hex;   // RequestKey::ToHex() of the request
  Request request;       // secrets already redacted
  Response response;
  int64_t started_at_us = 0;      // wall-clock time of receipt (Unix, µs)
  int64_t arrival_offset_us = 0;  // receipt time since the session started
  bool complete = true;  // false when the upstream response broke off
  std::string error;     // why it is incomplete; "" when complete
};

}  // namespace rwd

#endif  // REWIND_EXCHANGE_H_
