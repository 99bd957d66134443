// Small text helpers shared by the CLI, the logs and the HTTP front.
#ifndef REWIND_SRC_UTIL_TEXT_H_
#define REWIND_SRC_UTIL_TEXT_H_

#include <cstdint>
#include <string>

namespace rwd {

// A JSON string literal for "s", quotes included, escaped by RapidJSON.
std::string JsonQuote(const std::string& s);

// "2026-11-25T02:13:33.960Z" (UTC, milliseconds), as HAR and logs use.
std::string Iso8601Utc(int64_t unix_us);

// "2026-11-25 02:13:33" (UTC), for tables.
std::string TableTimeUtc(int64_t unix_us);

}  // namespace rwd

#endif  // REWIND_SRC_UTIL_TEXT_H_
