// The paced writer: the one consumer of Timelines (rewind/timeline.h).
//
// SendPaced() sets a cpp-httplib Response's status and headers from a
// Timeline. A response due now in full (and not chunked, cut short or
// announced longer than it is) is set whole, the cheapest path through the
// writer (wire.h). Anything due later (the headers, or a piece of the body)
// is left as a PacedBody, which the front turns into a PacedStream for its
// event loop to write on the Timeline's schedule: no thread waits for it.
// HEAD gets the headers a GET would (Content-Length included) and no body.
// The Timeline, and what it holds (an admission slot), lives until its
// last piece is written.
//
// Thread-safety: runs on the request's handler thread; never sleeps.
#ifndef REWIND_SRC_HTTP_PACED_WRITER_H_
#define REWIND_SRC_HTTP_PACED_WRITER_H_

#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "rewind/clock.h"
#include "rewind/timeline.h"

namespace rwd {

// A response whose head or body is due later than when it was made.
struct PacedBody {
  Timeline timeline;
  // Pieces follow the head (not after HEAD, nor for an empty body).
  bool has_body = false;
  // The Content-Length to announce; 0 with "chunked".
  size_t length = 0;
  bool chunked = false;
};

// Sets "res" to what "out" answers to a request received at "start" on
// "clock"; "*later" gets what is due later, if anything (else it is left
// empty).
void SendPaced(Timeline out, int64_t start, bool head, Clock* clock,
               httplib::Response* res, std::optional<PacedBody>* later);

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_PACED_WRITER_H_
