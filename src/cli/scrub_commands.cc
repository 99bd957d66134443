#include "cli/scrub_commands.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/usage.h"
#include "scrub/scrubber.h"

namespace rwd {
namespace {

// The --scrub lists joined and parsed, or none.
Result<std::vector<std::string>> KindsOf(const ScrubFlags& flags) {
  if (flags.kinds.empty()) return std::vector<std::string>();
  std::string joined;
  for (const std::string& k : flags.kinds) {
    joined += (joined.empty() ? "" : ",") + k;
  }
  return scrub::ParseKinds(joined);
}

Result<std::vector<int64_t>> Ids(Store* store) {
  std::vector<int64_t> ids;
  Status s = store->ScanKeys(
      [&ids](const ExchangeSummary& e) { ids.push_back(e.id); });
  if (!s.ok()) return s;
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// "email 2, phone 1" for the non-zero counts.
std::string Described(const scrub::Detectors& d, const scrub::Counts& counts) {
  std::string out;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    out += (out.empty() ? "" : ", ") + d.name(static_cast<int>(i)) + " " +
           std::to_string(counts[i]);
  }
  return out;
}

void Add(scrub::Counts* total, const scrub::Counts& more) {
  if (total->size() < more.size()) total->resize(more.size());
  for (size_t i = 0; i < more.size(); ++i) (*total)[i] += more[i];
}

bool Any(const scrub::Counts& c) {
  return std::any_of(c.begin(), c.end(), [](size_t n) { return n > 0; });
}

int Error(std::ostream& err, const std::string& message) {
  err << "rewind: " << message << "\n";
  return kExitError;
}

std::string ScrubHelp() {
  return "Kinds to detect, a comma list of email, phone, card, ipv4, ipv6, "
         "ip, iban, token, all (repeatable)";
}

}  // namespace

int RunScan(Store* store, const ScrubFlags& flags, std::ostream& out,
            std::ostream& err) {
  Result<std::vector<std::string>> kinds = KindsOf(flags);
  if (!kinds.ok()) return Error(err, kinds.status().message());
  std::vector<std::string> k = kinds.value();
  std::vector<std::string> patterns = flags.patterns;
  if (k.empty() && patterns.empty()) {
    k = store->rules().scrub;
    patterns = store->rules().scrub_patterns;
  }
  if (k.empty() && patterns.empty()) k = scrub::BuiltinKinds();
  auto detectors = scrub::Detectors::Make(k, patterns);
  if (!detectors.ok()) return Error(err, detectors.status().message());
  const scrub::Detectors& d = *detectors.value();
  // The edits are thrown away: only the counts matter.
  scrub::Scrubber scanner(detectors.value(), scrub::Mode::kKey);
  Result<std::vector<int64_t>> ids = Ids(store);
  if (!ids.ok()) return Error(err, ids.status().message());

  Progress progress("scan", static_cast<int64_t>(ids->size()));
  scrub::Counts total;
  int64_t exchanges_found = 0;
  int64_t unreadable = 0;
  int64_t done = 0;
  for (int64_t id : ids.value()) {
    Result<Exchange> e = store->Get(id);
    if (!e.ok()) return Error(err, e.status().message());
    std::vector<std::pair<std::string, scrub::Counts>> places;
    auto place = [&places](std::string name) -> scrub::Counts* {
      places.emplace_back(std::move(name), scrub::Counts());
      return &places.back().second;
    };
    const Request& rq = e->request;
    scanner.Path(rq.path, place("request.path"));
    scanner.Query(rq.query, place("request.query"));
    for (const auto& [name, value] : rq.headers) {
      scanner.HeaderValue(name, value, place("request.header." + name));
    }
    std::vector<std::string> notes;
    Result<std::string> body = scanner.Body(
        rq.body, FindHeader(rq.headers, "Content-Type"),
        FindHeader(rq.headers, "Content-Encoding"), place("request.body"));
    if (!body.ok())
      notes.push_back("request.body has a Content-Encoding: not scanned");
    for (const auto& [name, value] : e->response.headers) {
      scanner.HeaderValue(name, value, place("response.header." + name));
    }
    body = scanner.Body(e->response.Body(),
                        FindHeader(e->response.headers, "Content-Type"),
                        FindHeader(e->response.headers, "Content-Encoding"),
                        place("response.body"));
    if (!body.ok())
      notes.push_back("response.body has a Content-Encoding: not scanned");
    bool found = !notes.empty();
    std::string line;
    for (const auto& [name, counts] : places) {
      if (!Any(counts)) continue;
      found = true;
      Add(&total, counts);
      line += (line.empty() ? "" : "; ") + name + ": " + Described(d, counts);
    }
    for (const std::string& n : notes) line += (line.empty() ? "" : "; ") + n;
    if (found) {
      progress.Clear();
      out << "#" << id << " " << e->request.method << " " << e->request.path
          << "  " << line << "\n";
      ++exchanges_found;
      unreadable += notes.empty() ? 0 : 1;
    }
    progress.Update(++done);
  }
  progress.Clear();
  std::vector<std::string> names(d.names().begin(), d.names().end());
  if (exchanges_found == 0) {
    out << "no match of " << Joined(names) << " in " << ids->size()
        << " exchanges\n";
    return kExitOk;
  }
  out << exchanges_found << " of " << ids->size() << " exchanges hold matches ("
      << Described(d, total) << ")";
  if (unreadable > 0) out << "; " << unreadable << " with an unreadable body";
  out << "; scrub them with rewind scrub --db FILE\n";
  return kExitFindings;
}

int RunScrubInto(Store* in, Store* out, const std::string& secret,
                 bool drop_unscrubbable, std::ostream& err) {
  const KeyRules& rules = out->rules();
  auto detectors = scrub::Detectors::Make(rules.scrub, rules.scrub_patterns);
  if (!detectors.ok()) return Error(err, detectors.status().message());
  scrub::Scrubber scrubber(detectors.value(), scrub::Mode::kStore, secret);
  Canonicalizer canon(rules);
  Result<std::vector<int64_t>> ids = Ids(in);
  if (!ids.ok()) return Error(err, ids.status().message());
  Progress progress("scrub", static_cast<int64_t>(ids->size()));
  scrub::Counts total;
  std::vector<int64_t> dropped;
  std::vector<std::shared_ptr<Store::Ticket>> tickets;
  int64_t done = 0;
  for (int64_t id : ids.value()) {
    Result<Exchange> e = in->Get(id);
    if (!e.ok()) return Error(err, e.status().message());
    scrub::Counts counts;
    Status s = scrubber.ScrubRequest(&e->request, &counts);
    if (s.ok()) s = scrubber.ScrubResponse(&e->response, &counts);
    if (!s.ok()) {
      if (!drop_unscrubbable) {
        progress.Clear();
        return Error(err, "exchange #" + std::to_string(id) +
                              " has a body with a Content-Encoding, which "
                              "cannot be scrubbed; nothing was changed. Run "
                              "again with --drop-unscrubbable to leave such "
                              "exchanges out");
      }
      dropped.push_back(id);
      continue;
    }
    Add(&total, counts);
    e->key_hex = canon.Key(e->request).ToHex();
    tickets.push_back(out->Append(std::move(e).value()));
    if (tickets.size() >= 256) {
      for (auto& t : tickets) {
        Result<int64_t> r = out->WaitCommitted(t);
        if (!r.ok()) return Error(err, r.status().message());
      }
      tickets.clear();
    }
    progress.Update(++done);
  }
  for (auto& t : tickets) {
    Result<int64_t> r = out->WaitCommitted(t);
    if (!r.ok()) return Error(err, r.status().message());
  }
  progress.Clear();
  std::string found = Described(*detectors.value(), total);
  err << "rewind: scrubbed " << (ids->size() - dropped.size()) << " exchanges ("
      << (found.empty() ? "nothing found" : found)
      << "), keys recomputed under " << rules.ToJson() << "\n";
  if (!dropped.empty()) {
    std::string list;
    for (int64_t id : dropped)
      list += (list.empty() ? "#" : ", #") + std::to_string(id);
    err << "rewind: left out " << dropped.size()
        << " exchanges with an encoded body: " << list << "\n";
  }
  return kExitOk;
}

Command AddScanCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    ScrubFlags scrub;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* scan = app.add_subcommand(
      "scan",
      "Report personal data and secrets left in a recording (never their "
      "values): exit 1 when some are found, so CI can refuse to commit it. "
      "Detectors: --scrub and --scrub-pattern, else the recording's own, "
      "else all.\nExample: rewind scan --db rec.sqlite");
  scan->add_option("--db", f->db, "Recording file (SQLite)")->required();
  scan->add_option("--scrub", f->scrub.kinds, ScrubHelp())->type_name("KINDS");
  scan->add_option("--scrub-pattern", f->scrub.patterns,
                   "A detector of your own, NAME=REGEX (RE2; repeatable)");
  return {
      scan, [f] {
        Status checked = CheckRecordingPath(f->db, false);
        if (!checked.ok()) return Fail(checked);
        Result<std::vector<std::string>> kinds = KindsOf(f->scrub);
        if (!kinds.ok()) return Fail(kinds.status());
        Status patterns =
            scrub::Detectors::Make(kinds.value(), f->scrub.patterns).status();
        if (!patterns.ok()) return Fail(patterns);
        StoreOptions so;
        so.path = f->db;
        so.read_only = true;
        Result<std::unique_ptr<Store>> store = Store::Open(so);
        if (!store.ok()) return Fail(store.status());
        return RunScan(store.value().get(), f->scrub, std::cout, std::cerr);
      }};
}

