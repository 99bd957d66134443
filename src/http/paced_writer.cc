#include "http/paced_writer.h"

#include <memory>
#include <utility>

#include "http/http_util.h"

namespace rwd {

void SendPaced(Timeline out, int64_t start, bool head, Clock* clock,
               httplib::Response* res) {
  if (!out.response) {
    // A mode answered with nothing: a defect, reported rather than crashed on.
    SetJsonError(res, 500, "rewind_internal_error", "no answer was produced");
    return;
  }
  clock->SleepUntil(start + out.at.headers_us);
  const Response& r = *out.response;
  res->status = r.status;
  const std::string content_type = CopyResponseHeaders(r.headers, res);
  if (head || r.chunks.empty()) {
    if (!content_type.empty()) res->set_header("Content-Type", content_type);
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
    return;
  }
  size_t total = 0;
  for (const Chunk& c : r.chunks) total += c.data.size();
  const size_t length = out.content_length ? out.content_length : total;
  const bool all_due = out.at.chunk_us.back() <= clock->NowMicros() - start;
  if (all_due && !r.chunked && out.end == Timeline::End::kClean &&
      length == total) {
    res->set_content(r.chunks.size() == 1 ? r.chunks[0].data : r.Body(),
                     content_type);
  } else {
    struct Paced {
      Timeline out;
      size_t next = 0;
    };
    auto p = std::make_shared<Paced>(Paced{std::move(out)});
    auto write_all = [p, clock, start](httplib::DataSink& sink) {
      const auto& chunks = p->out.response->chunks;
      for (; p->next < chunks.size(); ++p->next) {
        clock->SleepUntil(start + p->out.at.chunk_us[p->next]);
        const std::string& data = chunks[p->next].data;
        if (!sink.write(data.data(), data.size())) return false;
      }
      return p->out.end == Timeline::End::kClean;
    };
    if (r.chunked) {
      SetStreamProvider(
          res, content_type,
          [write_all](httplib::DataSink& sink) { return write_all(sink); });
    } else {
      res->set_content_provider(
          length, content_type,
          [write_all](size_t, size_t, httplib::DataSink& sink) {
            return write_all(sink);
          });
    }
  }
  if (content_type.empty()) res->headers.erase("Content-Type");
}

}  // namespace rwd
