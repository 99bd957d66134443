// The recording commands behind `rewind ls|show|stats|export|import|merge|
// verify|rekey|prune`. Each is a function over a Store and output streams,
// so tests call it as the CLI does. They return the process exit code:
// 0 success, 1 findings (verify problems, show found nothing), 2 usage or
// I/O error (a message on "err").
#ifndef REWIND_SRC_CLI_COMMANDS_H_
#define REWIND_SRC_CLI_COMMANDS_H_

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

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
  int status = 0;         // 0 = all
  bool json = false;
  int width = 0;          // terminal columns; 0 = do not truncate
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

int RunVerify(Store* store, std::ostream& out, std::ostream& err);

// Recomputes every key under "rules" and stores them as the new rules.
int RunRekey(Store* store, const KeyRules& rules, std::ostream& err);

struct PruneFlags {
  bool incomplete = false;           // drop exchanges that broke off
  std::optional<int> status;         // drop this status
  std::optional<int> keep_last;      // keep the newest K per key
};
int RunPrune(Store* store, const PruneFlags& flags, std::ostream& err);

// A progress line on stderr when it is a terminal; silent otherwise.
class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  void Update(int64_t done);

 private:
  const std::string label_;
  const int64_t total_;
  const bool enabled_;
  int64_t last_draw_us_ = 0;
};

}  // namespace rwd

#endif  // REWIND_SRC_CLI_COMMANDS_H_
