// Base64 (RFC 4648's alphabet, padded with '='), for binary bytes in JSON
// text: recording exports and embeddings' "encoding_format": "base64".
#ifndef REWIND_SRC_UTIL_BASE64_H_
#define REWIND_SRC_UTIL_BASE64_H_

#include <optional>
#include <string>
#include <string_view>

namespace rwd {

std::string Base64Encode(std::string_view bytes);

// The bytes "text" encodes, or nullopt when it is not padded base64: a
// length that is not a multiple of 4, a character outside the alphabet
// (whitespace included), or '=' anywhere but in the last two places.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace rwd

#endif  // REWIND_SRC_UTIL_BASE64_H_
