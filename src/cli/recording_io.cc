// export, import (rewind JSON and HAR 1.2) and merge.

// cereal parses with RapidJSON's full-precision number path unless told
// otherwise; RapidJSON 1.1 calls __builtin_clzll(0) there for numbers like
// "0e55" (undefined; found by fuzz_import). An export holds only integers
// and strings, so the plain IEEE path loses nothing. Iterative, so the
// parse itself cannot overflow the stack (RunImport also refuses input
// nested deeper than kMaxJsonDepth before any parse).
#define RAPIDJSON_PARSE_DEFAULT_FLAGS kParseIterativeFlag
#include <cereal/archives/json.hpp>
#include <cereal/external/base64.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <rapidjson/document.h>
#include <rapidjson/istreamwrapper.h>
#include <rapidjson/ostreamwrapper.h>
#include <rapidjson/prettywriter.h>

#include <algorithm>
#include <ctime>
#include <iostream>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "rewind/exchange.h"
#include "rewind/redact.h"
#include "util/text.h"

namespace rwd {
namespace {

// ---- Bodies: text when UTF-8, base64 otherwise --------------------------

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

struct EncodedText {
  std::string text;
  std::string encoding;  // "utf-8" or "base64"
};

EncodedText Encode(const std::string& bytes) {
  if (IsUtf8(bytes)) return {bytes, "utf-8"};
  return {cereal::base64::encode(reinterpret_cast<const unsigned char*>(bytes.data()),
                         bytes.size()),
          "base64"};
}

Result<std::string> Decode(const std::string& text, const std::string& encoding) {
  if (encoding == "utf-8" || encoding.empty()) return text;
  if (encoding == "base64") return cereal::base64::decode(text);
  return Status::InvalidArgument("unknown body encoding \"" + encoding + "\"");
}

// Headers as "Name: value" lines: compact and diffable. A name holds no
// colon, so the first ": " splits them.
std::vector<std::string> HeaderLines(const HeaderList& headers) {
  std::vector<std::string> lines;
  for (const auto& [n, v] : headers) lines.push_back(n + ": " + v);
  return lines;
}

Result<HeaderList> HeaderPairs(const std::vector<std::string>& lines) {
  HeaderList out;
  for (const std::string& line : lines) {
    const size_t colon = line.find(": ");
    if (colon == std::string::npos || colon == 0) {
      return Status::InvalidArgument("header \"" + line +
                                     "\" is not \"Name: value\"");
    }
    out.emplace_back(line.substr(0, colon), line.substr(colon + 2));
  }
  return out;
}

// ---- The rewind JSON export (cereal) ------------------------------------
// Members are serialized in alphabetical order so the file diffs well.

struct JsonChunk {
  std::string data;
  std::string encoding;
  int64_t offset_us = 0;
  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(data), CEREAL_NVP(encoding), CEREAL_NVP(offset_us));
  }
};

struct JsonRequest {
  std::string body;
  std::string body_encoding;
  std::vector<std::string> headers;
  std::string method;
  std::string path;
  std::string query;
  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(body), CEREAL_NVP(body_encoding), CEREAL_NVP(headers),
      CEREAL_NVP(method), CEREAL_NVP(path), CEREAL_NVP(query));
  }
};

struct JsonResponse {
  bool chunked = false;
  std::vector<JsonChunk> chunks;
  std::vector<std::string> headers;
  int64_t headers_us = 0;
  int status = 0;
  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(chunked), CEREAL_NVP(chunks), CEREAL_NVP(headers),
      CEREAL_NVP(headers_us), CEREAL_NVP(status));
  }
};

struct JsonExchange {
  int64_t arrival_offset_us = 0;
  bool complete = true;
  std::string error;
  int64_t id = 0;
  std::string key;
  JsonRequest request;
  JsonResponse response;
  int64_t started_at_us = 0;
  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(arrival_offset_us), CEREAL_NVP(complete), CEREAL_NVP(error),
      CEREAL_NVP(id), CEREAL_NVP(key), CEREAL_NVP(request),
      CEREAL_NVP(response), CEREAL_NVP(started_at_us));
  }
};

