// PacedStream: one response written on its Timeline by an event loop,
// without blocking and without a thread of its own.
//
// It holds the response's head (status line and headers, framing
// included), the Timeline whose pieces make the body, and the request's
// start on the server's Clock. Step() writes to a non-blocking socket what
// is due at "now" (the head at start + headers_us, each piece at start +
// its offset, everything already due coalesced into one send) and says
// what to wait for next: a time, or room in the socket. A client that
// stops reading pauses its own timeline: nothing more is taken from the
// Timeline until what was written has gone out, and a piece whose time
// passed meanwhile goes as soon as there is room. Pieces are sent from the
// recording itself (shared, never copied): a stream holds only its head
// and chunk framing, so a thousand stalled readers of a 10 MB answer cost
// their framing, not 10 GB.
//
// The Timeline (and what it holds: an admission slot of the dummy engine)
// lives as long as the stream.
//
// Thread-safety: none; one loop thread steps a stream.
#ifndef REWIND_SRC_HTTP_PACED_STREAM_H_
#define REWIND_SRC_HTTP_PACED_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rewind/timeline.h"

namespace rwd {

class PacedStream {
 public:
  // How the body is framed on the wire.
  enum class Framing {
    kNone,     // no body at all (HEAD, 204, 304): the head alone
    kLength,   // the head announced a Content-Length: pieces as they are
    kChunked,  // each piece a chunk, then the last chunk "0\r\n\r\n"
    kClose,    // pieces as they are; the body ends with the connection,
               // which the caller closes after kDone
  };

  // "head" ends with the blank line. "timeline.response" must be set
  // unless "framing" is kNone.
  PacedStream(std::string head, Timeline timeline, int64_t start_us,
              Framing framing);
  // A whole answer, due at once ("bytes": head and body): written as soon
  // as the socket has room.
  static std::unique_ptr<PacedStream> Now(std::string bytes);
  PacedStream(const PacedStream&) = delete;
  PacedStream& operator=(const PacedStream&) = delete;

  enum class State {
    kWaitUntil,     // nothing due before "at_us"
    kWaitWritable,  // the socket is full: step again when it has room
    kDone,          // all written; the connection may carry another request
    kBroken,        // the client is gone, or the response ends by breaking
                    // the connection (an aborted stream, a body shorter
                    // than its Content-Length)
  };
  struct Next {
    State state;
    int64_t at_us = 0;  // for kWaitUntil
  };

  // Writes to "fd" (non-blocking) what is due at "now_us".
  Next Step(int fd, int64_t now_us);

  // Segments waiting to be sent (the head, pieces, framing): at most a
  // few hundred, however many pieces are due.
  size_t queued() const { return out_.size() - sent_; }
  // Body bytes handed to the socket so far (before chunked framing).
  uint64_t body_bytes() const { return body_bytes_; }
  // When the head is due, on the Clock.
  int64_t head_due_us() const { return start_us_ + timeline_.at.headers_us; }

 private:
  // Queues whatever is due at "now_us" and not yet taken.
  void TakeDue(int64_t now_us);
  // Queues bytes of our own (the head, chunk framing).
  void Own(const char* data, size_t size);
  // Sends what is queued; false when the peer is gone.
  bool Flush(int fd);
  bool Finished() const;

  // Bytes to send: a piece of the recording ("data"), or of own_ (data
  // null: "offset" into own_, which may grow while segments are queued).
  struct Segment {
    const char* data;
    size_t offset;
    size_t size;
  };

  std::string head_;
  const Timeline timeline_;
  const int64_t start_us_;
  const Framing framing_;
  bool head_taken_ = false;
  size_t next_ = 0;  // the next piece to take
  bool terminated_ = false;
  std::string own_;
  std::vector<Segment> out_;
  size_t sent_ = 0;  // segments of out_ already sent
  uint64_t body_bytes_ = 0;
  size_t total_ = 0;  // the pieces' total size
};

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_PACED_STREAM_H_
