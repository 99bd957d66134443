#include "rewind/status.h"

namespace rwd {

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      name = "Not found";
      break;
    case Code::kInvalidArgument:
      name = "Invalid argument";
      break;
    case Code::kCorruption:
      name = "Corruption";
      break;
    case Code::kIOError:
      name = "I/O error";
      break;
    case Code::kUnavailable:
      name = "Unavailable";
      break;
    case Code::kTimeout:
      name = "Timeout";
      break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace rwd
