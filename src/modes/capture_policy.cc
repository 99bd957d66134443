#include "modes/capture_policy.h"

#include <fnmatch.h>
#include <xxhash.h>

#include <algorithm>
#include <utility>

namespace rwd {

CapturePolicy::Admission::~Admission() {
  if (!stored_) policy_->Finished(this);
}

bool CapturePolicy::Admission::Fits(uint64_t bytes) {
  CapturePolicy& p = *policy_;
  if (p.rules_.max_db_bytes == 0) return !p.full();
  std::lock_guard<std::mutex> lock(p.mu_);
  if (p.full()) return false;
  // What the exchange adds to the file: its bytes as SQLite has stored
  // this run's exchanges (pages are not filled to the brim, indexes grow
  // too), and the pages one insert can add at once (a split in the table
  // and in each index).
  const uint64_t grows =
      static_cast<uint64_t>(bytes * p.GrowthRatio()) + kInsertSlack;
  if (p.BytesUsed() + grows > p.rules_.max_db_bytes) {
    p.SetFull("--max-db-bytes " + std::to_string(p.rules_.max_db_bytes) +
              " reached");
    return false;
  }
  p.pending_bytes_ += grows;
  bytes_ += grows;
  estimate_ = bytes;
  return true;
}

void CapturePolicy::Admission::Stored() {
  stored_ = true;
  CapturePolicy& p = *policy_;
  if (bytes_ == 0 && !counted_) return;
  std::lock_guard<std::mutex> lock(p.mu_);
  p.pending_bytes_ -= bytes_;
  p.estimated_stored_ += estimate_;
  bytes_ = 0;
  if (counted_) {
    --p.reserved_;
    if (++p.stored_ >= p.rules_.max_exchanges) {
      p.SetFull("--max-exchanges " + std::to_string(p.rules_.max_exchanges) +
                " reached");
    }
  }
}

void CapturePolicy::Finished(Admission* a) {
  if (!a->keyed_ && !a->counted_ && a->bytes_ == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  pending_bytes_ -= a->bytes_;
  a->bytes_ = 0;
  if (a->counted_) --reserved_;
  if (a->keyed_) {
    auto it = per_key_.find(a->key_);
    if (it != per_key_.end() && --it->second == 0) per_key_.erase(it);
  }
}

uint64_t CapturePolicy::BytesUsed() {
  return (store_ ? store_->writer_stats().bytes : 0) + pending_bytes_;
}

double CapturePolicy::GrowthRatio() {
  const uint64_t now = store_ ? store_->writer_stats().bytes : 0;
  if (estimated_stored_ == 0 || now <= start_bytes_) return 1.25;
  const double ratio = static_cast<double>(now - start_bytes_) /
                       static_cast<double>(estimated_stored_);
  return std::clamp(ratio, 1.0, 4.0);
}

void CapturePolicy::SetFull(const std::string& what) {
  if (full_.exchange(true)) return;
  if (on_full_) on_full_(what);
}

Status CapturePolicy::Start() {
  if (store_ == nullptr) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  if (rules_.max_exchanges > 0) {
    Result<int64_t> n = store_->Count();
    if (!n.ok()) return n.status();
    stored_ = static_cast<uint64_t>(n.value());
    if (stored_ >= rules_.max_exchanges) {
      SetFull("--max-exchanges " + std::to_string(rules_.max_exchanges) +
              " reached: the recording holds " + std::to_string(stored_) +
              " already");
    }
  }
  start_bytes_ = store_->writer_stats().bytes;
  if (rules_.max_db_bytes > 0 && BytesUsed() >= rules_.max_db_bytes) {
    SetFull("--max-db-bytes " + std::to_string(rules_.max_db_bytes) +
            " reached: the recording is " + std::to_string(BytesUsed()) +
            " bytes already");
  }
  if (rules_.max_per_key == 0) return Status::Ok();
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
  if (full()) {
    *why = Skip::kFull;
    return nullptr;
  }
  const bool keyed = rules_.max_per_key > 0;
  const bool counted = rules_.max_exchanges > 0;
  if (!keyed && !counted && rules_.max_db_bytes == 0) {
    return std::shared_ptr<Admission>(new Admission(this, key, false, false));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (rules_.max_db_bytes > 0 && BytesUsed() >= rules_.max_db_bytes) {
    SetFull("--max-db-bytes " + std::to_string(rules_.max_db_bytes) +
            " reached");
  }
  // Exchanges stored and on their way take every place: this one is left
  // out, though the recording is full only once they are stored.
  if (full() || (counted && stored_ + reserved_ >= rules_.max_exchanges)) {
    *why = Skip::kFull;
    return nullptr;
  }
  if (keyed) {
    uint64_t& n = per_key_[key];
    if (n >= rules_.max_per_key) {
      *why = Skip::kMaxPerKey;
      return nullptr;
    }
    ++n;
  }
  if (counted) ++reserved_;
  return std::shared_ptr<Admission>(new Admission(this, key, keyed, counted));
}

}  // namespace rwd
