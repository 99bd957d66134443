// The journal: what rewind received and how it answered, for tests to
// look at (GET /__rewind/requests) and for replay's verdict at exit
// (--strict, --require-all, --report).
//
// Each request a mode answered is one entry: its scope, method, path
// (without a scope prefix), key, outcome, status, the recording served
// and, for a miss, rewind's explanation and the nearest recording (for a
// near answer, the fields it differs in from the recording served). The
// journal keeps the newest "capacity" entries (10,000 by default) and
// counts the older ones it discarded, server-wide and per scope. It also
// keeps which recordings were served: since the last reset (the
// "unused" view), and since start (the verdict), with the run's totals,
// which no reset clears.
//
// Thread-safety: safe for concurrent use.
#ifndef REWIND_SRC_MODES_JOURNAL_H_
#define REWIND_SRC_MODES_JOURNAL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "modes/scope.h"
#include "rewind/mode.h"
#include "rewind/request_key.h"

namespace rwd {

struct JournalEntry {
  uint64_t seq = 0;              // 1 for the server's first request
  std::shared_ptr<Scope> scope;  // null: no scope
  std::string method;
  std::string path;  // without a scope prefix, without the query
  bool keyed = false;
  RequestKey key;
  const char* outcome = "error";  // Answer::outcome
  int status = 0;
  int64_t exchange = 0;                    // the recording served; 0: none
  std::shared_ptr<const MissReport> miss;  // a miss's explanation, or null
  // A near answer's differing fields (Answer::near_differences), or null.
  std::shared_ptr<const std::vector<std::string>> near_differences;
};

// Whether an answer with "outcome" served the recording it names.
bool ServesRecording(std::string_view outcome);

class Journal {
 public:
  static constexpr size_t kDefaultCapacity = 10000;
  static constexpr size_t kListedNear = 20;

  explicit Journal(size_t capacity = kDefaultCapacity)
      : capacity_(capacity < 1 ? 1 : capacity) {}
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends "entry" (numbering it) and, when its outcome served a
  // recording, marks that recording served, in its scope too.
  void Add(JournalEntry entry);

  struct View {
    std::vector<JournalEntry> entries;  // oldest first
    uint64_t dropped = 0;
  };
  // Every entry kept, or those of the scope named "scope" when it is not
  // empty.
  View Entries(std::string_view scope = {}) const;

  // Recordings served since start or the last Reset().
  std::unordered_set<int64_t> Served() const;

  // Forgets the entries and the served set (not the run's totals).
  void Reset();
  // Forgets the entries of the scope named "scope".
  void Reset(std::string_view scope);

  // Since start, whatever was reset.
  struct Totals {
    uint64_t requests = 0;
    uint64_t hits = 0;
    uint64_t near = 0;  // answers from the nearest recording
    uint64_t misses = 0;
    // The first "capacity" misses' entries.
    std::vector<JournalEntry> missed;
    // The first kListedNear near answers' entries.
    std::vector<JournalEntry> answered_near;
    std::unordered_set<int64_t> served;
  };
  Totals RunTotals() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  uint64_t seq_ = 0;                    // guarded by mu_
  std::deque<JournalEntry> entries_;    // guarded by mu_
  uint64_t dropped_ = 0;                // guarded by mu_
  std::unordered_set<int64_t> served_;  // guarded by mu_
  Totals totals_;                       // guarded by mu_
};

}  // namespace rwd

#endif  // REWIND_SRC_MODES_JOURNAL_H_
