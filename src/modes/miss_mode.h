// What answers a replayed request nothing was recorded for: the miss
// policies (--on-miss), each a mode that wraps others.
//
//   error        404 with rewind's explanation: the key, and either the
//                incomplete recordings of this very request or the nearest
//                recording on the same method and path with the fields that
//                differ (FindNearest)
//   passthrough  the passthrough mode's relay
//   record       the record mode's relay, adding the exchange to the index
//   synthesize   the dummy engine for its generating endpoints, else error
//   convert      ConvertMode below, else error
//
// ConvertMode answers a request that differs from a recorded OpenAI one
// only in "stream" and "stream_options" from that recording, converted to
// the framing asked for (src/modes/convert.h) and paced like a hit.
//
// Thread-safety: Serve() is safe for concurrent use.
#ifndef REWIND_SRC_MODES_MISS_MODE_H_
#define REWIND_SRC_MODES_MISS_MODE_H_

#include <memory>
#include <optional>

#include "modes/replay_mode.h"
#include "modes/synth_mode.h"
#include "rewind/mode.h"
#include "rewind/replay.h"
#include "rewind/request_key.h"
#include "rewind/store.h"

namespace rwd {

class ConvertMode {
 public:
  // Indexes the recorded chat and text completions of "index" by a key
  // that leaves out "stream" and "stream_options". Every pointer must
  // outlive the mode.
  static Result<std::unique_ptr<ConvertMode>> Load(
      Store* store, const ReplayIndex& index, const KeyRules& rules,
      RepeatPolicy repeat, ExchangeCache* cache, const Pacing* pacing,
      ModeCounters* counters, ModeEvents* events);

  // The converted answer, or nullopt when no recording differs from the
  // request only in its framing, or it cannot be converted.
  std::optional<Answer> TryServe(const Call& call);
  // Restarts the repeat sequences.
  void Reset() { index_.Reset(); }

 private:
  ConvertMode(const KeyRules& rules, RepeatPolicy repeat, uint64_t seed,
              ExchangeCache* cache, const Pacing* pacing,
              ModeCounters* counters, ModeEvents* events)
      : stream_free_(rules),
        index_(repeat, seed),
        cache_(cache),
        pacing_(pacing),
        counters_(counters),
        events_(events) {}

  const Canonicalizer stream_free_;
  ReplayIndex index_;
  ExchangeCache* const cache_;
  const Pacing* const pacing_;
  ModeCounters* const counters_;
  ModeEvents* const events_;
};

class MissMode final : public Mode {
 public:
  // What each policy wraps; only the one "policy" names is used and must
  // be set (convert: "convert"; passthrough and record: "relay";
  // synthesize: "synth").
  struct Wrapped {
    ConvertMode* convert = nullptr;
    Mode* relay = nullptr;
    SynthMode* synth = nullptr;
  };

  // Every pointer must outlive the mode. "store", "index" and
  // "canonicalizer" explain a miss.
  MissMode(MissPolicy policy, Wrapped wrapped, Store* store,
           const ReplayIndex* index, const Canonicalizer* canonicalizer,
           ModeCounters* counters, ModeEvents* events)
      : policy_(policy),
        wrapped_(wrapped),
        store_(store),
        index_(index),
        canonicalizer_(canonicalizer),
        counters_(counters),
        events_(events) {}

  Answer Serve(const Call& call) override;
  void Reset() override;

 private:
  // The 404 that says why nothing answers the request.
  Answer Explain(const Call& call);

  const MissPolicy policy_;
  const Wrapped wrapped_;
  Store* const store_;
  const ReplayIndex* const index_;
  const Canonicalizer* const canonicalizer_;
  ModeCounters* const counters_;
  ModeEvents* const events_;
};

}  // namespace rwd

#endif  // REWIND_SRC_MODES_MISS_MODE_H_
