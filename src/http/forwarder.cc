#include "http/forwarder.h"

#include <curl/curl.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <string_view>

#include "http/http_util.h"

namespace rwd {
namespace {

constexpr size_t kMaxIdleConnections = 256;

// A response with a Content-Length up to this size is handed to the writer
// whole, once the backend has sent all of it and it is recorded; a chunked
// (streamed) or larger body is written to the client piece by piece.
constexpr size_t kWholeBodyMax = 256 * 1024;

// The largest request head (target and headers) forwarded. libcurl builds
// a request in a buffer of at most 1 MiB and fails a larger one as "out of
// memory"; rewind refuses it first, with 431. (The HTTP front's own limits
// are far lower; this one guards the forwarder whatever calls it.)
constexpr size_t kMaxForwardedHead = (1u << 20) - (16u << 10);

// The longest one wait for the backend's socket blocks before the loop
// looks again (and checks --backend-timeout).
constexpr int kPollMs = 1000;

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' ||
                        s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// A curl_slist built front to back in linear time: curl_slist_append
// walks the whole list on every call, so n headers cost n^2/2 steps (100,000
// took 8 s; 300,000, minutes). Nodes and strings are allocated as
// curl_slist_free_all frees them (malloc and strdup).
class HeaderChain {
 public:
  HeaderChain() = default;
  HeaderChain(const HeaderChain&) = delete;
  HeaderChain& operator=(const HeaderChain&) = delete;
  ~HeaderChain() { curl_slist_free_all(head_); }

  // False when out of memory (the chain keeps what it had).
  bool Append(const std::string& line) {
    auto* node = static_cast<curl_slist*>(std::malloc(sizeof(curl_slist)));
    if (node == nullptr) return false;
    node->data = strdup(line.c_str());
    node->next = nullptr;
    if (node->data == nullptr) {
      std::free(node);
      return false;
    }
    (tail_ ? tail_->next : head_) = node;
    tail_ = node;
    bytes_ += line.size() + 2;
    return true;
  }
  curl_slist* get() const { return head_; }
  // The bytes these lines take in a request head (with CRLF).
  size_t bytes() const { return bytes_; }

 private:
  curl_slist* head_ = nullptr;
  curl_slist* tail_ = nullptr;
  size_t bytes_ = 0;
};

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

// One keep-alive connection to the backend: a multi handle, which keeps
// the connection between transfers, and the easy handle run on it.
struct Forwarder::Connection {
  CURLM* multi = curl_multi_init();
  CURL* easy = curl_easy_init();
  ~Connection() {
    if (easy) curl_easy_cleanup(easy);
    if (multi) curl_multi_cleanup(multi);
  }
};

// One proxied request: the transfer, what the backend has sent so far, and
// the exchange to record. Driven only by the thread that runs the request's
// handler and then its content provider.
struct Forwarder::Call {
  Forwarder* forwarder = nullptr;
  int64_t start_us = 0;
  std::unique_ptr<Connection> conn;
  HeaderChain request_headers;
  bool head_too_large = false;  // more than kMaxForwardedHead to send
  bool head_request = false;    // a HEAD: the answer never has a body
  // Headers the backend's Connection header names: not relayed.
  std::vector<std::string> connection_options;
  std::string request_body;  // curl reads it in place
  bool running = false;      // the easy handle is on the multi handle
  // When the request was handed to the backend's connection (curl's
  // pre-request callback: connected, about to write it), from receipt;
  // -1 until then.
  int64_t sent_us = -1;

  // What the backend has sent.
  int status = 0;
  HeaderList headers;  // end-to-end ones
  std::optional<size_t> content_length;
  bool headers_done = false;
  int64_t headers_us = 0;
  bool transfer_done = false;
  CURLcode result = CURLE_OK;
  // --backend-timeout: the transfer fails once neither direction has moved
  // for this long (sending the request, waiting for the answer, between
  // pieces of it).
  int64_t timeout_ms = 0;
  int64_t last_progress_ms = 0;
  curl_off_t seen_bytes = 0;

