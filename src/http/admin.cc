#include "http/admin.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>
#include <unordered_set>

#include "http/http_util.h"
#include "http/wire.h"

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

// How a journal entry is shown: as it happened (GET /__rewind/requests),
// or as the log names it (a report written to disk: no query, the path
// scrubbed when the recording scrubs).
struct EntryForm {
  ModeEvents* logged = nullptr;  // set: the log's form
};

void WriteEntry(JsonWriter& w, const JournalEntry& e, EntryForm form) {
  w.StartObject();
  Key(w, "seq");
  w.Uint64(e.seq);
  Key(w, "scope");
  if (e.scope) {
    String(w, e.scope->name());
  } else {
    w.Null();
  }
  Key(w, "method");
  String(w, e.method);
  Key(w, "path");
  String(w, form.logged ? form.logged->LoggedPath(e.path) : e.path);
  Key(w, "key");
  String(w, e.key.ToHex());
  Key(w, "outcome");
  w.String(e.outcome);
  Key(w, "status");
  w.Int(e.status);
  Key(w, "exchange");
  if (e.exchange != 0) {
    w.Int64(e.exchange);
  } else {
    w.Null();
  }
  Key(w, "explanation");
  if (e.miss) {
    String(w, form.logged ? e.miss->logged : e.miss->explanation);
  } else {
    w.Null();
  }
  // A miss's nearest recording, or the one a near answer came from.
  Key(w, "nearest");
  if (e.miss && e.miss->nearest_id != 0) {
    w.StartObject();
    Key(w, "id");
    w.Int64(e.miss->nearest_id);
    Key(w, "differences");
    StringList(w, e.miss->differences);
    w.EndObject();
  } else if (e.near_differences && e.exchange != 0) {
    w.StartObject();
    Key(w, "id");
    w.Int64(e.exchange);
    Key(w, "differences");
    StringList(w, *e.near_differences);
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
}

void WriteRecording(JsonWriter& w, const ReplayIndex::Recording& r,
                    ModeEvents* logged) {
  w.StartObject();
  Key(w, "id");
  w.Int64(r.id);
  Key(w, "method");
  String(w, r.method);
  Key(w, "path");
  String(w, logged ? logged->LoggedPath(r.path) : r.path);
  Key(w, "key");
  String(w, r.key.ToHex());
  w.EndObject();
}

// "1 miss", "2 misses".
std::string Count(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
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

bool Authorized(const Request& req, const std::string& token, bool loopback,
                httplib::Response* res) {
  if (token.empty()) {
    if (loopback) return true;
    SetJsonError(res, 403, "rewind_forbidden",
                 "admin endpoints are off when listening beyond loopback "
                 "without --admin-token");
    return false;
  }
  const std::string given = FindHeader(req.headers, "Authorization");
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

void Admin::Serve(const Request& req, const std::string& name,
                  const std::string& scope, httplib::Response* res) {
  res->set_header("X-Rewind", "admin");
  // HEAD is answered as GET, without the body (a health check's HEAD).
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (get && name == "health") {
    res->set_content(HealthJson(), "application/json");
    return;
  }
  if (!Authorized(req, s_.options->front.admin_token, s_.loopback, res)) return;
  if (get && name == "config") {
    res->set_content(ConfigJson(), "application/json");
    return;
  }
  if (get && name == "stats") {
    res->set_content(StatsJson(), "application/json");
    return;
  }
  const bool scoped = name == "requests" || name == "unused" || name == "reset";
  std::string asked = scope;
  if (scoped && QueryParam(req.query, "scope", &asked)) {
    Status ok = CheckScopeName(asked);
    if (!ok.ok()) {
      SetJsonError(res, 400, "rewind_bad_scope", "?scope=: " + ok.message());
      return;
    }
  }
  if (req.method == "POST" && name == "reset") {
    res->set_content(Reset(asked), "application/json");
    return;
  }
  if (get && name == "requests") {
    res->set_content(RequestsJson(asked), "application/json");
    return;
  }
  if (get && name == "unused") {
    res->set_content(UnusedJson(asked), "application/json");
    return;
  }
  SetJsonError(res, 404, "rewind_unknown_admin_endpoint",
               "no admin endpoint " + req.method + " " + kAdminPrefix + name +
                   "; there are GET /__rewind/health, GET /__rewind/config, "
                   "GET /__rewind/stats, GET /__rewind/requests, "
                   "GET /__rewind/unused and POST /__rewind/reset");
}

std::string Admin::HealthJson() const {
  const ServerOptions& o = *s_.options;
  const Status store = o.store ? o.store->WriteHealth() : Status::Ok();
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "status");
  // A failing store is the more urgent news.
  w.String(!store.ok() ? "degraded" : s_.counters->full.load() ? "full" : "ok");
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
  String(w, o.upstream.backend);
  Key(w, "latency");
  String(w, o.replay.latency.ToString());
  Key(w, "repeat");
  w.String(RepeatPolicyName(o.replay.repeat));
  Key(w, "on_miss");
  w.String(MissPolicyName(o.replay.on_miss));
  if (o.replay.on_miss == MissPolicy::kNearest) {
    Key(w, "near_max_fields");
    w.Uint64(o.replay.near_max_fields);
  }
  Key(w, "seed");
  w.Uint64(o.seed);
  Key(w, "include_incomplete");
  w.Bool(o.replay.include_incomplete);
  Key(w, "strict");
  w.Bool(o.replay.strict);
  Key(w, "require_all");
  w.Bool(o.replay.require_all);
  Key(w, "redact_headers");
  StringList(w, *s_.redact_headers);
  Key(w, "redact_fields");
  StringList(w, o.record.redact_fields);
  Key(w, "client_timeout_s");
  w.Int(o.front.client_timeout_s);
  Key(w, "admin_token");
  w.Bool(!o.front.admin_token.empty());  // whether one is set, never its value
  Key(w, "canonicalizer");
  w.String(Canonicalizer::NameFor(s_.canonicalizer->rules()));
  Key(w, "key_rules");
  Raw(w, s_.canonicalizer->rules().ToJson(), rapidjson::kObjectType);
  if (s_.synth != nullptr) {
    Key(w, "synth");
    Raw(w, s_.synth->ConfigJson(), rapidjson::kObjectType);
  }
  Key(w, "max_connections");
  w.Uint64(o.front.max_connections);
  Key(w, "max_body_bytes");
  w.Uint64(o.front.max_body_bytes);
  Key(w, "max_record_bytes");
  w.Uint64(o.record.max_record_bytes);
  Key(w, "sample");
  w.Double(o.record.sample);
  Key(w, "record_paths");
  StringList(w, o.record.record_paths);
  Key(w, "skip_paths");
  StringList(w, o.record.skip_paths);
  auto optional = [&w](const char* name, const std::optional<uint64_t>& v) {
    Key(w, name);
    if (v) {
      w.Uint64(*v);
    } else {
      w.Null();
    }
  };
  optional("max_per_key", o.record.max_per_key);
  optional("max_exchanges", o.record.max_exchanges);
  optional("max_db_bytes", o.record.max_db_bytes);
  Key(w, "fail_open");
  w.Bool(o.record.fail_open);
  Key(w, "rotate_every");
  if (o.record.rotate_every.empty()) {
    w.Null();
  } else {
    String(w, o.record.rotate_every);
  }
  Key(w, "keep_alive_timeout_s");
  w.Int(o.front.keep_alive_timeout_s);
  Key(w, "log");
  String(w,
         o.front.log_path.empty() ? std::string("stderr") : o.front.log_path);
  Key(w, "log_format");
  w.String(o.front.log_json ? "json" : "text");
  Key(w, "quiet");
  w.Bool(o.front.quiet);
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
  Key(w, "near");
  w.Uint64(c.near.load());
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
  Key(w, "not_recorded");
  w.StartObject();
  for (size_t i = 0; i < kSkipReasons; ++i) {
    Key(w, SkipName(static_cast<Skip>(i)));
    w.Uint64(c.not_recorded[i].load());
  }
  w.EndObject();
  w.EndObject();
  return Done(buffer);
}

std::string Admin::RequestsJson(const std::string& scope) const {
  Journal::View view = s_.journal->Entries(scope);
  if (!scope.empty()) {
    std::shared_ptr<Scope> known = s_.scopes->Find(scope);
    view.dropped = known ? known->dropped.load() : 0;
  }
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "requests");
  w.StartArray();
  for (const JournalEntry& e : view.entries) WriteEntry(w, e, EntryForm{});
  w.EndArray();
  Key(w, "dropped");
  w.Uint64(view.dropped);
  w.EndObject();
  return Done(buffer);
}

std::string Admin::UnusedJson(const std::string& scope) const {
  std::unordered_set<int64_t> served;
  if (scope.empty()) {
    served = s_.journal->Served();
  } else if (std::shared_ptr<Scope> known = s_.scopes->Find(scope)) {
    served = known->Served();
  }
  size_t total = 0;
  const std::vector<ReplayIndex::Recording> unused = s_.index->Recordings(
      [&served](int64_t id) { return served.count(id) > 0; }, kMaxUnusedListed,
      &total);
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "unused");
  w.StartArray();
  for (const ReplayIndex::Recording& r : unused) WriteRecording(w, r, nullptr);
  w.EndArray();
  Key(w, "total");
  w.Uint64(total);
  w.EndObject();
  return Done(buffer);
}

