// `rewind record`, `rewind replay` and `rewind serve`: their flags and
// the runners that turn them into a running Server.
#include "cli/server_commands.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/command.h"
#include "cli/commands.h"
#include "cli/matching_flags.h"
#include "cli/usage.h"
#include "rewind/server.h"
#include "rewind/store.h"
#include "scrub/detectors.h"

namespace rwd {
namespace {

struct ListenAddress {
  std::string host;
  int port = 0;
};

Result<ListenAddress> ParseListen(const std::string& spec) {
  size_t colon = spec.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("--listen wants HOST:PORT, got \"" + spec +
                                   "\"");
  }
  ListenAddress a;
  a.host = spec.substr(0, colon);
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);
  }
  const std::string port = spec.substr(colon + 1);
  if (port.empty() ||
      port.find_first_not_of("0123456789") != std::string::npos ||
      port.size() > 5 || std::stoi(port) > 65535) {
    return Status::InvalidArgument("--listen port must be 0-65535, got \"" +
                                   port + "\"");
  }
  a.port = std::stoi(port);
  return a;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// The dummy engine's flags (serve, and replay --on-miss synthesize).
struct SynthFlags {
  std::string output = "echo";
  std::string ttft = "fixed:0";
  std::string itl = "fixed:0";
  double prefill_per_token_ms = 0;
  double load_factor = 1;
  size_t max_concurrency = 0;
  size_t max_queue = 0;
  int64_t kv_cache_tokens = 65536;
  std::string fault;
  std::vector<std::string> models;
  std::vector<std::string> loras;
  double tool_rate = 0.5;
  int embedding_dimensions = 1536;
  int max_model_len = 32768;
};

// Flags shared by the serving commands.
struct ServeFlags {
  std::string db;
  std::string listen = "127.0.0.1:8080";
  std::string backend;
  std::vector<std::string> redact_headers;
  std::vector<std::string> redact_fields;
  std::vector<std::string> ignore_fields;
  int client_timeout_s = 5;
  std::string admin_token;
  std::string metrics_token;
  std::vector<std::string> match_headers;
  // record --scrub: kinds (comma lists, repeatable), NAME=REGEX patterns,
  // and the placeholders' secret.
  std::vector<std::string> scrub;
  std::vector<std::string> scrub_patterns;
  std::string scrub_key;
  MatchingFlags matching;  // record
  size_t max_connections = 1024;
  int backend_timeout_s = 600;
  int keep_alive_timeout_s = 2;
  size_t max_body_bytes = 64u << 20;
  size_t max_record_bytes = 64u << 20;
  // What record stores: --sample, --record-path, --skip-path,
  // --max-per-key (record, and replay --on-miss record).
  double sample = 1;
  std::vector<std::string> record_paths;
  std::vector<std::string> skip_paths;
  uint64_t max_per_key = 0;
  bool max_per_key_given = false;
  // Caps: --max-exchanges, --max-db-bytes (record, replay --on-miss record).
  uint64_t max_exchanges = 0;
  bool max_exchanges_given = false;
  uint64_t max_db_bytes = 0;
  bool max_db_bytes_given = false;
  // record --rotate-every DURATION|SIZE.
  std::string rotate_every;
  bool fail_open = false;
  int drain_timeout_s = 30;
  std::string log_file;
  std::string port_file;
  std::string log_format = "text";
  bool quiet = false;
  bool print_config = false;
  // replay
  std::string latency = "recorded";
  std::string on_miss = "error";
  size_t near_max_fields = 3;
  std::string repeat = "sequence";
  uint64_t seed = 0;
  bool seeded = false;  // --seed was given
  bool include_incomplete = false;
  bool immutable = false;
  // The verdict at exit: --strict, --require-all, --report FILE.
  bool strict = false;
  bool strict_near = false;
  bool require_all = false;
  std::string report;
  SynthFlags synth;
};

