// Mode: what answers a request that is not rewind's own (admin, metrics).
//
// The front (src/http/) reads a request, computes its key and hands both,
// with the time it was received, to one Mode. The Mode answers in one of
// two shapes:
//
//   a Timeline  a response and when each part is due (replay's hit, the
//               dummy engine, every error rewind writes); the front's
//               paced writer sends it;
//   a relay     "forward this request to the backend", with what to record
//               of the answer (record, passthrough); the front's forwarder
//               streams it live.
//
// The modes live in src/modes/, one file each, and include no HTTP
// library: record (and passthrough), replay, synth (the dummy engine), and
// the miss policies, which are modes that wrap others. Each is given only
// what it needs (the store, the replay index, a Clock, ModeEvents) and is
// tested on an in-memory store and a FakeClock.
//
// Thread-safety: Serve() is called concurrently, once per request.
#ifndef REWIND_MODE_H_
#define REWIND_MODE_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rewind/exchange.h"
#include "rewind/request_key.h"
#include "rewind/status.h"
#include "rewind/timeline.h"

namespace rwd {

// What to record of a relayed answer. Empty "on_done": relay only
// (passthrough).
struct Capture {
  // The stored fields of the exchange: key, redacted request, arrival
  // times.
  Exchange base;
  // Receives the finished exchange (complete or broken off) before the
  // client gets its last byte, unless it grew too large. Returns false
  // when recording it failed in a way the client must see (record without
  // --fail-open, on an internal error): the answer is then not completed
  // (a 500 in place of an answer not yet begun, a stream broken off before
  // its end).
  std::function<bool(Exchange&&)> on_done;
  // The largest body kept for the store.
  size_t max_bytes = 64u << 20;
  // Called once when the body passes "max_bytes" (with the bytes known so
  // far: the Content-Length, or what has arrived); the exchange is then
  // relayed but not recorded.
  std::function<void(uint64_t bytes)> on_too_large;
};

// What answers an unrecorded request in replay (src/modes/miss_mode.h).
// kConvert answers one that differs from a recorded one only in "stream"
// and "stream_options" from it, in the framing asked for (see
// src/modes/convert.h), else as kError. kNearest answers one from the
// nearest recording when it differs only within a bound (NearestMode in
// src/modes/miss_mode.h), else as kError.
enum class MissPolicy {
  kError,
  kPassthrough,
  kRecord,
  kSynthesize,
  kConvert,
  kNearest
};

Result<MissPolicy> ParseMissPolicy(const std::string& name);
const char* MissPolicyName(MissPolicy policy);

class Scope;  // src/modes/scope.h

// One request, as a mode sees it.
struct Call {
  const Request& request;
  const RequestKey& key;
  int64_t received_us;  // on the server's Clock
  // Record into a recording that scrubs: the request already scrubbed for
  // storing (the front keyed it so, scanning it once), or null.
  const Request* scrubbed = nullptr;
  // The request's scope (X-Rewind-Scope, /__scope/NAME/): its own repeat
  // sequences and occurrence counts. Null: none.
  Scope* scope = nullptr;
  // Set when the front's own part of recording this request failed (an
  // exception scrubbing it): what happened. Record then stores nothing of
  // it, and answers as --fail-open says.
  const std::string* capture_error = nullptr;
};

// Why a request missed: what rewind's 404 said, and the recording nearest
// to it on the same method and path, when there is one.
struct MissReport {
  // The 404's message (it names the query the client sent).
  std::string explanation;
  // The same as the log says it: no query, the path scrubbed when the
  // recording scrubs. What a report written to disk holds.
  std::string logged;
  int64_t nearest_id = 0;  // 0: none
  std::vector<std::string> differences;
};

struct Answer {
  // What X-Rewind says: "hit", "near", "miss", "record", "passthrough",
  // "synth", "converted" or "error". A string literal.
  const char* outcome = "error";
  // Whether X-Rewind-Key carries the request's key.
  bool keyed = true;
  // A relay to the backend ("capture" says what to record), or else
  // "timeline" to pace.
  bool relay = false;
  Capture capture;
  Timeline timeline;
  // The recording that answers (a hit, a near or converted answer); 0:
  // none.
  int64_t exchange = 0;
  // Set on a miss rewind explains (outcome "miss").
  std::shared_ptr<const MissReport> miss;
  // Set on an answer from a recording the request differs from (outcome
  // "near"): the fields it differs in, as FindNearest names them.
  std::shared_ptr<const std::vector<std::string>> near_differences;
  // rewind's own response headers besides X-Rewind and X-Rewind-Key
  // (X-Rewind-Near), each one writable as one line.
  HeaderList headers;
};

// Why record relayed an answer without storing it: the reasons of
// rewind_record_skipped_total{reason} and of GET /__rewind/stats'
// "not_recorded" (SkipName() gives each one's name there).
enum class Skip {
  kTooLarge,       // "too_large": beyond --max-record-bytes
  kUnredactable,   // "unredactable": a --redact-field that cannot be taken out
  kUnscrubbable,   // "unscrubbable": with --scrub, a body with a
                   // Content-Encoding
  kPath,           // "path": not chosen by --record-path / --skip-path
  kSampledOut,     // "sampled_out": left out by --sample
  kMaxPerKey,      // "max_per_key": its key has --max-per-key recordings
  kFull,           // "full": --max-exchanges or --max-db-bytes reached
  kInternalError,  // "internal_error": recording it failed (an exception)
};
inline constexpr size_t kSkipReasons = 8;
const char* SkipName(Skip reason);

// Counts for GET /__rewind/stats, shared by the modes of one server.
struct ModeCounters {
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> near{0};  // answered from the nearest recording
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> recorded{0};
  std::atomic<uint64_t> passthrough{0};
  std::atomic<uint64_t> synthesized{0};
  std::atomic<uint64_t> converted{0};
  std::atomic<uint64_t> errors{0};
  // Answers relayed but not recorded, by reason (indexed by Skip).
  std::array<std::atomic<uint64_t>, kSkipReasons> not_recorded{};
  // Record reached --max-exchanges or --max-db-bytes: it relays every
  // request and stores nothing more (health says "full").
  std::atomic<bool> full{false};
};

// What modes report besides their answers.
class ModeEvents {
 public:
  virtual ~ModeEvents() = default;
  // A line for the error log. Never holds a body, header or query string.
  virtual void Error(const std::string& message) = 0;
  // An answer relayed but not recorded, counted by reason
  // (rewind_record_skipped_total{reason}).
  virtual void RecordSkipped(const char* reason) = 0;
  // "path" as the logs show it: scrubbed to types ("/users/<email>") when
  // the recording scrubs.
  virtual std::string LoggedPath(const std::string& path) { return path; }
};

class Mode {
 public:
  Mode() = default;
  Mode(const Mode&) = delete;
  Mode& operator=(const Mode&) = delete;
  virtual ~Mode() = default;

  virtual Answer Serve(const Call& call) = 0;
  // Whether Serve("call") answers without blocking: no store read, no wait
  // for capacity, no backend. The front then calls Serve on its event loop
  // rather than handing the request to a worker. May be wrong only towards
  // a short block (a recording evicted from the cache in between).
  virtual bool AnswersAtOnce(const Call& /*call*/) { return false; }
  // Restarts what depends on the requests seen so far (repeat sequences,
  // seeds' occurrence counts): POST /__rewind/reset.
  virtual void Reset() {}
};

}  // namespace rwd

#endif  // REWIND_MODE_H_