std::string Admin::Reset(const std::string& scope) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "reset");
  w.Bool(true);
  if (scope.empty()) {
    s_.mode->Reset();
    s_.scopes->Clear();
    s_.journal->Reset();
  } else {
    if (std::shared_ptr<Scope> known = s_.scopes->Find(scope)) known->Reset();
    s_.journal->Reset(scope);
    Key(w, "scope");
    String(w, scope);
  }
  w.EndObject();
  return Done(buffer);
}

RunReport Admin::Report() const {
  const Journal::Totals totals = s_.journal->RunTotals();
  size_t unused_total = 0;
  const std::vector<ReplayIndex::Recording> unused = s_.index->Recordings(
      [&totals](int64_t id) { return totals.served.count(id) > 0; },
      kMaxUnusedListed, &unused_total);
  const ServerOptions& o = *s_.options;
  RunReport report;
  std::string failed;
  if (o.replay.strict && totals.misses > 0) {
    failed = Count(totals.misses, "miss", "misses") + " (--strict)";
  }
  if (o.replay.strict_near && totals.near > 0) {
    failed += (failed.empty() ? "" : " and ") +
              Count(totals.near, "near answer", "near answers") +
              " (--strict-near)";
  }
  if (o.replay.require_all && unused_total > 0) {
    failed += (failed.empty() ? "" : " and ") +
              Count(unused_total, "unused recording", "unused recordings") +
              " (--require-all)";
  }
  report.passed = failed.empty();

  std::string& text = report.summary;
  text = "rewind: " + Count(totals.requests, "request", "requests") + ", " +
         Count(totals.hits, "hit", "hits") + ", " +
         (totals.near > 0
              ? Count(totals.near, "near answer", "near answers") + ", "
              : std::string()) +
         Count(totals.misses, "miss", "misses") + ", " +
         Count(unused_total, "unused recording", "unused recordings") + "\n";
  constexpr size_t kListed = 20;
  for (size_t i = 0; i < totals.missed.size() && i < kListed; ++i) {
    const JournalEntry& e = totals.missed[i];
    text += "rewind: miss (request " + std::to_string(e.seq) +
            (e.scope ? ", scope " + e.scope->name() : std::string()) + "): " +
            (e.miss ? e.miss->logged
                    : e.method + " " + s_.events->LoggedPath(e.path)) +
            "\n";
  }
  if (totals.misses > kListed) {
    text += "rewind: ... and " + std::to_string(totals.misses - kListed) +
            " more misses\n";
  }
  // Near answers on lines of their own: each served a recording that is
  // not its request's.
  if (totals.near > 0) {
    text +=
        "rewind: " + Count(totals.near, "near answer", "near answers") + ":\n";
    for (const JournalEntry& e : totals.answered_near) {
      text += "rewind:   request " + std::to_string(e.seq) + ": " + e.method +
              " " + s_.events->LoggedPath(e.path) + " answered from #" +
              std::to_string(e.exchange) + ", which differs in: ";
      if (e.near_differences) {
        for (size_t i = 0; i < e.near_differences->size(); ++i) {
          text += (i ? ", " : "") + (*e.near_differences)[i];
        }
      }
      text += "\n";
    }
    if (totals.near > totals.answered_near.size()) {
      text += "rewind:   ... and " +
              std::to_string(totals.near - totals.answered_near.size()) +
              " more\n";
    }
  }
  if (o.replay.require_all) {
    for (size_t i = 0; i < unused.size() && i < kListed; ++i) {
      const ReplayIndex::Recording& r = unused[i];
      text += "rewind: unused: recording #" + std::to_string(r.id) + " " +
              r.method + " " + s_.events->LoggedPath(r.path) + " (key " +
              r.key.ToHex() + ")\n";
    }
    if (unused_total > kListed) {
      text += "rewind: ... and " + std::to_string(unused_total - kListed) +
              " more unused recordings\n";
    }
  }
  if (o.replay.strict || o.replay.require_all || o.replay.strict_near) {
    text +=
        report.passed ? "rewind: passed\n" : "rewind: failed: " + failed + "\n";
  }

  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Key(w, "requests");
  w.Uint64(totals.requests);
  Key(w, "hits");
  w.Uint64(totals.hits);
  Key(w, "near");
  w.Uint64(totals.near);
  Key(w, "misses");
  w.StartArray();
  for (const JournalEntry& e : totals.missed) {
    WriteEntry(w, e, EntryForm{s_.events});
  }
  w.EndArray();
  Key(w, "unused");
  w.StartArray();
  for (const ReplayIndex::Recording& r : unused)
    WriteRecording(w, r, s_.events);
  w.EndArray();
  Key(w, "passed");
  w.Bool(report.passed);
  w.EndObject();
  report.json = Done(buffer);
  return report;
}

}  // namespace rwd
