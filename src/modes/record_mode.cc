#include "modes/record_mode.h"

#include <algorithm>
#include <utility>

#include "key/json.h"
#include "modes/errors.h"
#include "rewind/redact.h"

namespace rwd {

const char* SkipName(Skip reason) {
  switch (reason) {
    case Skip::kTooLarge:
      return "too_large";
    case Skip::kUnredactable:
      return "unredactable";
    case Skip::kUnscrubbable:
      return "unscrubbable";
    case Skip::kPath:
      return "path";
    case Skip::kSampledOut:
      return "sampled_out";
    case Skip::kMaxPerKey:
      return "max_per_key";
    case Skip::kFull:
      return "full";
    case Skip::kInternalError:
      return "internal_error";
  }
  return "?";
}

void RecordMode::Skipped(Skip reason) const {
  counters_->not_recorded[static_cast<size_t>(reason)]++;
  events_->RecordSkipped(SkipName(reason));
}

void RecordMode::Full(const std::string& what) {
  counters_->full = true;
  events_->Error("the recording is full (" + what +
                 "): every request is still relayed to the backend, but "
                 "nothing more is recorded");
}

HeaderList RecordMode::StoredRequestHeaders(const HeaderList& headers) const {
  HeaderList stored = Redact(headers, options_.redact_headers);
  const std::vector<std::string>& matched = options_.match_headers;
  stored.erase(std::remove_if(
                   stored.begin(), stored.end(),
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

bool RecordMode::RedactBody(const Request& request, std::string* body) const {
  if (options_.redact_fields.empty()) return true;
  Result<bool> redacted = RedactJsonFields(body, options_.redact_fields);
  if (redacted.ok()) return true;
  Skipped(Skip::kUnredactable);
  events_->Error("not recorded: " + request.method + " " +
                 events_->LoggedPath(request.path) + ": " +
                 redacted.status().message() +
                 "; it is forwarded and answered only");
  return false;
}

bool RecordMode::ScrubStored(const Request& request, Request* stored) const {
  if (!options_.scrubber) return true;
  if (options_.scrubber->ScrubRequest(stored).ok()) return true;
  Skipped(Skip::kUnscrubbable);
  events_->Error("not recorded: " + request.method + " " +
                 events_->LoggedPath(request.path) +
                 ": its body has a Content-Encoding, which rewind cannot "
                 "scrub; it is forwarded and answered only");
  return false;
}

Answer RecordMode::Serve(const Call& call) {
  if (call.capture_error != nullptr) return Failed(call, *call.capture_error);
  try {
    return Record(call);
  } catch (const std::exception& e) {
    return Failed(call, e.what());
  } catch (...) {
    return Failed(call, "an unknown exception");
  }
}

Answer RecordMode::Failed(const Call& call, const std::string& what) {
  const Request& request = call.request;
  Skipped(Skip::kInternalError);
  Answer answer;
  const std::string failed = "recording " + request.method + " " +
                             events_->LoggedPath(request.path) +
                             " failed: " + what;
  if (options_.fail_open) {
    events_->Error(failed + "; relayed, not recorded (--fail-open)");
    counters_->passthrough++;
    answer.outcome = "passthrough";
    answer.relay = true;
    return answer;
  }
  events_->Error(failed + "; answered 500, not forwarded");
  counters_->errors++;
  answer.outcome = "error";
  answer.timeline = ErrorTimeline(
      request.path, 500, "rewind_record_failed",
      "rewind could not record this request (an internal error, in its "
      "log); it was not forwarded. `rewind record --fail-open` relays "
      "every request whatever happens in recording");
  return answer;
}

bool RecordMode::StoreFailed(const std::string& method, const std::string& path,
                             const std::string& what) {
  Skipped(Skip::kInternalError);
  const std::string failed = "recording " + method + " " +
                             events_->LoggedPath(path) + " failed: " + what;
  if (options_.fail_open) {
    events_->Error(failed +
                   "; the answer was relayed whole, not recorded "
                   "(--fail-open)");
    return true;
  }
  counters_->errors++;
  events_->Error(failed + "; the answer was not completed");
  return false;
}

Answer RecordMode::Record(const Call& call) {
  const Request& request = call.request;
  Answer answer;
  answer.relay = true;
  Skip why = Skip::kPath;
  std::shared_ptr<CapturePolicy::Admission> admission =
      policy_.Admit(request.path, call.key, &why);
  if (!admission) {
    Skipped(why);
    counters_->passthrough++;
    answer.outcome = "passthrough";
    return answer;
  }
  Exchange& base = answer.capture.base;
  base.request = call.scrubbed ? *call.scrubbed : request;
  base.request.headers = StoredRequestHeaders(base.request.headers);
  if (!RedactBody(request, &base.request.body) ||
      (!call.scrubbed && !ScrubStored(request, &base.request))) {
    base = Exchange();
    counters_->passthrough++;
    answer.outcome = "passthrough";
    return answer;
  }
  answer.outcome = "record";
  base.key_hex = call.key.ToHex();
  base.started_at_us = clock_->WallMicros();
  base.arrival_offset_us = call.received_us - options_.session_start_us;
  answer.capture.on_done = [this, key = call.key, method = request.method,
                            path = request.path, received = call.received_us,
                            admission = std::move(admission)](Exchange&& e) {
    try {
      // rewind's own time since the backend's last byte, so far: the
      // store's writer adds its queue's.
      e.response.own_after_us = std::max<int64_t>(
          0, clock_->NowMicros() - received - e.response.TotalMicros());
      Keep(key, method, path, admission.get(), std::move(e));
      return true;
    } catch (const std::exception& ex) {
      return StoreFailed(method, path, ex.what());
    } catch (...) {
      return StoreFailed(method, path, "an unknown exception");
    }
  };
  answer.capture.max_bytes = options_.max_record_bytes;
  answer.capture.on_too_large = [this, method = request.method,
                                 path = request.path](uint64_t bytes) {
    try {
      Skipped(Skip::kTooLarge);
      events_->Error("not recorded: " + method + " " +
                     events_->LoggedPath(path) +
                     ": the answer is larger than --max-record-bytes (" +
                     std::to_string(options_.max_record_bytes) + "; " +
                     std::to_string(bytes) +
                     " bytes known); it is relayed to the client only");
    } catch (...) {
      // Only a line and a count were lost; the answer is not recorded.
    }
  };
  return answer;
}

void RecordMode::Keep(const RequestKey& key, const std::string& method,
                      const std::string& path,
                      CapturePolicy::Admission* admission, Exchange&& e) {
  e.response.headers = Redact(e.response.headers, options_.redact_headers);
  if (options_.scrubber &&
      !options_.scrubber->ScrubResponse(&e.response).ok()) {
    Skipped(Skip::kUnscrubbable);
    events_->Error("not recorded: " + method + " " + events_->LoggedPath(path) +
                   ": its answer has a Content-Encoding, which rewind "
                   "cannot scrub; it was relayed to the client only");
    return;
  }
  if (!admission->Fits(ExchangeBytes(e))) {
    Skipped(Skip::kFull);
    return;
  }
  Result<int64_t> id =
      store_->WaitCommitted(store_->AppendRecorded(std::move(e)));
  if (!id.ok()) {
    // A store that fails (locked, full disk) is no internal error: the
    // client keeps its answer, health says degraded.
    counters_->errors++;
    events_->Error("exchange not recorded: " + id.status().ToString());
    return;
  }
  admission->Stored();
  counters_->recorded++;
  if (index_ != nullptr) index_->Add(key, id.value(), method, path);
}

Answer PassthroughMode::Serve(const Call&) {
  counters_->passthrough++;
  Answer answer;
  answer.outcome = "passthrough";
  answer.relay = true;
  return answer;
}

}  // namespace rwd
