#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "cli/commands.h"

namespace rwd {
namespace {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), enabled_(isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() {
  if (enabled_ && last_draw_us_ != 0) std::fprintf(stderr, "\r\033[K");
}

void Progress::Update(int64_t done) {
  if (!enabled_) return;
  const int64_t now = NowUs();
  if (now - last_draw_us_ < 100000 && done != total_) return;
  last_draw_us_ = now;
  const int width = 30;
  const double share = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1;
  const int filled = static_cast<int>(share * width);
  std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld", label_.c_str(), filled,
               "##############################", width - filled, "",
               static_cast<long long>(done), static_cast<long long>(total_));
  std::fflush(stderr);
}

}  // namespace rwd
