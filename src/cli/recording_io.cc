// export and import: the format chosen, and the body encoding both
// formats use. The formats themselves are rewind_json.cc and har.cc.
#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "cli/formats.h"
#include "util/base64.h"
#include "util/text.h"

namespace rwd {
namespace {

// Valid UTF-8 without NULs (which JSON text and cereal keep badly).
bool IsUtf8(const std::string& s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const unsigned char b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    const bool overlong = (extra == 1 && cp < 0x80) ||
                          (extra == 2 && cp < 0x800) ||
                          (extra == 3 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

}  // namespace

EncodedText EncodeBody(const std::string& bytes) {
  if (IsUtf8(bytes)) return {bytes, "utf-8"};
  return {Base64Encode(bytes), "base64"};
}

Result<std::string> DecodeBody(const std::string& text,
                               const std::string& encoding) {
  if (encoding == "utf-8" || encoding.empty()) return text;
  if (encoding == "base64") {
    std::optional<std::string> bytes = Base64Decode(text);
    if (!bytes) {
      return Status::InvalidArgument(
          "a body marked base64 is not padded base64 (" +
          std::to_string(text.size()) +
          " characters): the file is damaged or truncated");
    }
    return std::move(*bytes);
  }
  return Status::InvalidArgument("unknown body encoding \"" + encoding + "\"");
}

// The ids of "store" in order.
Result<std::vector<int64_t>> ExchangeIds(Store* store) {
  Result<std::vector<ExchangeSummary>> rows = KeySummaries(store);
  if (!rows.ok()) return rows.status();
  std::vector<int64_t> ids;
  for (const ExchangeSummary& e : rows.value()) ids.push_back(e.id);
  return ids;
}

int RunExport(Store* store, const std::string& format, std::ostream& out,
              std::ostream& err) {
  if (format == "json") return WriteJsonExport(store, out, err);
  if (format == "har") return WriteHarExport(store, out, err);
  err << "rewind: unknown export format \"" << format
      << "\": use json or har\n";
  return kExitError;
}

int RunImport(Store* store, const std::string& format, std::istream& in,
              bool rekey, std::ostream& err) {
  std::string text(std::istreambuf_iterator<char>(in), {});
  // A rewind export nests 4 levels and a HAR file about 6 (bodies are
  // strings in both); no file worth importing comes near the limit.
  if (JsonNestsDeeperThan(text, kMaxJsonDepth)) {
    err << "rewind: the input nests objects and arrays more than "
        << kMaxJsonDepth
        << " levels deep; neither a rewind export nor a HAR file does\n";
    return kExitError;
  }
  std::string kind = format;
  if (kind.empty()) {
    // A HAR's first member is "log"; rewind's export starts with
    // "canonicalizer". Only the HAR path needs a whole DOM up front.
    const size_t brace = text.find_first_not_of(" \t\r\n");
    const size_t quote = brace == std::string::npos
                             ? brace
                             : text.find_first_not_of(" \t\r\n", brace + 1);
    kind = quote != std::string::npos && text.compare(quote, 5, "\"log\"") == 0
               ? "har"
               : "json";
  }
  if (kind == "json") return ImportJson(store, std::move(text), rekey, err);
  if (kind != "har") {
    err << "rewind: unknown import format \"" << format
        << "\": use json or har\n";
    return kExitError;
  }
  return ImportHar(store, text, err);
}

}  // namespace rwd
