// `rewind record`, `rewind replay` and `rewind serve`: each adds its
// subcommand and flags to the command line and returns what runs it.
#ifndef REWIND_SRC_CLI_SERVER_COMMANDS_H_
#define REWIND_SRC_CLI_SERVER_COMMANDS_H_

#include "cli/command.h"

namespace rwd {

// The runners block StopSignals() in every thread first (main does it
// before any thread exists).
Command AddRecordCommand(CLI::App& app);
Command AddReplayCommand(CLI::App& app);
Command AddServeCommand(CLI::App& app);

}  // namespace rwd

#endif  // REWIND_SRC_CLI_SERVER_COMMANDS_H_
