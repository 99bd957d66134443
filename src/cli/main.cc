// rewind: record and replay inference traffic. See README.md.
//
// Exit codes: 0 success, 1 findings (reserved for checks), 2 usage or I/O
// error.
#include <CLI/CLI.hpp>
#include <rapidjson/document.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli/command.h"
#include "cli/commands.h"
#include "cli/server_commands.h"
#include "cli/usage.h"
#include "rewind/server.h"
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

// Flags of the recording commands, one struct for all of them.
struct RecordingFlags {
  std::string db;
  LsFlags ls;
  std::string show_what;
  bool raw = false;
  StatsFlags stats;
  std::string file;
  std::string export_format = "json";
  std::string import_format;
  bool rekey = false;
  std::vector<std::string> inputs;
  bool dedupe = false;
  std::vector<std::string> ignore_fields;
  std::vector<std::string> match_headers;
  bool no_default_ignores = false;
  bool prune_incomplete = false;
  int prune_status = 0;
  int keep_last = 0;
  CheckFlags check;
  LoadFlags load;
  bool settle = false;
};

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
    if (code == kExitOk && !file) code = Fail(Status::IOError("writing " + tmp + " failed"));
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

void AddRecordingCommands(CLI::App& app, RecordingFlags* f,
                          std::vector<std::pair<CLI::App*, std::function<int()>>>* run) {
  auto db = [f](CLI::App* cmd) {
    cmd->add_option("--db", f->db, "Recording file (SQLite)")->required();
  };
  CLI::App* ls = app.add_subcommand(
      "ls", "List the exchanges of a recording.\nExample: rewind ls --db "
            "rec.sqlite --path '/v1/chat/*' --status 200");
  db(ls);
  ls->add_option("--path", f->ls.path_glob, "Only paths matching this glob");
  ls->add_option("--method", f->ls.method, "Only this method");
  ls->add_option("--status", f->ls.status, "Only this status");
  ls->add_flag("--json", f->ls.json, "One JSON array, for scripts");
  run->emplace_back(ls, [f] {
    f->ls.width = TerminalWidth();
    return WithStore(f->db, false, false, [f](Store* s) {
      return RunLs(s, f->ls, std::cout, std::cerr);
    });
  });

  CLI::App* show = app.add_subcommand(
      "show", "Show one exchange: headers, body, stream events with their "
              "offsets, and the key's canonical form.\nExample: rewind show "
              "--db rec.sqlite 12   (or a key prefix: 5bd9f6)");
  db(show);
  show->add_option("what", f->show_what, "Exchange id or key prefix")->required();
  show->add_flag("--raw", f->raw, "Bodies as stored, not pretty-printed");
  run->emplace_back(show, [f] {
    return WithStore(f->db, false, false, [f](Store* s) {
      return RunShow(s, f->show_what, f->raw, std::cout, std::cerr);
    });
  });

  CLI::App* stats = app.add_subcommand(
      "stats", "Per endpoint (or model): count, statuses, first-byte, total "
               "and chunk-gap percentiles, bytes.\nExample: rewind stats "
               "--db rec.sqlite --by model");
  db(stats);
  stats->add_option("--by", f->stats.by, "path or model")->capture_default_str();
  stats->add_flag("--json", f->stats.json, "JSON, for scripts");
  run->emplace_back(stats, [f] {
    return WithStore(f->db, false, false, [f](Store* s) {
      return RunStats(s, f->stats, std::cout, std::cerr);
    });
  });

  CLI::App* exp = app.add_subcommand(
      "export", "Write a recording as reviewable JSON (rewind's format, "
                "stable and diffable) or HAR 1.2.\nExample: rewind export "
                "--db rec.sqlite --out rec.json");
  db(exp);
  exp->add_option("--out", f->file, "Output file, - for stdout")->required();
  exp->add_option("--format", f->export_format, "json or har")
      ->check(CLI::IsMember({"json", "har"}))
      ->capture_default_str();
  run->emplace_back(exp, [f] {
    if (f->file != "-") {
      Status s = CheckOutputPath("--out", f->file);
      if (!s.ok()) return Fail(s);
    }
    return WithStore(f->db, false, false, [f](Store* s) {
      return ExportTo(s, f->export_format, f->file);
    });
  });

  CLI::App* imp = app.add_subcommand(
      "import", "Add the exchanges of a rewind JSON export or a HAR file "
                "(browsers' devtools, mitmproxy) to a recording, creating "
                "it if needed.\nExample: rewind import --db rec.sqlite --in "
                "session.har");
  db(imp);
  imp->add_option("--in", f->file, "Input file, - for stdin")->required();
  imp->add_option("--format", f->import_format,
                  "json or har (default: from the content)")
      ->check(CLI::IsMember({"json", "har"}));
  imp->add_flag("--rekey", f->rekey,
                "Recompute keys under this recording's rules (needed when "
                "the file was keyed differently)");
  run->emplace_back(imp, [f] {
    if (f->file != "-") {
      Status s = CheckInputPath("--in", f->file);
      if (!s.ok()) return Fail(s);
    }
    return WithStore(f->db, true, true, [f](Store* s) {
      if (f->file == "-") {
        return RunImport(s, f->import_format, std::cin, f->rekey, std::cerr);
      }
      std::ifstream in(f->file, std::ios::binary);
      if (!in) return Fail(Status::IOError("cannot read " + f->file));
      return RunImport(s, f->import_format, in, f->rekey, std::cerr);
    });
  });

  CLI::App* merge = app.add_subcommand(
      "merge", "Combine recordings (one per replica) into one, keys "
               "recomputed under OUT's rules, in arrival order.\nExample: "
               "rewind merge --db all.sqlite a.sqlite b.sqlite --dedupe");
  db(merge);
  merge->add_option("inputs", f->inputs, "Recordings to merge")->required();
  merge->add_flag("--dedupe", f->dedupe,
                  "Drop an exchange whose key and response equal an earlier one's");
  run->emplace_back(merge, [f] {
    for (const std::string& in : f->inputs) {
      Status s = CheckInputPath("input", in);
      if (!s.ok()) return Fail(s);
      std::error_code ec;
      if (std::filesystem::exists(f->db, ec) && std::filesystem::equivalent(in, f->db, ec)) {
        return Fail(Status::InvalidArgument("--db " + f->db + " is also an input"));
      }
    }
    return WithStore(f->db, true, true, [f](Store* s) {
      return RunMerge(s, f->inputs, f->dedupe, std::cerr);
    });
  });

  CLI::App* verify = app.add_subcommand(
      "verify", "Check a recording: SQLite integrity, every row decodes, "
                "every key recomputes. Exit 0 only when all holds.\n"
                "Example: rewind verify --db rec.sqlite");
  db(verify);
  verify->add_flag("--settle", f->settle,
                   "First fold a file left mid-write (a -wal file beside "
                   "it) into one self-contained file. Needs write access; "
                   "fails if a recorder still has it open");
  run->emplace_back(verify, [f] {
    if (f->settle) {
      int code = WithStore(f->db, true, false,
                           [](Store* s) { return RunSettle(s, std::cerr); });
      if (code != kExitOk) return code;
    }
    return WithStore(f->db, false, false, [](Store* s) {
      return RunVerify(s, std::cout, std::cerr);
    });
  });

  CLI::App* rekey = app.add_subcommand(
      "rekey", "Recompute every key under new rules without re-recording "
               "(without rule flags: under the recording's own rules, as a "
               "recording made by an older rewind needs).\n"
               "Example: rewind rekey --db rec.sqlite --ignore-field "
               "temperature --match-header X-Model");
  db(rekey);
  rekey->add_option("--ignore-field", f->ignore_fields,
                    "Dotted JSON body path left out of the key (repeatable; "
                    "added to the defaults)");
  rekey->add_option("--match-header", f->match_headers,
                    "Header whose value joins the key (repeatable)");
  rekey->add_flag("--no-default-ignores", f->no_default_ignores,
                  "Do not ignore user, request_id, metadata, ... by default");
  run->emplace_back(rekey, [f] {
    // Without rule flags the recording keeps its rules: what a recording
    // made by an older rewind needs, re-keyed by this one.
    const bool new_rules = f->no_default_ignores || !f->ignore_fields.empty() ||
                           !f->match_headers.empty();
    KeyRules rules{f->no_default_ignores ? std::vector<std::string>{}
                                         : DefaultIgnoredFields(),
                   f->match_headers};
    rules.ignore_fields.insert(rules.ignore_fields.end(), f->ignore_fields.begin(),
                               f->ignore_fields.end());
    StoreOptions so;
    so.path = f->db;
    so.any_canonicalizer = true;
    Result<std::unique_ptr<Store>> store = Store::Open(so);
    if (!store.ok()) return Fail(store.status());
    return RunRekey(store.value().get(),
                    new_rules ? rules : store.value()->rules(), std::cerr);
  });

  CLI::App* check = app.add_subcommand(
      "check", "Re-send every recorded request to a new backend and compare "
               "the answers: status, chosen headers, JSON bodies field by "
               "field (volatile fields ignored), SSE streams by their "
               "content, NDJSON streams line by line.\n"
               "Exit 0 all match, 1 some changed, 2 some got no answer.\n"
               "Example: rewind check --db rec.sqlite --target "
               "http://127.0.0.1:8001 --junit check.xml");
  db(check);
  check->add_option("--target", f->check.target, "Backend to check, http://HOST:PORT")->required();
  check->add_option("--path", f->check.path_glob, "Only paths matching this glob");
  check->add_option("--method", f->check.method, "Only this method");
  check->add_option("--limit", f->check.limit, "At most this many exchanges");
  check->add_option("--id", f->check.ids, "Only these exchange ids (repeatable)");
  check->add_option("--concurrency", f->check.concurrency, "Requests in flight")->capture_default_str();
  check->add_option("--compare-header", f->check.compare_headers,
                    "Also compare this response header (repeatable)");
  check->add_option("--ignore-field", f->check.ignore_fields,
                    "Dotted body path to ignore, * for any index; in an "
                    "NDJSON stream the path within each line (repeatable; "
                    "id, created, system_fingerprint, service_tier, "
                    "obfuscation, created_at and Ollama's *_duration fields "
                    "are always ignored)");
  check->add_option("--header", f->check.extra_headers,
                    "Send this header with each request, e.g. \"Authorization: "
                    "Bearer $KEY\" (recorded secrets are redacted)");
  check->add_option("--float-tolerance", f->check.float_tolerance,
                    "Numbers this close are equal");
  check->add_option("--junit", f->check.junit_path, "Write a JUnit XML report");
  check->add_option("--json", f->check.json_path, "Write the full report as JSON");
  check->add_option("--timeout", f->check.timeout_s, "Seconds to wait for each answer")
      ->capture_default_str();
  run->emplace_back(check, [f] {
    for (const auto& [flag, path] : {std::pair<std::string, std::string>{"--junit", f->check.junit_path},
                                     {"--json", f->check.json_path}}) {
      if (path.empty()) continue;
      Status s = CheckOutputPath(flag, path);
      if (!s.ok()) return Fail(s);
    }
    f->check.color = isatty(STDOUT_FILENO) == 1;
    return WithStore(f->db, false, false, [f](Store* s) {
      return RunCheck(s, f->check, std::cout, std::cerr);
    });
  });

  CLI::App* load = app.add_subcommand(
      "load", "Re-issue recorded traffic against a backend: with the "
              "recorded arrival times x --speed (default), at --rate R/s, or "
              "closed-loop with --concurrency N; report throughput, errors and "
              "latency against the recording.\nExample: rewind load --db "
              "rec.sqlite --target http://127.0.0.1:8001 --speed 2 --duration 60");
  db(load);
  load->add_option("--target", f->load.target, "Backend to load, http://HOST:PORT")->required();
  load->add_option("--speed", f->load.speed, "Recorded inter-arrival times are divided by this")
      ->capture_default_str();
  load->add_option("--rate", f->load.rate, "Open loop at this many requests per second");
  load->add_option("--concurrency", f->load.concurrency, "Closed loop with N requests in flight");
  load->add_option("--duration", f->load.duration_s, "Stop issuing after this many seconds");
  load->add_option("--count", f->load.count,
                   "Stop after this many requests (default: one pass over the recording)");
  load->add_option("--max-in-flight", f->load.max_in_flight,
                   "Open loop: concurrent senders available")->capture_default_str();
  load->add_option("--path", f->load.path_glob, "Only paths matching this glob");
  load->add_option("--header", f->load.extra_headers, "Send this header with each request");
  load->add_option("--json", f->load.json_path, "Write the report as JSON");
  load->add_option("--timeout", f->load.timeout_s, "Seconds to wait for each answer")
      ->capture_default_str();
  run->emplace_back(load, [f] {
    if (!f->load.json_path.empty()) {
      Status s = CheckOutputPath("--json", f->load.json_path);
      if (!s.ok()) return Fail(s);
    }
    return WithStore(f->db, false, false, [f](Store* s) {
      std::atomic<int> stop_signal{0};
      f->load.stop_signal = &stop_signal;
      return WithStopSignal(&stop_signal, [&] { return RunLoad(s, f->load, std::cout, std::cerr); });
    });
  });

  CLI::App* prune = app.add_subcommand(
      "prune", "Remove exchanges: broken-off ones, one status, or all but "
               "the newest K per key.\nExample: rewind prune --db rec.sqlite "
               "--incomplete --keep-last 3");
  db(prune);
  prune->add_flag("--incomplete", f->prune_incomplete, "Remove incomplete exchanges");
  prune->add_option("--status", f->prune_status, "Remove exchanges with this status");
  prune->add_option("--keep-last", f->keep_last, "Keep the newest K per key");
  run->emplace_back(prune, [f, prune] {
    PruneFlags p;
    p.incomplete = f->prune_incomplete;
    if (prune->count("--status")) p.status = f->prune_status;
    if (prune->count("--keep-last")) p.keep_last = f->keep_last;
    return WithStore(f->db, true, false, [&p](Store* s) {
      return RunPrune(s, p, std::cerr);
    });
  });
}

