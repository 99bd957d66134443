#include "util/text.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <ctime>

namespace rwd {
namespace {

std::string Utc(int64_t unix_us, const char* format) {
  std::time_t secs = static_cast<std::time_t>(unix_us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::strftime(buf, sizeof(buf), format, &tm);
  return buf;
}

}  // namespace

std::string JsonQuote(const std::string& s) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string QuotedBytes(const std::string& bytes) {
  std::string out = "\"";
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

std::string ShownKey(const std::string& key_hex) {
  const bool hex =
      !key_hex.empty() &&
      key_hex.find_first_not_of("0123456789abcdef") == std::string::npos;
  return hex ? key_hex : QuotedBytes(key_hex);
}

std::string Iso8601Utc(int64_t unix_us) {
  char ms[8];
  std::snprintf(ms, sizeof(ms), ".%03dZ",
                static_cast<int>((unix_us / 1000) % 1000));
  return Utc(unix_us, "%Y-%m-%dT%H:%M:%S") + ms;
}

std::string TableTimeUtc(int64_t unix_us) {
  return Utc(unix_us, "%Y-%m-%d %H:%M:%S");
}

bool JsonNestsDeeperThan(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace rwd
