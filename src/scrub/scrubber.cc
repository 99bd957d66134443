#include "scrub/scrubber.h"

// The low-level SHA-256 functions are deprecated in OpenSSL 3 in favour of
// EVP, whose contexts cost an allocation per copy; they remain supported.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <strings.h>

#include <algorithm>
#include <cstring>

#include "scrub/stream_text.h"

namespace rwd::scrub {
namespace {

// Nested escaped JSON is decoded this many levels deep.
constexpr int kMaxStringDepth = 4;

bool NameIs(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string HeaderOf(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (NameIs(n, name)) return v;
  }
  return std::string();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool Contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

char FirstNonSpace(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return c;
  }
  return '\0';
}

bool LooksLikeJson(std::string_view s) {
  char c = FirstNonSpace(s);
  return c == '{' || c == '[';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool ReadHex4(std::string_view s, size_t i, uint32_t* out) {
  if (i + 4 > s.size()) return false;
  uint32_t v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    int h = HexValue(s[k]);
    if (h < 0) return false;
    v = v * 16 + static_cast<uint32_t>(h);
  }
  *out = v;
  return true;
}

// The value of a JSON string literal's content (between the quotes); false
// when an escape is malformed or a surrogate is unpaired.
bool Unescape(std::string_view s, std::string* out) {
  out->clear();
  out->reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++i >= s.size()) return false;
    switch (s[i]) {
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '/':
        out->push_back('/');
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        uint32_t cp;
        if (!ReadHex4(s, i + 1, &cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low;
          if (i + 2 >= s.size() || s[i + 1] != '\\' || s[i + 2] != 'u' ||
              !ReadHex4(s, i + 3, &low) || low < 0xDC00 || low > 0xDFFF) {
            return false;
          }
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return false;
        }
        AppendUtf8(cp, out);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

// A JSON string literal, quotes included, for a value.
std::string Escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 0xF]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    int hi, lo;
    if (s[i] == '%' && i + 2 < s.size() + 0 && (hi = HexValue(s[i + 1])) >= 0 &&
        (lo = HexValue(s[i + 2])) >= 0) {
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    bool keep = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                (u >= '0' && u <= '9') || std::strchr("-._~!$'()*,;:@+=", c);
    if (keep && c != '\0') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

bool IsBinaryType(std::string_view ct) {
  return ct.substr(0, 6) == "image/" || ct.substr(0, 6) == "audio/" ||
         ct.substr(0, 6) == "video/" ||
         Contains(ct, "application/octet-stream") ||
         Contains(ct, "application/pdf") || Contains(ct, "application/zip");
}

bool IsFraming(std::string_view name) {
  return NameIs(name, "Content-Type") || NameIs(name, "Content-Length") ||
         NameIs(name, "Content-Encoding") || NameIs(name, "Transfer-Encoding");
}

// How a body is framed, for where the scrubber looks in it.
enum class Framing { kForm, kSse, kLines, kJson, kText };

Framing FramingOf(std::string_view body, const std::string& ct) {
  if (Contains(ct, "x-www-form-urlencoded")) return Framing::kForm;
  if (Contains(ct, "event-stream")) return Framing::kSse;
  if (Contains(ct, "ndjson") || Contains(ct, "jsonl") ||
      Contains(ct, "json-seq")) {
    return Framing::kLines;
  }
  if (ct.empty() &&
      (body.substr(0, 5) == "data:" || body.substr(0, 6) == "event:")) {
    return Framing::kSse;
  }
  if (Contains(ct, "json") || LooksLikeJson(body)) return Framing::kJson;
  return Framing::kText;
}

// The chunks' bytes as one body (Response::Body() is in rewind_core, which
// this library does not link).
std::string Joined(const std::vector<Chunk>& chunks) {
  size_t total = 0;
  for (const Chunk& c : chunks) total += c.data.size();
  std::string body;
  body.reserve(total);
  for (const Chunk& c : chunks) body += c.data;
  return body;
}

// Whether a body of this (lowercased) Content-Type is a stream of events
// whose text the split-value pass joins; "*sse" says which framing.
bool IsEventStream(std::string_view body, const std::string& ct, bool* sse) {
  if (IsBinaryType(ct)) return false;
  const Framing framing = FramingOf(body, ct);
  *sse = framing == Framing::kSse;
  return framing == Framing::kSse || framing == Framing::kLines;
}

}  // namespace

std::string NewSecret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // The system's generator failed: fall back on the kernel's directly.
    FILE* f = std::fopen("/dev/urandom", "rb");
    size_t n = f != nullptr ? std::fread(bytes, 1, sizeof(bytes), f) : 0;
    if (f != nullptr) std::fclose(f);
    if (n != sizeof(bytes)) std::abort();
  }
  return std::string(reinterpret_cast<const char*>(bytes), sizeof(bytes));
}

std::string ApplyEdits(std::string_view text, const std::vector<Edit>& edits) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (const Edit& e : edits) {
    out.append(text.substr(pos, e.begin - pos));
    out += e.text;
    pos = e.end;
  }
  out.append(text.substr(pos));
  return out;
}

