#include "util/base64.h"

// cereal's codec (Debian's libcereal-dev), header-only.
#include <cereal/external/base64.hpp>

namespace rwd {

std::string Base64Encode(std::string_view bytes) {
  return cereal::base64::encode(reinterpret_cast<const unsigned char*>(bytes.data()),
                                bytes.size());
}

std::string Base64Decode(const std::string& text) { return cereal::base64::decode(text); }

}  // namespace rwd
