// `rewind scan` and `rewind scrub`: personal data and secrets left in an
// existing recording, reported or taken out (src/scrub/).
#ifndef REWIND_SRC_CLI_SCRUB_COMMANDS_H_
#define REWIND_SRC_CLI_SCRUB_COMMANDS_H_

#include <iosfwd>
#include <string>
#include <vector>

#include "cli/command.h"
#include "rewind/store.h"

namespace rwd {

Command AddScanCommand(CLI::App& app);
Command AddScrubCommand(CLI::App& app);

struct ScrubFlags {
  std::vector<std::string> kinds;     // --scrub lists
  std::vector<std::string> patterns;  // --scrub-pattern NAME=REGEX
};

// Reports, exchange by exchange and place by place (never the values),
// what the detectors find: those of "flags", else the recording's own,
// else every built-in kind. Placeholders are not findings; a body that
// cannot be read (a Content-Encoding) is. Exit 0 when nothing is found,
// 1 when something is, 2 on error.
int RunScan(Store* store, const ScrubFlags& flags, std::ostream& out,
            std::ostream& err);

// Writes every exchange of "in" into the empty recording "out" scrubbed
// under out's rules (which must scrub) with "secret", ids kept, keys
// recomputed. An exchange with a body that cannot be scrubbed fails the
// run unless "drop_unscrubbable". Exit 0 or 2.
int RunScrubInto(Store* in, Store* out, const std::string& secret,
                 bool drop_unscrubbable, std::ostream& err);

}  // namespace rwd

#endif  // REWIND_SRC_CLI_SCRUB_COMMANDS_H_
