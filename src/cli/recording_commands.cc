// The recording commands' command lines: each adds its subcommand and
// flags and returns what runs it over the opened recording (commands.h).
#include "cli/recording_commands.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <utility>

#include "cli/commands.h"
#include "cli/matching_flags.h"
#include "cli/usage.h"
#include "rewind/store.h"

namespace rwd {
namespace {

// Opens "path" for the recording commands.
Result<std::unique_ptr<Store>> OpenRecording(const std::string& path,
                                             bool writable, bool create) {
  StoreOptions so;
  so.path = path;
  so.read_only = !writable;
  so.create_if_missing = create;
  return Store::Open(so);
}

int TerminalWidth() {
  winsize ws{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
    return ws.ws_col;
  }
  return 0;
}

// Checks "path", opens it and runs "fn" on it. A recording this command
// created is removed again if "fn" fails before storing anything.
int WithStore(const std::string& path, bool writable, bool create,
              const std::function<int(Store*)>& fn) {
  Status checked = CheckRecordingPath(path, create);
  if (!checked.ok()) return Fail(checked);
  NewRecordingGuard guard(path);
  Result<std::unique_ptr<Store>> store = OpenRecording(path, writable, create);
  if (!store.ok()) {
    if (create) guard.Abandon(nullptr);
    return Fail(store.status());
  }
  const int code = fn(store.value().get());
  if (code != kExitOk && create) guard.Abandon(std::move(store.value()));
  return code;
}

// Writes through a temporary file renamed into place, so an interrupted
// export never leaves a truncated file under the final name.
int ExportTo(Store* store, const std::string& format, const std::string& out) {
  if (out == "-") return RunExport(store, format, std::cout, std::cerr);
  const std::string tmp = out + ".partial";
  int code;
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    if (!file) return Fail(Status::IOError("cannot write " + tmp));
    code = RunExport(store, format, file, std::cerr);
    file.close();
    if (code == kExitOk && !file)
      code = Fail(Status::IOError("writing " + tmp + " failed"));
  }
  std::error_code ec;
  if (code != kExitOk) {
    std::filesystem::remove(tmp, ec);
    return code;
  }
  std::filesystem::rename(tmp, out, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return Fail(Status::IOError("cannot write " + out + ": " + ec.message()));
  }
  return kExitOk;
}

void AddDbOption(CLI::App* cmd, std::string* db) {
  cmd->add_option("--db", *db, "Recording file (SQLite)")->required();
}

}  // namespace

Command AddLsCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    LsFlags ls;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* ls = app.add_subcommand(
      "ls",
      "List the exchanges of a recording.\nExample: rewind ls --db "
      "rec.sqlite --path '/v1/chat/*' --status 200");
  AddDbOption(ls, &f->db);
  ls->add_option("--path", f->ls.path_glob, "Only paths matching this glob");
  ls->add_option("--method", f->ls.method, "Only this method");
  ls->add_option("--status", f->ls.status, "Only this status");
  ls->add_flag("--json", f->ls.json, "One JSON array, for scripts");
  return {ls, [f] {
            f->ls.width = TerminalWidth();
            return WithStore(f->db, false, false, [f](Store* s) {
              return RunLs(s, f->ls, std::cout, std::cerr);
            });
          }};
}

Command AddShowCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    std::string what;
    bool raw = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* show = app.add_subcommand(
      "show",
      "Show one exchange: headers, body, stream events with their "
      "offsets, and the key's canonical form.\nExample: rewind show "
      "--db rec.sqlite 12   (or a key prefix: 5bd9f6)");
  AddDbOption(show, &f->db);
  show->add_option("what", f->what, "Exchange id or key prefix")->required();
  show->add_flag("--raw", f->raw, "Bodies as stored, not pretty-printed");
  return {show, [f] {
            return WithStore(f->db, false, false, [f](Store* s) {
              return RunShow(s, f->what, f->raw, std::cout, std::cerr);
            });
          }};
}

