// The paced writer's planning half: a mode's Timeline (rewind/timeline.h)
// made ready for the wire.
//
// PlanAnswer() takes the status and the headers rewind writes from a
// Timeline and decides how its body goes. A response due now in full (and
// not chunked, cut short or announced longer than it is, and at most 64
// KiB) is whole: written with its head in one send. Anything due later (the
// headers, or a piece of the body) is left as a PacedBody, which the front
// turns into a PacedStream for its event loop to write on the Timeline's
// schedule: no thread waits for it. HEAD gets the headers a GET would
// (Content-Length included) and no body. The Timeline, and what it holds (an
// admission slot), lives until its last piece is written.
//
// Thread-safety: plain functions; never sleeps.
#ifndef REWIND_SRC_HTTP_PACED_WRITER_H_
#define REWIND_SRC_HTTP_PACED_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "rewind/clock.h"
#include "rewind/exchange.h"
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

// A mode's answer as the front writes it.
struct PlannedAnswer {
  int status = 200;
  // End-to-end headers in the order they are written (the front adds its
  // own, then sorts them as cpp-httplib's header map did); no framing.
  HeaderList headers;
  // The whole body (when "later" is empty).
  std::string body;
  std::optional<PacedBody> later;
};

// Plans what "out" answers to a request received at "start" on "clock". A
// Timeline without a response (a defect in a mode) plans a 500.
PlannedAnswer PlanAnswer(Timeline out, int64_t start, bool head, Clock* clock);

// Orders "headers" by name, case-insensitively, keeping the order of equal
// names: the order rewind has always written them in.
void SortHeaders(HeaderList* headers);

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_PACED_WRITER_H_