  // The body's pieces: chunks[0, next) are written to the client and kept
  // for the store (only while "keep"); chunks[next, end) wait for the
  // client. A piece nobody needs any more is freed at once.
  std::deque<Chunk> chunks;
  size_t next = 0;
  size_t written = 0;      // bytes written to the client
  bool keep = false;       // recording, and within the limit so far
  uint64_t received = 0;   // body bytes from the backend
  bool too_large = false;  // passed the limit: relayed, not recorded

  Recording recording;
  bool finished = false;  // End() ran
  bool complete = false;
  bool record_failed = false;  // on_done said the answer must not complete

  ~Call() { Abandon("client disconnected"); }

  int64_t Now() const { return forwarder->clock_->NowMicros() - start_us; }

  // The piece the relay writes next.
  const Chunk& Pending() const { return chunks[next]; }
  bool HasPending() const { return next < chunks.size(); }
  // The pending piece reached the client.
  void Written() {
    written += chunks[next].data.size();
    if (keep) {
      ++next;
    } else {
      chunks.pop_front();
    }
  }

  // Stops keeping the body for the store: it is larger than the limit.
  void TooLarge(uint64_t bytes) {
    if (too_large) return;
    too_large = true;
    keep = false;
    chunks.erase(chunks.begin(), chunks.begin() + static_cast<ptrdiff_t>(next));
    next = 0;
    // Hands the memory the kept pieces took back to the system.
    malloc_trim(0);
    if (recording.on_too_large) recording.on_too_large(bytes);
  }

  // Any byte sent or received is progress.
  static int OnProgress(void* self, curl_off_t, curl_off_t dlnow, curl_off_t,
                        curl_off_t ulnow) {
    auto* call = static_cast<Call*>(self);
    if (dlnow + ulnow != call->seen_bytes) {
      call->seen_bytes = dlnow + ulnow;
      call->last_progress_ms = SteadyMs();
    }
    return 0;
  }

  static int OnPrereq(void* self, char*, char*, int, int) {
    auto* call = static_cast<Call*>(self);
    call->sent_us = call->Now();
    return CURL_PREREQFUNC_OK;
  }

  static size_t OnHeader(char* data, size_t size, size_t n, void* self) {
    static_cast<Call*>(self)->last_progress_ms = SteadyMs();
    static_cast<Call*>(self)->Header(std::string_view(data, size * n));
    return size * n;
  }
  static size_t OnBody(char* data, size_t size, size_t n, void* self) {
    auto* call = static_cast<Call*>(self);
    call->last_progress_ms = SteadyMs();
    call->chunks.push_back(Chunk{call->Now(), std::string(data, size * n)});
    call->received += size * n;
    if (call->keep && call->received > call->recording.max_bytes) {
      call->TooLarge(call->received);
    }
    return size * n;
  }

  void Header(std::string_view line) {
    if (line.rfind("HTTP/", 0) == 0) {  // a status line: a new header block
      const size_t space = line.find(' ');
      status = space == std::string_view::npos
                   ? 0
                   : std::atoi(std::string(line.substr(space + 1, 3)).c_str());
      headers.clear();
      content_length.reset();
      connection_options.clear();
      return;
    }
    line = TrimSpace(line);
    if (line.empty()) {
      // The end of a block; 1xx blocks are interim, another one follows.
      if (status >= 200) {
        headers_done = true;
        headers_us = Now();
        if (!connection_options.empty()) {
          std::erase_if(headers, [this](const auto& h) {
            return IsNamedIn(h.first, connection_options);
          });
        }
      }
      return;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return;
    std::string name(TrimSpace(line.substr(0, colon)));
    std::string value(TrimSpace(line.substr(colon + 1)));
    if (HeaderNameEquals(name, "Content-Length")) {
      content_length = std::strtoull(value.c_str(), nullptr, 10);
    }
    if (HeaderNameEquals(name, "Connection")) {
      AddConnectionOptions(value, &connection_options);
    }
    // rewind's own headers are set by this rewind, never taken from a
    // backend (another rewind behind this one). The Content-Length of an
    // answer that never has a body (to HEAD, a 304) is not framing but what
    // a GET would carry: it is kept, relayed and recorded.
    const bool kept_length = HeaderNameEquals(name, "Content-Length") &&
                             (head_request || status == 304);
    if ((IsHopByHop(name) && !kept_length) || IsRewindHeader(name)) return;
    headers.emplace_back(std::move(name), std::move(value));
  }

  // Sets up the transfer of "request" and puts it on the connection.
  bool Start(const BackendUrl& backend, int timeout_s, const Request& request,
             bool head) {
    head_request = head;
    CURL* e = conn->easy;
    curl_easy_reset(e);
    const std::string url =
        backend.scheme_host_port + backend.path_prefix + request.Target();
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);  // "/a/../b" as sent
    curl_easy_setopt(e, CURLOPT_PROXY, "");       // never a proxy from the env
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, static_cast<long>(timeout_s));
    // Silence is timed by Drive(), exactly: curl's low-speed check averages
    // over seconds and let a POST wait 10 s for a 4 s timeout.
    timeout_ms = static_cast<int64_t>(timeout_s) * 1000;
    last_progress_ms = SteadyMs();
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &Call::OnProgress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &Call::OnPrereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, this);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Call::OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Call::OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, this);