Command AddStatsCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    StatsFlags stats;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* stats = app.add_subcommand(
      "stats",
      "Per endpoint (or model): count, statuses, first-byte, total "
      "and chunk-gap percentiles, bytes.\nExample: rewind stats "
      "--db rec.sqlite --by model");
  AddDbOption(stats, &f->db);
  stats->add_option("--by", f->stats.by, "path or model")
      ->capture_default_str();
  stats->add_flag("--json", f->stats.json, "JSON, for scripts");
  return {stats, [f] {
            return WithStore(f->db, false, false, [f](Store* s) {
              return RunStats(s, f->stats, std::cout, std::cerr);
            });
          }};
}

Command AddExportCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    std::string out;
    std::string format = "json";
  };
  auto f = std::make_shared<Flags>();
  CLI::App* exp = app.add_subcommand(
      "export",
      "Write a recording as reviewable JSON (rewind's format, "
      "stable and diffable) or HAR 1.2.\nExample: rewind export "
      "--db rec.sqlite --out rec.json");
  AddDbOption(exp, &f->db);
  exp->add_option("--out", f->out, "Output file, - for stdout")->required();
  exp->add_option("--format", f->format, "json or har")
      ->check(CLI::IsMember({"json", "har"}))
      ->capture_default_str();
  return {exp, [f] {
            if (f->out != "-") {
              Status s = CheckOutputPath("--out", f->out);
              if (!s.ok()) return Fail(s);
            }
            return WithStore(f->db, false, false, [f](Store* s) {
              return ExportTo(s, f->format, f->out);
            });
          }};
}

Command AddImportCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    std::string in;
    std::string format;
    bool rekey = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* imp = app.add_subcommand(
      "import",
      "Add the exchanges of a rewind JSON export or a HAR file "
      "(browsers' devtools, mitmproxy) to a recording, creating "
      "it if needed.\nExample: rewind import --db rec.sqlite --in "
      "session.har");
  AddDbOption(imp, &f->db);
  imp->add_option("--in", f->in, "Input file, - for stdin")->required();
  imp->add_option("--format", f->format,
                  "json or har (default: from the content)")
      ->check(CLI::IsMember({"json", "har"}));
  imp->add_flag("--rekey", f->rekey,
                "Recompute keys under this recording's rules (needed when "
                "the file was keyed differently)");
  return {imp, [f] {
            if (f->in != "-") {
              Status s = CheckInputPath("--in", f->in);
              if (!s.ok()) return Fail(s);
            }
            return WithStore(f->db, true, true, [f](Store* s) {
              if (f->in == "-") {
                return RunImport(s, f->format, std::cin, f->rekey, std::cerr);
              }
              std::ifstream in(f->in, std::ios::binary);
              if (!in) return Fail(Status::IOError("cannot read " + f->in));
              return RunImport(s, f->format, in, f->rekey, std::cerr);
            });
          }};
}

Command AddMergeCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    std::vector<std::string> inputs;
    bool dedupe = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* merge = app.add_subcommand(
      "merge",
      "Combine recordings (one per replica) into one, keys "
      "recomputed under OUT's rules, in arrival order.\nExample: "
      "rewind merge --db all.sqlite a.sqlite b.sqlite --dedupe");
  AddDbOption(merge, &f->db);
  merge->add_option("inputs", f->inputs, "Recordings to merge")->required();
  merge->add_flag(
      "--dedupe", f->dedupe,
      "Drop an exchange whose key and response equal an earlier one's");
  return {merge, [f] {
            for (const std::string& in : f->inputs) {
              Status s = CheckInputPath("input", in);
              if (!s.ok()) return Fail(s);
              std::error_code ec;
              if (std::filesystem::exists(f->db, ec) &&
                  std::filesystem::equivalent(in, f->db, ec)) {
                return Fail(Status::InvalidArgument("--db " + f->db +
                                                    " is also an input"));
              }
            }
            return WithStore(f->db, true, true, [f](Store* s) {
              return RunMerge(s, f->inputs, f->dedupe, std::cerr);
            });
          }};
}

