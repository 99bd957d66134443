// Record and passthrough: requests relayed live to the backend.
//
// RecordMode answers every request it records with a relay whose Capture
// stores the
// finished exchange (secrets redacted: the configured headers, and the
// --redact-field values of JSON bodies) in the Store before the client gets
// its last byte, and, when it is given a ReplayIndex (replay's
// --on-miss record), adds it there so the next identical request hits.
// Which requests it records is its CapturePolicy's choice (paths, sample,
// per-key limit, caps: src/modes/capture_policy.h); the others, and a body
// whose secrets cannot be taken out, are relayed untouched as "passthrough",
// counted by reason (ModeCounters::not_recorded, ModeEvents::RecordSkipped).
// An exception in any of that is caught, counted and logged; --fail-open
// says whether the client sees it (RecordOptions::fail_open).
// PassthroughMode relays and records nothing.
//
// Thread-safety: Serve() is safe for concurrent use.
#ifndef REWIND_SRC_MODES_RECORD_MODE_H_
#define REWIND_SRC_MODES_RECORD_MODE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "modes/capture_policy.h"
#include "rewind/clock.h"
#include "rewind/mode.h"
#include "rewind/replay.h"
#include "rewind/store.h"
#include "scrub/scrubber.h"

namespace rwd {

struct RecordOptions {
  // Header names stored as "[REDACTED]" (DefaultRedactedHeaders() and
  // --redact-header).
  std::vector<std::string> redact_headers;
  // Dotted JSON paths whose values are stored as "[REDACTED]".
  std::vector<std::string> redact_fields;
  // rewind's own request headers (X-Rewind-*) the key matches on: stored;
  // the others are left out of the recording.
  std::vector<std::string> match_headers;
  // The largest response body stored (--max-record-bytes).
  size_t max_record_bytes = 64u << 20;
  // The session's start on the clock: exchanges store their arrival as an
  // offset from it.
  int64_t session_start_us = 0;
  // When the recording's rules scrub (KeyRules::scrub): what scrubs the
  // stored request and answer (src/scrub/). Null: nothing is scrubbed.
  std::shared_ptr<const scrub::Scrubber> scrubber;
  // Which answers are stored (--sample, --record-path, --skip-path,
  // --max-per-key). Default: all.
  CaptureRules capture;
  // --fail-open: an internal error while recording (an exception in
  // redacting, scrubbing, choosing or storing) never changes the client's
  // answer: the request is relayed, or its answer completed, and the
  // exchange is just not stored. Without it the client sees the failure:
  // a 500 rewind_record_failed before anything was forwarded, or an
  // answer not completed. Either way it is counted
  // (Skip::kInternalError) and logged, and no exception leaves the mode.
  // Default: false.
  bool fail_open = false;
};

class RecordMode final : public Mode {
 public:
  // Every pointer must outlive the mode; "index" may be null.
  RecordMode(Store* store, Clock* clock, RecordOptions options,
             ReplayIndex* index, ModeCounters* counters, ModeEvents* events)
      : store_(store),
        clock_(clock),
        options_(std::move(options)),
        policy_(options_.capture, store,
                [this](const std::string& what) { Full(what); }),
        index_(index),
        counters_(counters),
        events_(events) {}

  // Reads what the recording holds that the capture limits count. Call
  // once before serving.
  Status Start() { return policy_.Start(); }

  Answer Serve(const Call& call) override;

 private:
  // Serve() itself; may throw.
  Answer Record(const Call& call);
  // Recording "call" failed before it was forwarded ("what"): a relay
  // without recording (--fail-open) or a 500.
  Answer Failed(const Call& call, const std::string& what);
  // Storing a finished exchange failed ("what"): whether the client's
  // answer may still complete (--fail-open).
  bool StoreFailed(const std::string& method, const std::string& path,
                   const std::string& what);
  // Stores the finished exchange; may throw.
  void Keep(const RequestKey& key, const std::string& method,
            const std::string& path, CapturePolicy::Admission* admission,
            Exchange&& e);
  // The request's headers as they are recorded: secrets redacted, and
  // rewind's own left out unless the key matches on them.
  HeaderList StoredRequestHeaders(const HeaderList& headers) const;
  // Replaces every --redact-field value of "body". False when a secret
  // cannot be taken out: the exchange is then relayed, not recorded.
  bool RedactBody(const Request& request, std::string* body) const;
  // Scrubs the request to be stored, when the recording scrubs. False when
  // its body cannot be scrubbed (a Content-Encoding): relayed, not recorded.
  bool ScrubStored(const Request& request, Request* stored) const;
  // Counts an answer relayed but not recorded.
  void Skipped(Skip reason) const;
  // A cap was reached ("what"): said once, in the log and the counters.
  void Full(const std::string& what);

  Store* const store_;
  Clock* const clock_;
  const RecordOptions options_;
  CapturePolicy policy_;
  ReplayIndex* const index_;
  ModeCounters* const counters_;
  ModeEvents* const events_;
};

class PassthroughMode final : public Mode {
 public:
  explicit PassthroughMode(ModeCounters* counters) : counters_(counters) {}

  Answer Serve(const Call& call) override;

 private:
  ModeCounters* const counters_;
};

}  // namespace rwd

#endif  // REWIND_SRC_MODES_RECORD_MODE_H_
