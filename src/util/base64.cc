#include "util/base64.h"

// cereal's codec (Debian's libcereal-dev), header-only.
#include <cereal/external/base64.hpp>

namespace rwd {
namespace {

bool InAlphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  return cereal::base64::encode(
      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

std::optional<std::string> Base64Decode(std::string_view text) {
  // cereal's decoder stops silently at the first byte it does not know;
  // a truncated or damaged body must be refused, not shortened.
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  if (!text.empty() && text.back() == '=')
    padding = text[text.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (!InAlphabet(text[i])) return std::nullopt;
  }
  return cereal::base64::decode(std::string(text));
}

}  // namespace rwd