    request_body = request.body;
    if (head) {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (request.method == "GET" && request_body.empty()) {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
      if (!request_body.empty() || request.method == "POST" ||
          request.method == "PUT" || request.method == "PATCH") {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request_body.size()));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, request_body.data());
      }
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }

    bool has_accept = false;
    bool has_content_type = false;
    bool ok = true;
    for (const auto& [name, value] : request.headers) {
      // curl sets Host for the backend; a client's Host names rewind, and
      // following it would let a client pick the destination. An Expect
      // was answered by rewind's own server already.
      if (HeaderNameEquals(name, "Host") || HeaderNameEquals(name, "Expect")) {
        continue;
      }
      has_accept |= HeaderNameEquals(name, "Accept");
      has_content_type |= HeaderNameEquals(name, "Content-Type");
      // "Name;" is curl's way to send a header with an empty value.
      ok = ok && request_headers.Append(value.empty() ? name + ";"
                                                      : name + ": " + value);
    }
    // Headers curl would add on its own, and the client did not send.
    if (!has_accept) ok = ok && request_headers.Append("Accept:");
    if (!has_content_type) ok = ok && request_headers.Append("Content-Type:");
    ok = ok && request_headers.Append("Expect:");
    if (!ok) {
      transfer_done = true;
      result = CURLE_OUT_OF_MEMORY;
      return false;
    }
    if (url.size() + request_headers.bytes() > kMaxForwardedHead) {
      head_too_large = true;
      transfer_done = true;
      result = CURLE_FAILED_INIT;
      return false;
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, request_headers.get());

    if (curl_multi_add_handle(conn->multi, e) != CURLM_OK) {
      transfer_done = true;
      result = CURLE_FAILED_INIT;
      return false;
    }
    running = true;
    return true;
  }

  // Moves the transfer on until "until()" holds or it is over.
  template <typename Until>
  void Drive(Until until) {
    while (!transfer_done && !until()) {
      int still_running = 0;
      const CURLMcode mc = curl_multi_perform(conn->multi, &still_running);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(conn->multi, &left)) {
        if (m->msg == CURLMSG_DONE) {
          transfer_done = true;
          result = m->data.result;
        }
      }
      if (mc != CURLM_OK && !transfer_done) {
        transfer_done = true;
        result = CURLE_RECV_ERROR;
      }
      if (transfer_done || until()) return;
      const int64_t silent_for = SteadyMs() - last_progress_ms;
      if (silent_for >= timeout_ms) {
        transfer_done = true;
        result = CURLE_OPERATION_TIMEDOUT;
        return;
      }
      curl_multi_poll(
          conn->multi, nullptr, 0,
          static_cast<int>(std::min<int64_t>(kPollMs, timeout_ms - silent_for)),
          nullptr);
    }
  }

  // Ends the call with the transfer's own outcome (once it is over).
  // "relaying": the relay still writes the pieces it has not written.
  void Finish(bool relaying = true) {
    const bool ok = transfer_done && result == CURLE_OK;
    End(ok, ok ? "" : std::string("backend: ") + curl_easy_strerror(result),
        relaying);
  }

  // Ends the call as broken off ("why"), whatever the transfer did.
  void Abandon(const char* why) { End(false, why, true); }

  // Ends the call once: stops the transfer if it still runs, returns a
  // connection that finished cleanly to the pool, and hands the exchange
  // to the recording.
  void End(bool ok, const std::string& error, bool relaying) {
    if (finished) return;
    finished = true;
    complete = ok;
    if (running) {
      curl_multi_remove_handle(conn->multi, conn->easy);
      running = false;
    }
    if (conn) {
      // A connection left in the middle of a response cannot carry another.
      if (transfer_done && result == CURLE_OK) {
        forwarder->Release(std::move(conn));
      } else {
        conn.reset();
      }
    }
    const bool record = keep;
    keep = false;
    if (!headers_done || !record || !recording.on_done) return;
    Exchange& e = recording.base;
    e.response.status = status;
    e.response.headers = headers;
    e.response.chunked = !content_length.has_value();
    e.response.headers_us = headers_us;
    e.response.own_before_us = std::max<int64_t>(0, sent_us);
    // The store takes the written pieces; the ones still to be written are
    // copied, or taken too when nothing will write them.
    e.response.chunks.reserve(chunks.size());
    const size_t take = relaying ? next : chunks.size();
    for (size_t i = 0; i < chunks.size(); ++i) {
      if (i < take) {
        e.response.chunks.push_back(std::move(chunks[i]));
      } else {
        e.response.chunks.push_back(chunks[i]);
      }
    }
    chunks.erase(chunks.begin(), chunks.begin() + static_cast<ptrdiff_t>(take));
    next = 0;
    e.complete = ok;
    if (!ok) e.error = error;
    if (!recording.on_done(std::move(e))) {
      // Recording failed, and the client must see it (no --fail-open):
      // the answer is not completed.
      complete = false;
      record_failed = true;
    }
  }
};

