#include "rewind/exchange.h"

#include <strings.h>

namespace rwd {

bool HeaderNameEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool IsWritableHeader(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c == ':' || c == '\r' || c == '\n' || c == '\0') return false;
  }
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

bool IsRewindHeader(std::string_view name) {
  constexpr std::string_view kName = "X-Rewind";
  if (name.size() < kName.size() ||
      !HeaderNameEquals(name.substr(0, kName.size()), kName)) {
    return false;
  }
  return name.size() == kName.size() || name[kName.size()] == '-';
}

std::string FindHeader(const HeaderList& headers, const std::string& name) {
  for (const auto& [n, v] : headers) {
    if (HeaderNameEquals(n, name)) return v;
  }
  return std::string();
}

std::string Request::Target() const {
  return query.empty() ? path : path + "?" + query;
}

std::string Response::Body() const {
  size_t total = 0;
  for (const Chunk& c : chunks) total += c.data.size();
  std::string body;
  body.reserve(total);
  for (const Chunk& c : chunks) body += c.data;
  return body;
}

int64_t Response::TotalMicros() const {
  return chunks.empty() ? headers_us : chunks.back().offset_us;
}

}  // namespace rwd
