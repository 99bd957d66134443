// Forwarder: sends a request to the backend and streams the answer back,
// on the handler's own thread.
//
// The backend call is a libcurl transfer driven step by step (the multi
// interface) by the thread that runs the handler: Forward() drives it
// until the backend's status and headers are in, so the handler can return
// them in the Response; the content provider it leaves behind drives the
// same transfer on, writing each piece of the body to the client as it
// arrives. One thread per proxied request and no hand-offs between
// threads (cpp-httplib's own client reads a whole response in one blocking
// call, which needed a second thread per request and a wake-up per piece).
//
// When recording, "on_done" receives the finished exchange (complete or
// broken off) before the client gets the response's last byte; record mode
// stores it there, so a client that saw a complete response can rely on it
// being in the recording.
//
// Memory: a piece of the body is held until the client has it, and, while
// recording, once more for the store, never longer: an answer larger than
// the recording's limit is relayed in full but dropped from the store as
// soon as it passes the limit (a Content-Length beyond it is never kept at
// all). A client that goes away ends the backend transfer at the next
// piece written to it.
//
// Thread-safety: Forward() is safe for concurrent use.
#ifndef REWIND_SRC_HTTP_FORWARDER_H_
#define REWIND_SRC_HTTP_FORWARDER_H_

#include <httplib.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rewind/clock.h"
#include "rewind/exchange.h"
#include "rewind/mode.h"
#include "rewind/status.h"

namespace rwd {

struct BackendUrl {
  std::string scheme_host_port;  // "http://127.0.0.1:8000"
  std::string path_prefix;       // "" or "/api"

  static Result<BackendUrl> Parse(const std::string& url);
};

class Forwarder {
 public:
  // "clock" must outlive the Forwarder. "timeout_s" bounds connecting and
  // any silence from the backend (before its headers or within its body).
  Forwarder(BackendUrl backend, int timeout_s, Clock* clock);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // What record mode asks of a call (rewind/mode.h).
  using Recording = Capture;

  // Forwards "request" (received at "start_us" on the clock) and sets up
  // "res" to relay the backend's answer, recording it as "recording" says.
  // A backend that cannot be reached, or sends no headers in time, gets
  // the client a 502 or 504 JSON error and no exchange; Forward() then
  // returns false.
  bool Forward(const Request& request, bool head, int64_t start_us,
               Recording recording, httplib::Response* res);

  // Closes the idle keep-alive connections to the backend. Call once no
  // handler runs any more.
  void Shutdown();

 private:
  struct Connection;
  struct Call;

  std::unique_ptr<Connection> Acquire();
  void Release(std::unique_ptr<Connection> connection);

  const BackendUrl backend_;
  const int timeout_s_;
  Clock* const clock_;

  std::mutex idle_mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by idle_mu_
};

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_FORWARDER_H_