// Expands "--config FILE" (a JSON object of flag names without the leading
// dashes: {"listen": "127.0.0.1:9000", "ignore-field": ["a", "b"],
// "quiet": true}) into flags placed before the command line's own, which
// therefore override it. Unknown keys are errors. Returns the new argv.
Result<std::vector<std::string>> ExpandConfig(CLI::App& app,
                                              std::vector<std::string> args) {
  if (args.size() < 2) return args;
  auto at = std::find(args.begin(), args.end(), "--config");
  std::string path;
  if (at != args.end()) {
    if (at + 1 == args.end()) return Status::InvalidArgument("--config needs a FILE");
    path = *(at + 1);
    args.erase(at, at + 2);
  } else {
    for (auto it = args.begin(); it != args.end(); ++it) {
      if (it->rfind("--config=", 0) == 0) {
        path = it->substr(9);
        args.erase(it);
        break;
      }
    }
  }
  if (path.empty()) return args;
  CLI::App* sub = nullptr;
  for (CLI::App* candidate : app.get_subcommands({})) {
    if (candidate->get_name() == args[1]) sub = candidate;
  }
  if (!sub) return Status::InvalidArgument("--config goes after a command: rewind COMMAND --config FILE");
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot read config file " + path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::InvalidArgument("config file " + path + " is not a JSON object");
  }
  std::vector<std::string> from_file;
  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    const std::string key = m->name.GetString();
    const std::string flag = "--" + key;
    CLI::Option* opt = sub->get_option_no_throw(flag);
    if (!opt || key == "config") {
      return Status::InvalidArgument("config file " + path + ": unknown key \"" + key +
                                     "\" for `rewind " + sub->get_name() +
                                     "` (keys are its flags without the dashes)");
    }
    const bool on_command_line =
        std::any_of(args.begin(), args.end(), [&](const std::string& a) {
          return a == flag || a.rfind(flag + "=", 0) == 0;
        });
    if (on_command_line) continue;  // the command line wins
    auto scalar = [&](const rapidjson::Value& v) -> Result<std::string> {
      if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
      if (v.IsInt64()) return std::to_string(v.GetInt64());
      if (v.IsUint64()) return std::to_string(v.GetUint64());
      if (v.IsNumber()) {
        std::ostringstream o;
        o << v.GetDouble();
        return o.str();
      }
      return Status::InvalidArgument("config file " + path + ": \"" + key +
                                     "\" must be a string, a number, a boolean "
                                     "or a list of those");
    };
    if (m->value.IsBool()) {
      if (opt->get_expected_min() != 0) {
        return Status::InvalidArgument("config file " + path + ": \"" + key +
                                       "\" takes a value, not true/false");
      }
      if (m->value.GetBool()) from_file.push_back(flag);
    } else if (m->value.IsArray()) {
      for (const auto& item : m->value.GetArray()) {
        Result<std::string> v = scalar(item);
        if (!v.ok()) return v.status();
        from_file.push_back(flag);
        from_file.push_back(v.value());
      }
    } else {
      Result<std::string> v = scalar(m->value);
      if (!v.ok()) return v.status();
      from_file.push_back(flag);
      from_file.push_back(v.value());
    }
  }
  args.insert(args.begin() + 2, from_file.begin(), from_file.end());
  return args;
}

