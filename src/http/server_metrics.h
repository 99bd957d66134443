// rewind's own Prometheus metrics, served at /metrics in every mode.
//
//   rewind_requests_total{mode,outcome,code}     counter
//   rewind_response_headers_seconds{mode}        histogram (time to headers)
//   rewind_response_seconds{mode}                histogram (time to last byte)
//   rewind_response_bytes_total{mode}            counter (body bytes sent)
//   rewind_record_skipped_total{reason}          counter (answers relayed
//                                                but not recorded, by Skip)
//   rewind_record_full                           gauge (1: a cap reached)
//   rewind_connections{state="active"|"queued"}  gauge (one worker each)
//   rewind_workers                               gauge (pool size)
//   rewind_store_queue_depth, rewind_store_commits_total,
//   rewind_store_commit_failures_total,
//   rewind_store_commit_seconds_{sum,count},
//   rewind_store_bytes                           the recording's writer
//
// Thread-safety: safe for concurrent use.
#ifndef REWIND_SRC_HTTP_SERVER_METRICS_H_
#define REWIND_SRC_HTTP_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "rewind/mode.h"
#include "rewind/store.h"
#include "util/prometheus.h"

namespace rwd {

class ServerMetrics {
 public:
  explicit ServerMetrics(std::string mode);

  void ObserveRequest(const std::string& outcome, int code, double headers_s,
                      double total_s);
  void AddBytes(uint64_t n) { bytes_ += n; }
  // An answer relayed but not recorded; "reason" is a SkipName().
  void RecordSkipped(const std::string& reason);

  // Connections being served, and waiting for a worker.
  std::atomic<int64_t> active{0};
  std::atomic<int64_t> queued{0};

  // "store" may be null (serve without a recording).
  std::string Render(size_t workers, Store* store,
                     const ModeCounters& counters) const;

 private:
  const std::string mode_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // guarded
  Histogram headers_;                                         // guarded by mu_
  Histogram total_;                                           // guarded by mu_
  std::atomic<uint64_t> bytes_{0};
  // By Skip (rewind/mode.h).
  std::array<std::atomic<uint64_t>, kSkipReasons> skipped_{};
};

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_SERVER_METRICS_H_
