// Forwarder: sends a request to the backend and streams the answer back.
//
// The backend call runs on a worker of the forwarder's own pool, because
// cpp-httplib's client call blocks until the whole body is read while the
// server must send the status and headers before the body. For a streamed
// (chunked) or large body the handler thread waits for the headers, then
// relays each piece as it arrives; a small Content-Length body is handed
// over whole once the call is done, with one wake-up instead of several.
//
// When "on_done" is given it receives the finished exchange (complete or
// broken off) on the worker, before the client gets the response's last
// byte; record mode stores it there, so a client that saw a complete
// response can rely on it being in the recording.
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
#include "rewind/status.h"

namespace rwd {

struct BackendUrl {
  std::string scheme_host_port;  // "http://127.0.0.1:8000"
  std::string path_prefix;       // "" or "/api"

  static Result<BackendUrl> Parse(const std::string& url);
};

class Forwarder {
 public:
  // "clock" must outlive the Forwarder.
  Forwarder(BackendUrl backend, int timeout_s, size_t workers, Clock* clock);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  using DoneCallback = std::function<void(Exchange&&)>;

  // Forwards "request" (received at "start_us" on the clock) and sets up
  // "res" to relay the backend's answer. "base" supplies the stored fields
  // of the exchange (key, redacted request, arrival times); "on_done" may
  // be empty (passthrough). A backend that cannot be reached, or sends no
  // headers in time, gets the client a 502 or 504 JSON error and no
  // exchange; Forward() then returns false.
  bool Forward(const Request& request, bool head, int64_t start_us,
               Exchange base, DoneCallback on_done, httplib::Response* res);

  // Waits for every backend call to finish.
  void Shutdown();

 private:
  struct Flight;

  void Run(const std::shared_ptr<Flight>& flight, const Request& request,
           int64_t start_us, Exchange base, const DoneCallback& on_done);
  std::unique_ptr<httplib::Client> AcquireClient();
  void ReleaseClient(std::unique_ptr<httplib::Client> client);

  const BackendUrl backend_;
  const int timeout_s_;
  Clock* const clock_;
  std::unique_ptr<httplib::ThreadPool> pool_;

  std::mutex clients_mu_;
  std::vector<std::unique_ptr<httplib::Client>> idle_clients_;  // guarded
};

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_FORWARDER_H_
