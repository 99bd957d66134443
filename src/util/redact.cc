#include "rewind/redact.h"

namespace rwd {

std::vector<std::string> DefaultRedactedHeaders() {
  return {kSecretHeaders.begin(), kSecretHeaders.end()};
}

HeaderList Redact(const HeaderList& headers,
                  const std::vector<std::string>& names) {
  HeaderList out = headers;
  for (auto& [name, value] : out) {
    for (const std::string& secret : names) {
      if (HeaderNameEquals(name, secret)) {
        value = kRedacted;
        break;
      }
    }
  }
  return out;
}

}  // namespace rwd
