#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "rewind/latency.h"

namespace rwd {
namespace {

// Parses a whole string as a finite double.
bool ParseNumber(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) {
    return false;
  }
  *out = v;
  return true;
}

bool ParsePair(const std::string& s, const std::string& sep, double* a,
               double* b) {
  size_t at = s.find(sep);
  if (at == std::string::npos) return false;
  return ParseNumber(s.substr(0, at), a) &&
         ParseNumber(s.substr(at + sep.size()), b);
}

std::string Format(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

int64_t MillisToMicros(double ms) {
  return static_cast<int64_t>(std::llround(std::max(0.0, ms) * 1000.0));
}

}  // namespace

void LatencySamples::Add(const Response& response) {
  if (response.chunks.empty()) return;
  ttft_us.push_back(response.chunks.front().offset_us);
  for (size_t i = 1; i < response.chunks.size(); ++i) {
    gaps_us.push_back(std::max<int64_t>(
        0, response.chunks[i].offset_us - response.chunks[i - 1].offset_us));
  }
}

Result<Distribution> Distribution::Parse(const std::string& spec) {
  Distribution d;
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  const std::string args =
      colon == std::string::npos ? std::string() : spec.substr(colon + 1);
  auto bad = [&](const char* expected) {
    return Status::InvalidArgument("bad latency distribution \"" + spec +
                                   "\": expected " + expected);
  };
  if (colon == std::string::npos) {
    if (!ParseNumber(spec, &d.a) || d.a < 0) return bad("MS or KIND:ARGS");
    return d;
  }
  if (name == "fixed") {
    if (!ParseNumber(args, &d.a) || d.a < 0) return bad("fixed:MS (>= 0)");
  } else if (name == "uniform") {
    d.kind = Kind::kUniform;
    if (!ParsePair(args, "..", &d.a, &d.b) || d.a < 0 || d.b < d.a) {
      return bad("uniform:MIN..MAX with 0 <= MIN <= MAX");
    }
  } else if (name == "normal") {
    d.kind = Kind::kNormal;
    if (!ParsePair(args, ",", &d.a, &d.b) || d.b < 0) {
      return bad("normal:MEAN,SD with SD >= 0");
    }
  } else if (name == "lognormal") {
    d.kind = Kind::kLogNormal;
    if (!ParsePair(args, ",", &d.a, &d.b) || d.a <= 0 || d.b < 0) {
      return bad("lognormal:MEDIAN,SIGMA with MEDIAN > 0, SIGMA >= 0");
    }
  } else {
    return bad("fixed, uniform, normal or lognormal");
  }
  return d;
}

int64_t Distribution::SampleMicros(std::mt19937_64& rng) const {
  double ms = a;
  switch (kind) {
    case Kind::kFixed:
      break;
    case Kind::kUniform:
      ms = std::uniform_real_distribution<double>(a, b)(rng);
      break;
    case Kind::kNormal:
      ms = b == 0 ? a : std::normal_distribution<double>(a, b)(rng);
      break;
    case Kind::kLogNormal:
      ms =
          b == 0 ? a : std::lognormal_distribution<double>(std::log(a), b)(rng);
      break;
  }
  return MillisToMicros(ms);
}

std::string Distribution::ToString() const {
  switch (kind) {
    case Kind::kFixed:
      return "fixed:" + Format(a);
    case Kind::kUniform:
      return "uniform:" + Format(a) + ".." + Format(b);
    case Kind::kNormal:
      return "normal:" + Format(a) + "," + Format(b);
    case Kind::kLogNormal:
      return "lognormal:" + Format(a) + "," + Format(b);
  }
  return "";
}

Result<LatencyModel> LatencyModel::Parse(const std::string& spec) {
  LatencyModel m;
  if (spec == "recorded") return m;
  if (spec == "recorded-net") {
    m.kind_ = Kind::kRecordedNet;
    return m;
  }
  if (spec == "none") {
    m.kind_ = Kind::kNone;
    return m;
  }
  if (spec == "empirical") {
    m.kind_ = Kind::kEmpirical;
    return m;
  }
  if (spec.rfind("scaled:", 0) == 0) {
    m.kind_ = Kind::kScaled;
    if (!ParseNumber(spec.substr(7), &m.scale_) || m.scale_ < 0) {
      return Status::InvalidArgument("bad latency \"" + spec +
                                     "\": expected scaled:K with K >= 0");
    }
    return m;
  }
  m.kind_ = Kind::kSampled;
  std::string ttft = spec;
  std::string itl;
  if (size_t semi = spec.find(';'); semi != std::string::npos) {
    ttft = spec.substr(0, semi);
    std::string rest = spec.substr(semi + 1);
    if (rest.rfind("itl=", 0) != 0) {
      return Status::InvalidArgument("bad latency \"" + spec +
                                     "\": expected MODEL;itl=DIST");
    }
    itl = rest.substr(4);
  }
  if (ttft.rfind("fixed:", 0) == 0) {
    // fixed:TTFT[,ITL]
    std::string args = ttft.substr(6);
    if (size_t comma = args.find(','); comma != std::string::npos) {
      if (!itl.empty()) {
        return Status::InvalidArgument("bad latency \"" + spec +
                                       "\": ITL given twice");
      }
      itl = args.substr(comma + 1);
      ttft = "fixed:" + args.substr(0, comma);
    }
  } else if (ttft.find(':') == std::string::npos) {
    return Status::InvalidArgument(
        "unknown latency model \"" + spec +
        "\": use recorded, recorded-net, scaled:K, none, fixed:TTFT[,ITL], "
        "uniform:MIN..MAX, normal:MEAN,SD, lognormal:MEDIAN,SIGMA or "
        "empirical");
  }
  Result<Distribution> t = Distribution::Parse(ttft);
  if (!t.ok()) return t.status();
  m.ttft_ = t.value();
  if (!itl.empty()) {
    Result<Distribution> i = Distribution::Parse(itl);
    if (!i.ok()) return i.status();
    m.has_itl_ = true;
    m.itl_ = i.value();
  }
  return m;
}

Schedule LatencyModel::Apply(const Response& recorded, uint64_t seed,
                             const LatencySamples* samples) const {
  Schedule s;
  const size_t n = recorded.chunks.size();
  s.chunk_us.resize(n);
  const bool empirical =
      kind_ == Kind::kEmpirical && samples && !samples->ttft_us.empty();
  switch (kind_) {
    case Kind::kEmpirical:
      if (empirical) break;
      [[fallthrough]];
    case Kind::kRecorded:
    case Kind::kScaled: {
      const double k = kind_ == Kind::kScaled ? scale_ : 1.0;
      auto scale = [k](int64_t us) {
        return static_cast<int64_t>(std::llround(static_cast<double>(us) * k));
      };
      s.headers_us = scale(recorded.headers_us);
      for (size_t i = 0; i < n; ++i) {
        s.chunk_us[i] = scale(recorded.chunks[i].offset_us);
      }
      return s;
    }
    case Kind::kRecordedNet: {
      // Every offset less rewind's own time before forwarding (not known:
      // none), never below 0; one shift for all keeps their order.
      const int64_t own = std::max<int64_t>(0, recorded.own_before_us);
      auto net = [own](int64_t us) { return std::max<int64_t>(0, us - own); };
      s.headers_us = net(recorded.headers_us);
      for (size_t i = 0; i < n; ++i) {
        s.chunk_us[i] = net(recorded.chunks[i].offset_us);
      }
      return s;
    }
    case Kind::kNone:
      return s;
    case Kind::kSampled:
      break;
  }
  std::mt19937_64 rng(seed);
  auto pick = [&rng](const std::vector<int64_t>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  const int64_t ttft =
      empirical ? pick(samples->ttft_us) : ttft_.SampleMicros(rng);
  s.headers_us = std::min(recorded.headers_us, ttft);
  int64_t at = ttft;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) {
      if (empirical && !samples->gaps_us.empty()) {
        at += pick(samples->gaps_us);
      } else if (has_itl_) {
        at += itl_.SampleMicros(rng);
      } else {
        at += std::max<int64_t>(
            0, recorded.chunks[i].offset_us - recorded.chunks[i - 1].offset_us);
      }
    }
    s.chunk_us[i] = at;
  }
  if (n == 0) s.headers_us = ttft;
  return s;
}

std::string LatencyModel::ToString() const {
  switch (kind_) {
    case Kind::kRecorded:
      return "recorded";
    case Kind::kRecordedNet:
      return "recorded-net";
    case Kind::kNone:
      return "none";
    case Kind::kEmpirical:
      return "empirical";
    case Kind::kScaled:
      return "scaled:" + Format(scale_);
    case Kind::kSampled: {
      std::string out = ttft_.ToString();
      if (has_itl_) out += ";itl=" + itl_.ToString();
      return out;
    }
  }
  return "";
}

}  // namespace rwd
