// `rewind record`, `rewind replay` and `rewind serve`: each adds its
// subcommand and flags to the command line and returns what runs it.
#ifndef REWIND_SRC_CLI_SERVER_COMMANDS_H_
#define REWIND_SRC_CLI_SERVER_COMMANDS_H_

#include <string>

#include "cli/command.h"
#include "rewind/status.h"
#include "store/rotating_store.h"

namespace rwd {

// Parses record's --rotate-every: a duration ("90s", "30m", "1h", "1d":
// one lower-case s, m, h or d) or a size with a byte unit ("64K", "500M",
// "2G", "500MB", "1GiB", "4096B": powers of 1024, any case), into
// "options". A bare number is refused, as "30m" and "30M" differ; so are
// 0 and what overflows. InvalidArgument says what to write.
Status ParseRotateEvery(const std::string& spec, RotationOptions* options);

// The runners block StopSignals() in every thread first (main does it
// before any thread exists).
Command AddRecordCommand(CLI::App& app);
Command AddReplayCommand(CLI::App& app);
Command AddServeCommand(CLI::App& app);

}  // namespace rwd

#endif  // REWIND_SRC_CLI_SERVER_COMMANDS_H_
