// verify, rekey, prune and merge: checking, repairing and combining
// recordings.
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "cli/commands.h"
#include "util/text.h"

namespace rwd {

Result<std::vector<ExchangeSummary>> KeySummaries(Store* store) {
  std::vector<ExchangeSummary> rows;
  Status s =
      store->ScanKeys([&](const ExchangeSummary& e) { rows.push_back(e); });
  if (!s.ok()) return s;
  std::sort(rows.begin(), rows.end(),
            [](const ExchangeSummary& a, const ExchangeSummary& b) {
              return a.id < b.id;
            });
  return rows;
}

int RunVerify(Store* store, std::ostream& out, std::ostream& err) {
  Result<std::string> integrity = store->IntegrityCheck();
  if (!integrity.ok()) {
    err << "rewind: " << integrity.status().message() << "\n";
    return kExitError;
  }
  Result<std::vector<ExchangeSummary>> listed = KeySummaries(store);
  if (!listed.ok()) {
    err << "rewind: " << listed.status().message() << "\n";
    return kExitError;
  }
  const std::vector<ExchangeSummary>& rows = listed.value();
  Canonicalizer canon(store->rules());
  int64_t undecodable = 0, wrong_keys = 0, incomplete = 0;
  Progress progress("verify", static_cast<int64_t>(rows.size()));
  int64_t done = 0;
  for (const ExchangeSummary& row : rows) {
    progress.Update(++done);
    Result<Exchange> e = store->Get(row.id);
    if (!e.ok()) {
      ++undecodable;
      out << "exchange " << row.id << ": " << e.status().message() << "\n";
      continue;
    }
    if (!e->complete) ++incomplete;
    const std::string key = canon.Key(e->request).ToHex();
    if (key != e->key_hex) {
      ++wrong_keys;
      out << "exchange " << row.id << ": stored key " << ShownKey(e->key_hex)
          << " but the request hashes to " << key << "\n";
    }
  }
  const bool integrity_ok = integrity.value() == "ok";
  if (!integrity_ok) out << "integrity check: " << integrity.value() << "\n";
  out << rows.size() << " exchanges; integrity "
      << (integrity_ok ? "ok" : "FAILED") << "; " << undecodable
      << " undecodable; " << wrong_keys << " with a wrong key; " << incomplete
      << " incomplete (allowed)\n";
  const bool settled = ReportUnsettled(store->file_state(), out);
  return integrity_ok && undecodable == 0 && wrong_keys == 0 && settled
             ? kExitOk
             : kExitFindings;
}

bool ReportUnsettled(const Store::FileState& file, std::ostream& out) {
  if (file.wal_bytes > 0) {
    out << "left mid-write: a -wal file of " << file.wal_bytes
        << " bytes beside it holds commits the file alone may lack (its "
           "recorder is still running, or was killed). Keep the two files "
           "together; once no recorder runs, `rewind verify --settle --db "
           "FILE` where they are writable folds them into one file\n";
    return false;
  }
  if (file.wal_mode) {
    out << "not closed cleanly: still in WAL mode (its recorder is still "
           "running, was killed, or was an older rewind); complete as it "
           "stands if no -wal file was separated from it. `rewind verify "
           "--settle --db FILE` where it is writable makes it one "
           "self-contained file\n";
    return false;
  }
  return true;
}

int RunSettle(Store* store, std::ostream& err) {
  Status s = store->Settle();
  if (!s.ok()) {
    err << "rewind: " << s.message() << "\n";
    return kExitError;
  }
  return kExitOk;
}

int RunRekey(Store* store, const KeyRules& rules, std::ostream& err) {
  Result<std::vector<ExchangeSummary>> listed = KeySummaries(store);
  if (!listed.ok()) {
    err << "rewind: " << listed.status().message() << "\n";
    return kExitError;
  }
  std::vector<int64_t> ids;
  for (const ExchangeSummary& e : listed.value()) ids.push_back(e.id);
  Canonicalizer canon(rules);
  std::vector<std::pair<int64_t, std::string>> keys;
  Progress progress("rekey", static_cast<int64_t>(ids.size()));
  int64_t changed = 0;
  for (int64_t id : ids) {
    Result<Exchange> e = store->Get(id);
    if (!e.ok()) {
      err << "rewind: " << e.status().message() << "\n";
      return kExitError;
    }
    std::string key = canon.Key(e->request).ToHex();
    if (key != e->key_hex) ++changed;
    keys.emplace_back(id, std::move(key));
    progress.Update(static_cast<int64_t>(keys.size()));
  }
  Status s = store->UpdateKeys(keys);
  if (s.ok()) s = store->SetRules(rules);
  if (!s.ok()) {
    err << "rewind: " << s.message() << "\n";
    return kExitError;
  }
  err << "rewind: re-keyed " << ids.size() << " exchanges (" << changed
      << " keys changed) under " << rules.ToJson() << "\n";
  return kExitOk;
}

int RunPrune(Store* store, const PruneFlags& f, std::ostream& err) {
  if (!f.incomplete && !f.status && !f.keep_last) {
    err << "rewind: say what to prune: --incomplete, --status N or --keep-last "
           "K\n";
    return kExitError;
  }
  if (f.keep_last && *f.keep_last < 1) {
    err << "rewind: --keep-last must be at least 1\n";
    return kExitError;
  }
  Result<std::vector<ExchangeSummary>> listed = KeySummaries(store);
  if (!listed.ok()) {
    err << "rewind: " << listed.status().message() << "\n";
    return kExitError;
  }
  const std::vector<ExchangeSummary>& rows = listed.value();
  std::map<std::string, int64_t> per_key;
  for (const ExchangeSummary& e : rows) ++per_key[e.key_hex];
  std::map<std::string, int64_t> seen;
  std::vector<int64_t> doomed;
  for (const ExchangeSummary& e : rows) {  // id order: oldest first
    const int64_t index = seen[e.key_hex]++;
    const bool old = f.keep_last && per_key[e.key_hex] - index > *f.keep_last;
    if ((f.incomplete && !e.complete) || (f.status && e.status == *f.status) ||
        old) {
      doomed.push_back(e.id);
    }
  }
  Status s = store->Delete(doomed);
  if (!s.ok()) {
    err << "rewind: " << s.message() << "\n";
    return kExitError;
  }
  err << "rewind: removed " << doomed.size() << " of " << rows.size()
      << " exchanges\n";
  return kExitOk;
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
  std::stable_sort(order.begin(), order.end(),
                   [](const Source& a, const Source& b) {
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
      err << "rewind: " << inputs[src.input] << ": " << e.status().message()
          << "\n";
      return kExitError;
    }
    e->id = 0;
    e->key_hex = canon.Key(e->request).ToHex();
    if (dedupe) {
      const std::string digest = std::to_string(e->response.status) + ":" +
                                 HashBytes(e->response.Body()).ToHex();
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
  err << "rewind: merged " << tickets.size() << " exchanges from "
      << inputs.size() << " recordings"
      << (dedupe ? ", " + std::to_string(dropped) + " duplicates dropped" : "")
      << "\n";
  return kExitOk;
}

}  // namespace rwd
