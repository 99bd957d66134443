#include "http/forwarder.h"

#include <condition_variable>
#include <deque>
#include <optional>

#include "http/http_util.h"

namespace rwd {

struct Forwarder::Flight {
  std::mutex mu;
  std::condition_variable cv;
  // All fields below are guarded by mu.
  bool headers_ready = false;
  bool finished = false;   // the backend call returned and on_done ran
  bool cancelled = false;  // the client went away
  bool complete = false;
  int status = 0;
  HeaderList headers;      // end-to-end headers from the backend
  bool chunked = false;
  // The handler relays the body piece by piece (woken per piece) rather
  // than taking it whole once the call is done.
  bool stream = false;
  std::optional<size_t> content_length;
  int64_t headers_us = 0;
  // A deque: the relaying thread keeps references across push_back.
  std::deque<Chunk> chunks;
  httplib::Error error = httplib::Error::Success;
  int64_t elapsed_us = 0;
};

namespace {

constexpr size_t kMaxIdleClients = 256;

// A response with a Content-Length up to this size is handed to the client
// whole, once the backend has sent all of it and it is recorded: one
// hand-off between the two threads instead of one per header block and
// piece. Such bodies come in one write or a few; a chunked (streamed) or
// larger body is relayed as it arrives.
constexpr size_t kWholeBodyMax = 256 * 1024;

}  // namespace

Result<BackendUrl> BackendUrl::Parse(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos ||
      (url.compare(0, scheme_end, "http") != 0 &&
       url.compare(0, scheme_end, "https") != 0)) {
    return Status::InvalidArgument("backend \"" + url +
                                   "\" is not an http:// or https:// URL");
  }
  size_t host_start = scheme_end + 3;
  size_t slash = url.find('/', host_start);
  BackendUrl b;
  b.scheme_host_port = url.substr(0, slash);
  if (slash != std::string::npos) b.path_prefix = url.substr(slash);
  while (!b.path_prefix.empty() && b.path_prefix.back() == '/') {
    b.path_prefix.pop_back();
  }
  if (b.scheme_host_port.size() == host_start) {
    return Status::InvalidArgument("backend \"" + url + "\" has no host");
  }
  return b;
}

Forwarder::Forwarder(BackendUrl backend, int timeout_s, size_t workers,
                     Clock* clock)
    : backend_(std::move(backend)),
      timeout_s_(timeout_s),
      clock_(clock),
      pool_(std::make_unique<httplib::ThreadPool>(workers)) {}

Forwarder::~Forwarder() { Shutdown(); }

void Forwarder::Shutdown() {
  if (pool_) {
    pool_->shutdown();
    pool_.reset();
  }
  // Close the idle keep-alive connections, so the backend does not hold a
  // worker for each until its own timeout.
  std::lock_guard<std::mutex> lock(clients_mu_);
  idle_clients_.clear();
}

std::unique_ptr<httplib::Client> Forwarder::AcquireClient() {
  {
    std::lock_guard<std::mutex> lock(clients_mu_);
    if (!idle_clients_.empty()) {
      auto c = std::move(idle_clients_.back());
      idle_clients_.pop_back();
      return c;
    }
  }
  auto c = std::make_unique<httplib::Client>(backend_.scheme_host_port);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  c->set_decompress(false);  // relay encoded bytes as they are
  c->set_follow_location(false);
  c->set_connection_timeout(timeout_s_, 0);
  c->set_read_timeout(timeout_s_, 0);
  c->set_write_timeout(timeout_s_, 0);
  return c;
}

void Forwarder::ReleaseClient(std::unique_ptr<httplib::Client> client) {
  std::lock_guard<std::mutex> lock(clients_mu_);
  if (idle_clients_.size() < kMaxIdleClients) {
    idle_clients_.push_back(std::move(client));
  }
}

void Forwarder::Run(const std::shared_ptr<Flight>& f, const Request& request,
                    int64_t start_us, Exchange base,
                    const DoneCallback& on_done) {
  httplib::Request up;
  up.method = request.method;
  up.path = backend_.path_prefix + request.Target();
  for (const auto& [name, value] : request.headers) {
    // The client library sets Host for the backend; a client's Host names
    // rewind, and following it would let a client pick the destination.
    if (HeaderNameEquals(name, "Host")) continue;
    up.headers.emplace(name, value);
  }
  up.body = request.body;
  const bool head = request.method == "HEAD";
  up.response_handler = [f, this, start_us, head](const httplib::Response& r) {
    const int64_t at = clock_->NowMicros() - start_us;
    std::lock_guard<std::mutex> lock(f->mu);
    f->status = r.status;
    for (const auto& [name, value] : r.headers) {
      if (HeaderNameEquals(name, "Content-Length")) {
        f->content_length = std::strtoull(value.c_str(), nullptr, 10);
      }
      if (IsHopByHop(name)) continue;
      f->headers.emplace_back(name, value);
    }
    f->chunked = !f->content_length.has_value();
    f->stream = !head && (f->chunked || *f->content_length > kWholeBodyMax);
    f->headers_us = at;
    f->headers_ready = true;
    if (f->stream) f->cv.notify_all();
    return !f->cancelled;
  };
  up.content_receiver = [f, this, start_us](const char* data, size_t n,
                                            uint64_t, uint64_t) {
    const int64_t at = clock_->NowMicros() - start_us;
    std::lock_guard<std::mutex> lock(f->mu);
    f->chunks.push_back(Chunk{at, std::string(data, n)});
    if (f->stream) f->cv.notify_all();
    return !f->cancelled;
  };

  std::unique_ptr<httplib::Client> client = AcquireClient();
  httplib::Response r;
  httplib::Error error = httplib::Error::Success;
  const bool ok = client->send(up, r, error);
  const int64_t elapsed = clock_->NowMicros() - start_us;

  std::unique_lock<std::mutex> lock(f->mu);
  const bool complete = ok && !f->cancelled;
  if (f->headers_ready && on_done) {
    base.response.status = f->status;
    base.response.headers = f->headers;
    base.response.chunked = f->chunked;
    base.response.headers_us = f->headers_us;
    base.response.chunks.assign(f->chunks.begin(), f->chunks.end());
    base.complete = complete;
    if (!complete) {
      base.error = f->cancelled ? "client disconnected"
                                : "backend: " + httplib::to_string(error);
    }
    lock.unlock();
    on_done(std::move(base));
    lock.lock();
  }
  f->finished = true;
  f->complete = complete;
  f->error = error;
  f->elapsed_us = elapsed;
  f->cv.notify_all();
  lock.unlock();
  if (ok) ReleaseClient(std::move(client));
}