void AddSynthFlags(CLI::App* cmd, SynthFlags* f) {
  cmd->add_option("--output", f->output,
                  "Answer text: static:TEXT | echo (the last user message or "
                  "the prompt) | random (seeded) | rules:FILE (JSON "
                  "{\"rules\":[{\"pattern\":REGEX,\"reply\":TEXT}],"
                  "\"default\":TEXT}) | history (recorded answers from --db)")
      ->capture_default_str();
  cmd->add_option("--ttft", f->ttft,
                  "Time to first token, ms: fixed:MS | uniform:MIN..MAX | "
                  "normal:MEAN,SD | lognormal:MEDIAN,SIGMA")
      ->capture_default_str();
  cmd->add_option("--itl", f->itl, "Time between tokens, ms (as --ttft)")
      ->capture_default_str();
  cmd->add_option("--prefill-per-token", f->prefill_per_token_ms,
                  "Extra TTFT per prompt token, ms")
      ->capture_default_str();
  cmd->add_option("--load-factor", f->load_factor,
                  "Latency multiplier at --max-concurrency running requests "
                  "(linear from 1 at one)")
      ->capture_default_str();
  cmd->add_option("--max-concurrency", f->max_concurrency,
                  "Requests generating at once (0 = unlimited)")
      ->capture_default_str();
  cmd->add_option("--max-queue", f->max_queue,
                  "Requests waiting beyond --max-concurrency; more get 429")
      ->capture_default_str();
  cmd->add_option("--kv-cache-tokens", f->kv_cache_tokens,
                  "Simulated KV-cache capacity for the usage metric")
      ->capture_default_str();
  cmd->add_option("--fault", f->fault,
                  "Inject faults: rate=0.05,types=429|500|503|400|timeout|"
                  "drop|stall|garbage[,stall_ms=N][,timeout_ms=N]; a request "
                  "can force one with the X-Rewind-Fault header");
  cmd->add_option("--model", f->models,
                  "A model to serve (repeatable; the first answers requests "
                  "that name none). Without it, rewind-dummy is listed and "
                  "any name is answered; with it, other names get 404 "
                  "model_not_found");
  cmd->add_option("--lora", f->loras,
                  "A LoRA-style adapter, NAME=PARENT (repeatable): served and "
                  "listed by /v1/models with its parent --model");
  cmd->add_option("--tool-rate", f->tool_rate,
                  "Share of requests offering tools (tool_choice auto) "
                  "answered with a tool call, 0 to 1")
      ->capture_default_str();
  cmd->add_option("--embedding-dimensions", f->embedding_dimensions,
                  "Length of /v1/embeddings vectors when a request does not "
                  "ask for \"dimensions\"")
      ->capture_default_str();
  cmd->add_option("--max-model-len", f->max_model_len,
                  "Context length reported by /v1/models and /tokenize")
      ->capture_default_str();
}

Status BuildSynthOptions(const SynthFlags& f, uint64_t seed, bool seeded,
                         Store* store, SynthOptions* o) {
  Result<OutputMode> output = OutputMode::Parse(f.output, store);
  if (!output.ok()) return output.status();
  o->output = output.value();
  Result<Distribution> ttft = Distribution::Parse(f.ttft);
  if (!ttft.ok()) return ttft.status();
  o->ttft = ttft.value();
  Result<Distribution> itl = Distribution::Parse(f.itl);
  if (!itl.ok()) return itl.status();
  o->itl = itl.value();
  Result<FaultSpec> faults = FaultSpec::Parse(f.fault);
  if (!faults.ok()) return faults.status();
  o->faults = faults.value();
  if (f.load_factor < 1) {
    return Status::InvalidArgument("--load-factor must be at least 1");
  }
  if (f.prefill_per_token_ms < 0) {
    return Status::InvalidArgument("--prefill-per-token must be >= 0");
  }
  if (f.kv_cache_tokens <= 0) {
    return Status::InvalidArgument("--kv-cache-tokens must be positive");
  }
  o->prefill_per_token_ms = f.prefill_per_token_ms;
  o->load_factor = f.load_factor;
  o->max_concurrency = f.max_concurrency;
  o->max_queue = f.max_queue;
  o->kv_cache_tokens = f.kv_cache_tokens;
  if (!(f.tool_rate >= 0 && f.tool_rate <= 1)) {
    return Status::InvalidArgument("--tool-rate must be from 0 to 1");
  }
  if (f.embedding_dimensions < 1 || f.embedding_dimensions > 65536) {
    return Status::InvalidArgument(
        "--embedding-dimensions must be from 1 to 65536");
  }
  if (f.max_model_len < 1) {
    return Status::InvalidArgument("--max-model-len must be positive");
  }
  o->tool_rate = f.tool_rate;
  o->embedding_dimensions = f.embedding_dimensions;
  o->max_model_len = f.max_model_len;
  for (const std::string& m : f.models) {
    if (m.empty()) return Status::InvalidArgument("--model needs a name");
    if (std::find(o->models.begin(), o->models.end(), m) != o->models.end()) {
      return Status::InvalidArgument("--model " + m + " is given twice");
    }
    o->models.push_back(m);
  }
  if (!o->models.empty()) o->model = o->models.front();
  for (const std::string& l : f.loras) {
    const size_t eq = l.find('=');
    const std::string name = l.substr(0, eq);
    const std::string parent =
        eq == std::string::npos ? o->model : l.substr(eq + 1);
    if (name.empty() || parent.empty()) {
      return Status::InvalidArgument("bad --lora \"" + l +
                                     "\": use NAME=PARENT");
    }
    if (!o->models.empty() && std::find(o->models.begin(), o->models.end(),
                                        parent) == o->models.end()) {
      return Status::InvalidArgument("--lora " + name + ": its parent \"" +
                                     parent + "\" is not a --model");
    }
    o->adapters.emplace_back(name, parent);
  }
  o->seed = seed;
  o->deterministic_created = seeded;
  return Status::Ok();
}