void ApplyEditsToChunks(std::vector<Chunk>* chunks,
                        const std::vector<Edit>& edits) {
  if (edits.empty()) return;
  size_t start = 0;    // the chunk's first byte in the concatenation
  size_t e = 0;        // the next edit
  size_t skip_to = 0;  // bytes before this belong to an edit already applied
  for (Chunk& chunk : *chunks) {
    const size_t end = start + chunk.data.size();
    std::string data;
    size_t pos = std::max(start, skip_to);
    while (pos < end) {
      if (e < edits.size() && edits[e].begin < end) {
        const Edit& edit = edits[e];
        data.append(chunk.data, pos - start, edit.begin - pos);
        data += edit.text;
        pos = edit.end;
        skip_to = edit.end;
        ++e;
      } else {
        data.append(chunk.data, pos - start, end - pos);
        pos = end;
      }
    }
    chunk.data = std::move(data);
    start = end;
  }
}

// HMAC (RFC 2104) over SHA-256 with both padded-key blocks hashed once:
// a value then costs two copies of a plain struct and two short hashes.
// OpenSSL's one-shot HMAC() fetches the algorithm on every call (~6 us),
// and copying an EVP_MD_CTX still allocates (~2.5 us); the low-level
// SHA-256 state is a value.
struct Scrubber::Mac {
  SHA256_CTX inner;
  SHA256_CTX outer;

  explicit Mac(const std::string& secret) {
    unsigned char key[SHA256_CBLOCK] = {0};
    if (secret.size() > sizeof(key)) {
      SHA256(reinterpret_cast<const unsigned char*>(secret.data()),
             secret.size(), key);
    } else {
      std::memcpy(key, secret.data(), secret.size());
    }
    unsigned char pad[SHA256_CBLOCK];
    for (size_t i = 0; i < sizeof(pad); ++i) pad[i] = key[i] ^ 0x36;
    SHA256_Init(&inner);
    SHA256_Update(&inner, pad, sizeof(pad));
    for (size_t i = 0; i < sizeof(pad); ++i) pad[i] = key[i] ^ 0x5c;
    SHA256_Init(&outer);
    SHA256_Update(&outer, pad, sizeof(pad));
  }

  // HMAC-SHA256(secret, a NUL b).
  void Sign(std::string_view a, std::string_view b,
            unsigned char out[SHA256_DIGEST_LENGTH]) const {
    unsigned char inner_hash[SHA256_DIGEST_LENGTH];
    const unsigned char nul = 0;
    SHA256_CTX ctx = inner;
    SHA256_Update(&ctx, a.data(), a.size());
    SHA256_Update(&ctx, &nul, 1);
    SHA256_Update(&ctx, b.data(), b.size());
    SHA256_Final(inner_hash, &ctx);
    ctx = outer;
    SHA256_Update(&ctx, inner_hash, sizeof(inner_hash));
    SHA256_Final(out, &ctx);
  }
};

