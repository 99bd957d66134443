#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"

namespace rwd {

Progress::Progress(std::string label, int64_t total, Clock* clock)
    : label_(std::move(label)),
      total_(total),
      clock_(clock ? clock : SystemClock()),
      enabled_(isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() {
  if (enabled_ && drawn_) std::fprintf(stderr, "\r\033[K");
}

void Progress::Update(int64_t done) {
  if (!enabled_) return;
  const int64_t now = clock_->NowMicros();
  if (drawn_ && now - last_draw_us_ < 100000 && done != total_) return;
  drawn_ = true;
  last_draw_us_ = now;
  const int width = 30;
  const double share =
      total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1;
  const int filled = static_cast<int>(share * width);
  std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld", label_.c_str(), filled,
               "##############################", width - filled, "",
               static_cast<long long>(done), static_cast<long long>(total_));
  std::fflush(stderr);
}

void Progress::Show(const std::string& text) {
  if (!enabled_) return;
  drawn_ = true;
  std::fprintf(stderr, "\r%s: %s", label_.c_str(), text.c_str());
  std::fflush(stderr);
}

void Progress::Clear() {
  if (!enabled_) return;
  drawn_ = false;
  std::fprintf(stderr, "\r\033[K");
}

}  // namespace rwd