// The flags of record, replay and serve. Serve talks to no backend and
// stores nothing, so it has no --backend-timeout or --redact-header.
void AddCommonFlags(CLI::App* cmd, ServeFlags* f, ServerMode mode) {
  const bool proxies = mode != ServerMode::kServe;
  CLI::Option* db = cmd->add_option("--db", f->db, "Recording file (SQLite)");
  if (proxies) db->required();
  cmd->add_option("--listen", f->listen,
                  "Address to serve on, HOST:PORT; port 0 picks a free one")
      ->capture_default_str();
  cmd->add_option("--max-connections", f->max_connections,
                  "Worker threads = concurrent connections (streams hold "
                  "theirs while paced)")
      ->capture_default_str();
  if (proxies) {
    cmd->add_option("--backend-timeout", f->backend_timeout_s,
                    "Seconds to wait for the backend to connect or send data")
        ->capture_default_str();
  }
  cmd->add_option("--keep-alive-timeout", f->keep_alive_timeout_s,
                  "Seconds an idle client connection stays open (each idle "
                  "connection costs a little CPU)")
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", f->max_body_bytes,
                  "Largest request body accepted (413 beyond)")
      ->capture_default_str();
  cmd->add_option("--client-timeout", f->client_timeout_s,
                  "Seconds a client may take to send its request; a slower "
                  "one is dropped and its worker freed")
      ->capture_default_str();
  cmd->add_option("--admin-token", f->admin_token,
                  "Bearer token the /__rewind/ admin endpoints (but health) "
                  "require; without it they are refused when listening "
                  "beyond loopback")
      ->envname("REWIND_ADMIN_TOKEN");
  cmd->add_option("--metrics-token", f->metrics_token,
                  "Bearer token /metrics requires")
      ->envname("REWIND_METRICS_TOKEN");
  cmd->add_option("--drain-timeout", f->drain_timeout_s,
                  "Seconds SIGTERM waits for in-flight requests")
      ->capture_default_str();
  cmd->add_option(
      "--log-file", f->log_file,
      "Access and error log file (default stderr); SIGHUP reopens it");
  cmd->add_option("--log-format", f->log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_flag("--quiet", f->quiet, "No access log lines (errors still)");
  cmd->add_flag("--print-config", f->print_config,
                "Print the effective configuration as JSON and exit");
  cmd->add_option("--port-file", f->port_file,
                  "Once listening, write the port number to this file "
                  "(atomically: a temporary file renamed into place); it is "
                  "removed at exit");
  if (proxies) {
    cmd->add_option("--redact-header", f->redact_headers,
                    "Also store this header as [REDACTED] (repeatable); "
                    "Authorization, Proxy-Authorization, Cookie, Set-Cookie, "
                    "X-Api-Key and Api-Key always are");
  }
}

// The flags that choose what is recorded (record, and replay with
// --on-miss record: "prefix" says so in their help).
void AddCaptureFlags(CLI::App* cmd, ServeFlags* f, const std::string& prefix) {
  cmd->add_option("--sample", f->sample,
                  prefix +
                      "Record this share of requests, above 0 and at "
                      "most 1, and relay the rest untouched (X-Rewind: "
                      "passthrough). A request is in or out by its key and "
                      "--seed alone, so its repeats share its fate")
      ->capture_default_str();
  cmd->add_option("--record-path", f->record_paths,
                  prefix +
                      "Record only requests whose path (without the "
                      "query) matches this glob, e.g. '/v1/chat/*' "
                      "(repeatable; * matches / too)")
      ->type_name("GLOB");
  cmd->add_option("--skip-path", f->skip_paths,
                  prefix +
                      "Never record requests whose path matches this "
                      "glob, e.g. '/health' (repeatable; wins over "
                      "--record-path)")
      ->type_name("GLOB");
  cmd->add_option("--max-per-key", f->max_per_key,
                  prefix +
                      "Keep at most K recordings of one request (its "
                      "key), those already in the recording included; the rest "
                      "are relayed, not stored")
      ->type_name("K");
  cmd->add_option("--max-exchanges", f->max_exchanges,
                  prefix +
                      "Stop recording once the recording holds N "
                      "exchanges (those already in it included); every request "
                      "is still relayed, health says \"full\"")
      ->type_name("N");
  cmd->add_option(
         "--max-db-bytes", f->max_db_bytes,
         prefix +
             "Stop recording before the recording grows beyond "
             "SIZE bytes (its size when opened included), e.g. 500M or "
             "2G (K, M, G, T: powers of 1024); every request is still "
             "relayed, health says \"full\"")
      ->transform(CLI::AsSizeValue(false))
      ->type_name("SIZE");
  cmd->add_flag("--fail-open", f->fail_open,
                prefix +
                    "An internal error while recording never changes a "
                    "client's answer: the exchange is just not stored (logged, "
                    "counted). Without it the client gets a 500 or an answer "
                    "not completed");
}