std::string Joined(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

// CLI11 answers a mistyped command or option with "A subcommand is
// required" or by complaining about something else; this names the word
// it did not know and the nearest one it does.
Status CheckCommandLine(CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> commands;
  for (CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
  if (args.size() < 2) {
    return Status::InvalidArgument("a command is required: " + Joined(commands) +
                                   " (rewind --help says what each does)");
  }
  const std::string& first = args[1];
  if (first == "-h" || first == "--help" || first == "--version") return Status::Ok();
  CLI::App* sub = nullptr;
  for (CLI::App* candidate : app.get_subcommands({})) {
    if (candidate->get_name() == first) sub = candidate;
  }
  if (sub == nullptr) {
    const bool option = first.rfind('-', 0) == 0;
    std::string message = std::string(option ? "unknown option \"" : "unknown command \"") +
                          first + "\"";
    if (option) message += " (options go after the command: rewind COMMAND --OPTION)";
    const std::string nearest = NearestWord(first, commands);
    message += nearest.empty() ? "; the commands are " + Joined(commands)
                               : "; did you mean `rewind " + nearest + "`?";
    return Status::InvalidArgument(message);
  }
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) continue;
    const std::string name = arg.substr(0, arg.find('='));
    const CLI::Option* opt = sub->get_option_no_throw(name);
    if (opt == nullptr) opt = app.get_option_no_throw(name);
    if (opt == nullptr) {
      std::vector<std::string> flags;
      for (const CLI::Option* o : sub->get_options()) {
        for (const std::string& l : o->get_lnames()) flags.push_back("--" + l);
      }
      const std::string nearest = NearestWord(name, flags);
      return Status::InvalidArgument(
          "`rewind " + first + "` has no option " + name +
          (nearest.empty() ? "" : "; did you mean " + nearest + "?") +
          " (rewind " + first + " --help lists its options)");
    }
    // Skip an option's value, which may itself begin with dashes.
    if (arg.find('=') == std::string::npos && opt->get_expected_min() > 0) ++i;
  }
  return Status::Ok();
}

}  // namespace
}  // namespace rwd

