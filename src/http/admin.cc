#include "http/admin.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>

#include "http/http_util.h"

namespace rwd {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void Key(JsonWriter& w, const char* name) {
  w.Key(name, static_cast<rapidjson::SizeType>(std::strlen(name)));
}

void String(JsonWriter& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void StringList(JsonWriter& w, const std::vector<std::string>& items) {
  w.StartArray();
  for (const std::string& s : items) String(w, s);
  w.EndArray();
}

// JSON already serialized (by its owner), as one value.
void Raw(JsonWriter& w, const std::string& json, rapidjson::Type type) {
  w.RawValue(json.data(), json.size(), type);
}

// The document, one line.
std::string Done(const rapidjson::StringBuffer& buffer) {
  std::string out(buffer.GetString(), buffer.GetSize());
  out += '\n';
  return out;
}

}  // namespace

const char* ModeName(ServerMode mode) {
  switch (mode) {
    case ServerMode::kRecord:
      return "record";
    case ServerMode::kReplay:
      return "replay";
    case ServerMode::kServe:
      return "serve";
  }
  return "?";
}

bool Authorized(const httplib::Request& req, const std::string& token,
                bool loopback, httplib::Response* res) {
  res->set_header("X-Rewind", "admin");
  if (token.empty()) {
    if (loopback) return true;
    SetJsonError(res, 403, "rewind_forbidden",
                 "admin endpoints are off when listening beyond loopback "
                 "without --admin-token");
    return false;
  }
  const std::string given = req.get_header_value("Authorization");
  const std::string expected = "Bearer " + token;
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(expected[i] ^
                                       (i < given.size() ? given[i] : 0));
  }
  if (diff == 0) return true;
  res->set_header("WWW-Authenticate", "Bearer");
  SetJsonError(res, 401, "rewind_unauthorized",
               "this endpoint needs Authorization: Bearer <token>");
  return false;
}

void Admin::Serve(const httplib::Request& req, httplib::Response* res) {
  const std::string name = req.path.substr(std::strlen(kAdminPrefix));
  res->set_header("X-Rewind", "admin");
  if (req.method == "GET" && name == "health") {
    res->set_content(HealthJson(), "application/json");
    return;
  }
  if (!Authorized(req, s_.options->admin_token, s_.loopback, res)) return;
  if (req.method == "GET" && name == "config") {
    res->set_content(ConfigJson(), "application/json");
    return;
  }
  if (req.method == "GET" && name == "stats") {
    res->set_content(StatsJson(), "application/json");
    return;
  }
  if (req.method == "POST" && name == "reset") {
    s_.mode->Reset();
    res->set_content("{\"reset\":true}\n", "application/json");
    return;
  }
  SetJsonError(res, 404, "rewind_unknown_admin_endpoint",
               "no admin endpoint " + req.method + " " + req.path +
                   "; there are GET /__rewind/health, GET /__rewind/config, "
                   "GET /__rewind/stats and POST /__rewind/reset");
}

std::string Admin::HealthJson() const {
  const ServerOptions& o = *s_.options;
  const Status store = o.store ? o.store->WriteHealth() : Status::Ok();
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "status");
  w.String(store.ok() ? "ok" : "degraded");
  Key(w, "mode");
  w.String(ModeName(o.mode));
  Key(w, "exchanges");
  w.Uint64(o.mode == ServerMode::kRecord ? s_.counters->recorded.load()
                                         : s_.index->size());
  if (!store.ok()) {
    Key(w, "store_error");
    String(w, store.ToString());
  }
  w.EndObject();
  return Done(buffer);
}

std::string Admin::ConfigJson() const {
  const ServerOptions& o = *s_.options;
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "mode");
  w.String(ModeName(o.mode));
  Key(w, "backend");
  String(w, o.backend);
  Key(w, "latency");
  String(w, o.latency.ToString());
  Key(w, "repeat");
  w.String(RepeatPolicyName(o.repeat));
  Key(w, "on_miss");
  w.String(MissPolicyName(o.on_miss));
  Key(w, "seed");
  w.Uint64(o.seed);
  Key(w, "include_incomplete");
  w.Bool(o.include_incomplete);
  Key(w, "redact_headers");
  StringList(w, *s_.redact_headers);
  Key(w, "redact_fields");
  StringList(w, o.redact_fields);
  Key(w, "client_timeout_s");
  w.Int(o.client_timeout_s);
  Key(w, "admin_token");
  w.Bool(!o.admin_token.empty());  // whether one is set, never its value
  Key(w, "canonicalizer");
  w.String(Canonicalizer::NameFor(s_.canonicalizer->rules()));
  Key(w, "key_rules");
  Raw(w, s_.canonicalizer->rules().ToJson(), rapidjson::kObjectType);
  if (s_.synth != nullptr) {
    Key(w, "synth");
    Raw(w, s_.synth->ConfigJson(), rapidjson::kObjectType);
  }
  Key(w, "max_connections");
  w.Uint64(o.max_connections);
  Key(w, "max_body_bytes");
  w.Uint64(o.max_body_bytes);
  Key(w, "max_record_bytes");
  w.Uint64(o.max_record_bytes);
  Key(w, "keep_alive_timeout_s");
  w.Int(o.keep_alive_timeout_s);
  Key(w, "log");
  String(w, o.log_path.empty() ? std::string("stderr") : o.log_path);
  Key(w, "log_format");
  w.String(o.log_json ? "json" : "text");
  Key(w, "quiet");
  w.Bool(o.quiet);
  w.EndObject();
  return Done(buffer);
}

std::string Admin::StatsJson() const {
  const ModeCounters& c = *s_.counters;
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "hits");
  w.Uint64(c.hits.load());
  Key(w, "misses");
  w.Uint64(c.misses.load());
  Key(w, "recorded");
  w.Uint64(c.recorded.load());
  Key(w, "passthrough");
  w.Uint64(c.passthrough.load());
  Key(w, "synthesized");
  w.Uint64(c.synthesized.load());
  Key(w, "converted");
  w.Uint64(c.converted.load());
  Key(w, "errors");
  w.Uint64(c.errors.load());
  w.EndObject();
  return Done(buffer);
}

}  // namespace rwd
