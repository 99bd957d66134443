#include "rewind/server.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "http/connection.h"
#include "http/forwarder.h"
#include "http/http_util.h"
#include "http/server_metrics.h"
#include "key/json.h"
#include "modes/convert.h"
#include "rewind/redact.h"
#include "scrub/scrubber.h"
#include "synth/dialect.h"
#include "synth/engine_metrics.h"
#include "util/access_log.h"

namespace rwd {
namespace {

constexpr int kListenBacklog = 4096;
constexpr const char* kAdminPrefix = "/__rewind/";

// The worker pool, counting connections: each task is one connection,
// queued until a worker takes it, active while it is served.
class CountingPool final : public httplib::TaskQueue {
 public:
  CountingPool(size_t workers, ServerMetrics* metrics)
      : pool_(workers), metrics_(metrics) {}
  void enqueue(std::function<void()> fn) override {
    metrics_->queued++;
    pool_.enqueue([this, fn = std::move(fn)] {
      metrics_->queued--;
      metrics_->active++;
      fn();
      metrics_->active--;
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  ServerMetrics* const metrics_;
};

// cpp-httplib routes each request and writes its response; rewind's
// ConnectionLoop owns the sockets and reads requests (connection.h).
class HttpServer : public httplib::Server {
 public:
  // One whole request from "strm", with cpp-httplib's routing and writer.
  bool ServeOne(httplib::Stream& strm, bool close, bool& closed) {
    return process_request(strm, close, closed, nullptr);
  }
  // cpp-httplib stops writing a response once its listening socket is
  // gone; rewind's requests in flight finish, so it is never gone.
  void MarkListening(int fd) { svr_sock_ = fd; }
};

// Descriptors one connection can take: the client's socket and, when
// proxying, the backend's plus the two of libcurl's wake-up socket pair.
constexpr size_t kDescriptorsPerConnection = 4;

// Descriptors "connections" clients can take, and a margin for the rest
// (the recording, logs, the listening socket).
size_t DescriptorsFor(size_t connections) {
  return connections * kDescriptorsPerConnection + 64;
}

// Makes room for "want" descriptors up front. The soft limit on open files
// is raised towards the hard one as far as needed, and the process's
// descriptor table is grown to that size once, now: the kernel grows it by
// doubling as descriptors are opened, and each growth in a multi-threaded
// process waits for an RCU grace period, a stall of ~5 ms for every thread
// seen at 256 and 512 descriptors. Returns the number of descriptors
// available, for a warning when it is short.
size_t PrepareDescriptors(rlim_t want, int any_fd) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return want;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < want) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY
                          ? want
                          : std::min<rlim_t>(want, limit.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  const rlim_t available =
      limit.rlim_cur == RLIM_INFINITY ? want : std::min(want, limit.rlim_cur);
  const int grown = fcntl(any_fd, F_DUPFD_CLOEXEC, static_cast<int>(available) - 1);
  if (grown >= 0) close(grown);
  return available;
}

const char* ModeName(ServerMode mode) {
  switch (mode) {
    case ServerMode::kRecord: return "record";
    case ServerMode::kReplay: return "replay";
    case ServerMode::kServe: return "serve";
  }
  return "?";
}

KeyRules RulesOf(const Store* store) {
  return store ? store->rules() : KeyRules{DefaultIgnoredFields(), {}};
}

// Seconds since the Unix epoch that synthesized answers report as
// "created" when they must be reproducible byte for byte.
constexpr int64_t kFixedCreated = 1700000000;

const char* MissPolicyName(MissPolicy p) {
  switch (p) {
    case MissPolicy::kError: return "error";
    case MissPolicy::kPassthrough: return "passthrough";
    case MissPolicy::kRecord: return "record";
    case MissPolicy::kSynthesize: return "synthesize";
    case MissPolicy::kConvert: return "convert";
  }
  return "?";
}

std::string JsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += JsonQuote(items[i]);
  }
  return out + "]";
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Set while cpp-httplib runs rewind's handler for a request on this
// thread, so its logger (called next, on the same thread) leaves the
// request to the handler's own RequestLog.
thread_local bool t_handled = false;

class FrontServer final : public Server {
 public:
  explicit FrontServer(const ServerOptions& options)
      : options_(options),
        clock_(options.clock ? options.clock : SystemClock()),
        canonicalizer_(RulesOf(options.store)),
        index_(options.repeat, options.seed),
        cache_(options.store, options.cache_bytes),
        session_start_us_(clock_->NowMicros()),
        admin_token_(options.admin_token),
        loopback_(options.host == "localhost" || options.host == "::1" ||
                  options.host.rfind("127.", 0) == 0),
        metrics_(ModeName(options.mode)),
        log_(options.log_path,
             options.log_json ? AccessLog::Format::kJson : AccessLog::Format::kText,
             options.quiet),
        loop_(LoopOptions(options),
              [this](httplib::Stream& strm, bool close, bool& closed) {
                return http_.ServeOne(strm, close, closed);
              },
              [this](int status, const std::string&) { Refused(status); }) {
    redact_ = DefaultRedactedHeaders();
    redact_.insert(redact_.end(), options.redact_headers.begin(),
                   options.redact_headers.end());
    // A recording whose rules scrub is written scrubbed, whoever writes it,
    // and its logs name scrubbed paths.
    const KeyRules& rules = canonicalizer_.rules();
    if (!rules.scrub.empty() || !rules.scrub_patterns.empty()) {
      auto detectors =
          scrub::Detectors::Make(rules.scrub, rules.scrub_patterns);
      if (detectors.ok()) {
        store_scrubber_ = std::make_unique<scrub::Scrubber>(
            detectors.value(), scrub::Mode::kStore,
            options.scrub_secret.empty() ? scrub::NewSecret()
                                         : options.scrub_secret);
        log_scrubber_ = std::make_unique<scrub::Scrubber>(
            detectors.value(), scrub::Mode::kKey);
      }
    }
  }

  // The path as logs show it: scrubbed to types ("/users/<email>") when
  // the recording scrubs.
  std::string LoggedPath(const std::string& path) const {
    return log_scrubber_ ? log_scrubber_->Path(path) : path;
  }