Command AddScrubCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    ScrubFlags scrub;
    std::string key;
    bool drop_unscrubbable = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "scrub",
      "Replace personal data and secrets in an existing recording, as "
      "record --scrub would have, and re-key it. The file is rewritten whole "
      "(no old page keeps a value) and replaced only once complete.\n"
      "Example: rewind scrub --db rec.sqlite --scrub email,phone,card,token");
  cmd->add_option("--db", f->db, "Recording file (SQLite)")->required();
  cmd->add_option("--scrub", f->scrub.kinds,
                  ScrubHelp() + "; added to the recording's own")
      ->type_name("KINDS");
  cmd->add_option("--scrub-pattern", f->scrub.patterns,
                  "A detector of your own, NAME=REGEX (RE2; repeatable)");
  cmd->add_option("--scrub-key", f->key,
                  "Secret of the placeholders (at least 16 characters; never "
                  "stored); default: a random one")
      ->envname("REWIND_SCRUB_KEY");
  cmd->add_flag("--drop-unscrubbable", f->drop_unscrubbable,
                "Leave out exchanges whose body has a Content-Encoding "
                "(else the command fails and changes nothing)");
  return {
      cmd, [f] {
        Status checked = CheckRecordingPath(f->db, false);
        if (!checked.ok()) return Fail(checked);
        Result<std::vector<std::string>> kinds = KindsOf(f->scrub);
        if (!kinds.ok()) return Fail(kinds.status());
        Status valid =
            scrub::Detectors::Make(kinds.value(), f->scrub.patterns).status();
        if (!valid.ok()) return Fail(valid);
        if (!f->key.empty() && f->key.size() < 16) {
          return Fail(Status::InvalidArgument(
              "--scrub-key must be at least 16 characters"));
        }
        StoreOptions so;
        so.path = f->db;
        so.read_only = true;
        Result<std::unique_ptr<Store>> in = Store::Open(so);
        if (!in.ok()) return Fail(in.status());
        if (in.value()->file_state().wal_bytes > 0 ||
            in.value()->file_state().wal_mode) {
          return Fail(Status::InvalidArgument(
              f->db +
              " is still being written or was left mid-write; "
              "stop its recorder, then settle it: rewind verify --settle "
              "--db " +
              f->db));
        }
        // The new rules: the recording's, with these detectors added.
        KeyRules rules = in.value()->rules();
        for (const std::string& k : kinds.value()) {
          if (std::find(rules.scrub.begin(), rules.scrub.end(), k) ==
              rules.scrub.end()) {
            rules.scrub.push_back(k);
          }
        }
        Result<std::vector<std::string>> ordered =
            scrub::ParseKinds(Joined(rules.scrub));
        rules.scrub = ordered.ok() ? ordered.value() : rules.scrub;
        for (const std::string& p : f->scrub.patterns) {
          if (std::find(rules.scrub_patterns.begin(),
                        rules.scrub_patterns.end(),
                        p) == rules.scrub_patterns.end()) {
            rules.scrub_patterns.push_back(p);
          }
        }
        if (rules.scrub.empty() && rules.scrub_patterns.empty()) {
          return Fail(Status::InvalidArgument(
              "say what to scrub: --scrub KINDS (e.g. all) or "
              "--scrub-pattern NAME=REGEX"));
        }
        Status s = ValidateScrubRules(rules);
        if (!s.ok()) return Fail(s);
        const std::string tmp = f->db + ".scrubbing";
        if (std::filesystem::exists(tmp)) {
          return Fail(Status::InvalidArgument(
              tmp +
              " exists (left by an interrupted scrub?); remove it "
              "and run again"));
        }
        int code;
        {
          StoreOptions to;
          to.path = tmp;
          to.create_if_missing = true;
          to.rules = rules;
          Result<std::unique_ptr<Store>> out = Store::Open(to);
          if (!out.ok()) return Fail(out.status());
          code = RunScrubInto(in.value().get(), out.value().get(),
                              f->key.empty() ? scrub::NewSecret() : f->key,
                              f->drop_unscrubbable, std::cerr);
          if (code == kExitOk) {
            Status settled = out.value()->Settle();
            if (!settled.ok()) code = Fail(settled);
          }
        }
        in.value().reset();
        std::error_code ec;
        if (code != kExitOk) {
          for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
            std::filesystem::remove(tmp + suffix, ec);
          }
          return code;
        }
        std::filesystem::rename(tmp, f->db, ec);
        if (ec) {
          std::filesystem::remove(tmp, ec);
          return Fail(
              Status::IOError("cannot replace " + f->db + ": " + ec.message()));
        }
        return kExitOk;
      }};
}

}  // namespace rwd
