// What answers a replayed request nothing was recorded for: the miss
// policies (--on-miss), each a mode that wraps others.
//
//   error        404 with rewind's explanation: the key, and either the
//                incomplete recordings of this very request or the nearest
//                recording on the same method and path with the fields that
//                differ (FindNearest) and, for the first few, both values
//   passthrough  the passthrough mode's relay
//   record       the record mode's relay, adding the exchange to the index
//   synthesize   the dummy engine for its generating endpoints, else error
//   convert      ConvertMode below, else error
//   nearest      NearestMode below, else error
//
// ConvertMode answers a request that differs from a recorded OpenAI one
// only in "stream" and "stream_options" from that recording, converted to
// the framing asked for (src/modes/convert.h) and paced like a hit.
//
// NearestMode answers a request from the nearest recording on the same
// method and path (FindNearestWithin) when it differs from it only within
// a bound: the same shape (model, stream, JSON-RPC method, tool names,
// response format: src/modes/request_shape.h), at most "max_fields"
// differing fields, its body diffed field by field, the recording
// complete. The answer is that
// recording's, paced like a hit, with X-Rewind: near and X-Rewind-Near
// naming the recording and the fields. Each such answer costs the search
// a miss costs (bounded: 100 ms, 16 MiB of bodies diffed).
//
// A request that demands an exact match (X-Rewind-Match: exact) is never
// answered by ConvertMode or NearestMode: it misses as with error.
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

class NearestMode {
 public:
  // The longest field path X-Rewind-Near names whole; longer ones are cut.
  static constexpr size_t kMaxShownField = 64;

  // Every pointer must outlive the mode. "max_fields" is at least 1.
  NearestMode(Store* store, const ReplayIndex* index,
              const Canonicalizer* canonicalizer, size_t max_fields,
              ExchangeCache* cache, const Pacing* pacing,
              ModeCounters* counters)
      : store_(store),
        index_(index),
        canonicalizer_(canonicalizer),
        max_fields_(max_fields),
        cache_(cache),
        pacing_(pacing),
        counters_(counters) {}

  // The answer from the nearest recording within the bound, or nullopt;
  // either way "*nearest" gets the nearest recording found (within the
  // bound or not), to explain a miss.
  std::optional<Answer> TryServe(const Call& call,
                                 std::optional<NearestMatch>* nearest);

  // Whether "match" is within the bound.
  bool Within(const NearestMatch& match) const;

  // X-Rewind-Near's value: "#ID; differs in: a, b" (the fields cut to
  // kMaxShownField bytes, control characters left out).
  static std::string Header(int64_t id,
                            const std::vector<std::string>& differences);

 private:
  Store* const store_;
  const ReplayIndex* const index_;
  const Canonicalizer* const canonicalizer_;
  const size_t max_fields_;
  ExchangeCache* const cache_;
  const Pacing* const pacing_;
  ModeCounters* const counters_;
};

class MissMode final : public Mode {
 public:
  // What each policy wraps; only the one "policy" names is used and must
  // be set (convert: "convert"; nearest: "nearest"; passthrough and
  // record: "relay"; synthesize: "synth").
  struct Wrapped {
    ConvertMode* convert = nullptr;
    NearestMode* nearest = nullptr;
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
  // The 404 that says why nothing answers the request; "searched": the
  // nearest recording when it was already looked for.
  Answer Explain(const Call& call,
                 const std::optional<NearestMatch>* searched = nullptr);

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
