#include "http/http_util.h"

#include "http/connection.h"
#include "synth/dialect.h"

namespace rwd {

bool IsHopByHop(const std::string& name) {
  // string_views: no temporary strings per comparison (this runs for every
  // header of every request and response).
  static constexpr std::string_view kNames[] = {"Connection",
                                                "Keep-Alive",
                                                "Proxy-Connection",
                                                "TE",
                                                "Trailer",
                                                "Transfer-Encoding",
                                                "Upgrade",
                                                "Content-Length",
                                                "Proxy-Authorization",
                                                "Proxy-Authenticate"};
  for (std::string_view n : kNames) {
    if (HeaderNameEquals(name, n)) return true;
  }
  return false;
}

bool IsPseudoHeader(const std::string& name) {
  return name == "REMOTE_ADDR" || name == "REMOTE_PORT" ||
         name == "LOCAL_ADDR" || name == "LOCAL_PORT";
}

Request FromHttplib(const httplib::Request& req) {
  Request out;
  out.method = req.method;
  const std::string& target = req.target;
  size_t q = target.find('?');
  out.path = target.substr(0, q);
  if (q != std::string::npos) out.query = target.substr(q + 1);
  out.headers.reserve(req.headers.size());
  for (const auto& [name, value] : req.headers) {
    if (IsPseudoHeader(name) || IsHopByHop(name)) continue;
    out.headers.emplace_back(name, value);
  }
  out.body = req.body;
  return out;
}

void DisableServerRewrites(const httplib::Request& req) {
  // The Request is a local of cpp-httplib's connection loop handed to us as
  // const; it is not read-only memory, and these fields are only consulted
  // after the handler returns.
  auto& mutable_req = const_cast<httplib::Request&>(req);
  mutable_req.headers.erase("Accept-Encoding");
  mutable_req.ranges.clear();
}

std::string CopyResponseHeaders(const HeaderList& headers,
                                httplib::Response* res) {
  std::string content_type;
  for (const auto& [name, value] : headers) {
    if (IsHopByHop(name)) continue;
    if (HeaderNameEquals(name, "Content-Type")) {
      content_type = value;
      continue;
    }
    if (value == kRedacted) continue;
    res->headers.emplace(name, value);
  }
  return content_type;
}

void SetStreamProvider(httplib::Response* res, const std::string& content_type,
                       std::function<bool(httplib::DataSink&)> write_all) {
  auto provider = [write_all = std::move(write_all)](size_t,
                                                     httplib::DataSink& sink) {
    if (!write_all(sink)) return false;
    sink.done();
    return true;
  };
  if (CurrentRequestIsHttp10()) {
    res->set_content_provider(content_type, std::move(provider));
  } else {
    res->set_chunked_content_provider(content_type, std::move(provider));
  }
}

namespace {
// The Dialect of the request handled on this thread, as an int.
thread_local int t_error_dialect = static_cast<int>(Dialect::kOpenAI);
}  // namespace

ErrorDialectScope::ErrorDialectScope(const std::string& path)
    : previous_(t_error_dialect) {
  t_error_dialect = static_cast<int>(DialectOf(path));
}

ErrorDialectScope::~ErrorDialectScope() { t_error_dialect = previous_; }

void SetJsonError(httplib::Response* res, int status, const std::string& type,
                  const std::string& message, const std::string& extra) {
  res->status = status;
  res->set_content(RewindErrorBody(static_cast<Dialect>(t_error_dialect),
                                   status, type, message, extra),
                   "application/json");
}

}  // namespace rwd
