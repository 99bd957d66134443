#include "http/paced_writer.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <utility>

#include "http/http_util.h"
#include "rewind/redact.h"

namespace rwd {
namespace {

// The largest body an answer due at once copies to send with its head.
constexpr size_t kWholeBodyMax = 64 * 1024;

}  // namespace

void SortHeaders(HeaderList* headers) {
  std::stable_sort(headers->begin(), headers->end(),
                   [](const auto& a, const auto& b) {
                     return std::lexicographical_compare(
                         a.first.begin(), a.first.end(), b.first.begin(),
                         b.first.end(), [](unsigned char x, unsigned char y) {
                           return std::tolower(x) < std::tolower(y);
                         });
                   });
}

PlannedAnswer PlanAnswer(Timeline out, int64_t start, bool head, Clock* clock) {
  PlannedAnswer plan;
  if (!out.response) {
    // A mode answered with nothing: a defect, reported rather than crashed on.
    httplib::Response res;
    SetJsonError(&res, 500, "rewind_internal_error", "no answer was produced");
    plan.status = res.status;
    plan.headers = {{"Content-Type", "application/json"}};
    plan.body = std::move(res.body);
    return plan;
  }
  const int64_t now = clock->NowMicros() - start;
  const bool head_due = out.at.headers_us <= now;
  const Response& r = *out.response;
  plan.status = r.status;
  plan.headers.reserve(r.headers.size() + 4);
  // One Content-Type, the last recorded (none when it is empty); the
  // framing headers are the writer's.
  std::string content_type;
  for (const auto& [name, value] : r.headers) {
    if (IsHopByHop(name)) continue;
    if (HeaderNameEquals(name, "Content-Type")) {
      content_type = value;
      continue;
    }
    if (value == kRedacted) continue;
    plan.headers.emplace_back(name, value);
  }
  if (!content_type.empty())
    plan.headers.emplace_back("Content-Type", content_type);
  if (head || r.chunks.empty()) {
    if (head && !r.chunked && !r.chunks.empty()) {
      // What a GET would have carried (the writer would say 0).
      size_t total = 0;
      for (const Chunk& c : r.chunks) total += c.data.size();
      plan.headers.emplace_back("Content-Length", std::to_string(total));
    } else if (r.chunks.empty()) {
      // Recorded from a HEAD or a 304: the length its backend announced.
      std::string length = FindHeader(r.headers, "Content-Length");
      if (!length.empty())
        plan.headers.emplace_back("Content-Length", std::move(length));
    }
    if (!head_due) plan.later = PacedBody{std::move(out), false, 0, false};
    return plan;
  }
  size_t total = 0;
  for (const Chunk& c : r.chunks) total += c.data.size();
  const size_t length = out.content_length ? out.content_length : total;
  const bool all_due = head_due && out.at.chunk_us.back() <= now;
  // A large body is sent from the recording, not copied for each request.
  if (all_due && !r.chunked && out.end == Timeline::End::kClean &&
      length == total && total <= kWholeBodyMax) {
    plan.body = r.chunks.size() == 1 ? r.chunks[0].data : r.Body();
    return plan;
  }
  const bool chunked = r.chunked;
  plan.later = PacedBody{std::move(out), true, chunked ? 0 : length, chunked};
  return plan;
}

}  // namespace rwd
