#include "modes/capture_policy.h"

#include <fnmatch.h>
#include <xxhash.h>

#include <utility>

namespace rwd {

CapturePolicy::Admission::~Admission() {
  if (!stored_ && keyed_) policy_->Release(key_);
}

Status CapturePolicy::Start() {
  if (rules_.max_per_key == 0 || store_ == nullptr) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  per_key_.clear();
  return store_->ScanKeys([this](const ExchangeSummary& s) {
    Result<RequestKey> key = RequestKey::FromHex(s.key_hex);
    if (key.ok()) ++per_key_[key.value()];
  });
}

bool CapturePolicy::PathChosen(const std::string& path) const {
  auto matches = [&path](const std::vector<std::string>& globs) {
    for (const std::string& g : globs) {
      if (fnmatch(g.c_str(), path.c_str(), 0) == 0) return true;
    }
    return false;
  };
  if (!rules_.record_paths.empty() && !matches(rules_.record_paths)) {
    return false;
  }
  return !matches(rules_.skip_paths);
}

bool CapturePolicy::Sampled(const RequestKey& key) const {
  if (rules_.sample >= 1) return true;
  const uint64_t words[2] = {key.high, key.low};
  const uint64_t h = XXH3_64bits_withSeed(words, sizeof(words), rules_.seed);
  // The top 53 bits as a fraction in [0, 1): exact in a double.
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
  return u < rules_.sample;
}

std::shared_ptr<CapturePolicy::Admission> CapturePolicy::Admit(
    const std::string& path, const RequestKey& key, Skip* why) {
  if (!PathChosen(path)) {
    *why = Skip::kPath;
    return nullptr;
  }
  if (!Sampled(key)) {
    *why = Skip::kSampledOut;
    return nullptr;
  }
  const bool keyed = rules_.max_per_key > 0;
  if (keyed) {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t& n = per_key_[key];
    if (n >= rules_.max_per_key) {
      *why = Skip::kMaxPerKey;
      return nullptr;
    }
    ++n;
  }
  return std::shared_ptr<Admission>(new Admission(this, key, keyed));
}

void CapturePolicy::Release(const RequestKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_key_.find(key);
  if (it == per_key_.end()) return;
  if (--it->second == 0) per_key_.erase(it);
}

}  // namespace rwd
