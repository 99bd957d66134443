#include "http/client.h"

#include <httplib.h>

#include "http/forwarder.h"
#include "http/http_util.h"

namespace rwd {

Result<std::unique_ptr<FetchClient>> FetchClient::Create(
    const std::string& target, int timeout_s,
    std::vector<std::string> extra_headers, Clock* clock) {
  Result<BackendUrl> url = BackendUrl::Parse(target);
  if (!url.ok()) return url.status();
  std::unique_ptr<FetchClient> c(new FetchClient());
  c->client_ = std::make_unique<httplib::Client>(url->scheme_host_port);
  c->client_->set_keep_alive(true);
  c->client_->set_tcp_nodelay(true);
  c->client_->set_decompress(false);
  c->client_->set_connection_timeout(timeout_s, 0);
  c->client_->set_read_timeout(timeout_s, 0);
  c->client_->set_write_timeout(timeout_s, 0);
  c->prefix_ = url->path_prefix;
  for (const std::string& h : extra_headers) {
    const size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) {
      return Status::InvalidArgument("--header wants \"Name: value\", got \"" +
                                     h + "\"");
    }
    std::string value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    c->extra_.emplace_back(h.substr(0, colon), value);
  }
  c->clock_ = clock ? clock : SystemClock();
  return c;
}

FetchClient::~FetchClient() = default;

void FetchClient::Cancel() {
  cancelled_ = true;
  // Shuts the socket of a request in flight down (cpp-httplib allows this
  // from another thread), so a read that waits for the target ends now.
  client_->stop();
}

Result<Response> FetchClient::Fetch(const Request& request) {
  if (cancelled_) return Status::Unavailable("cancelled");
  httplib::Request req;
  req.method = request.method;
  req.path = prefix_ + request.Target();
  for (const auto& [name, value] : request.headers) {
    if (value == kRedacted || HeaderNameEquals(name, "Host")) continue;
    bool replaced = false;
    for (const auto& [n, v] : extra_) replaced |= HeaderNameEquals(n, name);
    if (!replaced) req.headers.emplace(name, value);
  }
  for (const auto& [n, v] : extra_) req.headers.emplace(n, v);
  req.body = request.body;
  Response out;
  const int64_t start = clock_->NowMicros();
  req.response_handler = [&](const httplib::Response& r) {
    if (cancelled_) return false;
    out.headers_us = clock_->NowMicros() - start;
    out.status = r.status;
    for (const auto& [name, value] : r.headers) {
      if (HeaderNameEquals(name, "Transfer-Encoding")) out.chunked = true;
      if (IsHopByHop(name)) continue;
      out.headers.emplace_back(name, value);
    }
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (cancelled_) return false;
    out.chunks.push_back({clock_->NowMicros() - start, std::string(data, n)});
    return true;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  if (!client_->send(req, res, error)) {
    if (cancelled_) return Status::Unavailable("cancelled");
    const std::string what = httplib::to_string(error);
    if (error == httplib::Error::Read ||
        error == httplib::Error::ConnectionTimeout) {
      return Status::Timeout(what);
    }
    return Status::Unavailable(what);
  }
  return out;
}

}  // namespace rwd
