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
  HeaderList headers;      // end-to-end headers (no framing headers)
  bool chunked = false;    // sent with Transfer-Encoding: chunked
  int64_t headers_us = 0;  // offset at which the headers were ready
  std::vector<Chunk> chunks;
  // rewind's own share of a recorded answer's time, measured by the
  // rewind that recorded it; -1 when not known (recorded before rewind
  // measured it, imported from HAR, synthesized).
  //
  //   own_before_us  from the request's receipt to the moment it was
  //                  handed to the backend's connection (a connection
  //                  set up first included): part of every offset above,
  //                  which count from receipt. Latency "recorded-net"
  //                  takes it out.
  //   own_after_us   from the last byte from the backend to the exchange's
  //                  row written by the store's writer: time the client
  //                  waited for (its last bytes, and a Content-Length body
  //                  of up to 256 KiB whole) that is in no offset above.
  //                  The group commit that follows the row is not in it.
  int64_t own_before_us = -1;
  int64_t own_after_us = -1;

  // All chunk bytes concatenated.
  std::string Body() const;
  // Offset of the last byte: the last chunk's, or headers_us without body.
  int64_t TotalMicros() const;
};

struct Exchange {
  int64_t id = 0;       // assigned by the store; 0 before it is stored
  std::string key_hex;  // RequestKey::ToHex() of the request
  Request request;      // secrets already redacted
  Response response;
  int64_t started_at_us = 0;      // wall-clock time of receipt (Unix, µs)
  int64_t arrival_offset_us = 0;  // receipt time since the session started
  bool complete = true;           // false when the upstream response broke off
  std::string error;              // why it is incomplete; "" when complete
};

}  // namespace rwd

#endif  // REWIND_EXCHANGE_H_
