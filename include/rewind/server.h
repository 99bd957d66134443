// Server: the HTTP front of rewind in record or replay mode.
//
// record  every request goes to the backend unchanged (minus hop-by-hop
//         headers); the response streams back as it arrives and is stored,
//         with its timeline, before the client sees its last byte.
// replay  the recorded response for the request's key, paced by the
//         latency model; a miss is answered by the miss policy.
// serve   the dummy inference engine alone: synthesized OpenAI answers.
//
// Admin endpoints live under /__rewind/ (health, config, stats, reset,
// requests, unused) and are never proxied or recorded. Every proxied or
// replayed response carries "X-Rewind: hit|miss|record|passthrough" and
// "X-Rewind-Key: <hex>". A request may name a scope (/__scope/NAME/... or
// X-Rewind-Scope: NAME; src/modes/scope.h): its own repeat sequences,
// journal and reset; the prefix and the header are taken off the request
// before it is keyed, forwarded or recorded.
//
// Thread-safety: Stop() may be called from any thread (a signal watcher);
// the other methods belong to the thread that owns the Server.
#ifndef REWIND_SERVER_H_
#define REWIND_SERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rewind/clock.h"
#include "rewind/latency.h"
#include "rewind/mode.h"
#include "rewind/redact.h"
#include "rewind/replay.h"
#include "rewind/status.h"
#include "rewind/store.h"
#include "rewind/synth.h"

namespace rwd {

enum class ServerMode { kRecord, kReplay, kServe };

// The largest --near-max-fields accepted.
constexpr size_t kMaxNearFields = 20;

// The largest --max-record-bytes accepted: 512 MiB.
constexpr size_t kMaxRecordBytesLimit = 512u << 20;

// The front: how rewind listens, talks to its clients, guards its admin
// endpoints and logs. The same in every mode.
struct FrontOptions {
  // Parameters that affect behavior
  // Address to bind. Default: 127.0.0.1.
  std::string host = "127.0.0.1";
  // Port to bind; 0 picks a free one. Default: 8080.
  int port = 8080;
  // Largest request body accepted; larger ones get 413. Default: 64 MiB.
  size_t max_body_bytes = 64u << 20;
  // Seconds a client may take to send a request (or to read the answer)
  // before its connection is dropped and its worker freed. Default: 5.
  int client_timeout_s = 5;
  // Bearer token the admin endpoints (/__rewind/* except health) require.
  // Empty: required nowhere on loopback; off the loopback the endpoints
  // are then refused (403). Default: "".
  std::string admin_token;
  // Bearer token /metrics requires when set. Default: "".
  std::string metrics_token;
  // Access and error log: a file ("" = stderr), JSON lines or text, and
  // whether to leave out the access lines. Default: stderr, text, not quiet.
  std::string log_path;
  bool log_json = false;
  bool quiet = false;

  // Parameters that affect performance
  // Worker threads, one per open connection (streams hold theirs while
  // they are paced). Default: 1024.
  size_t max_connections = 1024;
  // Seconds an idle keep-alive connection stays open. cpp-httplib polls
  // each idle connection every ~10 ms (about 0.08 % of a core each), so
  // this bounds what idle clients cost. Default: 2.
  int keep_alive_timeout_s = 2;
};

// The backend rewind relays to: record, and replay with --on-miss
// passthrough or record.
struct UpstreamOptions {
  // Backend base URL ("http://127.0.0.1:8000"). Required for record, and
  // for replay with --on-miss passthrough or record. Default: none.
  std::string backend;
  // Seconds to wait for the backend to connect or send data. Default: 600.
  int backend_timeout_s = 600;
};

// What is stored, and how: record, and replay with --on-miss record.
// (The record mode's own RecordOptions, src/modes/record_mode.h, is made
// from these and what the server derives: the full header list, the key
// rules' headers, the scrubber.)
struct ServerRecordOptions {
  // Headers stored as "[REDACTED]" on top of DefaultRedactedHeaders().
  std::vector<std::string> redact_headers;
  // Dotted JSON paths in request bodies whose values are secrets: stored
  // as "[REDACTED]" and left out of the key. Default: none.
  std::vector<std::string> redact_fields;
  // Record (and replay with --on-miss record): the largest response body
  // stored. A larger answer is relayed to the client in full but not
  // recorded (logged, and counted in rewind_record_skipped_total). Bounds
  // the memory a recorded exchange takes, and keeps rows well under
  // SQLite's 1 GB limit on a value. At most kMaxRecordBytesLimit.
  // Default: 64 MiB.
  size_t max_record_bytes = 64u << 20;
  // Record (and replay with --on-miss record): which answers are stored;
  // the others are relayed untouched (X-Rewind: passthrough), counted by
  // reason in /__rewind/stats and rewind_record_skipped_total. See
  // src/modes/capture_policy.h.
  //
  // --sample: the share of requests recorded, in (0, 1]; a request is in
  // or out by its key and "seed" alone. Default: 1 (all).
  double sample = 1;
  // --record-path / --skip-path: fnmatch(3) globs on the path without its
  // query ("*" matches "/" too); recorded when a record path matches (or
  // none is given) and no skip path does. Each non-empty, starting with
  // "/" or a glob character. Default: none.
  std::vector<std::string> record_paths;
  std::vector<std::string> skip_paths;
  // --max-per-key: at most this many recordings of one key (those already
  // in the recording count), at least 1. Default: no limit.
  std::optional<uint64_t> max_per_key;
  // --max-exchanges, --max-db-bytes: caps on the recording, what it holds
  // already included (its size: Store::WriterStats::bytes). Beyond one,
  // record keeps relaying every request and stores nothing more; it says
  // so once in the log, /__rewind/health says "full", /metrics has
  // rewind_record_full 1. Each at least 1. Default: none.
  std::optional<uint64_t> max_exchanges;
  std::optional<uint64_t> max_db_bytes;
  // --fail-open: an internal error in recording (an exception in
  // redacting, scrubbing, choosing or storing an exchange) never changes
  // the client's answer: it is relayed whole and the exchange is not
  // stored. Without it the client sees the failure: a 500
  // rewind_record_failed in place of an answer not yet begun (the request
  // is then not forwarded), an answer not completed otherwise. Either way
  // it is logged and counted (rewind_record_skipped_total
  // {reason="internal_error"}). A store that fails (locked, full disk) is
  // not an internal error: the client always keeps its answer.
  // Default: false.
  bool fail_open = false;
  // Record --rotate-every as given, for ConfigJson() alone: the rotation
  // itself is the store's (a RotatingStore, src/store/rotating_store.h),
  // and the caps above count all its files. Default: "" (none).
  std::string rotate_every;
  // Record (and replay with --on-miss record) into a recording whose key
  // rules scrub (KeyRules::scrub): the secret of the placeholders'
  // HMAC. Never stored, never shown by ConfigJson(). Empty: a random one
  // for this run. Default: "".
  std::string scrub_secret;

