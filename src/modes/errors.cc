#include "modes/errors.h"

#include "synth/dialect.h"

namespace rwd {

Timeline ErrorTimeline(const std::string& path, int status,
                       const std::string& type, const std::string& message,
                       const std::string& extra) {
  return Timeline::Immediate(
      status, "application/json",
      RewindErrorBody(DialectOf(path), status, type, message, extra));
}

}  // namespace rwd
