// The command lines of the recording commands (commands.h): each adds its
// subcommand and flags to "app" and returns what runs it.
#ifndef REWIND_SRC_CLI_RECORDING_COMMANDS_H_
#define REWIND_SRC_CLI_RECORDING_COMMANDS_H_

#include "cli/command.h"

namespace rwd {

Command AddLsCommand(CLI::App& app);
Command AddShowCommand(CLI::App& app);
Command AddStatsCommand(CLI::App& app);
Command AddExportCommand(CLI::App& app);
Command AddImportCommand(CLI::App& app);
Command AddMergeCommand(CLI::App& app);
Command AddVerifyCommand(CLI::App& app);
Command AddRekeyCommand(CLI::App& app);
Command AddCheckCommand(CLI::App& app);
// Handles the stop signals: the first stops the run, which reports.
Command AddLoadCommand(CLI::App& app);
Command AddPruneCommand(CLI::App& app);

}  // namespace rwd

#endif  // REWIND_SRC_CLI_RECORDING_COMMANDS_H_
