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
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "http/admin.h"
#include "http/connection.h"
#include "http/descriptors.h"
#include "http/forwarder.h"
#include "http/http_util.h"
#include "http/paced_writer.h"
#include "http/server_metrics.h"
#include "key/json.h"
#include "modes/miss_mode.h"
#include "modes/record_mode.h"
#include "modes/replay_mode.h"
#include "modes/synth_mode.h"
#include "scrub/scrubber.h"
#include "synth/dialect.h"
#include "util/access_log.h"

namespace rwd {
namespace {

constexpr int kListenBacklog = 4096;

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

KeyRules RulesOf(const Store* store) {
  return store ? store->rules() : KeyRules{DefaultIgnoredFields(), {}};
}

std::string JsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += JsonQuote(items[i]);
  }
  return out + "]";
}

// The modes' reports, to the error log and /metrics.
class LoggedEvents final : public ModeEvents {
 public:
  LoggedEvents(AccessLog* log, ServerMetrics* metrics)
      : log_(log), metrics_(metrics) {}
  std::string LoggedPath(const std::string& path) override {
    return scrubber ? scrubber->Path(path) : path;
  }
  // Set when the recording scrubs: paths are logged scrubbed to types.
  std::unique_ptr<scrub::Scrubber> scrubber;
  void Error(const std::string& message) override { log_->Error(message); }
  void RecordSkipped(const char* reason) override {
    metrics_->RecordSkipped(reason);
  }

 private:
  AccessLog* const log_;
  ServerMetrics* const metrics_;
};

class FrontServer final : public Server {
 public:
  explicit FrontServer(const ServerOptions& options)
      : options_(options),
        clock_(options.clock ? options.clock : SystemClock()),
        canonicalizer_(RulesOf(options.store)),
        index_(options.replay.repeat, options.seed),
        cache_(options.store, options.replay.cache_bytes),
        samples_(&index_, &cache_),
        session_start_us_(clock_->NowMicros()),
        loopback_(options.front.host == "localhost" ||
                  options.front.host == "::1" ||
                  options.front.host.rfind("127.", 0) == 0),
        metrics_(ModeName(options.mode)),
        log_(options.front.log_path,
             options.front.log_json ? AccessLog::Format::kJson
                                    : AccessLog::Format::kText,
             options.front.quiet),
        events_(&log_, &metrics_),
        loop_(
            // Replay and serve answer what they can on the loop; record
            // and passthrough always forward, on a worker.
            LoopOptions(options.front, clock_,
                        options.mode != ServerMode::kRecord),
            [this](ParsedRequest&& request, const ClientEnd& client, bool close,
                   bool on_loop) {
              return ServeOne(std::move(request), client, close, on_loop);
            },
            [this](int status, const std::string&) { Refused(status); }) {
    redact_ = DefaultRedactedHeaders();
    redact_.insert(redact_.end(), options.record.redact_headers.begin(),
                   options.record.redact_headers.end());
    // A recording whose rules scrub is written scrubbed, whoever writes it,
    // and its logs name scrubbed paths.
    const KeyRules& rules = canonicalizer_.rules();
    if (!rules.scrub.empty() || !rules.scrub_patterns.empty()) {
      auto detectors =
          scrub::Detectors::Make(rules.scrub, rules.scrub_patterns);
      if (detectors.ok()) {
        store_scrubber_ = std::make_shared<scrub::Scrubber>(
            detectors.value(), scrub::Mode::kStore,
            options.record.scrub_secret.empty() ? scrub::NewSecret()
                                                : options.record.scrub_secret);
        events_.scrubber = std::make_unique<scrub::Scrubber>(detectors.value(),
                                                             scrub::Mode::kKey);
      }
    }
  }

  Status Init() {
    Status s = InitModes();
    if (!s.ok()) return s;
    AdminSources admin;
    admin.options = &options_;
    admin.redact_headers = &redact_;
    admin.canonicalizer = &canonicalizer_;
    admin.counters = &counters_;
    admin.index = &index_;
    admin.synth = synth_.get();
    admin.mode = mode_;
    admin.journal = &journal_;
    admin.scopes = &scopes_;
    admin.events = &events_;
    admin.loopback = loopback_;
    admin_ = std::make_unique<Admin>(admin);
    return Status::Ok();
  }

