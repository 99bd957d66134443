// The engine's token ids: what /tokenize gives out and /detokenize reads
// back. A token (a word with its leading spaces, as Tokenize splits text)
// has a stable id, a hash of its bytes, so the same text gets the same
// ids in every run; /detokenize knows the ids this process has given out
// (at most kMaxEntries of them). Internal to src/synth/.
//
// Thread-safety: safe for concurrent use.
#ifndef REWIND_SRC_SYNTH_TOKEN_TABLE_H_
#define REWIND_SRC_SYNTH_TOKEN_TABLE_H_

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace rwd {

class TokenTable {
 public:
  static constexpr size_t kMaxEntries = 1u << 20;

  // The id of "token", remembered for Token() while there is room.
  int64_t Id(const std::string& token);
  // The token behind "id", if this table gave it out.
  std::optional<std::string> Token(int64_t id) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<int64_t, std::string> tokens_;  // guarded by mu_
};

}  // namespace rwd

#endif  // REWIND_SRC_SYNTH_TOKEN_TABLE_H_
