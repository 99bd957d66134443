// ServerOptions' own rules: what each mode needs and which settings are
// valid together (Validate), apart from the server that runs them.
#include <sstream>
#include <string>

#include "http/forwarder.h"
#include "rewind/server.h"

namespace rwd {

bool ServerOptions::NeedsBackend() const {
  return mode == ServerMode::kRecord ||
         (mode == ServerMode::kReplay &&
          (replay.on_miss == MissPolicy::kPassthrough ||
           replay.on_miss == MissPolicy::kRecord));
}

Status ServerOptions::Validate() const {
  if (front.port < 0 || front.port > 65535) {
    return Status::InvalidArgument("port " + std::to_string(front.port) +
                                   " is out of range");
  }
  const bool needs_backend = NeedsBackend();
  if (needs_backend && upstream.backend.empty()) {
    return Status::InvalidArgument(
        mode == ServerMode::kRecord
            ? "record needs --backend URL"
            : "--on-miss passthrough/record needs --backend URL");
  }
  if (needs_backend) {
    Result<BackendUrl> url = BackendUrl::Parse(upstream.backend);
    if (!url.ok()) return url.status();
  }
  if (replay.near_max_fields < 1 || replay.near_max_fields > kMaxNearFields) {
    return Status::InvalidArgument("--near-max-fields must be between 1 and " +
                                   std::to_string(kMaxNearFields));
  }
  if (front.max_connections == 0) {
    return Status::InvalidArgument("--max-connections must be at least 1");
  }
  if (front.client_timeout_s <= 0) {
    return Status::InvalidArgument("--client-timeout must be positive");
  }
  if (front.keep_alive_timeout_s <= 0) {
    return Status::InvalidArgument("--keep-alive-timeout must be positive");
  }
  if (upstream.backend_timeout_s <= 0) {
    return Status::InvalidArgument("--backend-timeout must be positive");
  }
  const bool records =
      mode == ServerMode::kRecord ||
      (mode == ServerMode::kReplay && replay.on_miss == MissPolicy::kRecord);
  return record.Validate(records);
}

Status ServerRecordOptions::Validate(bool records) const {
  const bool chooses = sample != 1 || !record_paths.empty() ||
                       !skip_paths.empty() || max_per_key.has_value() ||
                       max_exchanges.has_value() || max_db_bytes.has_value() ||
                       fail_open;
  if (chooses && !records) {
    return Status::InvalidArgument(
        "--sample, --record-path, --skip-path, --max-per-key, "
        "--max-exchanges, --max-db-bytes and --fail-open are about "
        "recording: they apply to record and to replay --on-miss record");
  }
  if (!(sample > 0 && sample <= 1)) {  // NaN fails too
    std::ostringstream given;
    given << sample;
    return Status::InvalidArgument(
        "--sample must be a share above 0 and at most 1 (0.25 records a "
        "quarter of the requests), got " +
        given.str());
  }
  for (const auto* list : {&record_paths, &skip_paths}) {
    const char* flag = list == &record_paths ? "--record-path" : "--skip-path";
    for (const std::string& glob : *list) {
      if (glob.empty()) {
        return Status::InvalidArgument(
            std::string(flag) +
            " needs a glob on the path, e.g. '/v1/chat/*'; got an empty one");
      }
      if (glob[0] != '/' && glob[0] != '*' && glob[0] != '?' &&
          glob[0] != '[') {
        return Status::InvalidArgument(
            std::string(flag) + " '" + glob +
            "' can never match: paths start with '/' (e.g. '/" + glob +
            "' or '*" + glob + "')");
      }
    }
  }
  if (max_per_key.has_value() && *max_per_key == 0) {
    return Status::InvalidArgument(
        "--max-per-key must be at least 1 (leave it out to keep every "
        "recording of a request)");
  }
  if (max_exchanges.has_value() && *max_exchanges == 0) {
    return Status::InvalidArgument(
        "--max-exchanges must be at least 1 (leave it out for no cap; "
        "replay --on-miss passthrough records nothing)");
  }
  if (max_db_bytes.has_value() && *max_db_bytes == 0) {
    return Status::InvalidArgument(
        "--max-db-bytes must be at least 1 (a size such as 500M or 2G; "
        "leave it out for no cap)");
  }
  if (max_record_bytes == 0 || max_record_bytes > kMaxRecordBytesLimit) {
    return Status::InvalidArgument("--max-record-bytes must be between 1 and " +
                                   std::to_string(kMaxRecordBytesLimit) +
                                   " (SQLite stores a value of at most 1 GB)");
  }
  return Status::Ok();
}

}  // namespace rwd
