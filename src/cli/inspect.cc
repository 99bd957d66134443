// ls, show and stats: reading a recording.
#include <fnmatch.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cinttypes>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <unordered_map>

#include "cli/commands.h"
#include "util/text.h"

namespace rwd {
namespace {

std::string Ms(int64_t us) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << static_cast<double>(us) / 1000.0;
  return out.str();
}

// Copies a document to a PrettyWriter, numbers as they were written.
// Stops (returns false) past kMaxJsonDepth levels or "max_bytes" of output:
// the indentation of a deep document grows with the square of its depth.
class PrettyCopy
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, PrettyCopy> {
 public:
  using Pretty = rapidjson::PrettyWriter<rapidjson::StringBuffer>;
  PrettyCopy(Pretty* w, const rapidjson::StringBuffer* out, size_t max_bytes)
      : w_(w), out_(out), max_bytes_(max_bytes) {}
  bool Null() { return w_->Null() && Fits(); }
  bool Bool(bool b) { return w_->Bool(b) && Fits(); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return w_->RawValue(s, n, rapidjson::kNumberType) && Fits();
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return w_->String(s, n) && Fits();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    return w_->Key(s, n) && Fits();
  }
  bool StartObject() { return ++depth_ <= kMaxJsonDepth && w_->StartObject(); }
  bool StartArray() { return ++depth_ <= kMaxJsonDepth && w_->StartArray(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return w_->EndObject(n) && Fits();
  }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return w_->EndArray(n) && Fits();
  }

 private:
  bool Fits() const { return out_->GetSize() <= max_bytes_; }
  Pretty* w_;
  const rapidjson::StringBuffer* out_;
  size_t max_bytes_;
  int depth_ = 0;
};

// Pretty-printed JSON, or "" when "text" is not JSON, nests deeper than
// kMaxJsonDepth, or would print more than 16 times its own size (then the
// caller prints it as it is).
std::string PrettyJson(const std::string& text) {
  if (text.empty()) return "";
  rapidjson::StringBuffer b;
  PrettyCopy::Pretty w(b);
  w.SetIndent(' ', 2);
  PrettyCopy copy(&w, &b, 16 * text.size() + 4096);
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::Reader reader;
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;
  if (reader.Parse<kFlags>(ms, copy).IsError() || ms.Tell() != text.size()) {
    return "";
  }
  return std::string(b.GetString(), b.GetSize());
}

std::string Indent(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) out += prefix + line + "\n";
  return out;
}

// Printable form of bytes that may not be text.
std::string Printable(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f) || c >= 0x80) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// rewind's own share of the recorded time (rewind/exchange.h: Response).
std::string OwnTimeLine(const Response& r) {
  auto ms = [](int64_t us) {
    std::ostringstream out;
    out << std::fixed << std::setprecision(2)
        << static_cast<double>(us) / 1000.0;
    return out.str();
  };
  if (r.own_before_us < 0 && r.own_after_us < 0) {
    return "rewind's own time: not known (recorded by an older rewind, or "
           "imported without it)";
  }
  std::string line = "rewind's own time: ";
  line += r.own_before_us < 0 ? std::string("not known")
                              : ms(r.own_before_us) + " ms";
  line += " before forwarding, ";
  line += r.own_after_us < 0 ? std::string("not known")
                             : ms(r.own_after_us) + " ms";
  return line + " after the last byte";
}

double Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i =
      static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return static_cast<double>(v[std::min(i, v.size() - 1)]) / 1000.0;
}

// The key rules on one line: "ignore user, metadata; normalize date;
// content equivalence on; tool sets on".
std::string RulesLine(const KeyRules& rules) {
  auto list = [](const std::vector<std::string>& items) {
    std::string s;
    for (const std::string& i : items) s += (s.empty() ? "" : ", ") + i;
    return s.empty() ? std::string("none") : s;
  };
  std::vector<std::string> normalizers;
  for (const Normalizer& n : rules.normalizers)
    normalizers.push_back(n.ToString());
  return "ignore " + list(rules.ignore_fields) + "; match headers " +
         list(rules.match_headers) + "; normalize " + list(normalizers) +
         "; content equivalence " + (rules.content_equivalence ? "on" : "off") +
         "; tool sets " + (rules.tool_sets ? "on" : "off");
}

}  // namespace