Scrubber::Scrubber(std::shared_ptr<const Detectors> detectors, Mode mode,
                   std::string secret)
    : detectors_(std::move(detectors)), mode_(mode) {
  if (mode_ == Mode::kStore) mac_ = std::make_shared<const Mac>(secret);
}

std::string Scrubber::Replacement(const Match& m,
                                  std::string_view value) const {
  if (m.detector < 0) {
    const std::string& name = detectors_->name(-1 - m.detector);
    return mode_ == Mode::kKey ? "<" + name + ">" : std::string(value);
  }
  const std::string& name = detectors_->name(m.detector);
  if (mode_ == Mode::kKey) return "<" + name + ">";
  unsigned char mac[SHA256_DIGEST_LENGTH];
  mac_->Sign(name, value, mac);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "<" + name + ":";
  for (int i = 0; i < 4; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xF]);
  }
  out.push_back('>');
  return out;
}

void Scrubber::TextEdits(std::string_view text, size_t base, bool quote_digits,
                         std::vector<Edit>* edits, Counts* counts) const {
  std::vector<Match> matches;
  detectors_->Find(text, &matches);
  for (const Match& m : matches) {
    std::string_view value = text.substr(m.begin, m.end - m.begin);
    if (m.detector >= 0 && counts != nullptr) {
      counts->resize(detectors_->size());
      ++(*counts)[static_cast<size_t>(m.detector)];
    }
    if (m.detector < 0 && mode_ == Mode::kStore) continue;
    std::string replacement = Replacement(m, value);
    if (quote_digits && m.detector >= 0 &&
        std::all_of(value.begin(), value.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      replacement = "\"" + replacement + "\"";
    }
    edits->push_back({base + m.begin, base + m.end, std::move(replacement)});
  }
}

std::string Scrubber::Decoded(std::string_view decoded, int depth,
                              Counts* counts) const {
  std::vector<Edit> edits;
  if (depth < kMaxStringDepth && LooksLikeJson(decoded)) {
    JsonEdits(decoded, 0, depth + 1, &edits, counts);
  } else {
    TextEdits(decoded, 0, false, &edits, counts);
  }
  if (edits.empty()) return std::string(decoded);
  return ApplyEdits(decoded, edits);
}

void Scrubber::JsonEdits(std::string_view s, size_t base, int depth,
                         std::vector<Edit>* edits, Counts* counts) const {
  size_t i = 0;
  size_t region = 0;  // start of the bytes between literals
  std::string decoded;
  while (i < s.size()) {
    i = s.find('"', i);
    if (i == std::string_view::npos) break;
    size_t j = i + 1;
    bool escaped = false;
    while (true) {  // memchr for the quote, then for a backslash before it
      const size_t quote = s.find('"', j);
      if (quote == std::string_view::npos) {
        j = quote;
        break;
      }
      const size_t slash = s.substr(j, quote - j).find('\\');
      if (slash == std::string_view::npos) {
        j = quote;
        break;
      }
      escaped = true;
      j += slash + 2;  // past the escaped character
    }
    if (j == std::string_view::npos || j >= s.size())
      break;  // unterminated: the rest is text
    RegionEdits(s.substr(region, i - region), base + region, edits, counts);
    std::string_view content = s.substr(i + 1, j - i - 1);
    if (!escaped || !Unescape(content, &decoded)) {
      TextEdits(content, base + i + 1, false, edits, counts);
    } else {
      std::string scrubbed = Decoded(decoded, depth, counts);
      if (scrubbed != decoded) {
        edits->push_back({base + i, base + j + 1, Escape(scrubbed)});
      }
    }
    i = j + 1;
    region = i;
  }
  RegionEdits(s.substr(region), base + region, edits, counts);
}

void Scrubber::RegionEdits(std::string_view region, size_t base,
                           std::vector<Edit>* edits, Counts* counts) const {
  // Between literals JSON has punctuation, numbers and true/false/null:
  // only a number can hold a value, unless this is not JSON after all.
  for (char c : region) {
    if (std::strchr("{}[]:, \t\r\n", c) == nullptr) {
      TextEdits(region, base, true, edits, counts);
      return;
    }
  }
}

void Scrubber::LineEdits(std::string_view s, bool sse, std::vector<Edit>* edits,
                         Counts* counts) const {
  ForEachLine(s, sse, [&](std::string_view payload, size_t offset, bool) {
    if (LooksLikeJson(payload)) {
      JsonEdits(payload, offset, 0, edits, counts);
    } else {
      TextEdits(payload, offset, false, edits, counts);
    }
  });
}

std::string Scrubber::Text(std::string_view text, Counts* counts) const {
  std::vector<Edit> edits;
  TextEdits(text, 0, false, &edits, counts);
  return edits.empty() ? std::string(text) : ApplyEdits(text, edits);
}

std::string Scrubber::Percent(std::string_view component,
                              Counts* counts) const {
  if (component.empty()) return std::string();
  std::string decoded = PercentDecode(component);
  std::vector<Edit> edits;
  TextEdits(decoded, 0, false, &edits, counts);
  if (edits.empty()) return std::string(component);
  return PercentEncode(ApplyEdits(decoded, edits));
}

std::string Scrubber::Query(std::string_view query, Counts* counts) const {
  std::string out;
  out.reserve(query.size());
  size_t start = 0;
  while (true) {
    size_t amp = query.find('&', start);
    std::string_view param =
        query.substr(start, amp == std::string_view::npos ? amp : amp - start);
    size_t eq = param.find('=');
    if (eq == std::string_view::npos) {
      out += Percent(param, counts);
    } else {
      out.append(param.substr(0, eq + 1));
      out += Percent(param.substr(eq + 1), counts);
    }
    if (amp == std::string_view::npos) break;
    out.push_back('&');
    start = amp + 1;
  }
  return out;
}

std::string Scrubber::Path(std::string_view path, Counts* counts) const {
  std::string out;
  out.reserve(path.size());
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    out += Percent(
        path.substr(start,
                    slash == std::string_view::npos ? slash : slash - start),
        counts);
    if (slash == std::string_view::npos) break;
    out.push_back('/');
    start = slash + 1;
  }
  return out;
}

