// What rewind never stores in the clear: the placeholder a secret is
// replaced by, and the headers that always are. The recorder and the
// import of HAR files use the one list.
#ifndef REWIND_REDACT_H_
#define REWIND_REDACT_H_

#include <array>
#include <string_view>

namespace rwd {

// Stored in place of a secret: a header's value or a JSON body field.
constexpr const char* kRedacted = "[REDACTED]";

// Header names (compared case-insensitively) always stored as kRedacted.
inline constexpr std::array<std::string_view, 6> kSecretHeaders = {
    "Authorization", "Proxy-Authorization", "Cookie",
    "Set-Cookie",    "X-Api-Key",           "Api-Key"};

}  // namespace rwd

#endif  // REWIND_REDACT_H_
