// The shape of a JSON request: what a near answer (--on-miss nearest) must
// share with the recording that answers it, since a client cannot read an
// answer of another shape. Internal to the modes.
//
//   model            the root's "model"
//   stream           whether the root's "stream" is true (absent, false
//                    and null are alike: not streamed)
//   method           a JSON-RPC request's "method" (the root has "jsonrpc")
//   tools            the names of the tools offered, as a set: the root's
//                    "tools" and "functions" items' "name", else
//                    "function.name", else "type"
//   response_format  the root's "response_format.type" (OpenAI chat) and
//                    "text.format.type" (Responses API): the answer's format
//
// The endpoint (method and path) is the same by construction: the nearest
// search looks only at recordings of the request's own.
#ifndef REWIND_SRC_MODES_REQUEST_SHAPE_H_
#define REWIND_SRC_MODES_REQUEST_SHAPE_H_

#include <string>
#include <vector>

namespace rwd {

struct RequestShape {
  // Each field's value as text ("" when absent); tools sorted, unique.
  std::string model;
  bool stream = false;
  std::string method;
  std::vector<std::string> tools;
  std::string response_format;

  // Reads the shape of "body"; a body that is not a JSON object has the
  // empty shape. Iterative: no input exhausts the stack.
  static RequestShape Of(const std::string& body);
};

// The shape fields in which "recorded" and "sent" differ, by the names
// above, in that order ("model", "stream", "method", "tools",
// "response_format"), leaving out any whose top-level member is in
// "ignored" (the rules' ignored fields: a field left out of the key is
// not part of the shape either).
std::vector<std::string> ShapeDifferences(
    const std::string& recorded, const std::string& sent,
    const std::vector<std::string>& ignored);

}  // namespace rwd

#endif  // REWIND_SRC_MODES_REQUEST_SHAPE_H_
