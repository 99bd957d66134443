// The --config file of the server commands: a JSON object of their flags.
#ifndef REWIND_SRC_CLI_CONFIG_FILE_H_
#define REWIND_SRC_CLI_CONFIG_FILE_H_

#include <string>
#include <vector>

#include "rewind/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace rwd {

// Adds the --config option to "cmd" (for its --help; ExpandConfig reads it).
void AddConfigOption(CLI::App* cmd);

// Expands "--config FILE" (a JSON object of flag names without the leading
// dashes: {"listen": "127.0.0.1:9000", "ignore-field": ["a", "b"],
// "quiet": true}) into flags placed before the command line's own, which
// therefore override it. Unknown keys are errors. "args" is the whole
// command line, args[1] the command; returns the new one.
Result<std::vector<std::string>> ExpandConfig(CLI::App& app,
                                              std::vector<std::string> args);

}  // namespace rwd

#endif  // REWIND_SRC_CLI_CONFIG_FILE_H_