  Status Init() {
    Status opened = log_.Open();
    if (!opened.ok()) return opened;
    for (const std::string& field : options_.redact_fields) {
      const auto& ignored = canonicalizer_.rules().ignore_fields;
      if (std::find(ignored.begin(), ignored.end(), field) == ignored.end()) {
        return Status::InvalidArgument(
            "--redact-field " + field +
            " must also be left out of the key, or stored keys would not "
            "match their requests; the recording's ignored fields are " +
            JsonList(ignored));
      }
    }
    if (needs_backend()) {
      Result<BackendUrl> url = BackendUrl::Parse(options_.backend);
      if (!url.ok()) return url.status();
      forwarder_ = std::make_unique<Forwarder>(
          url.value(), options_.backend_timeout_s, clock_);
    }
    if (options_.mode == ServerMode::kReplay) {
      Result<size_t> n =
          index_.Load(options_.store, options_.include_incomplete);
      if (!n.ok()) return n.status();
      if (options_.on_miss == MissPolicy::kConvert) {
        Status s = LoadConvertIndex();
        if (!s.ok()) return s;
      }
    }
    if (synthesizes()) {
      synth_ = std::make_unique<Synthesizer>(options_.synth);
      admission_ = std::make_unique<Admission>(options_.synth.max_concurrency,
                                               options_.synth.max_queue);
      engine_metrics_ = std::make_unique<EngineMetrics>(options_.synth.model);
    }
    return Status::Ok();
  }

  Result<int> Bind() override {
    http_.set_tcp_nodelay(true);
    http_.set_payload_max_length(options_.max_body_bytes);
    Routes();
    Result<int> port = loop_.Bind(options_.host, options_.port, kListenBacklog);
    if (!port.ok()) return port.status();
    http_.MarkListening(loop_.listening_socket());
    const size_t need = DescriptorsFor(options_.max_connections);
    const size_t fds = PrepareDescriptors(need, loop_.listening_socket());
    if (fds < need) {
      log_.Error("the open-file limit (" + std::to_string(fds) +
                 ") is below what --max-connections " +
                 std::to_string(options_.max_connections) + " can use (" +
                 std::to_string(need) +
                 "); raise it (ulimit -n) or lower --max-connections");
    }
    return port;
  }

  Status Run() override {
    loop_.Run(std::make_unique<CountingPool>(options_.max_connections, &metrics_));
    // Every worker has finished: no handler runs any more.
    if (forwarder_) forwarder_->Shutdown();
    return options_.store ? options_.store->Flush() : Status::Ok();
  }

  Status ReopenLogs() override { return log_.Reopen(); }

  void Stop() override { loop_.Stop(); }

 private:
  bool needs_backend() const {
    return options_.mode == ServerMode::kRecord ||
           (options_.mode == ServerMode::kReplay &&
            (options_.on_miss == MissPolicy::kPassthrough ||
             options_.on_miss == MissPolicy::kRecord));
  }
  bool synthesizes() const {
    return options_.mode == ServerMode::kServe ||
           (options_.mode == ServerMode::kReplay &&
            options_.on_miss == MissPolicy::kSynthesize);
  }

  void Routes() {
    auto handle = [this](const httplib::Request& req, httplib::Response& res) {
      RestoreRequest(req);
      Handle(req, res);
    };
    http_.Get(".*", handle);
    http_.Post(".*", handle);
    http_.Put(".*", handle);
    http_.Patch(".*", handle);
    http_.Delete(".*", handle);
    http_.Options(".*", handle);
    // Errors cpp-httplib raises itself (400, 413, 414, ...) get a JSON body
    // too. Responses rewind produced carry X-Rewind and are left alone.
    http_.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request& req, httplib::Response& res) {
          if (res.has_header("X-Rewind") || !res.body.empty()) {
            return httplib::Server::HandlerResponse::Unhandled;
          }
          ErrorDialectScope dialect(req.path);
          std::string message =
              res.status == 413   ? "request body larger than --max-body-bytes"
              : res.status == 414 ? "request target too long"
              : res.status == 400 ? "malformed HTTP request"
                                  : "request rejected by the HTTP layer";
          SetJsonError(&res, res.status, "rewind_bad_request", message);
          // Tells the client not to reuse the connection. (cpp-httplib
          // itself still waits out --keep-alive-timeout before closing it.)
          res.set_header("Connection", "close");
          return httplib::Server::HandlerResponse::Handled;
        }));
    // Requests cpp-httplib refused before any handler ran are logged here;
    // handled ones are logged by their RequestLog.
    http_.set_logger([this](const httplib::Request& req,
                            const httplib::Response& res) {
      // cpp-httplib calls the logger on the thread that ran the handler.
      if (t_handled) {
        t_handled = false;
        return;
      }
      AccessRecord r;
      r.wall_us = clock_->WallMicros();
      r.method = req.method;
      r.path = LoggedPath(req.path);
      r.status = res.status;
      r.outcome = "error";
      metrics_.ObserveRequest(r.outcome, r.status, 0, 0);
      log_.Access(r);
    });
  }

  // A request the connection layer refused before any handler ran.
  void Refused(int status) {
    AccessRecord r;
    r.wall_us = clock_->WallMicros();
    r.method = "-";
    r.path = "-";
    r.status = status;
    r.outcome = "error";
    metrics_.ObserveRequest(r.outcome, r.status, 0, 0);
    log_.Access(r);
  }

  static ConnectionOptions LoopOptions(const ServerOptions& o) {
    ConnectionOptions c;
    c.client_timeout_s = o.client_timeout_s;
    c.keep_alive_timeout_s = o.keep_alive_timeout_s;
    c.write_timeout_s = o.client_timeout_s;
    c.limits.max_body = o.max_body_bytes;
    return c;
  }