std::string Scrubber::HeaderValue(std::string_view name, std::string_view value,
                                  Counts* counts) const {
  if (IsFraming(name) || value == "[REDACTED]") return std::string(value);
  return Text(value, counts);
}

Status Scrubber::BodyEdits(std::string_view body, std::string_view content_type,
                           std::string_view content_encoding,
                           std::vector<Edit>* edits, Counts* counts) const {
  if (body.empty()) return Status::Ok();
  std::string encoding = Lower(content_encoding);
  if (!encoding.empty() && encoding != "identity") {
    return Status::InvalidArgument(kUnscrubbable);
  }
  std::string ct = Lower(content_type);
  if (IsBinaryType(ct)) return Status::Ok();
  switch (FramingOf(body, ct)) {
    case Framing::kForm: {
      std::string scrubbed = Query(body, counts);
      if (scrubbed != body) edits->push_back({0, body.size(), scrubbed});
      break;
    }
    case Framing::kSse:
      LineEdits(body, true, edits, counts);
      break;
    case Framing::kLines:
      LineEdits(body, false, edits, counts);
      break;
    case Framing::kJson:
      JsonEdits(body, 0, 0, edits, counts);
      break;
    case Framing::kText:
      TextEdits(body, 0, false, edits, counts);
      break;
  }
  return Status::Ok();
}

