// HAR 1.2: export (with rewind's own "_rewind" fields, enough to rebuild
// the exact timeline) and import (from rewind, browsers' devtools,
// mitmproxy).
#include <rapidjson/document.h>
#include <rapidjson/ostreamwrapper.h>
#include <rapidjson/prettywriter.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <sstream>
#include <string_view>
#include <utility>

#include "cli/commands.h"
#include "cli/formats.h"
#include "rewind/exchange.h"
#include "rewind/redact.h"
#include "util/text.h"

namespace rwd {
namespace {

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
  if (!obj.IsObject() || !obj.HasMember("headers") ||
      !obj["headers"].IsArray()) {
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

Result<Exchange> FromHar(const rapidjson::Value& entry,
                         const Canonicalizer& canon, int64_t first_started_us) {
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
    Result<std::string> body =
        DecodeBody(StringMember(req["postData"], "text"),
                   StringMember(req["postData"], "encoding"));
    if (!body.ok()) return body.status();
    e.request.body = body.value();
  }
  e.response.status = res.HasMember("status") && res["status"].IsInt()
                          ? res["status"].GetInt()
                          : 0;
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
    Result<std::string> b =
        DecodeBody(StringMember(res["content"], "text"),
                   StringMember(res["content"], "encoding"));
    if (!b.ok()) return b.status();
    body = b.value();
  }
  const rapidjson::Value* timings =
      entry.HasMember("timings") ? &entry["timings"] : nullptr;
  const double wait_ms = timings ? NumberMember(*timings, "wait") : 0;
  const double receive_ms = timings ? NumberMember(*timings, "receive") : 0;
  e.response.headers_us = static_cast<int64_t>(wait_ms * 1000);
  const rapidjson::Value* ours =
      entry.HasMember("_rewind") ? &entry["_rewind"] : nullptr;
  if (ours && ours->IsObject() && ours->HasMember("chunks") &&
      (*ours)["chunks"].IsArray()) {
    // Written by rewind: rebuild the exact timeline.
    size_t pos = 0;
    for (const auto& c : (*ours)["chunks"].GetArray()) {
      if (!c.IsArray() || c.Size() != 2 || !c[0].IsInt64() || !c[1].IsInt64() ||
          static_cast<size_t>(c[1].GetInt64()) > body.size() - pos) {
        return Status::InvalidArgument(
            "_rewind.chunks does not match the body");
      }
      e.response.chunks.push_back(
          {c[0].GetInt64(),
           body.substr(pos, static_cast<size_t>(c[1].GetInt64()))});
      pos += static_cast<size_t>(c[1].GetInt64());
    }
    if (ours->HasMember("chunked") && (*ours)["chunked"].IsBool()) {
      e.response.chunked = (*ours)["chunked"].GetBool();
    }
    if (ours->HasMember("complete") && (*ours)["complete"].IsBool()) {
      e.complete = (*ours)["complete"].GetBool();
    }
    e.error = StringMember(*ours, "error");
    // rewind's own time, when the exporting rewind knew it.
    for (auto [name, us] :
         {std::pair{"own_before_us", &e.response.own_before_us},
          std::pair{"own_after_us", &e.response.own_after_us}}) {
      if (ours->HasMember(name) && (*ours)[name].IsInt64() &&
          (*ours)[name].GetInt64() >= 0) {
        *us = (*ours)[name].GetInt64();
      }
    }
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

int ImportHarDocument(Store* store, const rapidjson::Document& doc,
                      std::ostream& err) {
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
      err << "rewind: HAR entry " << done << ": " << e.status().message()
          << "\n";
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

}  // namespace

int WriteHarExport(Store* store, std::ostream& out, std::ostream& err) {
  Result<std::vector<int64_t>> ids = ExchangeIds(store);
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
  const KeyRules& rules = store->rules();
  if (!rules.scrub.empty() || !rules.scrub_patterns.empty()) {
    std::string what;
    for (const std::string& k : rules.scrub)
      what += (what.empty() ? "" : ", ") + k;
    for (const std::string& p : rules.scrub_patterns) {
      what += (what.empty() ? "" : ", ") + p.substr(0, p.find('='));
    }
    const std::string comment =
        "scrubbed by rewind: " + what + " (values replaced by <kind:hhhhhhhh>)";
    w.Key("comment");
    w.String(comment.c_str(), static_cast<rapidjson::SizeType>(comment.size()));
  }
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
    const double headers_ms =
        static_cast<double>(e.response.headers_us) / 1000.0;
    const double total_ms =
        static_cast<double>(e.response.TotalMicros()) / 1000.0;
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
      EncodedText body = EncodeBody(e.request.body);
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
    EncodedText body = EncodeBody(body_bytes);
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
    if (e.response.own_before_us >= 0) {
      w.Key("own_before_us");
      w.Int64(e.response.own_before_us);
    }
    if (e.response.own_after_us >= 0) {
      w.Key("own_after_us");
      w.Int64(e.response.own_after_us);
    }
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

int ImportHar(Store* store, const std::string& text, std::ostream& err) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    err << "rewind: the input is not a JSON object (offset "
        << doc.GetErrorOffset() << ")\n";
    return kExitError;
  }
  return ImportHarDocument(store, doc, err);
}

}  // namespace rwd