  // One request's access-log line and metrics, emitted when the last
  // reference goes: at the end of the handler, or once a streamed body is
  // written (the content provider holds a reference).
  struct RequestLog {
    FrontServer* server;
    int64_t start_us;
    AccessRecord record;
    int64_t headers_us = 0;
    std::atomic<uint64_t> bytes{0};
    ~RequestLog() {
      const int64_t now = server->clock_->NowMicros();
      record.total_ms = static_cast<double>(now - start_us) / 1000.0;
      record.headers_ms = static_cast<double>(headers_us - start_us) / 1000.0;
      record.bytes = bytes.load();
      server->metrics_.AddBytes(record.bytes);
      server->metrics_.ObserveRequest(record.outcome, record.status,
                                      record.headers_ms / 1000.0,
                                      record.total_ms / 1000.0);
      server->log_.Access(record);
    }
  };

  void Handle(const httplib::Request& req, httplib::Response& res) {
    const int64_t start = clock_->NowMicros();
    auto log = std::make_shared<RequestLog>();
    log->server = this;
    log->start_us = start;
    log->record.wall_us = clock_->WallMicros();
    log->record.method = req.method;
    log->record.path = LoggedPath(req.path);
    t_handled = true;
    Dispatch(req, res, start);
    log->headers_us = clock_->NowMicros();
    log->record.status = res.status == -1 ? 200 : res.status;
    // Set by Dispatch with exactly these names: a plain scan is cheaper
    // than the case-insensitive map's find.
    for (const auto& [name, value] : res.headers) {
      if (name == "X-Rewind") log->record.outcome = value;
      if (name == "X-Rewind-Key") log->record.key = value.substr(0, 8);
    }
    if (res.content_provider_) {
      // Count the body as it is written, and log when it is done.
      auto inner = std::move(res.content_provider_);
      res.content_provider_ = [inner, log](size_t offset, size_t length,
                                           httplib::DataSink& sink) {
        httplib::DataSink counting;
        counting.write = [&sink, &log](const char* d, size_t n) {
          log->bytes += n;
          return sink.write(d, n);
        };
        counting.done = [&sink] {
          if (sink.done) sink.done();
        };
        counting.is_writable = [&sink] {
          return sink.is_writable ? sink.is_writable() : true;
        };
        return inner(offset, length, counting);
      };
    } else {
      log->bytes = res.body.size();
    }
  }

  void Dispatch(const httplib::Request& req, httplib::Response& res,
                int64_t start) {
    DisableServerRewrites(req);
    // Errors written for this request take its API's shape.
    ErrorDialectScope dialect(req.path);
    // Only origin-form targets ("/path"): an absolute URI would ask a
    // proxy to reach another host, and rewind talks to --backend only.
    if (req.target.empty() || req.target[0] != '/') {
      res.set_header("X-Rewind", "error");
      SetJsonError(&res, 400, "rewind_bad_target",
                   "request target \"" + req.target.substr(0, 200) +
                       "\" is not a path; rewind forwards only to its "
                       "--backend");
      return;
    }
    if (req.path.rfind(kAdminPrefix, 0) == 0) {
      if (req.path != "/__rewind/health" && !Authorized(req, admin_token_, &res)) {
        return;
      }
      Admin(req, &res);
      return;
    }
    if (req.method == "GET" && req.path == "/metrics") {
      if (!options_.metrics_token.empty() &&
          !Authorized(req, options_.metrics_token, &res)) {
        return;
      }
      res.set_header("X-Rewind", "admin");
      std::string body = metrics_.Render(options_.max_connections, options_.store);
      if (synthesizes()) {
        body += engine_metrics_->Render(
            admission_->running(), admission_->waiting(),
            static_cast<double>(admission_->tokens()) /
                static_cast<double>(
                    std::max<int64_t>(1, options_.synth.kv_cache_tokens)));
      }
      res.set_content(body, "text/plain; version=0.0.4");
      return;
    }
    Request request = FromHttplib(req);
    const RequestKey key = canonicalizer_.Key(request);
    if (options_.mode == ServerMode::kServe) {
      Serve(request, key, start, req.method == "HEAD", &res);
    } else if (options_.mode == ServerMode::kRecord) {
      Proxy(request, key, start, /*record=*/true, req.method == "HEAD", &res);
    } else {
      Replay(request, key, start, req.method == "HEAD", &res);
    }
  }

  // A request's headers as they are recorded: secrets redacted, and
  // rewind's own (X-Rewind-Latency, ...) left out unless the key matches on
  // them. They are still forwarded: the backend may be another rewind.
  HeaderList StoredRequestHeaders(const HeaderList& headers) const {
    HeaderList stored = Redact(headers, redact_);
    const std::vector<std::string>& matched = canonicalizer_.rules().match_headers;
    stored.erase(
        std::remove_if(stored.begin(), stored.end(),
                       [&](const auto& h) {
                         return IsRewindHeader(h.first) &&
                                std::none_of(matched.begin(), matched.end(),
                                             [&](const std::string& m) {
                                               return HeaderNameEquals(h.first, m);
                                             });
                       }),
        stored.end());
    return stored;
  }

