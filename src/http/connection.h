// rewind's own connection handling: the listening socket, accepting,
// reading each request whole (RequestParser), keep-alive and pipelining.
// The server's ServeFn answers each request (wire.h writes the response).
//
// Why not cpp-httplib's own loop (0.11): it sets SO_REUSEPORT (a second
// process shares a busy port without error), hard-codes a backlog of 5,
// gives every connection a worker thread from its first byte (a client
// sending one byte a second holds a worker, so 100 such clients starve
// everyone), polls idle keep-alive connections every 10 ms, drops
// pipelined requests, and parses leniently (see request_parser.h).
//
// Here one reactor thread (epoll) accepts connections and reads requests
// until one is complete; only then does a worker take the connection. A
// worker serves the request, then any pipelined ones, waits briefly for the
// next request on the connection and otherwise hands it back to the
// reactor. So workers only ever serve whole requests: slow clients cost a
// buffer, not a thread, and are cut after --client-timeout.
//
// A response due later than now (a paced Timeline: the dummy engine's
// token stream, a replay on its recorded latencies) is not written by the
// worker: it goes back to the reactor as a PacedStream, which holds a
// timer for its next piece and writes without blocking; a client that
// stops reading pauses its own stream. So a stream holds no thread for its
// length, and thousands of them cost a timer and a buffer each. The
// reactor's time is the server's Clock.
//
// With "serve_on_loop" the reactor calls ServeFn itself for each whole
// request (on_loop true): what the server can answer without blocking (a
// replayed hit from the cache, the dummy engine) is answered there, with no
// hand-off to a worker, and written without blocking like a paced stream;
// anything else comes back as Served::on_worker, which a worker runs.
#ifndef REWIND_SRC_HTTP_CONNECTION_H_
#define REWIND_SRC_HTTP_CONNECTION_H_

#include <httplib.h>
#include <sys/epoll.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http/paced_stream.h"
#include "http/request_parser.h"
#include "http/wire.h"
#include "rewind/clock.h"
#include "rewind/status.h"
#include "util/timer_queue.h"

namespace rwd {

struct ConnectionOptions {
  // Time a request has to arrive whole, from its first byte (and from
  // accept for a new connection). A body gets 1 s more per MiB announced.
  int client_timeout_s = 5;
  // Time an idle connection is kept open between requests.
  int keep_alive_timeout_s = 2;
  // Write timeout per write that makes no progress.
  int write_timeout_s = 5;
  RequestLimits limits;
  // The time line of deadlines and paced streams. Default: SystemClock().
  Clock* clock = nullptr;
  // Call ServeFn on the reactor first (see above). Default: only workers.
  bool serve_on_loop = false;
};

// What serving one request left for the connection.
struct Served {
  // The connection can carry another request (once "paced" is written).
  bool ok = false;
  // A response the reactor writes on its own schedule; null when the
  // response has been written already.
  std::unique_ptr<PacedStream> paced;
  // With "paced": the connection closes after it (Connection: close, or a
  // body that ends with the connection).
  bool close_after = false;
  // With "paced": called on the reactor thread once it has been written
  // (true) or broken off (false), with the body bytes written.
  std::function<void(bool ok, uint64_t body_bytes)> finished;
  // From a call on the reactor: the request needs a worker, which answers
  // it by calling this (as it would call ServeFn).
  std::function<Served(const ClientEnd& client)> on_worker;
};

class ConnectionLoop {
 public:
  // Serves one whole request and writes its response to "client", or
  // leaves it to the reactor (Served::paced); "close": the connection
  // closes after it. "on_loop": called by the reactor, which must not
  // block: a whole answer comes back as a paced stream due now, and one
  // that cannot be made without blocking as Served::on_worker.
  using ServeFn =
      std::function<Served(ParsedRequest&& request, const ClientEnd& client,
                           bool close, bool on_loop)>;
  // Told about a request refused before it could be served (status, why).
  using RejectFn = std::function<void(int status, const std::string& why)>;

  ConnectionLoop(ConnectionOptions options, ServeFn serve, RejectFn reject);
  ~ConnectionLoop();

  // Binds and listens on host:port (0 = any free port). Fails if another
  // socket listens on it. Returns the port.
  Result<int> Bind(const std::string& host, int port, int backlog);
  int listening_socket() const { return listen_fd_; }

  // Accepts and serves on "workers" (taking ownership) until Stop(); then
  // closes idle connections, lets requests in flight and paced streams
  // finish, returns.
  void Run(std::unique_ptr<httplib::TaskQueue> workers);
  // Any thread, any time (also before Run()).
  void Stop();
  bool stopping() const { return stopping_; }

 private:
  struct Conn;
  void Accept();
  void OnReadable(Conn* c);
  // Parses what "c" has read; returns true if "c" left the reactor.
  bool Advance(Conn* c);
  void Watch(std::unique_ptr<Conn> c);
  void Close(int fd);
  void Reject(Conn* c);
  void Dispatch(std::unique_ptr<Conn> c);
  // Serves "c"'s whole request on the reactor (serve_on_loop).
  void ServeHere(Conn* c);
  // Takes "c" out of the reactor (to hand it to a worker).
  std::unique_ptr<Conn> TakeOut(Conn* c);
  void ServeConnection(std::unique_ptr<Conn> c);
  // From a worker: the connection waits for its next request in the
  // reactor again.
  void Adopt(std::unique_ptr<Conn> c);
  // From a worker, after the last answer on "c": closes it without losing
  // that answer. Closing a socket with unread input makes the kernel send
  // a reset, which can destroy the answer before the client has read it;
  // so when input is left, the socket is shut for writing and the reactor
  // reads and drops the rest until the client closes, or 2 s pass.
  void Linger(std::unique_ptr<Conn> c);
  void SweepDeadlines();
  // Writes what "c"'s paced stream has due and waits for the rest.
  void Pump(Conn* c);
  // "c"'s paced stream is over ("ok": written whole): the connection goes
  // on to its next request, or closes.
  void EndPaced(Conn* c, bool ok);
  // Sets the epoll events "c" is watched for.
  void Interest(Conn* c, uint32_t events);
  // In the reactor: closes "c" without losing its last answer (Linger).
  void LingerHere(Conn* c);
  // Shuts "c" for writing and marks it draining, if input is left unread;
  // false when a plain close loses nothing.
  bool StartDraining(Conn* c);
  // Waits for events or the next timer, at most "max_us".
  int Wait(epoll_event* events, int size, int64_t max_us);
  int64_t NowMs() const { return clock_->NowMicros() / 1000; }
  // Whether a stopping reactor has nothing left to finish.
  bool Drained();

  const ConnectionOptions options_;
  Clock* const clock_;
  ServeFn serve_;
  RejectFn reject_;
  const int epoll_fd_;
  const int wake_fd_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<httplib::TaskQueue> workers_;
  // Owned by the reactor thread: connections waiting for a whole request,
  // draining, or writing a paced stream.
  std::vector<std::unique_ptr<Conn>> waiting_;  // indexed by fd
  size_t waiting_count_ = 0;
  size_t writing_count_ = 0;  // of those, writing a paced stream
  TimerQueue timers_;
  // Connections a worker holds (queued or served).
  std::atomic<size_t> on_workers_{0};
  bool accepting_ = true;
  std::mutex adopt_mu_;
  std::vector<std::unique_ptr<Conn>> adopted_;
  bool reactor_done_ = false;  // guarded by adopt_mu_
};

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_CONNECTION_H_
