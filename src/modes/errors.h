// The errors rewind writes itself, as Timelines: a JSON body in the shape
// of the API the request's path belongs to (src/synth/dialect.h), so each
// client shows rewind's explanation as it shows its own API's errors.
//
// Thread-safety: free functions over values.
#ifndef REWIND_SRC_MODES_ERRORS_H_
#define REWIND_SRC_MODES_ERRORS_H_

#include <string>

#include "rewind/timeline.h"

namespace rwd {

// "status" with {"error":{"type":TYPE,"message":MESSAGE...}} (OpenAI's
// shape; Anthropic's and Ollama's for their paths), "extra" being members
// already serialized (",\"k\":v...") added to the error object.
Timeline ErrorTimeline(const std::string& path, int status,
                       const std::string& type, const std::string& message,
                       const std::string& extra = "");

}  // namespace rwd

#endif  // REWIND_SRC_MODES_ERRORS_H_
