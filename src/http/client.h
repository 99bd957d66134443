// FetchClient: sends recorded requests to a target and times the answer as
// rewind records it (time to headers, each piece's offset). Used by
// `rewind check` and `rewind load`. One keep-alive connection per client.
//
// Thread-safety: one client per thread, except Cancel(), which any thread
// may call while another is in Fetch().
#ifndef REWIND_SRC_HTTP_CLIENT_H_
#define REWIND_SRC_HTTP_CLIENT_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "rewind/clock.h"
#include "rewind/exchange.h"
#include "rewind/status.h"

namespace httplib {
class Client;
}

namespace rwd {

class FetchClient {
 public:
  // "target": "http://host:port[/prefix]". "extra_headers" ("Name: value")
  // replace recorded headers of the same name; recorded "[REDACTED]"
  // values are not sent.
  static Result<std::unique_ptr<FetchClient>> Create(
      const std::string& target, int timeout_s,
      std::vector<std::string> extra_headers, Clock* clock);
  ~FetchClient();

  // Offsets in the result are from the moment the request was handed to
  // the socket layer. Unavailable/Timeout when no answer came.
  Result<Response> Fetch(const Request& request);

  // Ends the Fetch() in progress, if any, within one read: it returns
  // Unavailable("cancelled"), as does every later one.
  void Cancel();

 private:
  FetchClient() = default;
  std::unique_ptr<httplib::Client> client_;
  std::string prefix_;
  HeaderList extra_;
  Clock* clock_ = nullptr;
  std::atomic<bool> cancelled_{false};
};

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_CLIENT_H_
