// Timeline: what a mode answers and the paced writer sends.
//
// A Timeline is a response (status, end-to-end headers, framing, the pieces
// of the body) and when each part of it is due, in microseconds from the
// request's receipt. Every mode that answers by itself produces one: replay
// from a recording, the dummy engine from a plan, every error rewind
// writes. The front's paced writer alone consumes it. Latency models map a
// Timeline to a paced one: same pieces, new offsets.
//
// The response is shared, never copied: a replayed Timeline points into
// the cached recording, so pacing a hit costs no body copy.
//
// Thread-safety: plain values; the shared response is immutable.
#ifndef REWIND_TIMELINE_H_
#define REWIND_TIMELINE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rewind/exchange.h"

namespace rwd {

// Offsets from request receipt, in microseconds.
struct Schedule {
  int64_t headers_us = 0;
  std::vector<int64_t> chunk_us;  // one per piece of the body
};

struct Timeline {
  // How the response ends once its last piece is written.
  enum class End {
    kClean,  // complete
    kAbort,  // the connection is broken (a fault, a stream cut short)
  };

  // Status, headers, framing and the body's pieces. The chunks' own
  // offset_us are not read: "at" says when each is due.
  std::shared_ptr<const Response> response;
  Schedule at;
  End end = End::kClean;
  // Content-Length announced for a body that is not chunked; 0 = the
  // pieces' total. A "drop" fault announces more than it sends.
  size_t content_length = 0;
  // Kept alive until the last byte is written (an admission slot).
  std::shared_ptr<void> hold;

  // A Timeline on the response's own offsets (as recorded or planned).
  static Timeline Of(std::shared_ptr<const Response> response);
  // A response sent at once, whole: "body" (if any) as one piece, with
  // Content-Type "content_type" (if any).
  static Timeline Immediate(int status, const std::string& content_type,
                            std::string body);
};

}  // namespace rwd

#endif  // REWIND_TIMELINE_H_