void Scrubber::SplitValueEdits(std::string_view body, bool sse,
                               std::vector<Edit>* edits, Counts* counts) const {
  std::vector<Edit> found;
  for (const StreamText& text : StreamTexts(body, sse)) {
    const std::vector<StreamPiece>& pieces = text.pieces;
    if (pieces.size() < 2) continue;
    std::string joined;
    std::vector<size_t> starts;  // each piece's first byte in "joined"
    starts.reserve(pieces.size());
    for (const StreamPiece& p : pieces) {
      starts.push_back(joined.size());
      joined += p.value;
    }
    // The piece holding byte "at" of "joined" (empty pieces hold none).
    auto piece_of = [&starts](size_t at) {
      return static_cast<size_t>(
          std::upper_bound(starts.begin(), starts.end(), at) - starts.begin() -
          1);
    };
    std::vector<Match> matches;
    detectors_->Find(joined, &matches);
    std::vector<std::vector<Edit>> piece_edits(pieces.size());
    for (const Match& m : matches) {
      if (m.detector < 0 || m.end <= m.begin) continue;  // a placeholder
      const size_t first = piece_of(m.begin);
      const size_t last = piece_of(m.end - 1);
      if (first == last) continue;  // whole in one event: seen there
      if (counts != nullptr) {
        counts->resize(detectors_->size());
        ++(*counts)[static_cast<size_t>(m.detector)];
      }
      // The placeholder where the value starts; the rest of the value
      // taken out of the events after it.
      piece_edits[first].push_back(
          {m.begin - starts[first], pieces[first].value.size(),
           Replacement(
               m, std::string_view(joined).substr(m.begin, m.end - m.begin))});
      for (size_t k = first + 1; k < last; ++k) {
        piece_edits[k].push_back({0, pieces[k].value.size(), std::string()});
      }
      piece_edits[last].push_back({0, m.end - starts[last], std::string()});
    }
    for (size_t k = 0; k < pieces.size(); ++k) {
      if (piece_edits[k].empty()) continue;
      found.push_back({pieces[k].begin, pieces[k].end,
                       Escape(ApplyEdits(pieces[k].value, piece_edits[k]))});
    }
  }
  std::sort(found.begin(), found.end(),
            [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
  edits->insert(edits->end(), std::make_move_iterator(found.begin()),
                std::make_move_iterator(found.end()));
}

Result<std::string> Scrubber::Body(std::string_view body,
                                   std::string_view content_type,
                                   std::string_view content_encoding,
                                   Counts* counts) const {
  std::vector<Edit> edits;
  Status s = BodyEdits(body, content_type, content_encoding, &edits, counts);
  if (!s.ok()) return s;
  std::string out = edits.empty() ? std::string(body) : ApplyEdits(body, edits);
  bool sse = false;
  if (IsEventStream(body, Lower(content_type), &sse)) {
    edits.clear();
    SplitValueEdits(out, sse, &edits, counts);
    if (!edits.empty()) out = ApplyEdits(out, edits);
  }
  return out;
}

Status Scrubber::ScrubRequest(Request* request, Counts* counts) const {
  Result<std::string> body =
      Body(request->body, HeaderOf(request->headers, "Content-Type"),
           HeaderOf(request->headers, "Content-Encoding"), counts);
  if (!body.ok()) return body.status();
  request->body = std::move(body).value();
  request->path = Path(request->path, counts);
  if (!request->query.empty()) request->query = Query(request->query, counts);
  for (auto& [name, value] : request->headers) {
    value = HeaderValue(name, value, counts);
  }
  return Status::Ok();
}

Status Scrubber::ScrubResponse(Response* response, Counts* counts) const {
  std::string body = Joined(response->chunks);
  if (!body.empty()) {
    const std::string ct = Lower(HeaderOf(response->headers, "Content-Type"));
    std::vector<Edit> edits;
    Status s =
        BodyEdits(body, ct, HeaderOf(response->headers, "Content-Encoding"),
                  &edits, counts);
    if (!s.ok()) return s;
    ApplyEditsToChunks(&response->chunks, edits);
    bool sse = false;
    if (IsEventStream(body, ct, &sse)) {
      if (!edits.empty()) body = Joined(response->chunks);
      edits.clear();
      SplitValueEdits(body, sse, &edits, counts);
      ApplyEditsToChunks(&response->chunks, edits);
    }
  }
  for (auto& [name, value] : response->headers) {
    value = HeaderValue(name, value, counts);
  }
  return Status::Ok();
}

}  // namespace rwd::scrub
