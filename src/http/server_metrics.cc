#include "http/server_metrics.h"

namespace rwd {
namespace {

std::vector<double> LatencyBounds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,   0.5,   1.0,    2.5,   5.0,  10.0,  30.0, 60.0};
}

}  // namespace

ServerMetrics::ServerMetrics(std::string mode)
    : mode_(std::move(mode)),
      headers_(LatencyBounds()),
      total_(LatencyBounds()) {}

void ServerMetrics::ObserveRequest(const std::string& outcome, int code,
                                   double headers_s, double total_s) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{outcome, code}];
  headers_.Observe(headers_s);
  total_.Observe(total_s);
}

void ServerMetrics::RecordSkipped(const std::string& reason) {
  for (size_t i = 0; i < kSkipReasons; ++i) {
    if (reason == SkipName(static_cast<Skip>(i))) ++skipped_[i];
  }
}

std::string ServerMetrics::Render(size_t workers, Store* store,
                                  const ModeCounters& counters) const {
  const std::string mode = "mode=\"" + mode_ + "\"";
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    MetricHeader("rewind_requests_total", "counter",
                 "Requests answered, by outcome (hit, near, converted, miss, "
                 "synth, record, passthrough, error, admin) and status code.",
                 &out);
    for (const auto& [key, n] : requests_) {
      out += "rewind_requests_total{" + mode + ",outcome=\"" + key.first +
             "\",code=\"" + std::to_string(key.second) + "\"} " +
             std::to_string(n) + "\n";
    }
    MetricHeader("rewind_response_headers_seconds", "histogram",
                 "From request receipt to response headers.", &out);
    headers_.Render("rewind_response_headers_seconds", mode, &out);
    MetricHeader("rewind_response_seconds", "histogram",
                 "From request receipt to the last byte sent.", &out);
    total_.Render("rewind_response_seconds", mode, &out);
  }
  MetricHeader("rewind_response_bytes_total", "counter",
               "Response body bytes sent.", &out);
  out += "rewind_response_bytes_total{" + mode + "} " +
         std::to_string(bytes_.load()) + "\n";
  MetricHeader("rewind_record_skipped_total", "counter",
               "Answers relayed to the client but not recorded, by reason "
               "(too_large: beyond --max-record-bytes; unredactable: a "
               "--redact-field that could not be taken out of the body; "
               "unscrubbable: a body with a Content-Encoding under --scrub; "
               "path: not chosen by --record-path/--skip-path; sampled_out: "
               "left out by --sample; max_per_key: its key has "
               "--max-per-key recordings; full: --max-exchanges or "
               "--max-db-bytes reached; internal_error: recording it failed, "
               "see the log).",
               &out);
  for (size_t i = 0; i < kSkipReasons; ++i) {
    out += std::string("rewind_record_skipped_total{reason=\"") +
           SkipName(static_cast<Skip>(i)) + "\"} " +
           std::to_string(skipped_[i].load()) + "\n";
  }
  MetricHeader("rewind_record_full", "gauge",
               "1 once --max-exchanges or --max-db-bytes is reached: every "
               "request is still relayed, none is recorded any more.",
               &out);
  out += std::string("rewind_record_full ") +
         (counters.full.load() ? "1" : "0") + "\n";
  MetricHeader("rewind_connections", "gauge",
               "Client connections being served (each holds a worker) and "
               "waiting for one.",
               &out);
  out += "rewind_connections{state=\"active\"} " +
         std::to_string(active.load()) + "\n";
  out += "rewind_connections{state=\"queued\"} " +
         std::to_string(queued.load()) + "\n";
  MetricHeader("rewind_workers", "gauge",
               "Size of the worker pool (--max-connections).", &out);
  out += "rewind_workers " + std::to_string(workers) + "\n";
  if (store) {
    const Store::WriterStats w = store->writer_stats();
    MetricHeader("rewind_store_queue_depth", "gauge",
                 "Exchanges waiting for the recording's writer.", &out);
    out += "rewind_store_queue_depth " + std::to_string(w.queued) + "\n";
    MetricHeader("rewind_store_commits_total", "counter",
                 "Transactions committed by the writer.", &out);
    out += "rewind_store_commits_total " + std::to_string(w.commits) + "\n";
    MetricHeader("rewind_store_commit_failures_total", "counter",
                 "Transactions that failed (locked file, full disk, ...).",
                 &out);
    out += "rewind_store_commit_failures_total " + std::to_string(w.failures) +
           "\n";
    MetricHeader("rewind_store_commit_seconds", "summary",
                 "Time spent committing batches.", &out);
    out += "rewind_store_commit_seconds_sum " + MetricNumber(w.commit_seconds) +
           "\n";
    out += "rewind_store_commit_seconds_count " +
           std::to_string(w.commits + w.failures) + "\n";
    MetricHeader("rewind_store_exchanges_written_total", "counter",
                 "Exchanges committed to the recording.", &out);
    out += "rewind_store_exchanges_written_total " + std::to_string(w.written) +
           "\n";
    MetricHeader("rewind_store_bytes", "gauge",
                 "Size of the recording (SQLite pages in use x page size) "
                 "as of the last commit.",
                 &out);
    out += "rewind_store_bytes " + std::to_string(w.bytes) + "\n";
  }
  return out;
}

}  // namespace rwd