bool Forwarder::Forward(const Request& request, bool head, int64_t start_us,
                        Exchange base, DoneCallback on_done,
                        httplib::Response* res) {
  auto f = std::make_shared<Flight>();
  pool_->enqueue([this, f, request, start_us, base = std::move(base),
                  on_done = std::move(on_done)]() mutable {
    Run(f, request, start_us, std::move(base), on_done);
  });

  std::unique_lock<std::mutex> lock(f->mu);
  f->cv.wait(lock, [&] {
    return (f->headers_ready && f->stream) || f->finished;
  });
  if (!f->headers_ready) {
    const bool timed_out =
        f->error == httplib::Error::ConnectionTimeout ||
        (f->error == httplib::Error::Read &&
         f->elapsed_us >= int64_t{timeout_s_} * 1000000);
    SetJsonError(res, timed_out ? 504 : 502,
                 timed_out ? "rewind_backend_timeout"
                           : "rewind_backend_unavailable",
                 "backend " + backend_.scheme_host_port + " did not answer: " +
                     httplib::to_string(f->error));
    return false;
  }
  res->status = f->status;
  const std::string content_type = CopyResponseHeaders(f->headers, res);
  const bool no_body = head || f->status == 204 || f->status == 304 ||
                       (f->content_length && *f->content_length == 0);
  if (no_body) {
    f->cv.wait(lock, [&] { return f->finished; });
    if (!content_type.empty()) res->set_header("Content-Type", content_type);
    return true;
  }
  if (!f->stream && f->complete) {
    // The whole body is here (and recorded): send it as it is.
    std::string body;
    if (f->chunks.size() == 1) {
      body = std::move(f->chunks.front().data);
    } else {
      for (const Chunk& c : f->chunks) body += c.data;
    }
    res->body = std::move(body);  // (set_content would copy it)
    res->headers.erase("Content-Type");
    if (!content_type.empty()) res->set_header("Content-Type", content_type);
    return true;
  }
  // Streamed, or cut short: relay what there is as it comes (a body cut
  // short ends in a broken connection, as it did from the backend).
  lock.unlock();

  struct RelayState {
    std::shared_ptr<Flight> flight;
    size_t next = 0;
    size_t written = 0;
  };
  auto state = std::make_shared<RelayState>(RelayState{f});
  auto relay = [state](std::optional<size_t> length,
                       httplib::DataSink& sink) -> bool {
    Flight& fl = *state->flight;
    while (true) {
      std::unique_lock<std::mutex> lk(fl.mu);
      fl.cv.wait(lk, [&] {
        return state->next < fl.chunks.size() || fl.finished;
      });
      if (state->next < fl.chunks.size()) {
        const Chunk& c = fl.chunks[state->next];
        if (length && state->written + c.data.size() >= *length) {
          fl.cv.wait(lk, [&] { return fl.finished; });
          if (!fl.complete) return false;
        }
        ++state->next;
        lk.unlock();
        if (!sink.write(c.data.data(), c.data.size())) {
          std::lock_guard<std::mutex> relock(fl.mu);
          fl.cancelled = true;
          return false;
        }
        state->written += c.data.size();
        continue;
      }
      // Finished and everything relayed. Breaking the connection is how
      // HTTP says a response was cut short.
      if (!fl.complete) return false;
      lk.unlock();
      if (!length) sink.done();
      return true;
    }
  };
  if (f->chunked) {
    res->set_chunked_content_provider(
        content_type, [relay](size_t, httplib::DataSink& sink) {
          return relay(std::nullopt, sink);
        });
  } else {
    const size_t length = *f->content_length;
    res->set_content_provider(
        length, content_type,
        [relay, length](size_t, size_t, httplib::DataSink& sink) {
          return relay(length, sink);
        });
  }
  if (content_type.empty()) res->headers.erase("Content-Type");
  return true;
}

}  // namespace rwd
