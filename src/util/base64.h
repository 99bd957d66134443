// Base64 (RFC 4648's alphabet, padded with '='), for binary bytes in JSON
// text: recording exports and embeddings' "encoding_format": "base64".
#ifndef REWIND_SRC_UTIL_BASE64_H_
#define REWIND_SRC_UTIL_BASE64_H_

#include <string>
#include <string_view>

namespace rwd {

std::string Base64Encode(std::string_view bytes);

// Decodes up to the first '=' or character outside the alphabet; what
// follows it is ignored.
std::string Base64Decode(const std::string& text);

}  // namespace rwd

#endif  // REWIND_SRC_UTIL_BASE64_H_
