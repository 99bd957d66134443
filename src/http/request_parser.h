// rewind's reading of an HTTP/1.x request off the wire. cpp-httplib 0.11
// parses leniently where a proxy must not (a space before a header's colon,
// obs-fold lines, two different Content-Lengths), waits for a body that
// RFC 9112 says is absent, refuses chunked trailers and methods it does not
// know, and drops pipelined requests. This parser frames each request
// itself, strictly, and hands the front one request at a time: the method
// and target as sent, the headers as sent, the decoded body.
//
// Incremental: call Parse() with the connection's buffer each time it grows
// (the buffer must keep its prefix until the request is taken). It keeps
// its place, so a request read in many pieces costs linear time.
#ifndef REWIND_SRC_HTTP_REQUEST_PARSER_H_
#define REWIND_SRC_HTTP_REQUEST_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rewind/exchange.h"

namespace rwd {

struct RequestLimits {
  // Request line: longer gets 414.
  size_t max_request_line = 8192;
  // Any one header line, and the whole head: longer gets 431.
  size_t max_header_line = 8192;
  size_t max_head = 64 * 1024;
  // Header lines in one request: more gets 431.
  size_t max_headers = 1000;
  // Decoded body: larger gets 413.
  size_t max_body = 64u << 20;
};

// One request, framed and checked.
struct ParsedRequest {
  // As the client sent them: any token as method, the target unchecked
  // beyond control characters (the front refuses what is not a path).
  std::string method;
  std::string target;
  // Every header line as sent, in order, except those the parser consumed:
  // Content-Length and Transfer-Encoding (the body below is decoded) and
  // Expect (answered by the connection layer).
  HeaderList headers;
  std::string body;
  bool http10 = false;
  // The client asked to close after this request (Connection: close, or
  // HTTP/1.0 without keep-alive).
  bool close = false;
};

// "request" as one HTTP/1.x message with a Content-Length: what a request
// with its parsed form looks like on the wire. Parsing it gives the same
// request back.
std::string ToWire(const ParsedRequest& request);

class RequestParser {
 public:
  enum class State { kIncomplete, kComplete, kError };

  explicit RequestParser(const RequestLimits& limits) : limits_(limits) {}

  // Parses the request at the start of "in". kComplete: request() is
  // ready and consumed() bytes of "in" belong to it. kError: status() and
  // message() say why (the connection must then be closed: its framing is
  // lost).
  State Parse(std::string_view in);

  // After kComplete: the request; resets the parser for the next one.
  ParsedRequest Take();
  size_t consumed() const { return consumed_; }

  int status() const { return error_status_; }
  const std::string& message() const { return error_message_; }

  // True once the head is read and the body is still on its way, with
  // "Expect: 100-continue": the client waits for an interim answer.
  bool wants_continue() const { return head_done_ && expect_continue_; }
  void continue_sent() { expect_continue_ = false; }
  bool head_done() const { return head_done_; }
  // True once any byte of this request (not leading blank lines) arrived.
  bool started() const { return started_; }
  // The body's announced length, once the head is read (0 when chunked).
  size_t announced_body() const { return content_length_; }

 private:
  State Fail(int status, std::string message);
  State ParseHead(std::string_view head);
  State ParseChunked(std::string_view in);

  RequestLimits limits_;
  // Where the head ends ("\r\n\r\n" included), once found.
  size_t head_end_ = 0;
  bool head_done_ = false;
  bool started_ = false;
  size_t skip_ = 0;  // leading CRLFs before the request line
  size_t scan_from_ = 0;
  bool chunked_ = false;
  bool expect_continue_ = false;
  size_t content_length_ = 0;
  // Chunked decoding: the next unread byte of "in", and what is decoded.
  size_t chunk_pos_ = 0;
  enum class ChunkStep {
    kSize,
    kData,
    kDataEnd,
    kTrailer
  } chunk_step_ = ChunkStep::kSize;
  size_t chunk_left_ = 0;
  size_t trailer_lines_ = 0;
  std::string body_;
  size_t consumed_ = 0;
  int error_status_ = 0;
  std::string error_message_;
  ParsedRequest request_;
};

// The reason phrase of an HTTP status code ("OK", "Not Found"); for a code
// without one, that of its class ("Client Error").
const char* ReasonPhrase(int status);

// A complete response for a request refused before any handler ran:
// "HTTP/1.1 STATUS ...", a JSON error body, Connection: close.
std::string RejectionResponse(int status, const std::string& message);

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_REQUEST_PARSER_H_