int RunLs(Store* store, const LsFlags& f, std::ostream& out,
          std::ostream& err) {
  std::vector<ExchangeSummary> rows;
  std::unordered_map<std::string, int> seen;  // key -> how many so far
  std::vector<int> sequence;
  Status s = store->Scan([&](const ExchangeSummary& e) {
    const int seq = ++seen[e.key_hex];
    if (!f.path_glob.empty() &&
        fnmatch(f.path_glob.c_str(), e.path.c_str(), 0) != 0)
      return;
    if (!f.method.empty() && e.method != f.method) return;
    if (f.status != 0 && e.status != f.status) return;
    rows.push_back(e);
    sequence.push_back(seq);
  });
  if (!s.ok()) {
    err << "rewind: " << s.message() << "\n";
    return kExitError;
  }
  if (f.json) {
    out << "[";
    for (size_t i = 0; i < rows.size(); ++i) {
      const ExchangeSummary& e = rows[i];
      out << (i ? ",\n " : "\n ") << "{\"id\":" << e.id
          << ",\"key\":" << JsonQuote(e.key_hex)
          << ",\"started_at_us\":" << e.started_at_us
          << ",\"method\":" << JsonQuote(e.method)
          << ",\"path\":" << JsonQuote(e.path)
          << ",\"query\":" << JsonQuote(e.query)
          << ",\"model\":" << JsonQuote(e.model) << ",\"status\":" << e.status
          << ",\"complete\":" << (e.complete ? "true" : "false")
          << ",\"headers_us\":" << e.headers_us
          << ",\"total_us\":" << e.total_us << ",\"bytes\":" << e.response_bytes
          << ",\"chunks\":" << e.chunks << ",\"sequence\":" << sequence[i]
          << "}";
    }
    out << (rows.empty() ? "]\n" : "\n]\n");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> table = {
      {"ID", "TIME (UTC)", "METHOD", "PATH", "MODEL", "STATUS", "HEADERS ms",
       "TOTAL ms", "BYTES", "CHUNKS", "SEQ"}};
  bool any_incomplete = false;
  for (size_t i = 0; i < rows.size(); ++i) {
    const ExchangeSummary& e = rows[i];
    any_incomplete |= !e.complete;
    table.push_back(
        {std::to_string(e.id), TableTimeUtc(e.started_at_us), e.method,
         e.query.empty() ? e.path : e.path + "?" + e.query, e.model,
         std::to_string(e.status) + (e.complete ? "" : "!"), Ms(e.headers_us),
         Ms(e.total_us), std::to_string(e.response_bytes),
         std::to_string(e.chunks), std::to_string(sequence[i])});
  }
  std::vector<size_t> widths(table[0].size(), 0);
  for (const auto& row : table) {
    for (size_t c = 0; c < row.size(); ++c)
      widths[c] = std::max(widths[c], row[c].size());
  }
  const size_t path_col = 3;
  if (f.width > 0) {
    size_t total = 0;
    for (size_t w : widths) total += w + 2;
    if (total > static_cast<size_t>(f.width)) {
      const size_t over = total - static_cast<size_t>(f.width);
      widths[path_col] = std::max<size_t>(
          8, widths[path_col] > over ? widths[path_col] - over : 8);
    }
  }
  const std::vector<bool> right = {true, false, false, false, false, true,
                                   true, true,  true,  true,  true};
  for (const auto& row : table) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string cell = row[c];
      if (cell.size() > widths[c]) cell = cell.substr(0, widths[c] - 1) + "~";
      const std::string pad(widths[c] - cell.size(), ' ');
      line += right[c] ? pad + cell : cell + pad;
      if (c + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
  out << rows.size() << " exchange" << (rows.size() == 1 ? "" : "s");
  if (any_incomplete) out << "; ! = incomplete (the response broke off)";
  out << "\n";
  return kExitOk;
}

// "scrubbed: email, phone; patterns customer=...", or "" when not.
static std::string ScrubbedLine(const KeyRules& rules) {
  if (rules.scrub.empty() && rules.scrub_patterns.empty()) return "";
  std::string line = "scrubbed: ";
  for (size_t i = 0; i < rules.scrub.size(); ++i) {
    line += (i ? ", " : "") + rules.scrub[i];
  }
  if (!rules.scrub_patterns.empty()) {
    line += rules.scrub.empty() ? "patterns " : "; patterns ";
    for (size_t i = 0; i < rules.scrub_patterns.size(); ++i) {
      line += (i ? ", " : "") + rules.scrub_patterns[i];
    }
  }
  return line + " (values replaced by <kind:hhhhhhhh>, keyed as <kind>)";
}

int RunShow(Store* store, const std::string& what, bool raw, std::ostream& out,
            std::ostream& err) {
  int64_t id = 0;
  if (!what.empty() &&
      what.find_first_not_of("0123456789") == std::string::npos) {
    id = std::stoll(what);
  } else {
    std::vector<int64_t> matches;
    Status s = store->Scan([&](const ExchangeSummary& e) {
      if (!what.empty() && e.key_hex.rfind(what, 0) == 0)
        matches.push_back(e.id);
    });
    if (!s.ok()) {
      err << "rewind: " << s.message() << "\n";
      return kExitError;
    }
    if (matches.empty()) {
      err << "rewind: no exchange has id or key prefix \"" << what << "\"\n";
      return kExitFindings;
    }
    id = matches.front();
    if (matches.size() > 1) {
      err << "rewind: key prefix \"" << what << "\" matches " << matches.size()
          << " exchanges (showing #" << id << ", the first)\n";
    }
  }
  Result<Exchange> r = store->Get(id);
  if (!r.ok()) {
    err << "rewind: " << r.status().message() << "\n";
    return r.status().IsNotFound() ? kExitFindings : kExitError;
  }
  const Exchange& e = r.value();
  const Response& res = e.response;
  out << "exchange " << e.id << "  key " << ShownKey(e.key_hex) << "\n";
  out << "recorded " << TableTimeUtc(e.started_at_us) << " UTC, "
      << Ms(e.arrival_offset_us) << " ms into its session, "
      << (e.complete ? "complete" : "INCOMPLETE: " + e.error) << "\n";
  const std::string scrubbed = ScrubbedLine(store->rules());
  if (!scrubbed.empty()) out << scrubbed << "\n";
  out << "\n";
  out << "request\n  " << e.request.method << " " << e.request.Target() << "\n";
  for (const auto& [n, v] : e.request.headers)
    out << "  " << n << ": " << v << "\n";
  if (!e.request.body.empty()) {
    std::string pretty = raw ? "" : PrettyJson(e.request.body);
    out << "\n"
        << Indent(pretty.empty() ? Printable(e.request.body) : pretty, "  ");
  }
  out << "\nresponse " << res.status << ", headers at " << Ms(res.headers_us)
      << " ms, ";
  if (!res.chunks.empty())
    out << "first byte at " << Ms(res.chunks.front().offset_us) << " ms, ";
  out << "last byte at " << Ms(res.TotalMicros()) << " ms, "
      << res.chunks.size() << " chunk" << (res.chunks.size() == 1 ? "" : "s")
      << ", " << res.Body().size() << " bytes, "
      << (res.chunked ? "chunked" : "Content-Length") << "\n";
  out << "  " << OwnTimeLine(res) << "\n";
  for (const auto& [n, v] : res.headers) out << "  " << n << ": " << v << "\n";
  out << "\n";
  const std::string body = res.Body();
  const bool stream =
      FindHeader(res.headers, "Content-Type").find("event-stream") !=
          std::string::npos ||
      res.chunks.size() > 1;
  if (stream) {
    for (const Chunk& c : res.chunks) {
      std::ostringstream offset;
      offset << "  +" << std::setw(9) << Ms(c.offset_us) << " ms  ";
      std::string text = Printable(c.data);
      while (!text.empty() && text.back() == '\n') text.pop_back();
      out << Indent(text, offset.str()).substr(0);
    }
  } else {
    std::string pretty = raw ? "" : PrettyJson(body);
    out << Indent(pretty.empty() ? Printable(body) : pretty, "  ");
  }
  out << "\ncanonical form of the key (what was hashed)\n  "
      << Printable(Canonicalizer(store->rules()).Canonical(e.request)) << "\n";
  out << "under the recording's key rules: " << RulesLine(store->rules())
      << "\n";
  return kExitOk;
}

int RunStats(Store* store, const StatsFlags& f, std::ostream& out,
             std::ostream& err) {
  if (f.by != "path" && f.by != "model") {
    err << "rewind: --by takes path or model\n";
    return kExitError;
  }
  struct Group {
    int64_t count = 0;
    std::map<int, int64_t> statuses;
    std::vector<int64_t> headers, first_byte, total, gaps;
    int64_t bytes = 0;
  };
  std::vector<std::pair<int64_t, std::string>> ids;  // id, group name
  Status s = store->Scan([&](const ExchangeSummary& e) {
    std::string name = e.method + " " + e.path;
    if (f.by == "model")
      name = (e.model.empty() ? "(no model)" : e.model) + "  " + name;
    ids.emplace_back(e.id, name);
  });
  if (!s.ok()) {
    err << "rewind: " << s.message() << "\n";
    return kExitError;
  }
  std::map<std::string, Group> groups;
  Progress progress("stats", static_cast<int64_t>(ids.size()));
  int64_t done = 0;
  for (const auto& [id, name] : ids) {
    Result<Exchange> e = store->Get(id);
    progress.Update(++done);
    if (!e.ok()) {
      err << "rewind: " << e.status().message() << "\n";
      return kExitError;
    }
    Group& g = groups[name];
    const Response& r = e->response;
    ++g.count;
    ++g.statuses[r.status];
    g.headers.push_back(r.headers_us);
    g.first_byte.push_back(r.chunks.empty() ? r.headers_us
                                            : r.chunks.front().offset_us);
    g.total.push_back(r.TotalMicros());
    for (size_t i = 1; i < r.chunks.size(); ++i) {
      g.gaps.push_back(r.chunks[i].offset_us - r.chunks[i - 1].offset_us);
    }
    for (const Chunk& c : r.chunks)
      g.bytes += static_cast<int64_t>(c.data.size());
  }
  auto dist = [](const std::vector<int64_t>& v) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(1) << Percentile(v, 0.5) << " / "
      << Percentile(v, 0.9) << " / " << Percentile(v, 0.99) << " / "
      << Percentile(v, 1.0);
    return o.str();
  };
  auto dist_json = [](const std::vector<int64_t>& v) {
    std::ostringstream o;
    o << "{\"p50\":" << Percentile(v, 0.5) << ",\"p90\":" << Percentile(v, 0.9)
      << ",\"p99\":" << Percentile(v, 0.99) << ",\"max\":" << Percentile(v, 1.0)
      << "}";
    return o.str();
  };
  if (f.json) {
    out << "[";
    bool first = true;
    for (const auto& [name, g] : groups) {
      out << (first ? "\n " : ",\n ") << "{\"group\":" << JsonQuote(name)
          << ",\"count\":" << g.count << ",\"statuses\":{";
      bool fs = true;
      for (const auto& [st, n] : g.statuses) {
        out << (fs ? "" : ",") << "\"" << st << "\":" << n;
        fs = false;
      }
      out << "},\"headers_ms\":" << dist_json(g.headers)
          << ",\"first_byte_ms\":" << dist_json(g.first_byte)
          << ",\"total_ms\":" << dist_json(g.total)
          << ",\"gap_ms\":" << dist_json(g.gaps) << ",\"bytes\":" << g.bytes
          << "}";
      first = false;
    }
    out << (groups.empty() ? "]\n" : "\n]\n");
    return kExitOk;
  }
  for (const auto& [name, g] : groups) {
    out << name << "\n  " << g.count << " exchanges, statuses";
    for (const auto& [st, n] : g.statuses) out << " " << st << "\u00d7" << n;
    out << ", " << g.bytes << " bytes\n";
    out << "  ms p50 / p90 / p99 / max\n";
    out << "    headers      " << dist(g.headers) << "\n";
    out << "    first byte   " << dist(g.first_byte) << "\n";
    out << "    total        " << dist(g.total) << "\n";
    if (!g.gaps.empty()) out << "    chunk gap    " << dist(g.gaps) << "\n";
  }
  if (groups.empty()) out << "the recording is empty\n";
  return kExitOk;
}

}  // namespace rwd