Command AddVerifyCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    bool settle = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* verify = app.add_subcommand(
      "verify",
      "Check a recording: SQLite integrity, every row decodes, "
      "every key recomputes. Exit 0 only when all holds.\n"
      "Example: rewind verify --db rec.sqlite");
  AddDbOption(verify, &f->db);
  verify->add_flag("--settle", f->settle,
                   "First fold a file left mid-write (a -wal file beside "
                   "it) into one self-contained file. Needs write access; "
                   "fails if a recorder still has it open");
  return {verify, [f] {
            if (f->settle) {
              int code = WithStore(f->db, true, false, [](Store* s) {
                return RunSettle(s, std::cerr);
              });
              if (code != kExitOk) return code;
            }
            return WithStore(f->db, false, false, [](Store* s) {
              return RunVerify(s, std::cout, std::cerr);
            });
          }};
}

Command AddRekeyCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    std::vector<std::string> ignore_fields;
    std::vector<std::string> match_headers;
    bool no_default_ignores = false;
    MatchingFlags matching;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* rekey = app.add_subcommand(
      "rekey",
      "Recompute every key under new rules without re-recording: "
      "the rules its flags give, as `record` makes them (without "
      "rule flags: under the recording's own rules, as a "
      "recording made by an older rewind needs).\n"
      "Example: rewind rekey --db rec.sqlite --ignore-field "
      "temperature --match-header X-Model --normalize date");
  AddDbOption(rekey, &f->db);
  rekey->add_option("--ignore-field", f->ignore_fields,
                    "Dotted JSON body path left out of the key (repeatable; "
                    "added to the defaults)");
  rekey->add_option("--match-header", f->match_headers,
                    "Header whose value joins the key (repeatable)");
  rekey->add_flag("--no-default-ignores", f->no_default_ignores,
                  "Do not ignore user, request_id, metadata, ... by default");
  AddMatchingFlags(rekey, &f->matching);
  return {rekey, [f] {
            // Without rule flags the recording keeps its rules: what a
            // recording made by an older rewind needs, re-keyed by this one.
            // With any, the new rules are what `record` makes of the same
            // flags.
            const bool new_rules =
                f->no_default_ignores || !f->ignore_fields.empty() ||
                !f->match_headers.empty() || MatchingFlagsGiven(f->matching);
            KeyRules rules{f->no_default_ignores ? std::vector<std::string>{}
                                                 : DefaultIgnoredFields(),
                           f->match_headers};
            rules.ignore_fields.insert(rules.ignore_fields.end(),
                                       f->ignore_fields.begin(),
                                       f->ignore_fields.end());
            Status matching = ApplyMatchingFlags(f->matching, &rules);
            if (!matching.ok()) return Fail(matching);
            StoreOptions so;
            so.path = f->db;
            so.any_canonicalizer = true;
            Result<std::unique_ptr<Store>> store = Store::Open(so);
            if (!store.ok()) return Fail(store.status());
            return RunRekey(store.value().get(),
                            new_rules ? rules : store.value()->rules(),
                            std::cerr);
          }};
}

Command AddCheckCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    CheckFlags check;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* check = app.add_subcommand(
      "check",
      "Re-send every recorded request to a new backend and compare "
      "the answers: status, chosen headers, JSON bodies field by "
      "field (volatile fields ignored), SSE streams by their "
      "content, NDJSON streams line by line.\n"
      "Exit 0 all match, 1 some changed, 2 some got no answer.\n"
      "Example: rewind check --db rec.sqlite --target "
      "http://127.0.0.1:8001 --junit check.xml");
  AddDbOption(check, &f->db);
  CheckFlags& c = f->check;
  check->add_option("--target", c.target, "Backend to check, http://HOST:PORT")
      ->required();
  check->add_option("--path", c.path_glob, "Only paths matching this glob");
  check->add_option("--method", c.method, "Only this method");
  check->add_option("--limit", c.limit, "At most this many exchanges");
  check->add_option("--id", c.ids, "Only these exchange ids (repeatable)");
  check->add_option("--concurrency", c.concurrency, "Requests in flight")
      ->capture_default_str();
  check->add_option("--compare-header", c.compare_headers,
                    "Also compare this response header (repeatable)");
  check->add_option("--ignore-field", c.ignore_fields,
                    "Dotted body path to ignore, * for any index; in an "
                    "NDJSON stream the path within each line (repeatable; "
                    "id, created, system_fingerprint, service_tier, "
                    "obfuscation, created_at and Ollama's *_duration fields "
                    "are always ignored)");
  check->add_option("--header", c.extra_headers,
                    "Send this header with each request, e.g. \"Authorization: "
                    "Bearer $KEY\" (recorded secrets are redacted)");
  check->add_option("--float-tolerance", c.float_tolerance,
                    "Numbers this close are equal");
  check->add_option("--junit", c.junit_path, "Write a JUnit XML report");
  check->add_option("--json", c.json_path, "Write the full report as JSON");
  check->add_option("--timeout", c.timeout_s, "Seconds to wait for each answer")
      ->capture_default_str();
  return {
      check, [f] {
        for (const auto& [flag, path] : {std::pair<std::string, std::string>{
                                             "--junit", f->check.junit_path},
                                         {"--json", f->check.json_path}}) {
          if (path.empty()) continue;
          Status s = CheckOutputPath(flag, path);
          if (!s.ok()) return Fail(s);
        }
        f->check.color = isatty(STDOUT_FILENO) == 1;
        return WithStore(f->db, false, false, [f](Store* s) {
          return RunCheck(s, f->check, std::cout, std::cerr);
        });
      }};
}