int main(int argc, char** argv) {
  using namespace rwd;
  // Before any thread exists (the store starts one), so that every thread
  // inherits the mask and only Serve()'s watcher receives these signals.
  const sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  CLI::App app{
      "rewind: record inference traffic once, replay it deterministically.\n"
      "Examples:\n"
      "  rewind record --backend http://127.0.0.1:8000 --db rec.sqlite\n"
      "  rewind replay --db rec.sqlite --latency none\n"
      "  rewind serve --output echo --ttft fixed:150 --itl fixed:20",
      "rewind"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "rewind 0.1.0");

  std::vector<Command> servers = {AddRecordCommand(app), AddReplayCommand(app),
                                  AddServeCommand(app)};

  RecordingFlags recording_flags;
  std::vector<std::pair<CLI::App*, std::function<int()>>> recording_commands;
  AddRecordingCommands(app, &recording_flags, &recording_commands);
  app.footer(
      "Exit codes: 0 success, 1 findings (verify found problems, show found "
      "nothing), 2 usage or I/O error.\nrewind COMMAND --help shows each "
      "command's flags and an example.");

  for (const Command& server : servers) {
    server.app->add_option("--config", "JSON file of flags (keys are flag names without "
                                "the dashes); flags on the command line win");
  }
  std::vector<std::string> raw_args(argv, argv + argc);
  if (raw_args.size() >= 2 && raw_args[1] == "help") {  // rewind help [COMMAND]
    raw_args.erase(raw_args.begin() + 1);
    raw_args.push_back("--help");
  }
  Status command_line = CheckCommandLine(app, raw_args);
  if (!command_line.ok()) return Fail(command_line);
  Result<std::vector<std::string>> args = ExpandConfig(app, raw_args);
  if (!args.ok()) {
    std::cerr << "rewind: " << args.status().message() << "\n";
    return kExitError;
  }
  std::vector<char*> expanded;
  for (std::string& a : args.value()) expanded.push_back(a.data());
  try {
    app.parse(static_cast<int>(expanded.size()), expanded.data());
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitError;
  }
  for (const Command& server : servers) {
    if (*server.app) return server.run();
  }
  for (auto& [cmd, fn] : recording_commands) {
    if (!*cmd) continue;
    // Only the servers and load handle these signals; the other commands
    // end on them as any program does.
    if (cmd->get_name() != "load") pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    return fn();
  }
  return kExitError;
}
