#include "util/access_log.h"

#include <cerrno>
#include <cstring>
#include <ctime>

namespace rwd {
namespace {

std::string Iso(int64_t unix_us) {
  std::time_t secs = static_cast<std::time_t>(unix_us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>((unix_us / 1000) % 1000));
  return out;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

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
  if (!f) return Status::IOError("cannot open log file " + path_ + ": " + std::strerror(errno));
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
                  r.headers_ms, r.total_ms, static_cast<unsigned long long>(r.bytes));
    return "{\"time\":\"" + Iso(r.wall_us) + "\",\"method\":\"" + JsonEscape(r.method) +
           "\",\"path\":\"" + JsonEscape(r.path) + "\",\"status\":" +
           std::to_string(r.status) + ",\"outcome\":\"" + JsonEscape(r.outcome) +
           "\",\"key\":\"" + JsonEscape(r.key) + "\"" + nums;
  }
  std::snprintf(nums, sizeof(nums), " %.1fms %.1fms %lluB", r.headers_ms, r.total_ms,
                static_cast<unsigned long long>(r.bytes));
  return Iso(r.wall_us) + " " + r.method + " " + r.path + " " + std::to_string(r.status) +
         " " + (r.outcome.empty() ? "-" : r.outcome) + " " + (r.key.empty() ? "-" : r.key) +
         nums;
}

void AccessLog::Access(const AccessRecord& r) {
  if (quiet_) return;
  Write(Format(r, format_));
}

void AccessLog::Error(const std::string& message) {
  if (format_ == Format::kJson) {
    Write("{\"level\":\"error\",\"message\":\"" + JsonEscape(message) + "\"}");
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
