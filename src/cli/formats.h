// export and import: the rewind JSON format (rewind_json.cc), HAR 1.2
// (har.cc) and what both use (recording_io.cc, which also holds RunExport
// and RunImport). Each function returns the process exit code and writes
// its messages on "err".
#ifndef REWIND_SRC_CLI_FORMATS_H_
#define REWIND_SRC_CLI_FORMATS_H_

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "rewind/status.h"
#include "rewind/store.h"

namespace rwd {

// Bytes in a JSON file: as text when they are valid UTF-8 without NULs
// (which JSON text and cereal keep badly), else base64.
struct EncodedText {
  std::string text;
  std::string encoding;  // "utf-8" or "base64"
};
EncodedText EncodeBody(const std::string& bytes);
// "encoding" "utf-8" or "" (text as is) or "base64"; others are refused.
Result<std::string> DecodeBody(const std::string& text,
                               const std::string& encoding);

// The ids of "store" in order.
Result<std::vector<int64_t>> ExchangeIds(Store* store);

// The rewind JSON export: every exchange, its key, the key rules and the
// schema version (kExportSchemaVersion), members in alphabetical order so
// the file diffs well.
int WriteJsonExport(Store* store, std::ostream& out, std::ostream& err);
// Imports a rewind JSON export; "rekey" recomputes keys under the store's
// rules instead of refusing a file keyed otherwise.
int ImportJson(Store* store, std::string text, bool rekey, std::ostream& err);

// HAR 1.2, with rewind's own "_rewind" fields to rebuild the timeline.
int WriteHarExport(Store* store, std::ostream& out, std::ostream& err);
// Imports the HAR file "text" (from rewind, browsers' devtools,
// mitmproxy); secret headers are stored as kRedacted.
int ImportHar(Store* store, const std::string& text, std::ostream& err);

}  // namespace rwd

#endif  // REWIND_SRC_CLI_FORMATS_H_