  // Forwards to the backend; stores the exchange when "record".
  void Proxy(const Request& request, const RequestKey& key, int64_t start,
             bool record, bool head, httplib::Response* res) {
    const std::string key_hex = key.ToHex();
    Forwarder::Recording recording;
    if (record) {
      Exchange& base = recording.base;
      base.key_hex = key_hex;
      base.request = request;
      base.request.headers = StoredRequestHeaders(request.headers);
      record = RedactBody(request, &base.request.body) &&
               ScrubStored(request, &base.request);
      if (!record) base = Exchange();
    }
    if (record) {
      Exchange& base = recording.base;
      base.started_at_us = clock_->WallMicros();
      base.arrival_offset_us = start - session_start_us_;
      const bool index = options_.mode == ServerMode::kReplay;
      recording.on_done = [this, key, index, method = request.method,
                           path = request.path](Exchange&& e) {
        e.response.headers = Redact(e.response.headers, redact_);
        if (store_scrubber_) {
          Status scrubbed = store_scrubber_->ScrubResponse(&e.response);
          if (!scrubbed.ok()) {
            metrics_.RecordSkipped("unscrubbable");
            log_.Error("not recorded: " + method + " " + LoggedPath(path) +
                       ": its answer has a Content-Encoding, which rewind "
                       "cannot scrub; it was relayed to the client only");
            return;
          }
        }
        Result<int64_t> id =
            options_.store->WaitCommitted(options_.store->Append(std::move(e)));
        if (!id.ok()) {
          errors_++;
          log_.Error("exchange not recorded: " + id.status().ToString());
          return;
        }
        recorded_++;
        if (index) index_.Add(key, id.value(), method, path);
      };
      recording.max_bytes = options_.max_record_bytes;
      recording.on_too_large = [this, method = request.method,
                                path = request.path](uint64_t bytes) {
        metrics_.RecordSkipped("too_large");
        log_.Error("not recorded: " + method + " " + LoggedPath(path) +
                   ": the answer is larger than --max-record-bytes (" +
                   std::to_string(options_.max_record_bytes) + "; " +
                   std::to_string(bytes) +
                   " bytes known); it is relayed to the client only");
      };
    } else {
      passthrough_++;
    }
    bool forwarded;
    if (record && store_scrubber_ &&
        !FindHeader(request.headers, "Accept-Encoding").empty()) {
      // A compressed answer could not be scrubbed: ask for it as it is.
      Request plain = request;
      std::erase_if(plain.headers, [](const auto& h) {
        return HeaderNameEquals(h.first, "Accept-Encoding");
      });
      forwarded = forwarder_->Forward(plain, head, start, std::move(recording),
                                      res);
    } else {
      forwarded = forwarder_->Forward(request, head, start,
                                      std::move(recording), res);
    }
    if (!forwarded) errors_++;
    res->set_header("X-Rewind", record ? "record" : "passthrough");
    res->set_header("X-Rewind-Key", key_hex);
  }

  // Replaces every --redact-field value in a body to be recorded. False
  // when a secret cannot be taken out (JSON that does not parse, or nests
  // deeper than kMaxJsonDepth): the exchange is then forwarded and answered
  // but not recorded, logged and counted in rewind_record_skipped_total.
  bool RedactBody(const Request& request, std::string* body) {
    if (options_.redact_fields.empty()) return true;
    Result<bool> redacted = RedactJsonFields(body, options_.redact_fields);
    if (redacted.ok()) return true;
    metrics_.RecordSkipped("unredactable");
    log_.Error("not recorded: " + request.method + " " + LoggedPath(request.path) +
               ": " + redacted.status().message() +
               "; it is forwarded and answered only");
    return false;
  }

  // Scrubs a request to be recorded, when the recording scrubs. False when
  // its body cannot be scrubbed (a Content-Encoding): the exchange is then
  // forwarded and answered but not recorded, logged and counted.
  bool ScrubStored(const Request& request, Request* stored) {
    if (!store_scrubber_) return true;
    if (store_scrubber_->ScrubRequest(stored).ok()) return true;
    metrics_.RecordSkipped("unscrubbable");
    log_.Error("not recorded: " + request.method + " " +
               LoggedPath(request.path) +
               ": its body has a Content-Encoding, which rewind cannot "
               "scrub; it is forwarded and answered only");
    return false;
  }

  void Replay(const Request& request, const RequestKey& key, int64_t start,
              bool head, httplib::Response* res) {
    std::optional<ReplayIndex::Pick> pick = index_.Select(key);
    if (!pick) {
      Miss(request, key, start, head, res);
      return;
    }
    LatencyModel model = options_.latency;
    const std::string override = FindHeader(request.headers, "X-Rewind-Latency");
    if (!override.empty()) {
      Result<LatencyModel> m = LatencyModel::Parse(override);
      if (!m.ok()) {
        SetJsonError(res, 400, "rewind_bad_latency", m.status().message());
        res->set_header("X-Rewind", "error");
        return;
      }
      model = m.value();
    }
    Result<std::shared_ptr<const Exchange>> exchange = cache_.Get(pick->id);
    if (!exchange.ok()) {
      errors_++;
      SetJsonError(res, 500, "rewind_store_error",
                   exchange.status().ToString());
      res->set_header("X-Rewind", "error");
      return;
    }
    hits_++;
    std::shared_ptr<const LatencySamples> samples;
    if (model.kind() == LatencyModel::Kind::kEmpirical) {
      samples = SamplesFor(request.method, request.path);
    }
    Schedule schedule =
        model.Apply(exchange.value()->response,
                    RequestSeed(options_.seed, key, pick->occurrence),
                    samples.get());
    // Constant and hex: no CR/LF for set_header() to look for.
    res->headers.emplace("X-Rewind", "hit");
    res->headers.emplace("X-Rewind-Key", key.ToHex());
    Outgoing out;
    const std::shared_ptr<const Exchange>& e = exchange.value();
    out.response = std::shared_ptr<const Response>(e, &e->response);
    out.schedule = std::move(schedule);
    SendPaced(std::move(out), start, head, res);
  }

  // The dummy engine's own surface (rewind serve).
  void Serve(const Request& request, const RequestKey& key, int64_t start,
             bool head, httplib::Response* res) {
    if (request.method == "GET" && request.path == "/health") {
      res->set_header("X-Rewind", "synth");
      res->set_content("{\"status\":\"ok\"}\n", "application/json");
      return;
    }
    if (std::optional<Synthesizer::Reply> reply = synth_->Immediate(request)) {
      res->status = reply->status;
      res->set_header("X-Rewind", "synth");
      res->set_content(reply->body, "application/json");
      return;
    }
    if (request.method == "GET" && request.path == "/api/tags") {
      res->set_header("X-Rewind", "synth");
      res->set_content(OllamaTagsBody(options_.synth), "application/json");
      return;
    }
    if (request.method == "POST" && IsEnginePath(request.path)) {
      Synthesize(request, key, start, head, res);
      return;
    }
    res->status = 404;
    res->set_header("X-Rewind", "synth");
    res->set_content(
        DialectErrorBody(DialectOf(request.path), 404,
                         "rewind serve has no " + request.method + " " +
                             request.path + "; it serves " +
                             Synthesizer::Endpoints(),
                         "invalid_request_error", "unknown_url"),
        "application/json");
  }