// Which of the flags that have no default the command line gave.
void NoteGivenFlags(CLI::App* cmd, ServeFlags* f) {
  f->max_per_key_given = cmd->count("--max-per-key") > 0;
  f->max_exchanges_given = cmd->count("--max-exchanges") > 0;
  f->max_db_bytes_given = cmd->count("--max-db-bytes") > 0;
}

// Writes "text" to "path" through a temporary file renamed into place, so
// a reader never sees a partial file. "flag" names the option in errors.
Status WriteAtomically(const std::string& flag, const std::string& path,
                       const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    out << text;
    out.close();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return Status::IOError("cannot write " + flag + " " + tmp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return Status::IOError("cannot write " + flag + " " + path + ": " +
                           ec.message());
  }
  return Status::Ok();
}

// The verdict of a run that asked for one (--strict, --require-all,
// --report FILE): the summary on stderr, the report written, and the exit
// code: kExitFindings when it failed.
int Verdict(Server* server, const ServeFlags& f, int code) {
  if (!f.strict && !f.strict_near && !f.require_all && f.report.empty())
    return code;
  const RunReport report = server->Report();
  std::cerr << report.summary << std::flush;
  if (!f.report.empty()) {
    Status written = WriteAtomically("--report", f.report, report.json);
    if (!written.ok()) return Fail(written);
  }
  if (code != kExitOk) return code;
  return report.passed ? kExitOk : kExitFindings;
}

// Writes "port" to "path" through a temporary file renamed into place, so
// a reader never sees a partial number.
Status WritePortFile(const std::string& path, int port) {
  return WriteAtomically("--port-file", path, std::to_string(port) + "\n");
}

// Runs "server" until SIGINT or SIGTERM, then drains it: in-flight
// requests finish (within "drain_timeout_s"; after that the process exits,
// losing only exchanges whose clients had not got a complete answer) and
// the writer commits. SIGHUP reopens the log file. "*started" tells whether
// it got as far as listening.
// REQUIRES: StopSignals() blocked in every thread (main does it first).
int Serve(ServerOptions options, const std::string& mode_name,
          const ServeFlags& f, bool* started) {
  *started = false;
  const int drain_timeout_s = f.drain_timeout_s;
  const sigset_t signals = StopSignals();
  Result<std::unique_ptr<Server>> server = Server::Create(options);
  if (!server.ok()) return Fail(server.status());
  if (f.print_config) {
    std::cout << server.value()->ConfigJson();
    return kExitOk;
  }
  Result<int> port = server.value()->Bind();
  if (!port.ok()) return Fail(port.status());
  if (!f.port_file.empty()) {
    Status written = WritePortFile(f.port_file, port.value());
    if (!written.ok()) return Fail(written);
  }
  *started = true;
  if (!IsLoopback(options.front.host)) {
    std::cerr << "rewind: warning: listening on " << options.front.host
              << ", reachable from other machines; recordings may hold "
                 "private prompts and answers\n";
  }
  std::string host = options.front.host.find(':') != std::string::npos
                         ? "[" + options.front.host + "]"
                         : options.front.host;
  std::cout << "rewind " << mode_name << " listening on http://" << host << ":"
            << port.value() << std::endl;

  Server* raw = server.value().get();
  std::atomic<bool> serving{true};
  Store* store = options.store;
  const std::string port_file = f.port_file;
  std::thread watcher(
      [raw, signals, &serving, drain_timeout_s, store, port_file, &f] {
        int sig = 0;
        while (true) {
          sigwait(&signals, &sig);
          if (!serving) return;  // woken by the main thread below
          if (sig != SIGHUP) break;
          Status reopened = raw->ReopenLogs();
          if (!reopened.ok())
            std::cerr << "rewind: " << reopened.message() << "\n";
        }
        std::cerr << "rewind: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
                  << ": draining in-flight requests (at most "
                  << drain_timeout_s << " s)\n";
        raw->Stop();
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::seconds(drain_timeout_s);
        while (serving && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (serving) {
          std::cerr << "rewind: drain timed out after " << drain_timeout_s
                    << " s; exiting with streams still open\n";
          if (store) store->Flush();
          if (!port_file.empty()) ::unlink(port_file.c_str());
          std::_Exit(Verdict(raw, f, kExitOk));
        }
      });

  Status s = raw->Run();
  // The watcher may still be inside Stop(): wake it if no signal came, and
  // join it before the server goes away.
  serving = false;
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  const int code = Verdict(raw, f, s.ok() ? kExitOk : Fail(s));
  server.value().reset();
  if (!port_file.empty()) ::unlink(port_file.c_str());
  return code;
}

// The --scrub lists, joined and parsed.
Result<std::vector<std::string>> ScrubKinds(
    const std::vector<std::string>& lists) {
  std::string joined;
  for (const std::string& l : lists) joined += (joined.empty() ? "" : ",") + l;
  return scrub::ParseKinds(joined);
}

// The scrub flags, checked before any file is touched.
Status CheckScrubFlags(const ServeFlags& f) {
  std::vector<std::string> kinds;
  if (!f.scrub.empty()) {
    Result<std::vector<std::string>> parsed = ScrubKinds(f.scrub);
    if (!parsed.ok()) return parsed.status();
    kinds = parsed.value();
  }
  if (!f.scrub_patterns.empty() || !kinds.empty()) {
    Status s = scrub::Detectors::Make(kinds, f.scrub_patterns).status();
    if (!s.ok()) return s;
  }
  if (!f.scrub_key.empty() && f.scrub_key.size() < 16) {
    return Status::InvalidArgument(
        "--scrub-key must be at least 16 characters (a short key lets a "
        "placeholder be matched to a guessed value)");
  }
  return Status::Ok();
}

}  // namespace

