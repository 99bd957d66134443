#include "http/http_util.h"

#include "http/wire.h"
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

void AddConnectionOptions(std::string_view value,
                          std::vector<std::string>* names) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
      item.remove_prefix(1);
    }
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
      item.remove_suffix(1);
    }
    if (!item.empty()) names->emplace_back(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool IsNamedIn(const std::string& name, const std::vector<std::string>& names) {
  for (const std::string& n : names) {
    if (n.size() == name.size() && HeaderNameEquals(n, name)) return true;
  }
  return false;
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
  res->set_chunked_content_provider(content_type, std::move(provider));
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
