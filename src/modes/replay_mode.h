// Replay: the recorded answer to a request, paced by a latency model.
//
// ReplayMode picks the exchange for the request's key from the ReplayIndex
// (the repeat policy decides which of several), reads it through the
// ExchangeCache and answers with a Timeline the latency model paced: the
// recorded one by default, another one for a request carrying
// "X-Rewind-Latency: SPEC". A key with no recording goes to the miss mode
// (src/modes/miss_mode.h), which the caller supplies. A request may demand
// an exact match ("X-Rewind-Match: exact", DemandsExactMatch).
//
// Thread-safety: Serve() is safe for concurrent use.
#ifndef REWIND_SRC_MODES_REPLAY_MODE_H_
#define REWIND_SRC_MODES_REPLAY_MODE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "rewind/latency.h"
#include "rewind/mode.h"
#include "rewind/replay.h"

namespace rwd {

// The timings recorded for each endpoint ("METHOD PATH"), gathered at its
// first use from its newest kMaxSamples exchanges: what the "empirical"
// latency model draws from.
class EndpointSamples {
 public:
  static constexpr size_t kMaxSamples = 1000;

  // "index" and "cache" must outlive this.
  EndpointSamples(const ReplayIndex* index, ExchangeCache* cache)
      : index_(index), cache_(cache) {}

  std::shared_ptr<const LatencySamples> For(const std::string& method,
                                            const std::string& path);

 private:
  const ReplayIndex* const index_;
  ExchangeCache* const cache_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const LatencySamples>>
      by_endpoint_;  // guarded by mu_
};

// How replayed answers are paced: the server's latency model, unless a
// request asks for another with X-Rewind-Latency.
struct Pacing {
  LatencyModel latency;
  uint64_t seed = 0;                   // --seed: random models' draws
  EndpointSamples* samples = nullptr;  // for "empirical"

  // The model for "request"; InvalidArgument for a bad X-Rewind-Latency.
  Result<LatencyModel> ModelFor(const Request& request) const;
  // "answer" on the schedule "model" gives it for the "occurrence"-th
  // request with this key.
  Timeline Pace(std::shared_ptr<const Response> answer,
                const LatencyModel& model, const Request& request,
                const RequestKey& key, uint64_t occurrence) const;
};

// The request header by which a request demands how it is matched.
inline constexpr char kMatchHeader[] = "X-Rewind-Match";

// Whether "request" demands to be answered only by a recording of its
// exact key ("X-Rewind-Match: exact", in any case): then --on-miss
// nearest and convert miss as error does. No such header, or an empty
// one: false. Any other value: InvalidArgument naming the allowed ones.
Result<bool> DemandsExactMatch(const Request& request);

class ReplayMode final : public Mode {
 public:
  // Every pointer must outlive the mode.
  ReplayMode(ReplayIndex* index, ExchangeCache* cache, Pacing pacing,
             Mode* on_miss, ModeCounters* counters)
      : index_(index),
        cache_(cache),
        pacing_(std::move(pacing)),
        on_miss_(on_miss),
        counters_(counters) {}

  Answer Serve(const Call& call) override;
  // A hit whose recordings are all cached, paced by a model that needs no
  // samples: a miss (explained from the store) or a read from the store
  // goes to a worker.
  bool AnswersAtOnce(const Call& call) override;
  // Restarts every key's repeat sequence, and the miss mode's state.
  void Reset() override;

 private:
  ReplayIndex* const index_;
  ExchangeCache* const cache_;
  const Pacing pacing_;
  Mode* const on_miss_;
  ModeCounters* const counters_;
};

}  // namespace rwd

#endif  // REWIND_SRC_MODES_REPLAY_MODE_H_
