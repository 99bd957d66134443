// Checks that run before a command touches the disk, and the words that
// help a user who mistyped one: shared by `rewind`'s main and its tests.
#ifndef REWIND_SRC_CLI_USAGE_H_
#define REWIND_SRC_CLI_USAGE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "rewind/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace rwd {

// Edit distance with adjacent transpositions counted as one edit (optimal
// string alignment): "recrod" is 1 from "record".
size_t EditDistance(const std::string& a, const std::string& b);

// The candidate nearest to "word" when it is near enough to be a likely
// typo (at most 1 edit for words of up to 4 letters, 2 up to 8, else 3),
// or "". Leading dashes of both are ignored, case too.
std::string NearestWord(const std::string& word,
                        const std::vector<std::string>& candidates);

// CLI11 answers a mistyped command or option with "A subcommand is
// required" or by complaining about something else; this names the word
// it did not know and the nearest one it does. "args" is the whole
// command line; Ok when CLI11 may parse it.
Status CheckCommandLine(CLI::App& app, const std::vector<std::string>& args);

// What `--db PATH` must be before a command opens it: not empty, not a
// directory, not a symbolic link to nothing, not a device or pipe; with
// "create", a missing file needs an existing directory to go in.
// InvalidArgument names the flag and says what is wrong.
Status CheckRecordingPath(const std::string& path, bool create);

// A file a command will write ("flag" names it in messages): its directory
// must exist and it must not be a directory.
Status CheckOutputPath(const std::string& flag, const std::string& path);

// A file a command will read: it exists, is not a directory, and can be
// opened.
Status CheckInputPath(const std::string& flag, const std::string& path);

}  // namespace rwd

#endif  // REWIND_SRC_CLI_USAGE_H_