Status ParseRotateEvery(const std::string& spec, RotationOptions* options) {
  const std::string usage =
      "--rotate-every wants a duration (90s, 30m, 1h, 1d) or a size with a "
      "byte unit (64K, 500M, 2G), got \"" +
      spec + "\"";
  const size_t digits = spec.find_first_not_of("0123456789");
  if (spec.empty() || digits == 0) return Status::InvalidArgument(usage);
  if (digits == std::string::npos) {
    return Status::InvalidArgument(
        usage + ": give a unit, as 30m (minutes) and 30M (bytes) differ");
  }
  const std::string unit = spec.substr(digits);
  if (unit.size() == 1 &&
      std::string("smhd").find(unit[0]) != std::string::npos) {
    const int64_t per = unit == "s"   ? 1
                        : unit == "m" ? 60
                        : unit == "h" ? 3600
                                      : 86400;
    // At most ten years: anything longer is a typo, and overflows in µs.
    if (digits > 9) return Status::InvalidArgument(usage + ": too long");
    const int64_t seconds = std::stoll(spec.substr(0, digits)) * per;
    if (seconds <= 0 || seconds > 10ll * 365 * 86400) {
      return Status::InvalidArgument(usage + ": from 1s to ten years, please");
    }
    options->every_us = seconds * 1'000'000;
    options->every_bytes = 0;
    return Status::Ok();
  }
  std::string value = spec;
  try {
    const std::string error = CLI::AsSizeValue(false)(value);
    if (!error.empty()) return Status::InvalidArgument(usage + ": " + error);
  } catch (const CLI::Error& e) {
    return Status::InvalidArgument(usage + ": " + e.what());
  }
  const uint64_t bytes = std::stoull(value);
  if (bytes == 0)
    return Status::InvalidArgument(usage + ": it must be above 0");
  options->every_bytes = bytes;
  options->every_us = 0;
  return Status::Ok();
}

