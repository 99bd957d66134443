// Small text helpers shared by the CLI, the logs and the HTTP front.
#ifndef REWIND_SRC_UTIL_TEXT_H_
#define REWIND_SRC_UTIL_TEXT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace rwd {

// A JSON string literal for "s", quotes included, escaped by RapidJSON.
std::string JsonQuote(const std::string& s);

// Whether "text" nests objects and arrays more than "limit" levels deep,
// counted on its bytes (brackets outside strings): exact for JSON, one
// pass, no recursion. Text handed to a RapidJSON DOM must pass it first
// (limit kMaxJsonDepth), since walking or writing a DOM recurses.
bool JsonNestsDeeperThan(std::string_view text, int limit);

// "bytes" between double quotes as printable ASCII: a double quote, a
// backslash and every byte outside 0x20-0x7e are written as \xNN, so
// text read from a damaged file cannot drive the terminal.
std::string QuotedBytes(const std::string& bytes);

// A stored request key as it can be shown: as is when it looks like one
// (lowercase hex digits), else QuotedBytes: a damaged file's key is data.
std::string ShownKey(const std::string& key_hex);

// "2026-11-25T02:13:33.960Z" (UTC, milliseconds), as HAR and logs use.
std::string Iso8601Utc(int64_t unix_us);

// "2026-11-25 02:13:33" (UTC), for tables.
std::string TableTimeUtc(int64_t unix_us);

}  // namespace rwd

#endif  // REWIND_SRC_UTIL_TEXT_H_