  static bool IsEnginePath(const std::string& path) {
    return Synthesizer::Generates(path);
  }

  uint64_t NextOccurrence(const RequestKey& key) {
    std::lock_guard<std::mutex> lock(occurrences_mu_);
    return occurrences_[key]++;
  }

  // Answers with the dummy engine: admission (queueing or 429), a plan,
  // then the paced writer, holding the slot until the last byte.
  void Synthesize(const Request& request, const RequestKey& key, int64_t start,
                  bool head, httplib::Response* res) {
    synthesized_++;
    res->set_header("X-Rewind", "synth");
    res->set_header("X-Rewind-Key", key.ToHex());
    SynthContext ctx;
    const std::string forced = FindHeader(request.headers, "X-Rewind-Fault");
    if (!forced.empty()) {
      Result<FaultType> f = ParseFaultType(forced);
      if (!f.ok()) {
        res->status = 400;
        res->set_content(DialectErrorBody(DialectOf(request.path), 400,
                                          f.status().message(),
                                          "invalid_request_error", ""),
                         "application/json");
        return;
      }
      ctx.forced_fault = f.value();
    }
    std::shared_ptr<Admission::Slot> slot = admission_->Enter();
    if (!slot) {
      res->status = 429;
      res->set_content(
          DialectErrorBody(DialectOf(request.path), 429,
                           "rewind's dummy engine is at capacity: " +
                               std::to_string(options_.synth.max_concurrency) +
                               " running and " +
                               std::to_string(options_.synth.max_queue) +
                               " waiting",
                           "rate_limit_error", "rate_limit_exceeded"),
          "application/json");
      return;
    }
    ctx.admitted_us = clock_->NowMicros() - start;
    ctx.load_multiplier = synth_->LoadMultiplier(admission_->running());
    ctx.seed = RequestSeed(options_.synth.seed, key, NextOccurrence(key));
    ctx.created = options_.synth.deterministic_created
                      ? kFixedCreated
                      : clock_->WallMicros() / 1000000;
    SynthPlan plan = synth_->Plan(request, ctx);
    admission_->AddTokens(slot.get(),
                          plan.prompt_tokens + plan.completion_tokens);
    if (plan.response.status == 200 && !plan.response.chunks.empty()) {
      const double first = static_cast<double>(plan.response.chunks.front().offset_us);
      const double last = static_cast<double>(plan.response.chunks.back().offset_us);
      engine_metrics_->Observe(
          first / 1e6,
          plan.completion_tokens > 1
              ? (last - first) / 1e6 / (plan.completion_tokens - 1)
              : 0,
          last / 1e6, plan.prompt_tokens, plan.completion_tokens);
    }
    Outgoing out;
    out.schedule.headers_us = plan.response.headers_us;
    for (const Chunk& c : plan.response.chunks) {
      out.schedule.chunk_us.push_back(c.offset_us);
    }
    out.abort = plan.abort;
    out.content_length = plan.content_length;
    out.hold = std::move(slot);
    out.response = std::make_shared<const Response>(std::move(plan.response));
    SendPaced(std::move(out), start, head, res);
  }

  // The timings recorded for an endpoint, gathered at its first use from
  // its newest kMaxSamples exchanges.
  std::shared_ptr<const LatencySamples> SamplesFor(const std::string& method,
                                                   const std::string& path) {
    constexpr size_t kMaxSamples = 1000;
    const std::string endpoint = method + " " + path;
    {
      std::lock_guard<std::mutex> lock(samples_mu_);
      auto it = samples_.find(endpoint);
      if (it != samples_.end()) return it->second;
    }
    auto samples = std::make_shared<LatencySamples>();
    for (int64_t id : index_.SamePath(method, path, kMaxSamples)) {
      Result<std::shared_ptr<const Exchange>> e = cache_.Get(id);
      if (e.ok()) samples->Add(e.value()->response);
    }
    std::lock_guard<std::mutex> lock(samples_mu_);
    return samples_.emplace(endpoint, std::move(samples)).first->second;
  }

  // A response and when to send each part of it.
  struct Outgoing {
    std::shared_ptr<const Response> response;
    Schedule schedule;
    // Break the connection after the last chunk instead of ending cleanly.
    bool abort = false;
    // Content-Length for a non-chunked body; 0 = the chunks' total.
    size_t content_length = 0;
    // Kept until the response is written (an admission slot).
    std::shared_ptr<void> hold;
  };

  // Writes a response on its schedule: headers when due, then each chunk
  // at start + its offset (absolute deadlines: no drift).
  void SendPaced(Outgoing out, int64_t start, bool head,
                 httplib::Response* res) {
    clock_->SleepUntil(start + out.schedule.headers_us);
    const Response& r = *out.response;
    res->status = r.status;
    const std::string content_type = CopyResponseHeaders(r.headers, res);
    if (head || r.chunks.empty()) {
      if (!content_type.empty()) res->set_header("Content-Type", content_type);
      if (head && !r.chunked && !r.chunks.empty()) {
        // What a GET would have carried (cpp-httplib would say 0).
        size_t total = 0;
        for (const Chunk& c : r.chunks) total += c.data.size();
        res->set_header("Content-Length", std::to_string(total));
      }
      return;
    }
    size_t total = 0;
    for (const Chunk& c : r.chunks) total += c.data.size();
    const size_t length = out.content_length ? out.content_length : total;
    const bool all_due =
        out.schedule.chunk_us.back() <= clock_->NowMicros() - start;
    if (all_due && !r.chunked && !out.abort && length == total) {
      res->set_content(r.chunks.size() == 1 ? r.chunks[0].data : r.Body(),
                       content_type);
    } else {
      struct Paced {
        Outgoing out;
        size_t next = 0;
      };
      auto p = std::make_shared<Paced>(Paced{std::move(out)});
      Clock* clock = clock_;
      auto write_all = [p, clock, start](httplib::DataSink& sink) {
        const auto& chunks = p->out.response->chunks;
        for (; p->next < chunks.size(); ++p->next) {
          clock->SleepUntil(start + p->out.schedule.chunk_us[p->next]);
          const std::string& data = chunks[p->next].data;
          if (!sink.write(data.data(), data.size())) return false;
        }
        return !p->out.abort;
      };
      if (r.chunked) {
        SetStreamProvider(res, content_type,
                          [write_all](httplib::DataSink& sink) {
                            return write_all(sink);
                          });
      } else {
        res->set_content_provider(
            length, content_type,
            [write_all](size_t, size_t, httplib::DataSink& sink) {
              return write_all(sink);
            });
      }
    }
    if (content_type.empty()) res->headers.erase("Content-Type");
  }

