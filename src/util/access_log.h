// The access log and error log: one line per request, text or JSON, to
// stderr or a file that Reopen() (SIGHUP) opens anew after rotation.
// Lines never hold headers, bodies or query strings (secrets live there).
//
// Thread-safety: safe for concurrent use.
#ifndef REWIND_SRC_UTIL_ACCESS_LOG_H_
#define REWIND_SRC_UTIL_ACCESS_LOG_H_

#include <cstdio>
#include <mutex>
#include <string>

#include "rewind/status.h"

namespace rwd {

struct AccessRecord {
  int64_t wall_us = 0;
  std::string method;
  std::string path;  // without the query
  int status = 0;
  std::string outcome;  // X-Rewind
  std::string key;      // key prefix, may be empty
  int64_t near = 0;     // outcome "near": the recording that answered
  double headers_ms = 0;
  double total_ms = 0;
  uint64_t bytes = 0;
};

class AccessLog {
 public:
  enum class Format { kText, kJson };

  // "path" empty: stderr. "quiet": no access lines (errors still).
  AccessLog(std::string path, Format format, bool quiet);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  Status Open();
  // Closes and opens the file again (after logrotate moved it).
  Status Reopen();

  void Access(const AccessRecord& r);
  void Error(const std::string& message);

  static std::string Format(const AccessRecord& r, Format format);

 private:
  void Write(const std::string& line);

  const std::string path_;
  const enum Format format_;
  const bool quiet_;
  std::mutex mu_;
  FILE* file_ = nullptr;  // guarded by mu_; stderr when path_ is empty
};

}  // namespace rwd

#endif  // REWIND_SRC_UTIL_ACCESS_LOG_H_
