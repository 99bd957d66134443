// Small helpers for the Prometheus text exposition format.
#ifndef REWIND_SRC_UTIL_PROMETHEUS_H_
#define REWIND_SRC_UTIL_PROMETHEUS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace rwd {

// A cumulative histogram with fixed upper bounds. Not thread-safe: guard
// it with the owner's lock.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends NAME_bucket{LABELS,le=..}, NAME_sum and NAME_count lines.
  void Render(const std::string& name, const std::string& labels,
              std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // one per bound, plus +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// "# HELP" and "# TYPE" lines.
void MetricHeader(const std::string& name, const std::string& type,
                  const std::string& help, std::string* out);
// A number as Prometheus prints it.
std::string MetricNumber(double v);

}  // namespace rwd

#endif  // REWIND_SRC_UTIL_PROMETHEUS_H_