  // --on-miss convert: the recorded OpenAI exchanges indexed by a key that
  // leaves out "stream" and "stream_options", read once at start.
  Status LoadConvertIndex() {
    KeyRules rules = canonicalizer_.rules();
    rules.ignore_fields.push_back("stream");
    rules.ignore_fields.push_back("stream_options");
    stream_free_ = std::make_unique<Canonicalizer>(rules);
    convert_index_ =
        std::make_unique<ReplayIndex>(options_.repeat, options_.seed);
    for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
      for (int64_t id : index_.SamePath("POST", path, SIZE_MAX)) {
        Result<Exchange> e = options_.store->Get(id);
        if (!e.ok()) return e.status();
        convert_index_->Add(stream_free_->Key(e->request), id, "POST", path);
      }
    }
    return Status::Ok();
  }

  // Answers a request that differs from a recorded one only in "stream"
  // (and "stream_options") from it, converted to the framing asked for.
  // False when there is no such recording or it cannot be converted.
  bool Convert(const Request& request, const RequestKey& key, int64_t start,
               bool head, httplib::Response* res) {
    const bool chat = request.path == "/v1/chat/completions";
    if (!convert_index_ || request.method != "POST" ||
        (!chat && request.path != "/v1/completions")) {
      return false;
    }
    std::optional<ReplayIndex::Pick> pick =
        convert_index_->Select(stream_free_->Key(request));
    if (!pick) return false;
    Result<std::shared_ptr<const Exchange>> exchange = cache_.Get(pick->id);
    if (!exchange.ok()) return false;
    const std::shared_ptr<const Exchange>& e = exchange.value();
    const StreamRequest want = StreamRequest::Of(request.body);
    std::shared_ptr<const Response> answer(e, &e->response);
    if (e->response.status == 200 && want.stream != IsEventStream(e->response)) {
      Result<Response> converted =
          want.stream
              ? CompletionToStream(e->response, chat, want.include_usage)
              : StreamToCompletion(e->response, chat);
      if (!converted.ok()) {
        log_.Error("convert: recording #" + std::to_string(pick->id) +
                   " cannot answer " + request.path + ": " +
                   converted.status().message());
        return false;
      }
      answer = std::make_shared<const Response>(std::move(converted.value()));
    }
    LatencyModel model = options_.latency;
    const std::string override = FindHeader(request.headers, "X-Rewind-Latency");
    if (!override.empty()) {
      Result<LatencyModel> m = LatencyModel::Parse(override);
      if (!m.ok()) {
        SetJsonError(res, 400, "rewind_bad_latency", m.status().message());
        res->set_header("X-Rewind", "error");
        return true;
      }
      model = m.value();
    }
    std::shared_ptr<const LatencySamples> samples;
    if (model.kind() == LatencyModel::Kind::kEmpirical) {
      samples = SamplesFor(request.method, request.path);
    }
    converted_++;
    Outgoing out;
    out.schedule = model.Apply(*answer,
                               RequestSeed(options_.seed, key, pick->occurrence),
                               samples.get());
    out.response = std::move(answer);
    res->headers.emplace("X-Rewind", "converted");
    res->headers.emplace("X-Rewind-Key", key.ToHex());
    SendPaced(std::move(out), start, head, res);
    return true;
  }

  void Miss(const Request& request, const RequestKey& key, int64_t start,
            bool head, httplib::Response* res) {
    if (options_.on_miss == MissPolicy::kConvert &&
        Convert(request, key, start, head, res)) {
      return;
    }
    misses_++;
    switch (options_.on_miss) {
      case MissPolicy::kPassthrough:
        Proxy(request, key, start, /*record=*/false, head, res);
        return;
      case MissPolicy::kRecord:
        Proxy(request, key, start, /*record=*/true, head, res);
        return;
      case MissPolicy::kSynthesize:
        if (request.method == "POST" && IsEnginePath(request.path)) {
          Synthesize(request, key, start, head, res);
          return;
        }
        break;
      case MissPolicy::kError:
      case MissPolicy::kConvert:
        break;
    }
    const std::string key_hex = key.ToHex();
    // The answer names the query (the client sent it); the log line does
    // not, since query strings can carry secrets.
    std::string message = "no recorded response for " + request.method + " " +
                          request.Target() + " (key " + key_hex + ")";
    std::string logged = "miss: " + request.method + " " + LoggedPath(request.path) +
                         " (key " + key_hex + ")";
    std::string extra = ",\"key\":" + JsonQuote(key_hex) +
                        ",\"request\":{\"method\":" +
                        JsonQuote(request.method) +
                        ",\"path\":" + JsonQuote(request.path) + "}";
    const std::vector<int64_t> incomplete = index_.Incomplete(key);
    std::optional<NearestMatch> nearest;
    if (incomplete.empty()) {
      nearest = FindNearest(options_.store, index_, canonicalizer_, request);
    }
    if (!incomplete.empty()) {
      // Recorded, but the response broke off: say so, and how to serve it.
      const std::string why = "; exchange #" + std::to_string(incomplete.back()) +
                              " recorded this request but is incomplete (its "
                              "response broke off while recording); replay "
                              "with --include-incomplete to serve it";
      message += why;
      logged += why;
      std::string ids;  // the newest ten
      for (size_t i = incomplete.size() > 10 ? incomplete.size() - 10 : 0;
           i < incomplete.size(); ++i) {
        ids += (ids.empty() ? "" : ",") + std::to_string(incomplete[i]);
      }
      extra += ",\"incomplete\":[" + ids + "],\"nearest\":null";
    } else if (nearest) {
      const std::string why = "; nearest recording is #" +
                              std::to_string(nearest->id) +
                              ", which differs in: " +
                              Joined(nearest->differences);
      message += why;
      logged += why;
      extra += ",\"nearest\":{\"id\":" + std::to_string(nearest->id) +
               ",\"key\":" + JsonQuote(nearest->key_hex) +
               ",\"differences\":" + JsonList(nearest->differences) + "}";
    } else {
      const std::string why = "; nothing was recorded for " +
                              request.method + " " + LoggedPath(request.path);
      message += why;
      logged += why;
      extra += ",\"nearest\":null";
    }
    log_.Error(logged);
    SetJsonError(res, 404, "rewind_miss", message, extra);
    res->set_header("X-Rewind", "miss");
    res->set_header("X-Rewind-Key", key_hex);
  }

  // Checks "Authorization: Bearer TOKEN" in constant time. An empty token
  // means no check on loopback and no access elsewhere.
  bool Authorized(const httplib::Request& req, const std::string& token,
                  httplib::Response* res) {
    res->set_header("X-Rewind", "admin");
    if (token.empty()) {
      if (loopback_) return true;
      SetJsonError(res, 403, "rewind_forbidden",
                   "admin endpoints are off when listening beyond loopback "
                   "without --admin-token");
      return false;
    }
    const std::string given = req.get_header_value("Authorization");
    const std::string expected = "Bearer " + token;
    unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (size_t i = 0; i < expected.size(); ++i) {
      diff |= static_cast<unsigned char>(
          expected[i] ^ (i < given.size() ? given[i] : 0));
    }
    if (diff == 0) return true;
    res->set_header("WWW-Authenticate", "Bearer");
    SetJsonError(res, 401, "rewind_unauthorized",
                 "this endpoint needs Authorization: Bearer <token>");
    return false;
  }

  // One ".*" route serves everything: matching admin paths here costs a
  // string compare instead of a std::regex_match per request.
  void Admin(const httplib::Request& req, httplib::Response* res) {
    const std::string name = req.path.substr(std::strlen(kAdminPrefix));
    res->set_header("X-Rewind", "admin");
    if (req.method == "GET" && name == "health") return Health(res);
    if (req.method == "GET" && name == "config") return Config(res);
    if (req.method == "GET" && name == "stats") return Stats(res);
    if (req.method == "POST" && name == "reset") {
      index_.Reset();
      {
        std::lock_guard<std::mutex> lock(occurrences_mu_);
        occurrences_.clear();
      }
      res->set_content("{\"reset\":true}\n", "application/json");
      return;
    }
    SetJsonError(res, 404, "rewind_unknown_admin_endpoint",
                 "no admin endpoint " + req.method + " " + req.path +
                     "; there are GET /__rewind/health, GET /__rewind/config, "
                     "GET /__rewind/stats and POST /__rewind/reset");
  }

  void Health(httplib::Response* res) {
    Status store =
        options_.store ? options_.store->WriteHealth() : Status::Ok();
    std::string body =
        std::string("{\"status\":") + (store.ok() ? "\"ok\"" : "\"degraded\"") +
        ",\"mode\":\"" + ModeName(options_.mode) + "\"" +
        ",\"exchanges\":" +
        std::to_string(options_.mode == ServerMode::kRecord ? recorded_.load()
                                                            : index_.size()) +
        (store.ok() ? "" : ",\"store_error\":" + JsonQuote(store.ToString())) +
        "}\n";
    res->set_content(body, "application/json");
  }

  void Config(httplib::Response* res) {
    res->set_content(ConfigJson(), "application/json");
  }

  std::string ConfigJson() const override {
    return
        std::string("{\"mode\":\"") + ModeName(options_.mode) + "\"" +
        ",\"backend\":" + JsonQuote(options_.backend) +
        ",\"latency\":" + JsonQuote(options_.latency.ToString()) +
        ",\"repeat\":\"" + RepeatPolicyName(options_.repeat) + "\"" +
        ",\"on_miss\":\"" + MissPolicyName(options_.on_miss) + "\"" +
        ",\"seed\":" + std::to_string(options_.seed) +
        ",\"include_incomplete\":" +
        (options_.include_incomplete ? "true" : "false") +
        ",\"redact_headers\":" + JsonList(redact_) +
        ",\"redact_fields\":" + JsonList(options_.redact_fields) +
        ",\"client_timeout_s\":" + std::to_string(options_.client_timeout_s) +
        ",\"admin_token\":" + (admin_token_.empty() ? "false" : "true") +
        ",\"canonicalizer\":" + JsonQuote(Canonicalizer::Name()) +
        ",\"key_rules\":" + canonicalizer_.rules().ToJson() +
        (synthesizes() ? SynthConfig() : std::string()) +
        ",\"max_connections\":" + std::to_string(options_.max_connections) +
        ",\"max_body_bytes\":" + std::to_string(options_.max_body_bytes) +
        ",\"max_record_bytes\":" + std::to_string(options_.max_record_bytes) +
        ",\"keep_alive_timeout_s\":" + std::to_string(options_.keep_alive_timeout_s) +
        ",\"log\":" + JsonQuote(options_.log_path.empty() ? "stderr" : options_.log_path) +
        ",\"log_format\":" + (options_.log_json ? "\"json\"" : "\"text\"") +
        ",\"quiet\":" + (options_.quiet ? "true" : "false") + "}\n";
  }

  std::string SynthConfig() const {
    const SynthOptions& o = options_.synth;
    return ",\"synth\":{\"output\":" + JsonQuote(o.output.ToString()) +
           ",\"ttft\":" + JsonQuote(o.ttft.ToString()) +
           ",\"itl\":" + JsonQuote(o.itl.ToString()) +
           ",\"prefill_per_token_ms\":" + std::to_string(o.prefill_per_token_ms) +
           ",\"load_factor\":" + std::to_string(o.load_factor) +
           ",\"max_concurrency\":" + std::to_string(o.max_concurrency) +
           ",\"max_queue\":" + std::to_string(o.max_queue) +
           ",\"kv_cache_tokens\":" + std::to_string(o.kv_cache_tokens) +
           ",\"fault_rate\":" + std::to_string(o.faults.rate) +
           ",\"seed\":" + std::to_string(o.seed) +
           ",\"model\":" + JsonQuote(o.model) + ",\"models\":" + ModelsJson(o) +
           ",\"tool_rate\":" + std::to_string(o.tool_rate) +
           ",\"embedding_dimensions\":" + std::to_string(o.embedding_dimensions) +
           ",\"max_model_len\":" + std::to_string(o.max_model_len) + "}";
  }

  // --model and --lora as a JSON array ("base", "adapter=base").
  static std::string ModelsJson(const SynthOptions& o) {
    std::string out = "[";
    for (const std::string& m : o.models) out += (out.size() > 1 ? "," : "") + JsonQuote(m);
    for (const auto& [adapter, parent] : o.adapters) {
      out += (out.size() > 1 ? "," : "") + JsonQuote(adapter + "=" + parent);
    }
    return out + "]";
  }

  void Stats(httplib::Response* res) {
    std::string body = "{\"hits\":" + std::to_string(hits_.load()) +
                       ",\"misses\":" + std::to_string(misses_.load()) +
                       ",\"recorded\":" + std::to_string(recorded_.load()) +
                       ",\"passthrough\":" +
                       std::to_string(passthrough_.load()) +
                       ",\"synthesized\":" +
                       std::to_string(synthesized_.load()) +
                       ",\"converted\":" + std::to_string(converted_.load()) +
                       ",\"errors\":" + std::to_string(errors_.load()) + "}\n";
    res->set_content(body, "application/json");
  }

  const ServerOptions options_;
  Clock* const clock_;
  const Canonicalizer canonicalizer_;
  ReplayIndex index_;
  ExchangeCache cache_;
  std::mutex samples_mu_;
  std::unordered_map<std::string, std::shared_ptr<const LatencySamples>>
      samples_;  // guarded by samples_mu_
  const int64_t session_start_us_;
  std::vector<std::string> redact_;
  const std::string admin_token_;
  const bool loopback_;
  ServerMetrics metrics_;
  AccessLog log_;
  std::unique_ptr<Forwarder> forwarder_;
  HttpServer http_;
  ConnectionLoop loop_;

  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> recorded_{0};
  std::atomic<uint64_t> passthrough_{0};
  std::atomic<uint64_t> synthesized_{0};
  std::atomic<uint64_t> converted_{0};
  std::atomic<uint64_t> errors_{0};

  // --on-miss convert: keys without "stream"/"stream_options", and the
  // recordings under them.
  std::unique_ptr<Canonicalizer> stream_free_;
  // Set when the recording's rules scrub: what is stored, what is logged.
  std::unique_ptr<scrub::Scrubber> store_scrubber_;
  std::unique_ptr<scrub::Scrubber> log_scrubber_;
  std::unique_ptr<ReplayIndex> convert_index_;

  // The dummy engine, when this server synthesizes.
  std::unique_ptr<Synthesizer> synth_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<EngineMetrics> engine_metrics_;
  std::mutex occurrences_mu_;
  std::unordered_map<RequestKey, uint64_t, RequestKeyHash>
      occurrences_;  // guarded by occurrences_mu_
};

}  // namespace

