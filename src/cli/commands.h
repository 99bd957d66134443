// The recording commands behind `rewind ls|show|stats|export|import|merge|
// verify|rekey|prune`. Each is a function over a Store and output streams,
// so tests call it as the CLI does. They return the process exit code:
// 0 success, 1 findings (verify problems, show found nothing), 2 usage or
// I/O error (a message on "err").
#ifndef REWIND_SRC_CLI_COMMANDS_H_
#define REWIND_SRC_CLI_COMMANDS_H_

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "rewind/clock.h"
#include "rewind/request_key.h"
#include "rewind/store.h"

namespace rwd {

constexpr int kExitOk = 0;
constexpr int kExitFindings = 1;
constexpr int kExitError = 2;

// Version of the rewind JSON export format; see WriteJsonExport.
constexpr int kExportSchemaVersion = 1;

struct LsFlags {
  std::string path_glob;  // fnmatch pattern on the path; "" = all
  std::string method;
  int status = 0;  // 0 = all
  bool json = false;
  int width = 0;  // terminal columns; 0 = do not truncate
};
int RunLs(Store* store, const LsFlags& flags, std::ostream& out,
          std::ostream& err);

// "what" is an exchange id or a prefix of its key.
int RunShow(Store* store, const std::string& what, bool raw, std::ostream& out,
            std::ostream& err);

struct StatsFlags {
  std::string by = "path";  // "path" or "model"
  bool json = false;
};
int RunStats(Store* store, const StatsFlags& flags, std::ostream& out,
             std::ostream& err);

// Exports every exchange, in id order. format: "json" or "har".
int RunExport(Store* store, const std::string& format, std::ostream& out,
              std::ostream& err);

// Imports "in" (format "json", "har", or "" to guess from the content).
// "rekey" recomputes keys under the recording's rules instead of keeping
// the file's.
int RunImport(Store* store, const std::string& format, std::istream& in,
              bool rekey, std::ostream& err);

// Copies every exchange of "inputs" into "out" under out's rules, in
// arrival order; with "dedupe", an exchange whose key and response bytes
// equal an earlier one's is dropped.
int RunMerge(Store* out, const std::vector<std::string>& inputs, bool dedupe,
             std::ostream& err);

// Exit 0 only when the file is sound and self-contained (see
// ReportUnsettled).
int RunVerify(Store* store, std::ostream& out, std::ostream& err);
// Says on "out" how to settle a file its writer did not close (still in
// WAL mode, a -wal beside it); returns false then.
bool ReportUnsettled(const Store::FileState& file, std::ostream& out);
// Folds a recording open for writing into one self-contained file
// (Store::Settle).
int RunSettle(Store* store, std::ostream& err);

// Recomputes every key under "rules" and stores them as the new rules.
int RunRekey(Store* store, const KeyRules& rules, std::ostream& err);

struct PruneFlags {
  bool incomplete = false;       // drop exchanges that broke off
  std::optional<int> status;     // drop this status
  std::optional<int> keep_last;  // keep the newest K per key
};
int RunPrune(Store* store, const PruneFlags& flags, std::ostream& err);

struct CheckFlags {
  std::string target;        // required: http://host:port
  std::string path_glob;     // only paths matching
  std::string method;        // only this method
  int64_t limit = 0;         // at most this many (0: all)
  std::vector<int64_t> ids;  // only these ids
  int concurrency = 4;
  std::vector<std::string> compare_headers;
  std::vector<std::string> ignore_fields;  // besides the volatile ones
  std::vector<std::string> extra_headers;  // "Name: value" sent with each
  double float_tolerance = 0;
  std::string junit_path;  // JUnit XML report
  std::string json_path;   // full JSON report
  int timeout_s = 120;
  bool color = false;
};
// Re-sends recorded requests to flags.target and compares the answers.
// 0: all match; 1: some changed; 2: some got no answer, or usage errors.
int RunCheck(Store* store, const CheckFlags& flags, std::ostream& out,
             std::ostream& err);

struct LoadFlags {
  std::string target;
  // When set, the run stops as soon as it holds a signal number (SIGINT,
  // SIGTERM) and reports what it measured so far. Not owned.
  const std::atomic<int>* stop_signal = nullptr;
  double speed = 1;         // recorded inter-arrival times / speed
  double rate = 0;          // open loop at this many requests/s instead
  int concurrency = 0;      // closed loop with N in flight instead
  double duration_s = 0;    // stop after this long; requests still in
                            // flight are cut off (0: no bound)
  int64_t count = 0;        // stop after this many (0: one pass)
  int max_in_flight = 256;  // open loop: senders available
  std::string path_glob;
  std::vector<std::string> extra_headers;
  std::string json_path;
  int timeout_s = 120;
  // Paces the sends and times the run and the answers; nullptr is
  // SystemClock(). Not owned.
  Clock* clock = nullptr;
};
// Replays recorded traffic against a live target and reports throughput,
// errors and latency percentiles against the recording. 0 unless usage or
// I/O errors (2).
int RunLoad(Store* store, const LoadFlags& flags, std::ostream& out,
            std::ostream& err);

// Every exchange's id, key, method, path, status and completeness, in id
// order, read without the bodies (Store::ScanKeys).
Result<std::vector<ExchangeSummary>> KeySummaries(Store* store);

// A progress line on stderr when it is a terminal; silent otherwise. The
// line is cleared when the Progress goes.
class Progress {
 public:
  // "clock" times the redraws; nullptr is SystemClock(). Not owned.
  Progress(std::string label, int64_t total, Clock* clock = nullptr);
  ~Progress();
  // Draws "LABEL [#####     ] DONE/TOTAL", at most every 100 ms but
  // always once "done" reaches the total.
  void Update(int64_t done);
  // Draws "LABEL: TEXT", for work of no known total; the caller paces it.
  void Show(const std::string& text);
  // Clears the line now, drawn or not.
  void Clear();

 private:
  const std::string label_;
  const int64_t total_;
  Clock* const clock_;
  const bool enabled_;
  bool drawn_ = false;
  int64_t last_draw_us_ = 0;
};

}  // namespace rwd

#endif  // REWIND_SRC_CLI_COMMANDS_H_
