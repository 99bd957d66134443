// The paced writer: the one consumer of Timelines (rewind/timeline.h).
//
// SendPaced() sleeps until the headers are due, sets them, and leaves a
// content provider that writes each piece of the body at start + its
// offset, on absolute deadlines so that errors do not accumulate. A body
// whose pieces are all due at once (and is not chunked, cut short or
// announced longer than it is) is set whole instead, the cheapest path
// through the writer (wire.h). HEAD gets the headers a GET would
// (Content-Length included) and no body. The Timeline, and what it holds (an
// admission slot), lives until its last piece is written.
//
// Thread-safety: runs on the request's handler thread; the provider it
// leaves runs on the same connection's thread.
#ifndef REWIND_SRC_HTTP_PACED_WRITER_H_
#define REWIND_SRC_HTTP_PACED_WRITER_H_

#include <httplib.h>

#include <cstdint>

#include "rewind/clock.h"
#include "rewind/timeline.h"

namespace rwd {

// Writes "out" to "res" for a request received at "start" on "clock".
void SendPaced(Timeline out, int64_t start, bool head, Clock* clock,
               httplib::Response* res);

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_PACED_WRITER_H_
