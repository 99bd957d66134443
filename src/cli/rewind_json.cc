// The rewind JSON export (written and read by cereal): every exchange with
// its timeline, the key rules and a schema version. Members are serialized
// in alphabetical order so the file diffs well.

// cereal parses with RapidJSON's full-precision number path unless told
// otherwise; RapidJSON 1.1 calls __builtin_clzll(0) there for numbers like
// "0e55" (undefined; found by fuzz_import). An export holds only integers
// and strings, so the plain IEEE path loses nothing. Iterative, so the
// parse itself cannot overflow the stack (RunImport also refuses input
// nested deeper than kMaxJsonDepth before any parse).
#define RAPIDJSON_PARSE_DEFAULT_FLAGS kParseIterativeFlag
#include <cereal/archives/json.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/formats.h"
#include "rewind/exchange.h"

namespace rwd {
namespace {

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

// rewind's own time (own_after_us, own_before_us) is written only when
// known, and optional when read: a file written before it was measured
// lacks it, and an older rewind reading a newer file passes over it.
struct JsonResponse {
  bool chunked = false;
  std::vector<JsonChunk> chunks;
  std::vector<std::string> headers;
  int64_t headers_us = 0;
  int64_t own_after_us = -1;
  int64_t own_before_us = -1;
  int status = 0;
  template <class A>
  void save(A& a) const {
    a(CEREAL_NVP(chunked), CEREAL_NVP(chunks), CEREAL_NVP(headers),
      CEREAL_NVP(headers_us));
    if (own_after_us >= 0) a(CEREAL_NVP(own_after_us));
    if (own_before_us >= 0) a(CEREAL_NVP(own_before_us));
    a(CEREAL_NVP(status));
  }
  // cereal finds members by name and throws on a missing one before
  // moving on (see JsonRules::load).
  template <class A>
  void load(A& a) {
    a(CEREAL_NVP(chunked), CEREAL_NVP(chunks), CEREAL_NVP(headers),
      CEREAL_NVP(headers_us), CEREAL_NVP(status));
    auto optional = [&a](const char* name, int64_t* us) {
      try {
        a(cereal::make_nvp(name, *us));
      } catch (const cereal::Exception&) {
        *us = -1;
      }
    };
    optional("own_after_us", &own_after_us);
    optional("own_before_us", &own_before_us);
    if (own_after_us < -1) own_after_us = -1;
    if (own_before_us < -1) own_before_us = -1;
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

struct JsonNormalizer {
  std::string path, name, pattern, replacement;
  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(name), CEREAL_NVP(path), CEREAL_NVP(pattern),
      CEREAL_NVP(replacement));
  }
};

// The key rules as an export holds them: members sorted; the lists added
// after the first export (scrub, normalize) written only when set, and
// tool_sets only when on.
struct JsonRules {
  std::vector<std::string> ignore_fields;
  std::vector<std::string> match_headers;
  std::vector<std::string> scrub, scrub_patterns;
  std::vector<JsonNormalizer> normalize;
  bool content_equivalence = false;
  bool tool_sets = false;

