#include "http/paced_writer.h"

#include <memory>
#include <utility>

#include "http/http_util.h"

namespace rwd {

void SendPaced(Timeline out, int64_t start, bool head, Clock* clock,
               httplib::Response* res, std::optional<PacedBody>* later) {
  if (!out.response) {
    // A mode answered with nothing: a defect, reported rather than crashed on.
    SetJsonError(res, 500, "rewind_internal_error", "no answer was produced");
    return;
  }
  const int64_t now = clock->NowMicros() - start;
  const bool head_due = out.at.headers_us <= now;
  const Response& r = *out.response;
  res->status = r.status;
  const std::string content_type = CopyResponseHeaders(r.headers, res);
  if (!content_type.empty()) res->set_header("Content-Type", content_type);
  if (head || r.chunks.empty()) {
    if (head && !r.chunked && !r.chunks.empty()) {
      // What a GET would have carried (the writer would say 0).
      size_t total = 0;
      for (const Chunk& c : r.chunks) total += c.data.size();
      res->set_header("Content-Length", std::to_string(total));
    } else if (r.chunks.empty()) {
      // Recorded from a HEAD or a 304: the length its backend announced.
      const std::string length = FindHeader(r.headers, "Content-Length");
      if (!length.empty()) res->set_header("Content-Length", length);
    }
    if (!head_due) *later = PacedBody{std::move(out), false, 0, false};
    return;
  }
  size_t total = 0;
  for (const Chunk& c : r.chunks) total += c.data.size();
  const size_t length = out.content_length ? out.content_length : total;
  const bool all_due = head_due && out.at.chunk_us.back() <= now;
  if (all_due && !r.chunked && out.end == Timeline::End::kClean &&
      length == total) {
    res->body = r.chunks.size() == 1 ? r.chunks[0].data : r.Body();
    return;
  }
  const bool chunked = r.chunked;
  *later = PacedBody{std::move(out), true, chunked ? 0 : length, chunked};
}

}  // namespace rwd
