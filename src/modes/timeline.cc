#include "rewind/timeline.h"

#include <utility>

namespace rwd {

Timeline Timeline::Of(std::shared_ptr<const Response> response) {
  Timeline t;
  t.at.headers_us = response->headers_us;
  t.at.chunk_us.reserve(response->chunks.size());
  for (const Chunk& c : response->chunks) t.at.chunk_us.push_back(c.offset_us);
  t.response = std::move(response);
  return t;
}

Timeline Timeline::Immediate(int status, const std::string& content_type,
                             std::string body) {
  auto r = std::make_shared<Response>();
  r->status = status;
  if (!content_type.empty())
    r->headers.emplace_back("Content-Type", content_type);
  if (!body.empty()) r->chunks.push_back(Chunk{0, std::move(body)});
  return Of(std::move(r));
}

}  // namespace rwd