  // The modes that answer for this server's mode and --on-miss policy.
  Status InitModes() {
    Status opened = log_.Open();
    if (!opened.ok()) return opened;
    for (const std::string& field : options_.record.redact_fields) {
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
      Result<BackendUrl> url = BackendUrl::Parse(options_.upstream.backend);
      if (!url.ok()) return url.status();
      forwarder_ = std::make_unique<Forwarder>(
          url.value(), options_.upstream.backend_timeout_s, clock_);
    }
    if (synthesizes()) {
      synth_ = std::make_unique<SynthMode>(options_.synth, clock_, &counters_);
    }
    if (options_.mode == ServerMode::kServe) {
      mode_ = synth_.get();
      return Status::Ok();
    }
    if (needs_backend()) {
      RecordOptions record;
      record.redact_headers = redact_;
      record.redact_fields = options_.record.redact_fields;
      record.match_headers = canonicalizer_.rules().match_headers;
      record.max_record_bytes = options_.record.max_record_bytes;
      record.session_start_us = session_start_us_;
      record.scrubber = store_scrubber_;
      record.capture.sample = options_.record.sample;
      record.capture.seed = options_.seed;
      record.capture.record_paths = options_.record.record_paths;
      record.capture.skip_paths = options_.record.skip_paths;
      record.capture.max_per_key = options_.record.max_per_key.value_or(0);
      record.capture.max_exchanges = options_.record.max_exchanges.value_or(0);
      record.capture.max_db_bytes = options_.record.max_db_bytes.value_or(0);
      record.fail_open = options_.record.fail_open;
      const bool replays = options_.mode == ServerMode::kReplay;
      if (options_.mode == ServerMode::kRecord ||
          options_.replay.on_miss == MissPolicy::kRecord) {
        auto recorder = std::make_unique<RecordMode>(
            options_.store, clock_, std::move(record),
            replays ? &index_ : nullptr, &counters_, &events_);
        Status started = recorder->Start();
        if (!started.ok()) return started;
        relay_ = std::move(recorder);
      } else {
        relay_ = std::make_unique<PassthroughMode>(&counters_);
      }
      if (!replays) {
        mode_ = relay_.get();
        return Status::Ok();
      }
    }
    // Replay.
    Result<size_t> n =
        index_.Load(options_.store, options_.replay.include_incomplete);
    if (!n.ok()) return n.status();
    pacing_.latency = options_.replay.latency;
    pacing_.seed = options_.seed;
    pacing_.samples = &samples_;
    if (options_.replay.on_miss == MissPolicy::kConvert) {
      Result<std::unique_ptr<ConvertMode>> convert = ConvertMode::Load(
          options_.store, index_, canonicalizer_.rules(),
          options_.replay.repeat, &cache_, &pacing_, &counters_, &events_);
      if (!convert.ok()) return convert.status();
      convert_ = std::move(convert.value());
    }
    if (options_.replay.on_miss == MissPolicy::kNearest) {
      nearest_ = std::make_unique<NearestMode>(
          options_.store, &index_, &canonicalizer_,
          options_.replay.near_max_fields, &cache_, &pacing_, &counters_);
    }
    miss_ = std::make_unique<MissMode>(
        options_.replay.on_miss,
        MissMode::Wrapped{convert_.get(), nearest_.get(), relay_.get(),
                          synth_.get()},
        options_.store, &index_, &canonicalizer_, &counters_, &events_);
    replay_ = std::make_unique<ReplayMode>(&index_, &cache_, pacing_,
                                           miss_.get(), &counters_);
    mode_ = replay_.get();
    return Status::Ok();
  }