Command AddLoadCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    LoadFlags load;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* load = app.add_subcommand(
      "load",
      "Re-issue recorded traffic against a backend: with the "
      "recorded arrival times x --speed (default), at --rate R/s, or "
      "closed-loop with --concurrency N; report throughput, errors and "
      "latency against the recording.\nExample: rewind load --db "
      "rec.sqlite --target http://127.0.0.1:8001 --speed 2 --duration 60");
  AddDbOption(load, &f->db);
  LoadFlags& l = f->load;
  load->add_option("--target", l.target, "Backend to load, http://HOST:PORT")
      ->required();
  load->add_option("--speed", l.speed,
                   "Recorded inter-arrival times are divided by this")
      ->capture_default_str();
  load->add_option("--rate", l.rate,
                   "Open loop at this many requests per second");
  load->add_option("--concurrency", l.concurrency,
                   "Closed loop with N requests in flight");
  load->add_option("--duration", l.duration_s,
                   "Stop issuing after this many seconds");
  load->add_option(
      "--count", l.count,
      "Stop after this many requests (default: one pass over the recording)");
  load->add_option("--max-in-flight", l.max_in_flight,
                   "Open loop: concurrent senders available")
      ->capture_default_str();
  load->add_option("--path", l.path_glob, "Only paths matching this glob");
  load->add_option("--header", l.extra_headers,
                   "Send this header with each request");
  load->add_option("--json", l.json_path, "Write the report as JSON");
  load->add_option("--timeout", l.timeout_s, "Seconds to wait for each answer")
      ->capture_default_str();
  return {load,
          [f] {
            if (!f->load.json_path.empty()) {
              Status s = CheckOutputPath("--json", f->load.json_path);
              if (!s.ok()) return Fail(s);
            }
            return WithStore(f->db, false, false, [f](Store* s) {
              std::atomic<int> stop_signal{0};
              f->load.stop_signal = &stop_signal;
              return WithStopSignal(&stop_signal, [&] {
                return RunLoad(s, f->load, std::cout, std::cerr);
              });
            });
          },
          /*handles_stop_signals=*/true};
}

Command AddPruneCommand(CLI::App& app) {
  struct Flags {
    std::string db;
    bool incomplete = false;
    int status = 0;
    int keep_last = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* prune = app.add_subcommand(
      "prune",
      "Remove exchanges: broken-off ones, one status, or all but "
      "the newest K per key.\nExample: rewind prune --db rec.sqlite "
      "--incomplete --keep-last 3");
  AddDbOption(prune, &f->db);
  prune->add_flag("--incomplete", f->incomplete, "Remove incomplete exchanges");
  prune->add_option("--status", f->status, "Remove exchanges with this status");
  prune->add_option("--keep-last", f->keep_last, "Keep the newest K per key");
  return {prune, [f, prune] {
            PruneFlags p;
            p.incomplete = f->incomplete;
            if (prune->count("--status")) p.status = f->status;
            if (prune->count("--keep-last")) p.keep_last = f->keep_last;
            return WithStore(f->db, true, false, [&p](Store* s) {
              return RunPrune(s, p, std::cerr);
            });
          }};
}

}  // namespace rwd