Forwarder::Forwarder(BackendUrl backend, int timeout_s, Clock* clock)
    : backend_(std::move(backend)), timeout_s_(timeout_s), clock_(clock) {
  GlobalInit();
}

Forwarder::~Forwarder() { Shutdown(); }

void Forwarder::Shutdown() {
  // Closing the idle keep-alive connections lets the backend free the
  // worker it keeps for each.
  std::lock_guard<std::mutex> lock(idle_mu_);
  idle_.clear();
}

std::unique_ptr<Forwarder::Connection> Forwarder::Acquire() {
  {
    std::lock_guard<std::mutex> lock(idle_mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  auto c = std::make_unique<Connection>();
  if (!c->multi || !c->easy) return nullptr;
  return c;
}

void Forwarder::Release(std::unique_ptr<Connection> connection) {
  std::lock_guard<std::mutex> lock(idle_mu_);
  if (idle_.size() < kMaxIdleConnections)
    idle_.push_back(std::move(connection));
}

namespace {

// An answer not yet begun whose recording failed, without --fail-open:
// the client gets rewind's error instead.
bool RecordFailed(httplib::Response* res) {
  res->headers.clear();
  SetJsonError(res, 500, "rewind_record_failed",
               "rewind could not record this exchange (an internal error, in "
               "its log); the backend's answer was not relayed. `rewind "
               "record --fail-open` relays every answer whatever happens in "
               "recording");
  return true;
}

}  // namespace

bool Forwarder::Forward(const Request& request, bool head, int64_t start_us,
                        Recording recording, httplib::Response* res) {
  auto call = std::make_shared<Call>();
  call->forwarder = this;
  call->start_us = start_us;
  call->recording = std::move(recording);
  call->conn = Acquire();
  if (call->conn && call->Start(backend_, timeout_s_, request, head)) {
    call->Drive([&] { return call->headers_done; });
  } else {
    call->transfer_done = true;
    call->result = CURLE_FAILED_INIT;
  }
  if (call->head_too_large) {
    call->Finish();
    SetJsonError(res, 431, "rewind_headers_too_large",
                 "request headers too large to forward: " +
                     std::to_string(call->request_headers.bytes()) +
                     " bytes, at most " + std::to_string(kMaxForwardedHead));
    return false;
  }
  if (!call->headers_done) {
    const bool timed_out = call->result == CURLE_OPERATION_TIMEDOUT;
    const std::string why =
        timed_out ? "nothing came within --backend-timeout (" +
                        std::to_string(timeout_s_) + " s)"
        : call->result == CURLE_OK
            ? "it closed the connection before its response headers were "
              "complete"
            : curl_easy_strerror(call->result);
    call->Finish();  // no headers: nothing to record
    SetJsonError(
        res, timed_out ? 504 : 502,
        timed_out ? "rewind_backend_timeout" : "rewind_backend_unavailable",
        "backend " + backend_.scheme_host_port + " did not answer: " + why);
    return false;
  }

  res->status = call->status;
  const std::string content_type = CopyResponseHeaders(call->headers, res);
  const std::optional<size_t> length = call->content_length;
  const bool no_body = head || call->status == 204 || call->status == 304 ||
                       (length && *length == 0);
  if (call->recording.on_done) {
    call->keep = true;
    // What arrived with the headers counts too.
    if (call->received > call->recording.max_bytes) {
      call->TooLarge(call->received);
    } else if (!no_body && length && *length > call->recording.max_bytes) {
      call->TooLarge(*length);
    }
  }
  if (no_body || (length && *length <= kWholeBodyMax)) {
    // Small or empty: read it all, record it, then hand it over whole.
    call->Drive([] { return false; });
    const bool ok = call->result == CURLE_OK;
    if (ok && !no_body) {
      // One copy for the client; the exchange takes the chunks themselves.
      std::string body;
      if (call->chunks.size() == 1) {
        body = call->chunks.front().data;
      } else {
        body.reserve(call->received);
        for (const Chunk& c : call->chunks) body += c.data;
      }
      call->Finish(/*relaying=*/false);
      if (call->record_failed) return RecordFailed(res);
      res->body = std::move(body);  // (set_content would copy it)
      res->headers.erase("Content-Type");
      if (!content_type.empty()) res->set_header("Content-Type", content_type);
      return true;
    }
    call->Finish();
    if (call->record_failed) return RecordFailed(res);
    if (no_body) {
      if (!content_type.empty()) res->set_header("Content-Type", content_type);
      if (length && (head || call->status == 304)) {
        res->set_header("Content-Length", std::to_string(*length));
      }
      return true;
    }
    // Cut short: the relay below writes what came, then breaks the
    // connection, as the backend did.
  }

  // Streamed (chunked or large): each piece is written as it arrives. The
  // last bytes wait until the exchange is recorded.
  auto relay = [call, length](httplib::DataSink& sink) -> bool {
    Call& c = *call;
    while (true) {
      while (c.HasPending()) {
        if (length && c.written + c.Pending().data.size() >= *length) {
          // The last bytes: only once the exchange is recorded.
          c.Drive([] { return false; });
          c.Finish();
          if (!c.complete) return false;
        }
        const std::string& data = c.Pending().data;
        if (!sink.write(data.data(), data.size())) {
          c.Abandon("client disconnected");
          return false;
        }
        c.Written();
      }
      if (c.transfer_done || c.finished) {
        c.Finish();
        if (!c.complete) return false;
        if (!length) sink.done();
        return true;
      }
      const uint64_t have = c.received;
      c.Drive([&] { return c.received > have; });
    }
  };
  if (!length) {
    res->set_chunked_content_provider(
        content_type,
        [relay](size_t, httplib::DataSink& sink) { return relay(sink); });
  } else {
    res->set_content_provider(*length, content_type,
                              [relay](size_t, size_t, httplib::DataSink& sink) {
                                return relay(sink);
                              });
  }
  if (content_type.empty()) res->headers.erase("Content-Type");
  return true;
}

}  // namespace rwd
