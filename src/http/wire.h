// The front's two ends of an exchange with a client: the request as the
// handlers read it, made from what RequestParser framed, and the writing of
// the response they fill in (a cpp-httplib Response: its body, or the
// content provider that streams one).
//
// cpp-httplib's Server would parse the request a second time, write each
// response header with snprintf and the head and body in two sends, add
// "Accept-Ranges" and "Keep-Alive: timeout=5, max=5" whatever rewind's own
// timeouts, and compress answers itself when the client accepts gzip. Here
// the request is parsed once, the head is written with the body in one
// send, and nothing is re-encoded: rewind sends bytes as they were
// recorded or relayed.
#ifndef REWIND_SRC_HTTP_WIRE_H_
#define REWIND_SRC_HTTP_WIRE_H_

#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "http/request_parser.h"
#include "rewind/exchange.h"

namespace rwd {

// One request as the front serves it.
struct FrontRequest {
  // What rewind keys, forwards and records: the method as sent, the raw
  // path and query, the end-to-end headers as sent and in their order
  // (hop-by-hop ones and Accept-Encoding left out: the backend is asked
  // for an answer without a Content-Encoding, so a recording stays
  // readable, scrubbable and convertible), the decoded body.
  Request request;
  // The request target as sent, without a fragment.
  std::string target;
  // The path percent-decoded: what routes, error dialects and logs use.
  std::string path;
  bool http10 = false;
};

FrontRequest MakeFrontRequest(ParsedRequest&& parsed);

// The value of parameter "name" in a raw query ("a=1&b=2"), decoded;
// nullopt-like false when absent.
bool QueryParam(const std::string& query, const std::string& name,
                std::string* value);

// Where a response goes: the client's socket, and how long a write may
// wait for room before the client is given up on.
struct ClientEnd {
  int fd = -1;
  int write_timeout_ms = 5000;
};

// How the connection goes on after a response.
struct ResponseFraming {
  bool head = false;     // a HEAD request: headers only
  bool close = false;    // the connection closes after this response
  bool http10 = false;   // no chunked coding: a stream ends with the close
  int keep_alive_s = 5;  // said in Keep-Alive when it stays open
};

struct WriteResult {
  // The connection can carry another request.
  bool ok = false;
  // Body bytes written (before chunked framing).
  uint64_t body_bytes = 0;
};

// The head of a response and how its body follows.
struct FramedHead {
  std::string head;          // status line, headers, blank line
  bool whole = false;        // res.body follows (in the same send)
  bool provided = false;     // the body follows piece by piece
  bool chunked = false;      // ... as chunks
  bool until_close = false;  // ... ending with the connection
  bool close = false;        // the connection closes after the response
};

// The head WriteResponse writes for "res" (see there), whose body is
// res.body unless "provided": then it follows piece by piece, "length"
// bytes (0: not known in advance; chunked when "chunked_provider" and the
// client reads chunked coding, else until the close).
FramedHead FrameResponse(const ResponseFraming& how,
                         const httplib::Response& res, bool provided,
                         uint64_t length, bool chunked_provider);

// The same for an answer given as a status, headers in the order they are
// written, and a whole body of "body_size" bytes (0: none) or one
// "provided" piece by piece.
FramedHead FrameAnswer(const ResponseFraming& how, int status,
                       const HeaderList& headers, size_t body_size,
                       bool provided, uint64_t length, bool chunked_provider);

// Writes "head" and then "body" (if any) to the client in one send, as
// SendAll does. False if the client is gone or slow.
bool WriteWhole(const ClientEnd& client, std::string* head,
                const std::string& body);

// Writes "res" to the client: the status line, res.headers, then the
// framing rewind adds: Content-Length (of the body, or of a provider that
// announced one) or Transfer-Encoding: chunked (a chunked provider; to an
// HTTP/1.0 client its body is sent plain and ends with the connection), a
// Content-Type of text/plain for a body that has none, Connection: close
// or Keep-Alive. Then the body (in the same send as the head) or what the
// content provider writes, as it writes it; nothing after a HEAD, 204 or
// 304. A provider that fails, stops short of its announced length or
// cannot be written ends the connection (ok false).
WriteResult WriteResponse(const ClientEnd& client, const ResponseFraming& how,
                          httplib::Response& res);

// Writes all of "data" to a non-blocking socket, waiting for room at most
// "timeout_ms" each time none is left. False if the peer is gone or slow.
bool SendAll(int fd, const char* data, size_t size, int timeout_ms);

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_WIRE_H_