Result<MissPolicy> ParseMissPolicy(const std::string& name) {
  if (name == "error") return MissPolicy::kError;
  if (name == "passthrough") return MissPolicy::kPassthrough;
  if (name == "record") return MissPolicy::kRecord;
  if (name == "synthesize") return MissPolicy::kSynthesize;
  if (name == "convert") return MissPolicy::kConvert;
  return Status::InvalidArgument(
      "unknown miss policy \"" + name +
      "\": use error, passthrough, record, synthesize or convert");
}

std::vector<std::string> DefaultRedactedHeaders() {
  return {kSecretHeaders.begin(), kSecretHeaders.end()};
}

Status ServerOptions::Validate() const {
  if (port < 0 || port > 65535) {
    return Status::InvalidArgument("port " + std::to_string(port) +
                                   " is out of range");
  }
  const bool needs_backend =
      mode == ServerMode::kRecord ||
      (mode == ServerMode::kReplay && (on_miss == MissPolicy::kPassthrough ||
                                       on_miss == MissPolicy::kRecord));
  if (needs_backend && backend.empty()) {
    return Status::InvalidArgument(
        mode == ServerMode::kRecord
            ? "record needs --backend URL"
            : "--on-miss passthrough/record needs --backend URL");
  }
  if (needs_backend) {
    Result<BackendUrl> url = BackendUrl::Parse(backend);
    if (!url.ok()) return url.status();
  }
  if (max_connections == 0) {
    return Status::InvalidArgument("--max-connections must be at least 1");
  }
  if (client_timeout_s <= 0) {
    return Status::InvalidArgument("--client-timeout must be positive");
  }
  if (keep_alive_timeout_s <= 0) {
    return Status::InvalidArgument("--keep-alive-timeout must be positive");
  }
  if (backend_timeout_s <= 0) {
    return Status::InvalidArgument("--backend-timeout must be positive");
  }
  if (max_record_bytes == 0 || max_record_bytes > kMaxRecordBytesLimit) {
    return Status::InvalidArgument(
        "--max-record-bytes must be between 1 and " +
        std::to_string(kMaxRecordBytesLimit) +
        " (SQLite stores a value of at most 1 GB)");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Server>> Server::Create(const ServerOptions& options) {
  Status s = options.Validate();
  if (!s.ok()) return s;
  if (options.store == nullptr && options.mode != ServerMode::kServe) {
    return Status::InvalidArgument("no recording given");
  }
  auto server = std::make_unique<FrontServer>(options);
  s = server->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace rwd