  Result<int> Bind() override {
    Result<int> port =
        loop_.Bind(options_.front.host, options_.front.port, kListenBacklog);
    if (!port.ok()) return port.status();
    const size_t need = DescriptorsFor(options_.front.max_connections);
    const size_t fds = PrepareDescriptors(need, loop_.listening_socket());
    if (fds < need) {
      log_.Error("the open-file limit (" + std::to_string(fds) +
                 ") is below what --max-connections " +
                 std::to_string(options_.front.max_connections) + " can use (" +
                 std::to_string(need) +
                 "); raise it (ulimit -n) or lower --max-connections");
    }
    return port;
  }

  Status Run() override {
    loop_.Run(std::make_unique<CountingPool>(options_.front.max_connections,
                                             &metrics_));
    // Every worker has finished: no handler runs any more.
    if (forwarder_) forwarder_->Shutdown();
    return options_.store ? options_.store->Flush() : Status::Ok();
  }

  Status ReopenLogs() override { return log_.Reopen(); }

  void Stop() override { loop_.Stop(); }

 private:
  bool needs_backend() const { return options_.NeedsBackend(); }
  bool synthesizes() const {
    return options_.mode == ServerMode::kServe ||
           (options_.mode == ServerMode::kReplay &&
            options_.replay.on_miss == MissPolicy::kSynthesize);
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

  static ConnectionOptions LoopOptions(const FrontOptions& o, Clock* clock,
                                       bool serve_on_loop) {
    ConnectionOptions c;
    c.client_timeout_s = o.client_timeout_s;
    c.keep_alive_timeout_s = o.keep_alive_timeout_s;
    c.write_timeout_s = o.client_timeout_s;
    c.limits.max_body = o.max_body_bytes;
    c.clock = clock;
    c.serve_on_loop = serve_on_loop;
    return c;
  }

  // One request's access-log line and metrics.
  struct RequestLog {
    int64_t start_us;
    AccessRecord record;
    int64_t headers_us = 0;
  };

  void Emit(RequestLog* log) {
    const int64_t now = clock_->NowMicros();
    AccessRecord& record = log->record;
    record.total_ms = static_cast<double>(now - log->start_us) / 1000.0;
    record.headers_ms =
        static_cast<double>(log->headers_us - log->start_us) / 1000.0;
    metrics_.AddBytes(record.bytes);
    metrics_.ObserveRequest(record.outcome, record.status,
                            record.headers_ms / 1000.0,
                            record.total_ms / 1000.0);
    log_.Access(record);
  }

  // A request being served: what is known of it before it is answered.
  struct InFlight {
    int64_t start;
    FrontRequest in;
    RequestLog log;
    bool head;
    bool close;
  };

  // What Dispatch knows of a request when it leaves the rest to a worker.
  struct Prepared {
    enum class Next { kAdmin, kMetrics, kMode };
    Next next = Next::kMode;
    Request request;
    std::string path;  // as served: without a scope prefix
    std::string scope_name;
    std::shared_ptr<Scope> scope;
    std::optional<Request> scrubbed;
    std::optional<std::string> capture_error;
    RequestKey key;
    Call call(int64_t start) const {
      return Call{request,     key,
                  start,       scrubbed ? &*scrubbed : nullptr,
                  scope.get(), capture_error ? &*capture_error : nullptr};
    }
  };

  // One whole request: answered by Dispatch, written to "client" now or
  // left to the loop when any of it is due later. "on_loop": called by
  // the event loop, which must not block: what would is left to a worker
  // (Served::on_worker).
  Served ServeOne(ParsedRequest&& parsed, const ClientEnd& client, bool close,
                  bool on_loop) {
    const int64_t start = clock_->NowMicros();
    auto r = std::make_shared<InFlight>(InFlight{
        start, MakeFrontRequest(std::move(parsed)), {start, {}}, false, close});
    r->log.record.wall_us = clock_->WallMicros();
    r->log.record.method = r->in.request.method;
    r->log.record.path = events_.LoggedPath(r->in.path);
    r->head = r->in.request.method == "HEAD";
    return Respond(r, client, on_loop, nullptr);
  }

  // Answers "r" (from "prepared" when a loop prepared it) and writes or
  // leaves the answer as ServeOne says.
  Served Respond(const std::shared_ptr<InFlight>& r, const ClientEnd& client,
                 bool on_loop, const std::shared_ptr<Prepared>& prepared) {
    const int64_t start = r->start;
    RequestLog& log = r->log;
    httplib::Response res;
    std::optional<PlannedAnswer> planned;
    std::shared_ptr<Prepared> deferred;
    bool defer_all = false;
    try {
      if (prepared) {
        Resume(*prepared, res, start, &log, &planned);
      } else {
        deferred =
            Dispatch(r->in, res, start, &log, &planned, on_loop, &defer_all);
      }
    } catch (const std::exception& e) {
      res = httplib::Response();
      planned.reset();
      deferred.reset();
      defer_all = false;
      ErrorDialectScope dialect(r->in.path);
      res.set_header("X-Rewind", "error");
      SetJsonError(&res, 500, "rewind_internal_error",
                   std::string("answering the request: ") + e.what());
      log_.Error(std::string("answering ") + log.record.method + " " +
                 log.record.path + ": " + e.what());
    }
    if (deferred || defer_all) {
      Served served;
      served.on_worker = [this, r, deferred](const ClientEnd& worker_end) {
        return Respond(r, worker_end, false, deferred);
      };
      return served;
    }
    // A planned answer's status is in "res" too (Resume sets both).
    if (res.status == -1) res.status = 200;
    if (res.status < 200 || res.status > 599) {
      // Only a recording imported or edited by hand holds such a status; as
      // a final answer it would break the client's reading of the
      // connection.
      const int bad = res.status;
      res = httplib::Response();
      planned.reset();
      ErrorDialectScope dialect(r->in.path);
      res.set_header("X-Rewind", "error");
      SetJsonError(&res, 502, "rewind_bad_status",
                   "the answer's status " + std::to_string(bad) +
                       " cannot be sent as a final response (200-599)");
    }
    log.headers_us = clock_->NowMicros();
    log.record.status = res.status;
    ResponseFraming how;
    how.head = r->head;
    how.close = r->close;
    how.http10 = r->in.http10;
    how.keep_alive_s = options_.front.keep_alive_timeout_s;
    if (planned) return Send(r, std::move(*planned), how, client, on_loop);
    // Set by Dispatch with exactly these names: a plain scan is cheaper
    // than the case-insensitive map's find.
    for (const auto& [name, value] : res.headers) {
      if (name == "X-Rewind") log.record.outcome = value;
      if (name == "X-Rewind-Key") log.record.key = value.substr(0, 8);
    }
    // A whole body is counted and logged before it is written, so a client
    // that has its answer finds it in /metrics and the journal; a stream
    // once it has been written.
    const bool streamed = res.body.empty() && res.content_provider_;
    if (!streamed) {
      log.record.bytes = r->head ? 0 : res.body.size();
      Emit(&log);
    }
    if (on_loop && !streamed) {
      // The loop writes it as soon as the socket has room, never waiting.
      FramedHead f = FrameResponse(how, res, false, 0, false);
      if (!how.head && f.whole) f.head += res.body;
      Served served;
      served.paced = PacedStream::Now(std::move(f.head));
      served.close_after = f.close;
      return served;
    }
    const WriteResult written = WriteResponse(client, how, res);
    if (streamed) {
      log.record.bytes = written.body_bytes;
      Emit(&log);
    }
    Served served;
    served.ok = written.ok;
    return served;
  }

  // Writes a mode's planned answer to "client", or leaves it to the loop:
  // all of it when "on_loop", what is due later in any case.
  Served Send(const std::shared_ptr<InFlight>& r, PlannedAnswer plan,
              const ResponseFraming& how, const ClientEnd& client,
              bool on_loop) {
    RequestLog& log = r->log;
    // Set by Resume with exactly these names.
    for (const auto& [name, value] : plan.headers) {
      if (name == "X-Rewind") log.record.outcome = value;
      if (name == "X-Rewind-Key") log.record.key = value.substr(0, 8);
    }
    Served served;
    if (plan.later) {
      // Due later: the loop writes it on its schedule and logs it once
      // written. (The head's time is when it is due, not when it was made.)
      PacedBody& later = *plan.later;
      log.headers_us = r->start + later.timeline.at.headers_us;
      const bool body = later.has_body && !r->head;
      FramedHead f = FrameAnswer(how, plan.status, plan.headers, 0,
                                 later.has_body, later.length, later.chunked);
      using Framing = PacedStream::Framing;
      const Framing framing = !body || !f.provided ? Framing::kNone
                              : f.chunked          ? Framing::kChunked
                              : f.until_close      ? Framing::kClose
                                                   : Framing::kLength;
      served.paced = std::make_unique<PacedStream>(
          std::move(f.head), std::move(later.timeline), r->start, framing);
      served.close_after = f.close;
      served.finished = [this, r](bool, uint64_t bytes) {
        r->log.record.bytes = bytes;
        Emit(&r->log);
      };
      return served;
    }
    // Counted and logged before it is written, so a client that has its
    // answer finds it in /metrics and the journal.
    log.record.bytes = r->head ? 0 : plan.body.size();
    Emit(&log);
    FramedHead f = FrameAnswer(how, plan.status, plan.headers, plan.body.size(),
                               false, 0, false);
    const bool body = !how.head && f.whole;
    if (on_loop) {
      // The loop writes it as soon as the socket has room, never waiting.
      if (body) f.head += plan.body;
      served.paced = PacedStream::Now(std::move(f.head));
      served.close_after = f.close;
      return served;
    }
    const bool ok = body ? WriteWhole(client, &f.head, plan.body)
                         : SendAll(client.fd, f.head.data(), f.head.size(),
                                   client.write_timeout_ms);
    served.ok = ok && !f.close;
    return served;
  }

  // Routes "in": answers it into "res" (or "*planned"), or, when "on_loop"
  // and answering could block, leaves it to a worker: "*defer_all" when
  // nothing of it has been taken yet, else the Prepared request that
  // Resume() answers.
  std::shared_ptr<Prepared> Dispatch(FrontRequest& in, httplib::Response& res,
                                     int64_t start, RequestLog* log,
                                     std::optional<PlannedAnswer>* planned,
                                     bool on_loop, bool* defer_all) {
    // Only origin-form targets ("/path"): an absolute URI would ask a
    // proxy to reach another host, and rewind talks to --backend only.
    if (in.target.empty() || in.target[0] != '/') {
      ErrorDialectScope dialect(in.path);
      res.set_header("X-Rewind", "error");
      SetJsonError(&res, 400, "rewind_bad_target",
                   "request target \"" + in.target.substr(0, 200) +
                       "\" is not a path; rewind forwards only to its "
                       "--backend");
      return nullptr;
    }
    if (in.path.rfind(kAdminPrefix, 0) == 0) {
      // Admin answers can be large (the journal) or read the recording.
      if (on_loop) {
        *defer_all = true;
        return nullptr;
      }
      ErrorDialectScope dialect(in.path);
      admin_->Serve(in.request, in.path.substr(std::strlen(kAdminPrefix)),
                    FindHeader(in.request.headers, std::string(kScopeHeader)),
                    &res);
      return nullptr;
    }
    Prepared p;
    p.request = std::move(in.request);
    if (!TakeScope(&p.request, &p.scope_name, &res)) return nullptr;
    p.path = p.scope_name.empty() ? in.path : p.request.path;
    if (!p.scope_name.empty()) log->record.path = events_.LoggedPath(p.path);
    if (p.path.rfind(kAdminPrefix, 0) == 0) {
      p.next = Prepared::Next::kAdmin;
    } else if ((p.request.method == "GET" || p.request.method == "HEAD") &&
               p.path == "/metrics") {
      p.next = Prepared::Next::kMetrics;
    } else {
      Prepare(&p);
    }
    if (on_loop && (p.next != Prepared::Next::kMode ||
                    !mode_->AnswersAtOnce(p.call(start)))) {
      return std::make_shared<Prepared>(std::move(p));
    }
    Resume(p, res, start, log, planned);
    return nullptr;
  }

  // Scope, scrubbing and key of a request a mode answers.
  void Prepare(Prepared* p) {
    if (!p->scope_name.empty()) p->scope = scopes_.Get(p->scope_name);
    // Recording into a recording that scrubs: the request is scrubbed once,
    // for storing, and that copy keyed without a second scan (placeholders
    // key as their types, as the values would).
    // Scrubbing is part of recording: an exception in it is the record
    // mode's to answer (--fail-open), and nothing of the request is stored.
    if (options_.mode == ServerMode::kRecord && store_scrubber_) {
      try {
        p->scrubbed = p->request;
        if (!store_scrubber_->ScrubRequest(&*p->scrubbed).ok()) {
          p->scrubbed.reset();
        }
      } catch (const std::exception& e) {
        p->scrubbed.reset();
        p->capture_error = std::string("scrubbing the request: ") + e.what();
      } catch (...) {
        p->scrubbed.reset();
        p->capture_error = "scrubbing the request: an unknown exception";
      }
    }
    p->key = p->scrubbed ? canonicalizer_.KeyOfScrubbed(*p->scrubbed)
                         : canonicalizer_.Key(p->request);
  }

  // Answers a routed request into "res" (or "*planned": a mode's answer).
  void Resume(Prepared& p, httplib::Response& res, int64_t start,
              RequestLog* log, std::optional<PlannedAnswer>* planned) {
    // Errors written for this request take its API's shape.
    ErrorDialectScope dialect(p.path);
    Request& request = p.request;
    if (p.next == Prepared::Next::kAdmin) {
      admin_->Serve(request, p.path.substr(std::strlen(kAdminPrefix)),
                    p.scope_name, &res);
      return;
    }
    if (p.next == Prepared::Next::kMetrics) {
      res.set_header("X-Rewind", "admin");
      if (!options_.front.metrics_token.empty() &&
          !Authorized(request, options_.front.metrics_token, loopback_, &res)) {
        return;
      }
      std::string body = metrics_.Render(options_.front.max_connections,
                                         options_.store, counters_);
      if (synth_) body += synth_->RenderMetrics();
      res.set_content(body, "text/plain; version=0.0.4");
      return;
    }
    const RequestKey& key = p.key;
    Answer answer = mode_->Serve(p.call(start));
    const bool head = request.method == "HEAD";
    if (answer.relay) {
      // The client's Accept-Encoding is not in "request" (wire.h): the
      // backend answers without a Content-Encoding.
      if (!forwarder_->Forward(request, head, start, std::move(answer.capture),
                               &res)) {
        counters_.errors++;
      }
    }
    // Literals and hex: no CR/LF to look for; the modes' own are written
    // to be one line (Answer::headers).
    HeaderList own;
    own.reserve(2 + answer.headers.size());
    own.emplace_back("X-Rewind", answer.outcome);
    if (answer.keyed) own.emplace_back("X-Rewind-Key", key.ToHex());
    for (auto& header : answer.headers) own.push_back(std::move(header));
    if (answer.relay) {
      for (auto& [name, value] : own) {
        res.headers.emplace(std::move(name), std::move(value));
      }
    } else {
      PlannedAnswer plan =
          PlanAnswer(std::move(answer.timeline), start, head, clock_);
      for (auto& header : own) plan.headers.push_back(std::move(header));
      SortHeaders(&plan.headers);
      res.status = plan.status;
      *planned = std::move(plan);
    }
    if (answer.near_differences) log->record.near = answer.exchange;
    JournalEntry entry;
    entry.scope = std::move(p.scope);
    entry.method = request.method;
    entry.path = std::move(request.path);
    entry.key = key;
    entry.outcome = answer.outcome;
    entry.status = res.status == -1 ? 200 : res.status;
    entry.exchange = answer.exchange;
    entry.miss = std::move(answer.miss);
    entry.near_differences = std::move(answer.near_differences);
    journal_.Add(std::move(entry));
  }

  // Takes the scope off "request": the /__scope/NAME/ prefix of its path
  // and the X-Rewind-Scope header, so neither is keyed, forwarded or
  // recorded; "*name" gets the scope ("" for none). A bad name, or a
  // prefix and a header naming different scopes, is a 400 in "res"
  // (returns false).
  bool TakeScope(Request* request, std::string* name, httplib::Response* res) {
    std::string header;
    bool has_header = false;
    bool conflict = false;
    auto& headers = request->headers;
    for (auto it = headers.begin(); it != headers.end();) {
      if (it->first.size() != kScopeHeader.size() ||
          !HeaderNameEquals(it->first, kScopeHeader)) {
        ++it;
        continue;
      }
      // An empty one names no scope (a harness's unset variable).
      if (!it->second.empty()) {
        if (has_header && it->second != header) conflict = true;
        header = std::move(it->second);
        has_header = true;
      }
      it = headers.erase(it);
    }
    std::string problem;
    if (request->path.compare(0, kScopePrefix.size(), kScopePrefix) == 0) {
      Result<ScopedPath> split = SplitScope(request->path);
      if (split.ok()) {
        *name = std::string(split->scope);
        request->path = std::string(split->path);
      } else {
        problem = "the path's scope prefix (/__scope/NAME/): " +
                  split.status().message();
        // The API's shape for the error: the path after the prefix.
        const size_t rest = request->path.find('/', kScopePrefix.size());
        request->path =
            rest == std::string::npos ? "/" : request->path.substr(rest);
      }
    }
    if (problem.empty() && has_header) {
      Status ok = CheckScopeName(header);
      if (conflict) {
        problem =
            "the request has two X-Rewind-Scope headers naming "
            "different scopes";
      } else if (!ok.ok()) {
        problem = std::string(kScopeHeader) + ": " + ok.message();
      } else if (!name->empty() && *name != header) {
        problem = "the path names scope \"" + *name +
                  "\" and X-Rewind-Scope names \"" + header +
                  "\"; give one, or the same in both";
      } else {
        *name = std::move(header);
      }
    }
    if (problem.empty()) return true;
    ErrorDialectScope dialect(request->path);
    res->set_header("X-Rewind", "error");
    SetJsonError(res, 400, "rewind_bad_scope", problem);
    return false;
  }

  RunReport Report() const override { return admin_->Report(); }

  std::string ConfigJson() const override { return admin_->ConfigJson(); }

  const ServerOptions options_;
  Clock* const clock_;
  const Canonicalizer canonicalizer_;
  ReplayIndex index_;
  ExchangeCache cache_;
  EndpointSamples samples_;
  const int64_t session_start_us_;
  std::vector<std::string> redact_;
  const bool loopback_;
  ServerMetrics metrics_;
  AccessLog log_;
  LoggedEvents events_;
  std::unique_ptr<Forwarder> forwarder_;
  ConnectionLoop loop_;

  ModeCounters counters_;

  // The modes: the one that answers (mode_), and those it wraps. Made by
  // Init() for this server's mode and --on-miss policy.
  Pacing pacing_;
  std::unique_ptr<SynthMode> synth_;  // serve, --on-miss synthesize
  std::unique_ptr<Mode> relay_;       // record, passthrough
  std::unique_ptr<ConvertMode> convert_;
  std::unique_ptr<NearestMode> nearest_;
  std::unique_ptr<MissMode> miss_;
  std::unique_ptr<ReplayMode> replay_;
  Mode* mode_ = nullptr;
  // Set when the recording's rules scrub: what the record mode stores.
  std::shared_ptr<const scrub::Scrubber> store_scrubber_;
  // Requests seen, and the scopes they named.
  Journal journal_;
  ScopeRegistry scopes_;
  std::unique_ptr<Admin> admin_;
};

}  // namespace

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
