// Latency models: when each part of a replayed response is sent.
//
// A model rewrites a recorded response's timeline (headers offset, chunk
// offsets) into a Schedule of offsets from request receipt (the "at" of a
// paced Timeline, rewind/timeline.h). The paced writer
// then sends each part at start + offset, on absolute deadlines.
//
//   recorded                 as recorded (default)
//   recorded-net             as recorded, less rewind's own time before the
//                            request was forwarded when it was recorded
//                            (Response::own_before_us): the backend's time
//   scaled:K                 every offset × K (scaled:0.1 is ten times faster)
//   none                     everything at once, same pieces
//   fixed:TTFT[,ITL]         first byte at TTFT ms, then one piece every ITL ms
//                            (recorded gaps when ITL is omitted)
//   uniform:MIN..MAX         TTFT drawn from a distribution (ms); the gaps
//   normal:MEAN,SD           between pieces stay as recorded unless
//   lognormal:MEDIAN,SIGMA   ";itl=DIST" gives one, e.g.
//                            "normal:200,50;itl=uniform:5..15"
//   empirical                TTFT and each gap drawn from what was recorded
//                            for the same endpoint (LatencySamples)
//
// Random draws come from a generator seeded per request by the caller, so a
// given seed replays the same latencies whatever the concurrency.
//
// Thread-safety: immutable after Parse(); safe for concurrent use.
#ifndef REWIND_LATENCY_H_
#define REWIND_LATENCY_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "rewind/exchange.h"
#include "rewind/status.h"
#include "rewind/timeline.h"

namespace rwd {

// A distribution of durations in milliseconds; samples are clamped to >= 0.
struct Distribution {
  enum class Kind { kFixed, kUniform, kNormal, kLogNormal };
  Kind kind = Kind::kFixed;
  double a = 0;  // fixed value, min, mean, or median
  double b = 0;  // max, standard deviation, or sigma

  // "fixed:MS", "MS", "uniform:MIN..MAX", "normal:MEAN,SD",
  // "lognormal:MEDIAN,SIGMA".
  static Result<Distribution> Parse(const std::string& spec);
  // One draw, in microseconds.
  int64_t SampleMicros(std::mt19937_64& rng) const;
  std::string ToString() const;
};

// What was recorded for one endpoint: times to first byte and the gaps
// between consecutive pieces, in microseconds.
struct LatencySamples {
  std::vector<int64_t> ttft_us;
  std::vector<int64_t> gaps_us;

  // Adds one recorded response's TTFT and gaps.
  void Add(const Response& response);
};

class LatencyModel {
 public:
  enum class Kind {
    kRecorded,
    kRecordedNet,
    kScaled,
    kNone,
    kSampled,
    kEmpirical
  };

  // Defaults to "recorded".
  LatencyModel() = default;

  static Result<LatencyModel> Parse(const std::string& spec);

  // "samples" is used by kEmpirical only; without samples (or with empty
  // ones) it keeps the recorded timeline.
  Schedule Apply(const Response& recorded, uint64_t seed,
                 const LatencySamples* samples = nullptr) const;

  Kind kind() const { return kind_; }
  // The canonical spec string (what Parse() would accept).
  std::string ToString() const;

 private:
  Kind kind_ = Kind::kRecorded;
  double scale_ = 1.0;
  Distribution ttft_;
  bool has_itl_ = false;
  Distribution itl_;
};

}  // namespace rwd

#endif  // REWIND_LATENCY_H_