namespace {

// "writable" false opens the recording read-only: replay never changes it.
Result<std::unique_ptr<Store>> OpenStore(const ServeFlags& f, bool writable) {
  StoreOptions so;
  so.path = f.db;
  so.create_if_missing = writable;
  so.read_only = !writable;
  so.immutable = f.immutable;
  if (!f.ignore_fields.empty() || !f.match_headers.empty() ||
      !f.redact_fields.empty() || !f.scrub.empty() ||
      !f.scrub_patterns.empty() || MatchingFlagsGiven(f.matching)) {
    // Secret fields never join the key: a recording made with one secret
    // replays with another, and stored (redacted) bodies keep their keys.
    KeyRules rules{DefaultIgnoredFields(), f.match_headers};
    for (const auto* list : {&f.ignore_fields, &f.redact_fields}) {
      for (const std::string& field : *list) {
        if (std::find(rules.ignore_fields.begin(), rules.ignore_fields.end(),
                      field) == rules.ignore_fields.end()) {
          rules.ignore_fields.push_back(field);
        }
      }
    }
    if (!f.scrub.empty()) {
      Result<std::vector<std::string>> kinds = ScrubKinds(f.scrub);
      if (!kinds.ok()) return kinds.status();
      rules.scrub = kinds.value();
    }
    rules.scrub_patterns = f.scrub_patterns;
    Status s = ApplyMatchingFlags(f.matching, &rules);
    if (!s.ok()) return s;
    so.rules = rules;
  }
  Result<std::unique_ptr<Store>> store = Store::Open(so);
  if (!store.ok() && store.status().IsNotFound()) {
    return Status::NotFound(store.status().message() +
                            "; make one with `rewind record --backend URL "
                            "--db " +
                            f.db + "`");
  }
  if (!store.ok() || f.rotate_every.empty() || !writable) return store;
  RotationOptions rotation;
  Status parsed = ParseRotateEvery(f.rotate_every, &rotation);
  if (!parsed.ok()) return parsed;
  // With the other lines rewind writes about its own life (a drain, ...).
  rotation.log = [](const std::string& line) {
    std::cerr << "rewind: " + line + "\n" << std::flush;
  };
  return RotatingStore::Wrap(std::move(store.value()), so, std::move(rotation));
}

// Everything the flags say that can be checked without touching the disk:
// a usage error must leave no file behind.
Status FillServerOptions(const ServeFlags& f, ServerOptions* o) {
  Result<ListenAddress> listen = ParseListen(f.listen);
  if (!listen.ok()) return listen.status();
  o->front.host = listen->host;
  o->front.port = listen->port;
  o->upstream.backend = f.backend;
  o->record.redact_headers = f.redact_headers;
  o->record.redact_fields = f.redact_fields;
  Status scrub_flags = CheckScrubFlags(f);
  if (!scrub_flags.ok()) return scrub_flags;
  o->record.scrub_secret = f.scrub_key;
  o->front.client_timeout_s = f.client_timeout_s;
  o->front.admin_token = f.admin_token;
  o->front.metrics_token = f.metrics_token;
  o->front.log_path = f.log_file;
  o->front.log_json = f.log_format == "json";
  o->front.quiet = f.quiet;
  if (f.drain_timeout_s <= 0) {
    return Status::InvalidArgument("--drain-timeout must be positive");
  }
  o->front.max_connections = f.max_connections;
  o->upstream.backend_timeout_s = f.backend_timeout_s;
  o->front.keep_alive_timeout_s = f.keep_alive_timeout_s;
  o->front.max_body_bytes = f.max_body_bytes;
  o->record.max_record_bytes = f.max_record_bytes;
  o->seed = f.seed;
  o->record.sample = f.sample;
  o->record.record_paths = f.record_paths;
  o->record.skip_paths = f.skip_paths;
  if (f.max_per_key_given) o->record.max_per_key = f.max_per_key;
  if (f.max_exchanges_given) o->record.max_exchanges = f.max_exchanges;
  if (f.max_db_bytes_given) o->record.max_db_bytes = f.max_db_bytes;
  o->record.fail_open = f.fail_open;
  if (!f.rotate_every.empty()) {
    RotationOptions rotation;
    Status s = ParseRotateEvery(f.rotate_every, &rotation);
    if (!s.ok()) return s;
    o->record.rotate_every = f.rotate_every;
  }
  if (!f.log_file.empty()) {
    Status s = CheckOutputPath("--log-file", f.log_file);
    if (!s.ok()) return s;
  }
  if (!f.port_file.empty()) {
    Status s = CheckOutputPath("--port-file", f.port_file);
    if (!s.ok()) return s;
  }
  if (!f.report.empty()) {
    Status s = CheckOutputPath("--report", f.report);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// Opens the recording (creating it when "writable") and serves; a start
// that fails leaves no new empty recording behind.
int OpenAndServe(
    ServerOptions o, const ServeFlags& f, bool writable,
    const std::string& mode_name,
    const std::function<Status(Store*, ServerOptions*)>& with_store) {
  NewRecordingGuard guard(f.db);
  Result<std::unique_ptr<Store>> store = OpenStore(f, writable);
  if (!store.ok()) {
    if (writable) guard.Abandon(nullptr);
    return Fail(store.status());
  }
  o.store = store.value().get();
  bool started = false;
  Status s = with_store ? with_store(o.store, &o) : Status::Ok();
  const int code = s.ok() ? Serve(o, mode_name, f, &started) : Fail(s);
  if (!started && writable) guard.Abandon(std::move(store.value()));
  return code;
}

int RunRecord(const ServeFlags& f) {
  ServerOptions o;
  o.mode = ServerMode::kRecord;
  Status s = FillServerOptions(f, &o);
  if (s.ok()) s = o.Validate();
  if (s.ok()) s = CheckRecordingPath(f.db, /*create=*/true);
  if (!s.ok()) return Fail(s);
  return OpenAndServe(o, f, /*writable=*/true, "record", nullptr);
}

int RunReplay(const ServeFlags& f) {
  ServerOptions o;
  o.mode = ServerMode::kReplay;
  Status s = FillServerOptions(f, &o);
  if (!s.ok()) return Fail(s);
  Result<LatencyModel> latency = LatencyModel::Parse(f.latency);
  if (!latency.ok()) return Fail(latency.status());
  o.replay.latency = latency.value();
  Result<MissPolicy> miss = ParseMissPolicy(f.on_miss);
  if (!miss.ok()) return Fail(miss.status());
  o.replay.on_miss = miss.value();
  o.replay.near_max_fields = f.near_max_fields;
  Result<RepeatPolicy> repeat = ParseRepeatPolicy(f.repeat);
  if (!repeat.ok()) return Fail(repeat.status());
  o.replay.repeat = repeat.value();
  o.seed = f.seed;
  o.replay.include_incomplete = f.include_incomplete;
  o.replay.strict = f.strict;
  o.replay.strict_near = f.strict_near;
  o.replay.require_all = f.require_all;
  s = o.Validate();
  const bool synthesizes = o.replay.on_miss == MissPolicy::kSynthesize;
  if (s.ok() && synthesizes && f.synth.output != "history") {
    s = BuildSynthOptions(f.synth, f.seed, f.seeded, nullptr, &o.synth);
  }
  const bool writable = o.replay.on_miss == MissPolicy::kRecord;
  if (s.ok()) s = CheckRecordingPath(f.db, writable);
  if (!s.ok()) return Fail(s);
  return OpenAndServe(o, f, writable, "replay",
                      [&f, synthesizes](Store* store, ServerOptions* opts) {
                        if (!synthesizes) return Status::Ok();
                        return BuildSynthOptions(f.synth, f.seed, f.seeded,
                                                 store, &opts->synth);
                      });
}

int RunServe(const ServeFlags& f) {
  ServerOptions o;
  o.mode = ServerMode::kServe;
  Status s = FillServerOptions(f, &o);
  if (s.ok()) s = o.Validate();
  if (s.ok() && !f.db.empty()) s = CheckRecordingPath(f.db, /*create=*/false);
  if (!s.ok()) return Fail(s);
  std::unique_ptr<Store> store;
  if (!f.db.empty()) {
    Result<std::unique_ptr<Store>> opened = OpenStore(f, /*writable=*/false);
    if (!opened.ok()) return Fail(opened.status());
    store = std::move(opened.value());
  }
  o.store = store.get();
  s = BuildSynthOptions(f.synth, f.seed, f.seeded, o.store, &o.synth);
  if (!s.ok()) return Fail(s);
  bool started = false;
  return Serve(o, "serve", f, &started);
}

}  // namespace

Command AddRecordCommand(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* record = app.add_subcommand(
      "record",
      "Proxy every request to --backend and store each exchange with its "
      "timings.\nExample: rewind record --backend http://127.0.0.1:8000 "
      "--db recordings/prod.sqlite");
  AddCommonFlags(record, f.get(), ServerMode::kRecord);
  record
      ->add_option("--backend", f->backend,
                   "Backend base URL, e.g. http://127.0.0.1:8000")
      ->required();
  record->add_option("--ignore-field", f->ignore_fields,
                     "Dotted JSON body path left out of the request key "
                     "(repeatable; added to user, request_id, metadata, "
                     "store, service_tier, safety_identifier, "
                     "prompt_cache_key)");
  record->add_option("--match-header", f->match_headers,
                     "Header whose value joins the request key (repeatable)");
  AddMatchingFlags(record, &f->matching);
  record->add_option("--redact-field", f->redact_fields,
                     "Dotted JSON body path holding a secret: stored as "
                     "[REDACTED] and left out of the key (repeatable)");
  record
      ->add_option("--scrub", f->scrub,
                   "Replace personal data and secrets before anything is "
                   "written: a comma list of email, phone, card, ipv4, "
                   "ipv6, ip, iban, token, all (repeatable). Each value "
                   "becomes <kind:hhhhhhhh>, keyed by --scrub-key")
      ->type_name("KINDS");
  record->add_option("--scrub-pattern", f->scrub_patterns,
                     "A detector of your own, NAME=REGEX (RE2 syntax; the "
                     "first group, if any, is what is replaced; "
                     "repeatable)");
  record
      ->add_option("--scrub-key", f->scrub_key,
                   "Secret of the scrub placeholders (at least 16 "
                   "characters; never stored). Without it a random one per "
                   "run: the same value then gets another placeholder in "
                   "another run")
      ->envname("REWIND_SCRUB_KEY");
  record
      ->add_option("--max-record-bytes", f->max_record_bytes,
                   "Largest response body recorded; a larger one is "
                   "relayed to the client in full but not stored")
      ->capture_default_str();
  AddCaptureFlags(record, f.get(), "");
  record
      ->add_option("--rotate-every", f->rotate_every,
                   "For long captures: once the recording file is this old "
                   "(90s, 30m, 1h, 1d) or this large (64K, 500M, 2G), go on "
                   "into a new one beside it, rec-0002.sqlite, "
                   "rec-0003.sqlite, ... without losing a request; `rewind "
                   "merge` combines them")
      ->type_name("DURATION|SIZE");
  record->add_option("--seed", f->seed, "Seed of --sample's draw")
      ->capture_default_str();
  return Command{record,
                 [f, record] {
                   NoteGivenFlags(record, f.get());
                   return RunRecord(*f);
                 },
                 true};
}

Command AddReplayCommand(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* replay = app.add_subcommand(
      "replay",
      "Serve recorded responses, paced by a latency model.\nExample: rewind "
      "replay --db recordings/prod.sqlite --latency scaled:0.5");
  AddCommonFlags(replay, f.get(), ServerMode::kReplay);
  replay
      ->add_option("--latency", f->latency,
                   "recorded | recorded-net (as recorded, less rewind's own "
                   "time before forwarding: the backend's alone) | scaled:K | "
                   "none | fixed:TTFT[,ITL] | "
                   "uniform:MIN..MAX | normal:MEAN,SD | lognormal:MEDIAN,SIGMA "
                   "(ms; add ;itl=DIST for random gaps) | empirical (drawn "
                   "from this endpoint's recordings). A request may "
                   "override it with the X-Rewind-Latency header")
      ->capture_default_str();
  replay
      ->add_option("--on-miss", f->on_miss,
                   "error (404 naming the nearest recording) | passthrough "
                   "(forward to --backend) | record (forward and add to the "
                   "recording) | synthesize (the dummy engine answers; see "
                   "`rewind serve --help` for its flags) | convert (a request "
                   "that differs from a recorded one only in stream or "
                   "stream_options is answered from it, a stream assembled "
                   "into one completion or a completion replayed as a "
                   "stream; X-Rewind: converted) | nearest (a request that "
                   "differs from the nearest recording on the same method, "
                   "path and model in at most --near-max-fields fields, its "
                   "body diffed field by field, is answered from it, paced "
                   "like a hit; X-Rewind: near, X-Rewind-Near: #ID; differs "
                   "in: FIELDS). A request with X-Rewind-Match: exact is "
                   "never answered by convert or nearest")
      ->capture_default_str();
  replay
      ->add_option("--near-max-fields", f->near_max_fields,
                   "With --on-miss nearest: the most fields (JSON paths, "
                   "query parameters, matched headers) a request may differ "
                   "in from the recording that answers it; a different "
                   "model, or a body that differs as a whole, never "
                   "qualifies")
      ->capture_default_str();
  replay
      ->add_option("--repeat", f->repeat,
                   "Which recording answers the n-th identical request: "
                   "sequence | cycle | random | first")
      ->capture_default_str();
  replay
      ->add_option("--seed", f->seed,
                   "Seed of random latencies, --repeat random, the "
                   "dummy engine and --sample")
      ->capture_default_str();
  replay->add_option("--backend", f->backend,
                     "Backend for --on-miss passthrough or record");
  replay->add_option("--redact-field", f->redact_fields,
                     "With --on-miss record: JSON body path stored as "
                     "[REDACTED] (must be among the recording's ignored "
                     "fields; repeatable)");
  replay
      ->add_option("--scrub-key", f->scrub_key,
                   "With --on-miss record into a scrubbed recording: the "
                   "placeholders' secret (as record --scrub-key)")
      ->envname("REWIND_SCRUB_KEY");
  replay
      ->add_option("--max-record-bytes", f->max_record_bytes,
                   "With --on-miss record: largest response body recorded; "
                   "a larger one is relayed but not stored")
      ->capture_default_str();
  AddCaptureFlags(replay, f.get(), "With --on-miss record: ");
  replay->add_flag("--include-incomplete", f->include_incomplete,
                   "Also serve exchanges whose recording broke off");
  replay->add_flag("--immutable", f->immutable,
                   "Open the recording as an immutable file: no locks, no "
                   "-wal/-shm files, so many replicas can share it on "
                   "read-only storage (it must not change meanwhile)");
  replay->add_flag("--strict", f->strict,
                   "At exit, exit 1 if any request missed (X-Rewind: "
                   "miss), after a summary on stderr listing each miss "
                   "with its explanation");
  replay->add_flag("--strict-near", f->strict_near,
                   "At exit, exit 1 if any request was answered from the "
                   "nearest recording (--on-miss nearest; X-Rewind: near), "
                   "after the summary listing each with the recording and "
                   "the fields it differs in");
  replay->add_flag("--require-all", f->require_all,
                   "At exit, exit 1 if a recording was never served, after "
                   "a summary on stderr listing them");
  replay
      ->add_option("--report", f->report,
                   "At exit, write the summary as JSON to FILE: "
                   "{\"requests\",\"hits\",\"near\",\"misses\":[...],"
                   "\"unused\":[...],\"passed\"}")
      ->type_name("FILE");
  AddSynthFlags(replay, &f->synth);
  return Command{replay,
                 [f, replay] {
                   f->seeded = replay->count("--seed") > 0;
                   NoteGivenFlags(replay, f.get());
                   return RunReplay(*f);
                 },
                 true};
}

Command AddServeCommand(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* serve = app.add_subcommand(
      "serve",
      "The dummy inference engine: OpenAI-compatible answers with no model, "
      "with configurable latency, faults and capacity.\nExample: rewind "
      "serve --output random --ttft normal:200,40 --itl fixed:20 --seed 7 "
      "--max-concurrency 8 --max-queue 16 --fault rate=0.05,types=429|drop");
  AddCommonFlags(serve, f.get(), ServerMode::kServe);
  serve->get_option("--db")->description(
      "Recording whose answers --output history replays");
  AddSynthFlags(serve, &f->synth);
  serve->add_option("--seed", f->seed,
                    "Makes every answer, latency and fault reproducible "
                    "(and fixes \"created\")");
  return Command{serve,
                 [f, serve] {
                   f->seeded = serve->count("--seed") > 0;
                   return RunServe(*f);
                 },
                 true};
}

}  // namespace rwd