  // Checks these fields; "records" says whether the server records
  // (record, replay --on-miss record): the flags that choose what is
  // recorded are refused otherwise. InvalidArgument says what to fix.
  Status Validate(bool records) const;
};

// How recordings answer: replay.
struct ServerReplayOptions {
  // Parameters that affect behavior
  // Replay: pacing of recorded responses. Default: recorded.
  LatencyModel latency;
  // Replay: which recording answers the n-th identical request.
  // Default: sequence.
  RepeatPolicy repeat = RepeatPolicy::kSequence;
  // Replay: what answers an unrecorded request. Default: error (404).
  MissPolicy on_miss = MissPolicy::kError;
  // Replay --on-miss nearest: the most fields a request may differ in from
  // the recording that answers it, 1 to kMaxNearFields. Default: 3.
  size_t near_max_fields = 3;
  // Replay: also serve exchanges whose recording broke off. Default: false.
  bool include_incomplete = false;
  // Replay: the verdict at exit (Server::Report): failed when a request
  // missed (--strict), or when a recording was never served
  // (--require-all). Default: neither.
  bool strict = false;
  bool require_all = false;
  // Replay: the verdict also fails when a request was answered from the
  // nearest recording (--on-miss nearest; --strict-near). Default: false.
  bool strict_near = false;

  // Parameters that affect performance
  // Replay: bytes of decoded exchanges kept in memory. Default: 256 MiB.
  size_t cache_bytes = 256u << 20;
};

// Everything Server::Create takes, grouped by who uses it: the front (every
// mode), the upstream (the modes that relay), record, replay and the dummy
// engine (serve, replay --on-miss synthesize), and what they share.
struct ServerOptions {
  // Record, replay or serve. Default: replay.
  ServerMode mode = ServerMode::kReplay;
  FrontOptions front;
  UpstreamOptions upstream;
  ServerRecordOptions record;
  ServerReplayOptions replay;
  // Serve, and replay with --on-miss synthesize: the dummy engine.
  SynthOptions synth;
  // The recording. Must outlive the Server. Required except for serve
  // (where it feeds --output history).
  Store* store = nullptr;
  // Seeds random latency models, the random repeat policy and record's
  // --sample. Default: 0.
  uint64_t seed = 0;
  // Time source for pacing and timestamps. Default: SystemClock().
  Clock* clock = nullptr;

  // Whether this server forwards to "upstream": record, and replay with
  // --on-miss passthrough or record.
  bool NeedsBackend() const;

  // Checks the combination of fields, all but "store" (Create requires
  // it), touching no file: a command validates before it opens or creates
  // a recording. InvalidArgument says what to fix.
  Status Validate() const;
};

// What a run did, for its verdict at exit (replay --strict,
// --require-all, --report FILE).
struct RunReport {
  // False when --strict saw a miss or --require-all an unused recording.
  bool passed = true;
  // Lines for stderr: "rewind: 12 requests, 11 hits, 1 miss, 0 unused
  // recordings", then each miss with its explanation.
  std::string summary;
  // {"requests":N,"hits":N,"misses":[...],"unused":[...],"passed":B}
  std::string json;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Create(const ServerOptions& options);

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  virtual ~Server() = default;

  // Binds the listening socket; returns the bound port.
  virtual Result<int> Bind() = 0;
  // Serves until Stop(). Returns once in-flight requests have finished and
  // every recorded exchange is committed.
  // REQUIRES: Bind() succeeded.
  virtual Status Run() = 0;
  // Stops accepting connections; Run() returns after the drain.
  virtual void Stop() = 0;
  // Opens the log file anew (after rotation; SIGHUP).
  virtual Status ReopenLogs() = 0;
  // The effective configuration as JSON (what GET /__rewind/config shows).
  virtual std::string ConfigJson() const = 0;
  // The run's verdict so far: every request since start, whatever was
  // reset. Safe to call while it serves.
  virtual RunReport Report() const = 0;

 protected:
  Server() = default;
};

}  // namespace rwd

#endif  // REWIND_SERVER_H_
