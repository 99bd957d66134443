// What rewind never stores in the clear: the placeholder a secret is
// replaced by, and the headers that always are. The recorder and the
// import of HAR files use the one list.
//
// A recorded header whose name is a secret's keeps its name with the value
// kRedacted (so a recording shows that one was sent); such placeholders
// are never sent back on replay nor forwarded by `rewind send`.
//
// Thread-safety: constants and free functions over values.
#ifndef REWIND_REDACT_H_
#define REWIND_REDACT_H_

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "rewind/exchange.h"

namespace rwd {

// Stored in place of a secret: a header's value or a JSON body field.
constexpr const char* kRedacted = "[REDACTED]";

// Header names (compared case-insensitively) always stored as kRedacted.
inline constexpr std::array<std::string_view, 6> kSecretHeaders = {
    "Authorization", "Proxy-Authorization", "Cookie",
    "Set-Cookie",    "X-Api-Key",           "Api-Key"};

// kSecretHeaders as strings, to which --redact-header adds.
std::vector<std::string> DefaultRedactedHeaders();

// "headers" with every value whose name is in "names" (any case) replaced
// by kRedacted.
HeaderList Redact(const HeaderList& headers,
                  const std::vector<std::string>& names);

}  // namespace rwd

#endif  // REWIND_REDACT_H_