  JsonRules() = default;
  explicit JsonRules(const KeyRules& r)
      : ignore_fields(r.ignore_fields),
        match_headers(r.match_headers),
        scrub(r.scrub),
        scrub_patterns(r.scrub_patterns),
        content_equivalence(r.content_equivalence),
        tool_sets(r.tool_sets) {
    for (const Normalizer& n : r.normalizers) {
      normalize.push_back({n.path, n.name, n.pattern, n.replacement});
    }
  }
  KeyRules ToRules() const {
    KeyRules r{ignore_fields, match_headers};
    r.scrub = scrub;
    r.scrub_patterns = scrub_patterns;
    for (const JsonNormalizer& n : normalize) {
      r.normalizers.push_back({n.path, n.name, n.pattern, n.replacement});
    }
    r.content_equivalence = content_equivalence;
    r.tool_sets = tool_sets;
    return r;
  }
  template <class A>
  void save(A& a) const {
    a(CEREAL_NVP(content_equivalence), CEREAL_NVP(ignore_fields),
      CEREAL_NVP(match_headers));
    if (!normalize.empty()) a(CEREAL_NVP(normalize));
    if (!scrub.empty() || !scrub_patterns.empty()) {
      a(CEREAL_NVP(scrub), CEREAL_NVP(scrub_patterns));
    }
    if (tool_sets) a(CEREAL_NVP(tool_sets));
  }
  // A file written before these members existed lacks them (content
  // equivalence and tool sets then read as off: its keys were made
  // without them). cereal
  // throws on a missing member before moving on, so the archive is still
  // where it was.
  template <class A>
  void load(A& a) {
    a(CEREAL_NVP(ignore_fields), CEREAL_NVP(match_headers));
    auto optional = [&a](auto&& nvp) {
      try {
        a(nvp);
      } catch (const cereal::Exception&) {
      }
    };
    optional(CEREAL_NVP(normalize));
    optional(CEREAL_NVP(scrub));
    optional(CEREAL_NVP(scrub_patterns));
    optional(CEREAL_NVP(content_equivalence));
    optional(CEREAL_NVP(tool_sets));
  }
};

JsonExchange ToJson(const Exchange& e) {
  JsonExchange j;
  j.arrival_offset_us = e.arrival_offset_us;
  j.complete = e.complete;
  j.error = e.error;
  j.id = e.id;
  j.key = e.key_hex;
  EncodedText body = EncodeBody(e.request.body);
  j.request = {body.text,        body.encoding,  HeaderLines(e.request.headers),
               e.request.method, e.request.path, e.request.query};
  j.response.chunked = e.response.chunked;
  for (const Chunk& c : e.response.chunks) {
    EncodedText t = EncodeBody(c.data);
    j.response.chunks.push_back({t.text, t.encoding, c.offset_us});
  }
  j.response.headers = HeaderLines(e.response.headers);
  j.response.headers_us = e.response.headers_us;
  j.response.own_after_us = e.response.own_after_us;
  j.response.own_before_us = e.response.own_before_us;
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
  Result<std::string> body =
      DecodeBody(j.request.body, j.request.body_encoding);
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
    Result<std::string> data = DecodeBody(c.data, c.encoding);
    if (!data.ok()) return data.status();
    e.response.chunks.push_back({c.offset_us, data.value()});
  }
  Result<HeaderList> sh = HeaderPairs(j.response.headers);
  if (!sh.ok()) return sh.status();
  e.response.headers = sh.value();
  e.response.headers_us = j.response.headers_us;
  e.response.own_after_us = j.response.own_after_us;
  e.response.own_before_us = j.response.own_before_us;
  e.response.status = j.response.status;
  e.started_at_us = j.started_at_us;
  return e;
}

}  // namespace

int WriteJsonExport(Store* store, std::ostream& out, std::ostream& err) {
  Result<std::vector<int64_t>> ids = ExchangeIds(store);
  if (!ids.ok()) {
    err << "rewind: " << ids.status().message() << "\n";
    return kExitError;
  }
  Progress progress("export", static_cast<int64_t>(ids->size()));
  try {
    cereal::JSONOutputArchive ar(
        out,
        cereal::JSONOutputArchive::Options(
            324, cereal::JSONOutputArchive::Options::IndentChar::space, 1));
    ar(cereal::make_nvp("canonicalizer",
                        std::string(Canonicalizer::NameFor(store->rules()))));
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
    ar(cereal::make_nvp("key_rules", JsonRules(store->rules())));
    ar(cereal::make_nvp("schema_version", kExportSchemaVersion));
  } catch (const cereal::Exception& e) {
    err << "rewind: writing the export: " << e.what() << "\n";
    return kExitError;
  }
  out << "\n";
  return out ? kExitOk : kExitError;
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
    const KeyRules file_rules = rules.ToRules();
    if (!rekey && (canonicalizer != Canonicalizer::NameFor(file_rules) ||
                   !(file_rules == store->rules()))) {
      err << "rewind: the file was keyed by " << canonicalizer << " with rules "
          << file_rules.ToJson() << "; this recording uses "
          << Canonicalizer::NameFor(store->rules()) << " with "
          << store->rules().ToJson()
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
        err << "rewind: exchange " << j.id << ": " << e.status().message()
            << "\n";
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

}  // namespace rwd