struct JsonRules {
  std::vector<std::string> ignore_fields;
  std::vector<std::string> match_headers;
  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(ignore_fields), CEREAL_NVP(match_headers));
  }
};

JsonExchange ToJson(const Exchange& e) {
  JsonExchange j;
  j.arrival_offset_us = e.arrival_offset_us;
  j.complete = e.complete;
  j.error = e.error;
  j.id = e.id;
  j.key = e.key_hex;
  EncodedText body = Encode(e.request.body);
  j.request = {body.text, body.encoding, HeaderLines(e.request.headers),
               e.request.method, e.request.path, e.request.query};
  j.response.chunked = e.response.chunked;
  for (const Chunk& c : e.response.chunks) {
    EncodedText t = Encode(c.data);
    j.response.chunks.push_back({t.text, t.encoding, c.offset_us});
  }
  j.response.headers = HeaderLines(e.response.headers);
  j.response.headers_us = e.response.headers_us;
  j.response.status = e.response.status;
  j.started_at_us = e.started_at_us;
  return j;
}

Result<Exchange> FromJson(const JsonExchange& j) {
  Exchange e;
  e.arrival_offset_us = j.arrival_offset_us;
  e.complete = j.complete;
  e.error = j.error;
  e.id = j.id;
  e.key_hex = j.key;
  Result<std::string> body = Decode(j.request.body, j.request.body_encoding);
  if (!body.ok()) return body.status();
  e.request.body = body.value();
  Result<HeaderList> rh = HeaderPairs(j.request.headers);
  if (!rh.ok()) return rh.status();
  e.request.headers = rh.value();
  e.request.method = j.request.method;
  e.request.path = j.request.path;
  e.request.query = j.request.query;
  e.response.chunked = j.response.chunked;
  for (const JsonChunk& c : j.response.chunks) {
    Result<std::string> data = Decode(c.data, c.encoding);
    if (!data.ok()) return data.status();
    e.response.chunks.push_back({c.offset_us, data.value()});
  }
  Result<HeaderList> sh = HeaderPairs(j.response.headers);
  if (!sh.ok()) return sh.status();
  e.response.headers = sh.value();
  e.response.headers_us = j.response.headers_us;
  e.response.status = j.response.status;
  e.started_at_us = j.started_at_us;
  return e;
}

// The ids of "store" in order.
Result<std::vector<int64_t>> Ids(Store* store) {
  Result<std::vector<ExchangeSummary>> rows = KeySummaries(store);
  if (!rows.ok()) return rows.status();
  std::vector<int64_t> ids;
  for (const ExchangeSummary& e : rows.value()) ids.push_back(e.id);
  return ids;
}

int WriteJsonExport(Store* store, std::ostream& out, std::ostream& err) {
  Result<std::vector<int64_t>> ids = Ids(store);
  if (!ids.ok()) {
    err << "rewind: " << ids.status().message() << "\n";
    return kExitError;
  }
  Progress progress("export", static_cast<int64_t>(ids->size()));
  try {
    cereal::JSONOutputArchive ar(out, cereal::JSONOutputArchive::Options(
                                          324, cereal::JSONOutputArchive::Options::IndentChar::space, 1));
    ar(cereal::make_nvp("canonicalizer", std::string(Canonicalizer::Name())));
    ar.setNextName("exchanges");
    ar.startNode();
    ar.makeArray();
    int64_t done = 0;
    for (int64_t id : ids.value()) {
      Result<Exchange> e = store->Get(id);
      if (!e.ok()) {
        err << "rewind: " << e.status().message() << "\n";
        return kExitError;
      }
      ar(ToJson(e.value()));
      progress.Update(++done);
    }
    ar.finishNode();
    ar(cereal::make_nvp("format", std::string("rewind.recording")));
    const KeyRules& rules = store->rules();
    ar(cereal::make_nvp("key_rules",
                        JsonRules{rules.ignore_fields, rules.match_headers}));
    ar(cereal::make_nvp("schema_version", kExportSchemaVersion));
  } catch (const cereal::Exception& e) {
    err << "rewind: writing the export: " << e.what() << "\n";
    return kExitError;
  }
  out << "\n";
  return out ? kExitOk : kExitError;
}

