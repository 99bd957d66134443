// Conversions between cpp-httplib's types and rewind's. Only src/http/
// includes httplib.
#ifndef REWIND_SRC_HTTP_HTTP_UTIL_H_
#define REWIND_SRC_HTTP_HTTP_UTIL_H_

#include <httplib.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "rewind/exchange.h"
#include "rewind/redact.h"
#include "util/text.h"

namespace rwd {

// Headers that describe one connection or the framing of one message, never
// forwarded and never stored: Connection, Keep-Alive, Proxy-Connection, TE,
// Trailer, Transfer-Encoding, Upgrade, Content-Length, Proxy-Authorization,
// Proxy-Authenticate.
bool IsHopByHop(const std::string& name);

// Adds the header names a Connection header's value lists ("keep-alive,
// X-Hop") to "names": those headers are hop-by-hop too (RFC 9110 §7.6.1).
void AddConnectionOptions(std::string_view value,
                          std::vector<std::string>* names);
// Whether "name" is one of "names", case-insensitively.
bool IsNamedIn(const std::string& name, const std::vector<std::string>& names);

// Copies end-to-end headers to "res", except Content-Type (returned, since
// cpp-httplib sets it with the body) and redacted placeholders. Does not
// check for line breaks (cpp-httplib's set_header would, per header, on
// every request): headers from a recording are checked once, as the
// ExchangeCache loads them.
std::string CopyResponseHeaders(const HeaderList& headers,
                                httplib::Response* res);

// Streams a body of unknown length: chunked, or for an HTTP/1.0 client
// (which cannot read chunked) until the connection closes (wire.h decides
// which). "write_all"
// writes the body into the sink and returns false if it broke off.
void SetStreamProvider(httplib::Response* res, const std::string& content_type,
                       std::function<bool(httplib::DataSink&)> write_all);

// Sets a JSON error body: {"error": {"type": TYPE, "message": MESSAGE}}
// plus any extra members already serialized in "extra" (",\"k\":v..."),
// in the shape of the API of the request being handled on this thread
// (see ErrorDialectScope): Anthropic's and Ollama's clients then show
// rewind's message as they show their own API's errors.
void SetJsonError(httplib::Response* res, int status, const std::string& type,
                  const std::string& message, const std::string& extra = "");

// While one lives, SetJsonError on this thread writes errors in the
// dialect of "path" (synth/dialect.h: /v1/messages Anthropic, /api/...
// Ollama, else OpenAI). A request's handler runs on one thread from its
// start to its headers, so every error rewind writes for it (a miss, a
// 502/504 from the forwarder, a bad latency header) takes its shape.
class ErrorDialectScope {
 public:
  explicit ErrorDialectScope(const std::string& path);
  ~ErrorDialectScope();
  ErrorDialectScope(const ErrorDialectScope&) = delete;
  ErrorDialectScope& operator=(const ErrorDialectScope&) = delete;

 private:
  const int previous_;
};

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_HTTP_UTIL_H_
