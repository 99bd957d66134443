// The flags that set a recording's matching rules, shared by `rewind
// record` and `rewind rekey`: --normalize, --[no-]content-equivalence and
// --[no-]tool-sets (rewind/request_key.h: KeyRules).
#ifndef REWIND_SRC_CLI_MATCHING_FLAGS_H_
#define REWIND_SRC_CLI_MATCHING_FLAGS_H_

#include <string>
#include <vector>

#include "rewind/request_key.h"
#include "rewind/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace rwd {

struct MatchingFlags {
  std::vector<std::string> normalize;
  bool content_equivalence = true;
  bool content_given = false;  // either flag was on the command line
  bool tool_sets = true;
  bool tools_given = false;  // --tool-sets or --no-tool-sets was given
};

// Adds the flags to "cmd". A --normalize that does not parse is a usage
// error naming the flag and what is wrong, before anything is opened.
void AddMatchingFlags(CLI::App* cmd, MatchingFlags* f);

// Whether the command line gave any of them.
bool MatchingFlagsGiven(const MatchingFlags& f);

// Sets rules->normalizers, rules->content_equivalence and rules->tool_sets
// from the flags.
Status ApplyMatchingFlags(const MatchingFlags& f, KeyRules* rules);

}  // namespace rwd

#endif  // REWIND_SRC_CLI_MATCHING_FLAGS_H_