// ---- HAR 1.2 -------------------------------------------------------------

using Pretty = rapidjson::PrettyWriter<rapidjson::OStreamWrapper>;

void Str(Pretty* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// Parses "2024-01-02T03:04:05.678Z" or with a "+01:00" offset; -1 if not.
int64_t ParseIso8601(const std::string& s) {
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return -1;
  int64_t us = 0;
  if (*rest == '.') {
    ++rest;
    int64_t scale = 100000;
    while (*rest >= '0' && *rest <= '9') {
      us += (*rest - '0') * scale;
      scale /= 10;
      ++rest;
    }
  }
  int64_t offset_s = 0;
  if (*rest == '+' || *rest == '-') {
    int h = 0, m = 0;
    if (std::sscanf(rest + 1, "%d:%d", &h, &m) >= 1) {
      offset_s = (h * 3600 + m * 60) * (*rest == '+' ? 1 : -1);
    }
  }
  return (static_cast<int64_t>(timegm(&tm)) - offset_s) * 1000000 + us;
}

void WriteHeaders(Pretty* w, const HeaderList& headers) {
  w->StartArray();
  for (const auto& [n, v] : headers) {
    w->StartObject();
    w->Key("name");
    Str(w, n);
    w->Key("value");
    Str(w, v);
    w->EndObject();
  }
  w->EndArray();
}

int WriteHarExport(Store* store, std::ostream& out, std::ostream& err) {
  Result<std::vector<int64_t>> ids = Ids(store);
  if (!ids.ok()) {
    err << "rewind: " << ids.status().message() << "\n";
    return kExitError;
  }
  Progress progress("export", static_cast<int64_t>(ids->size()));
  rapidjson::OStreamWrapper os(out);
  Pretty w(os);
  w.SetIndent(' ', 1);
  w.StartObject();
  w.Key("log");
  w.StartObject();
  w.Key("version");
  w.String("1.2");
  w.Key("creator");
  w.StartObject();
  w.Key("name");
  w.String("rewind");
  w.Key("version");
  w.String("0.1.0");
  w.EndObject();
  w.Key("entries");
  w.StartArray();
  int64_t done = 0;
  for (int64_t id : ids.value()) {
    Result<Exchange> r = store->Get(id);
    if (!r.ok()) {
      err << "rewind: " << r.status().message() << "\n";
      return kExitError;
    }
    const Exchange& e = r.value();
    std::string host = FindHeader(e.request.headers, "Host");
    if (host.empty()) host = "recorded.invalid";
    const double headers_ms = static_cast<double>(e.response.headers_us) / 1000.0;
    const double total_ms = static_cast<double>(e.response.TotalMicros()) / 1000.0;
    w.StartObject();
    w.Key("startedDateTime");
    Str(&w, Iso8601Utc(e.started_at_us));
    w.Key("time");
    w.Double(total_ms);
    w.Key("request");
    w.StartObject();
    w.Key("method");
    Str(&w, e.request.method);
    w.Key("url");
    Str(&w, "http://" + host + e.request.Target());
    w.Key("httpVersion");
    w.String("HTTP/1.1");
    w.Key("cookies");
    w.StartArray();
    w.EndArray();
    w.Key("headers");
    WriteHeaders(&w, e.request.headers);
    w.Key("queryString");
    w.StartArray();
    std::stringstream query(e.request.query);
    std::string param;
    while (std::getline(query, param, '&')) {
      if (param.empty()) continue;
      size_t eq = param.find('=');
      w.StartObject();
      w.Key("name");
      Str(&w, param.substr(0, eq));
      w.Key("value");
      Str(&w, eq == std::string::npos ? "" : param.substr(eq + 1));
      w.EndObject();
    }
    w.EndArray();
    if (!e.request.body.empty()) {
      EncodedText body = Encode(e.request.body);
      w.Key("postData");
      w.StartObject();
      w.Key("mimeType");
      Str(&w, FindHeader(e.request.headers, "Content-Type"));
      w.Key("text");
      Str(&w, body.text);
      if (body.encoding == "base64") {
        w.Key("encoding");
        w.String("base64");
      }
      w.EndObject();
    }
    w.Key("headersSize");
    w.Int(-1);
    w.Key("bodySize");
    w.Int64(static_cast<int64_t>(e.request.body.size()));
    w.EndObject();

    const std::string body_bytes = e.response.Body();
    EncodedText body = Encode(body_bytes);
    w.Key("response");
    w.StartObject();
    w.Key("status");
    w.Int(e.response.status);
    w.Key("statusText");
    w.String("");
    w.Key("httpVersion");
    w.String("HTTP/1.1");
    w.Key("cookies");
    w.StartArray();
    w.EndArray();
    w.Key("headers");
    WriteHeaders(&w, e.response.headers);
    w.Key("content");
    w.StartObject();
    w.Key("size");
    w.Int64(static_cast<int64_t>(body_bytes.size()));
    w.Key("mimeType");
    Str(&w, FindHeader(e.response.headers, "Content-Type"));
    w.Key("text");
    Str(&w, body.text);
    if (body.encoding == "base64") {
      w.Key("encoding");
      w.String("base64");
    }
    w.EndObject();
    w.Key("redirectURL");
    w.String("");
    w.Key("headersSize");
    w.Int(-1);
    w.Key("bodySize");
    w.Int64(static_cast<int64_t>(body_bytes.size()));
    w.EndObject();
    w.Key("cache");
    w.StartObject();
    w.EndObject();
    w.Key("timings");
    w.StartObject();
    w.Key("send");
    w.Int(0);
    w.Key("wait");
    w.Double(headers_ms);
    w.Key("receive");
    w.Double(std::max(0.0, total_ms - headers_ms));
    w.EndObject();
    // rewind's own fields (HAR allows "_"-prefixed extensions): enough to
    // rebuild the exact timeline on import.
    w.Key("_rewind");
    w.StartObject();
    w.Key("key");
    Str(&w, e.key_hex);
    w.Key("chunked");
    w.Bool(e.response.chunked);
    w.Key("complete");
    w.Bool(e.complete);
    w.Key("error");
    Str(&w, e.error);
    w.Key("chunks");
    w.StartArray();
    for (const Chunk& c : e.response.chunks) {
      w.StartArray();
      w.Int64(c.offset_us);
      w.Int64(static_cast<int64_t>(c.data.size()));
      w.EndArray();
    }
    w.EndArray();
    w.EndObject();
    w.EndObject();
    progress.Update(++done);
  }
  w.EndArray();
  w.EndObject();
  w.EndObject();
  out << "\n";
  return out ? kExitOk : kExitError;
}

std::string StringMember(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return "";
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

double NumberMember(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return 0;
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsNumber()) return 0;
  return std::max(0.0, it->value.GetDouble());
}

HeaderList HarHeaders(const rapidjson::Value& obj, bool response) {
  HeaderList out;
  if (!obj.IsObject() || !obj.HasMember("headers") || !obj["headers"].IsArray()) {
    return out;
  }
  for (const auto& h : obj["headers"].GetArray()) {
    std::string name = StringMember(h, "name");
    if (name.empty() || name[0] == ':') continue;  // HTTP/2 pseudo-headers
    // Framing is rebuilt on replay; a HAR body is already decoded, so its
    // Content-Encoding no longer describes it.
    if (HeaderNameEquals(name, "Content-Length") ||
        HeaderNameEquals(name, "Transfer-Encoding") ||
        HeaderNameEquals(name, "Connection") ||
        HeaderNameEquals(name, "Keep-Alive") ||
        (response && HeaderNameEquals(name, "Content-Encoding"))) {
      continue;
    }
    out.emplace_back(name, StringMember(h, "value"));
  }
  return out;
}

HeaderList RedactSecrets(HeaderList headers) {
  for (auto& [name, value] : headers) {
    for (std::string_view s : kSecretHeaders) {
      if (HeaderNameEquals(name, s)) value = kRedacted;
    }
  }
  return headers;
}

Result<Exchange> FromHar(const rapidjson::Value& entry, const Canonicalizer& canon,
                         int64_t first_started_us) {
  if (!entry.IsObject() || !entry.HasMember("request") ||
      !entry.HasMember("response")) {
    return Status::InvalidArgument("an entry lacks request or response");
  }
  const auto& req = entry["request"];
  const auto& res = entry["response"];
  Exchange e;
  e.request.method = StringMember(req, "method");
  std::string url = StringMember(req, "url");
  size_t scheme = url.find("://");
  size_t path_at = scheme == std::string::npos ? 0 : url.find('/', scheme + 3);
  std::string target = path_at == std::string::npos ? "/" : url.substr(path_at);
  target = target.substr(0, target.find('#'));
  size_t q = target.find('?');
  e.request.path = target.substr(0, q);
  if (q != std::string::npos) e.request.query = target.substr(q + 1);
  if (e.request.method.empty() || e.request.path.empty()) {
    return Status::InvalidArgument("an entry's request has no method or url");
  }
  e.request.headers = RedactSecrets(HarHeaders(req, false));
  if (req.HasMember("postData") && req["postData"].IsObject()) {
    Result<std::string> body = Decode(StringMember(req["postData"], "text"),
                                      StringMember(req["postData"], "encoding"));
    if (!body.ok()) return body.status();
    e.request.body = body.value();
  }
  e.response.status = res.HasMember("status") && res["status"].IsInt()
                          ? res["status"].GetInt() : 0;
  HeaderList response_headers = HarHeaders(res, true);
  if (res.HasMember("headers") && res["headers"].IsArray()) {
    for (const auto& h : res["headers"].GetArray()) {
      if (HeaderNameEquals(StringMember(h, "name"), "Transfer-Encoding") &&
          StringMember(h, "value").find("chunked") != std::string::npos) {
        e.response.chunked = true;
      }
    }
  }
  e.response.headers = RedactSecrets(response_headers);
  std::string body;
  if (res.HasMember("content") && res["content"].IsObject()) {
    Result<std::string> b = Decode(StringMember(res["content"], "text"),
                                   StringMember(res["content"], "encoding"));
    if (!b.ok()) return b.status();
    body = b.value();
  }
  const rapidjson::Value* timings =
      entry.HasMember("timings") ? &entry["timings"] : nullptr;
  const double wait_ms = timings ? NumberMember(*timings, "wait") : 0;
  const double receive_ms = timings ? NumberMember(*timings, "receive") : 0;
  e.response.headers_us = static_cast<int64_t>(wait_ms * 1000);
  const rapidjson::Value* ours = entry.HasMember("_rewind") ? &entry["_rewind"] : nullptr;
  if (ours && ours->IsObject() && ours->HasMember("chunks") &&
      (*ours)["chunks"].IsArray()) {
    // Written by rewind: rebuild the exact timeline.
    size_t pos = 0;
    for (const auto& c : (*ours)["chunks"].GetArray()) {
      if (!c.IsArray() || c.Size() != 2 || !c[0].IsInt64() || !c[1].IsInt64() ||
          static_cast<size_t>(c[1].GetInt64()) > body.size() - pos) {
        return Status::InvalidArgument("_rewind.chunks does not match the body");
      }
      e.response.chunks.push_back(
          {c[0].GetInt64(), body.substr(pos, static_cast<size_t>(c[1].GetInt64()))});
      pos += static_cast<size_t>(c[1].GetInt64());
    }
    if (ours->HasMember("chunked") && (*ours)["chunked"].IsBool()) {
      e.response.chunked = (*ours)["chunked"].GetBool();
    }
    if (ours->HasMember("complete") && (*ours)["complete"].IsBool()) {
      e.complete = (*ours)["complete"].GetBool();
    }
    e.error = StringMember(*ours, "error");
  } else if (!body.empty()) {
    e.response.chunks.push_back(
        {static_cast<int64_t>((wait_ms + receive_ms) * 1000), body});
  }
  const int64_t started = ParseIso8601(StringMember(entry, "startedDateTime"));
  e.started_at_us = started < 0 ? 0 : started;
  e.arrival_offset_us =
      started < 0 || first_started_us < 0 ? 0 : started - first_started_us;
  e.key_hex = canon.Key(e.request).ToHex();
  return e;
}

int ImportHar(Store* store, const rapidjson::Document& doc, std::ostream& err) {
  if (!doc.IsObject() || !doc.HasMember("log") || !doc["log"].IsObject() ||
      !doc["log"].HasMember("entries") || !doc["log"]["entries"].IsArray()) {
    err << "rewind: not a HAR file (no log.entries array)\n";
    return kExitError;
  }
  const auto& entries = doc["log"]["entries"];
  Canonicalizer canon(store->rules());
  int64_t first = -1;
  for (const auto& entry : entries.GetArray()) {
    int64_t t = ParseIso8601(StringMember(entry, "startedDateTime"));
    if (t >= 0 && (first < 0 || t < first)) first = t;
  }
  Progress progress("import", entries.Size());
  std::vector<std::shared_ptr<Store::Ticket>> tickets;
  int64_t done = 0;
  for (const auto& entry : entries.GetArray()) {
    Result<Exchange> e = FromHar(entry, canon, first);
    if (!e.ok()) {
      err << "rewind: HAR entry " << done << ": " << e.status().message() << "\n";
      return kExitError;
    }
    tickets.push_back(store->Append(std::move(e.value())));
    progress.Update(++done);
  }
  for (auto& t : tickets) {
    Result<int64_t> id = store->WaitCommitted(t);
    if (!id.ok()) {
      err << "rewind: " << id.status().message() << "\n";
      return kExitError;
    }
  }
  err << "rewind: imported " << done << " exchanges from HAR\n";
  return kExitOk;
}

int ImportJson(Store* store, std::string text, bool rekey, std::ostream& err) {
  std::istringstream in(std::move(text));
  try {
    cereal::JSONInputArchive ar(in);
    std::string format;
    int version = 0;
    ar(cereal::make_nvp("format", format));
    ar(cereal::make_nvp("schema_version", version));
    if (format != "rewind.recording") {
      err << "rewind: not a rewind export (format \"" << format << "\")\n";
      return kExitError;
    }
    if (version > kExportSchemaVersion) {
      err << "rewind: the file has export schema version " << version
          << ", newer than this rewind reads (" << kExportSchemaVersion
          << "); upgrade rewind\n";
      return kExitError;
    }
    // Version 1 is the first; an older version would be upgraded here,
    // exchange by exchange, before import.
    std::string canonicalizer;
    JsonRules rules;
    ar(cereal::make_nvp("canonicalizer", canonicalizer));
    ar(cereal::make_nvp("key_rules", rules));
    const KeyRules file_rules{rules.ignore_fields, rules.match_headers};
    if (!rekey && (canonicalizer != Canonicalizer::Name() ||
                   !(file_rules == store->rules()))) {
      err << "rewind: the file was keyed by " << canonicalizer << " with rules "
          << file_rules.ToJson() << "; this recording uses "
          << Canonicalizer::Name() << " with " << store->rules().ToJson()
          << ". Import with --rekey to recompute the keys\n";
      return kExitError;
    }
    Result<int64_t> existing = store->Count();
    if (!existing.ok()) {
      err << "rewind: " << existing.status().message() << "\n";
      return kExitError;
    }
    // Into an empty recording ids are kept, so export -> import -> export
    // gives the same file; otherwise they are appended after the others.
    const bool keep_ids = existing.value() == 0;
    Canonicalizer canon(store->rules());
    ar.setNextName("exchanges");
    ar.startNode();
    cereal::size_type n = 0;
    ar.loadSize(n);
    Progress progress("import", static_cast<int64_t>(n));
    std::vector<std::shared_ptr<Store::Ticket>> tickets;
    for (cereal::size_type i = 0; i < n; ++i) {
      JsonExchange j;
      ar(j);
      Result<Exchange> e = FromJson(j);
      if (!e.ok()) {
        err << "rewind: exchange " << j.id << ": " << e.status().message() << "\n";
        return kExitError;
      }
      if (!keep_ids) e->id = 0;
      if (rekey) e->key_hex = canon.Key(e->request).ToHex();
      tickets.push_back(store->Append(std::move(e.value())));
      progress.Update(static_cast<int64_t>(i + 1));
    }
    ar.finishNode();
    for (auto& t : tickets) {
      Result<int64_t> id = store->WaitCommitted(t);
      if (!id.ok()) {
        err << "rewind: " << id.status().message() << "\n";
        return kExitError;
      }
    }
    err << "rewind: imported " << n << " exchanges\n";
  } catch (const cereal::Exception& e) {
    err << "rewind: not a rewind JSON export (an object with \"format\": "
           "\"rewind.recording\", as `rewind export` writes): "
        << e.what() << "\n";
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

int RunExport(Store* store, const std::string& format, std::ostream& out,
              std::ostream& err) {
  if (format == "json") return WriteJsonExport(store, out, err);
  if (format == "har") return WriteHarExport(store, out, err);
  err << "rewind: unknown export format \"" << format << "\": use json or har\n";
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
    const size_t quote = brace == std::string::npos ? brace : text.find_first_not_of(" \t\r\n", brace + 1);
    kind = quote != std::string::npos && text.compare(quote, 5, "\"log\"") == 0 ? "har" : "json";
  }
  if (kind == "json") return ImportJson(store, std::move(text), rekey, err);
  if (kind != "har") {
    err << "rewind: unknown import format \"" << format << "\": use json or har\n";
    return kExitError;
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    err << "rewind: the input is not a JSON object (offset "
        << doc.GetErrorOffset() << ")\n";
    return kExitError;
  }
  return ImportHar(store, doc, err);
}

int RunMerge(Store* out, const std::vector<std::string>& inputs, bool dedupe,
             std::ostream& err) {
  struct Source {
    int64_t started_at_us;
    size_t input;
    int64_t id;
  };
  std::vector<std::unique_ptr<Store>> stores;
  std::vector<Source> order;
  for (size_t i = 0; i < inputs.size(); ++i) {
    StoreOptions o;
    o.path = inputs[i];
    o.read_only = true;
    o.any_canonicalizer = true;  // every key is recomputed under OUT's rules
    Result<std::unique_ptr<Store>> s = Store::Open(o);
    if (!s.ok()) {
      err << "rewind: " << s.status().message() << "\n";
      return kExitError;
    }
    Status scan = s.value()->Scan([&](const ExchangeSummary& e) {
      order.push_back({e.started_at_us, i, e.id});
    });
    if (!scan.ok()) {
      err << "rewind: " << scan.message() << "\n";
      return kExitError;
    }
    stores.push_back(std::move(s.value()));
  }
  std::stable_sort(order.begin(), order.end(), [](const Source& a, const Source& b) {
    return a.started_at_us < b.started_at_us;
  });
  Canonicalizer canon(out->rules());
  std::set<std::pair<std::string, std::string>> seen;  // key, response digest
  Progress progress("merge", static_cast<int64_t>(order.size()));
  std::vector<std::shared_ptr<Store::Ticket>> tickets;
  int64_t done = 0, dropped = 0;
  for (const Source& src : order) {
    Result<Exchange> e = stores[src.input]->Get(src.id);
    if (!e.ok()) {
      err << "rewind: " << inputs[src.input] << ": " << e.status().message() << "\n";
      return kExitError;
    }
    e->id = 0;
    e->key_hex = canon.Key(e->request).ToHex();
    if (dedupe) {
      const std::string digest =
          std::to_string(e->response.status) + ":" + HashBytes(e->response.Body()).ToHex();
      if (!seen.insert({e->key_hex, digest}).second) {
        ++dropped;
        progress.Update(++done);
        continue;
      }
    }
    tickets.push_back(out->Append(std::move(e.value())));
    progress.Update(++done);
  }
  for (auto& t : tickets) {
    Result<int64_t> id = out->WaitCommitted(t);
    if (!id.ok()) {
      err << "rewind: " << id.status().message() << "\n";
      return kExitError;
    }
  }
  err << "rewind: merged " << tickets.size() << " exchanges from " << inputs.size()
      << " recordings" << (dedupe ? ", " + std::to_string(dropped) + " duplicates dropped" : "")
      << "\n";
  return kExitOk;
}

}  // namespace rwd
