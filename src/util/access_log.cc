#include "util/access_log.h"

#include <cerrno>
#include <cstring>
#include <ctime>

#include "util/text.h"

namespace rwd {

AccessLog::AccessLog(std::string path, enum Format format, bool quiet)
    : path_(std::move(path)), format_(format), quiet_(quiet) {}

AccessLog::~AccessLog() {
  if (file_ && file_ != stderr) std::fclose(file_);
}

Status AccessLog::Open() {
  std::lock_guard<std::mutex> lock(mu_);
  if (path_.empty()) {
    file_ = stderr;
    return Status::Ok();
  }
  FILE* f = std::fopen(path_.c_str(), "a");
  if (!f)
    return Status::IOError("cannot open log file " + path_ + ": " +
                           std::strerror(errno));
  if (file_ && file_ != stderr) std::fclose(file_);
  file_ = f;
  return Status::Ok();
}

Status AccessLog::Reopen() { return Open(); }

std::string AccessLog::Format(const AccessRecord& r, enum Format format) {
  char nums[128];
  if (format == Format::kJson) {
    std::snprintf(nums, sizeof(nums),
                  ",\"headers_ms\":%.3f,\"total_ms\":%.3f,\"bytes\":%llu}",
                  r.headers_ms, r.total_ms,
                  static_cast<unsigned long long>(r.bytes));
    return "{\"time\":\"" + Iso8601Utc(r.wall_us) +
           "\",\"method\":" + JsonQuote(r.method) +
           ",\"path\":" + JsonQuote(r.path) +
           ",\"status\":" + std::to_string(r.status) +
           ",\"outcome\":" + JsonQuote(r.outcome) +
           ",\"key\":" + JsonQuote(r.key) +
           (r.near != 0 ? ",\"exchange\":" + std::to_string(r.near) : "") +
           nums;
  }
  std::snprintf(nums, sizeof(nums), " %.1fms %.1fms %lluB", r.headers_ms,
                r.total_ms, static_cast<unsigned long long>(r.bytes));
  return Iso8601Utc(r.wall_us) + " " + r.method + " " + r.path + " " +
         std::to_string(r.status) + " " +
         (r.outcome.empty() ? "-" : r.outcome) +
         (r.near != 0 ? "#" + std::to_string(r.near) : "") + " " +
         (r.key.empty() ? "-" : r.key) + nums;
}

void AccessLog::Access(const AccessRecord& r) {
  if (quiet_) return;
  Write(Format(r, format_));
}

void AccessLog::Error(const std::string& message) {
  if (format_ == Format::kJson) {
    Write("{\"level\":\"error\",\"message\":" + JsonQuote(message) + "}");
  } else {
    Write("rewind: " + message);
  }
}

void AccessLog::Write(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  FILE* f = file_ ? file_ : stderr;
  std::fputs(line.c_str(), f);
  std::fputc('\n', f);
  std::fflush(f);
}

}  // namespace rwd
