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

#include "cli/commands.h"
#include "cli/usage.h"
#include "rewind/server.h"
#include "rewind/store.h"

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
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos ||
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

int Fail(const Status& s) {
  std::cerr << "rewind: " << s.message() << "\n";
  return kExitError;
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
  size_t max_connections = 1024;
  int backend_timeout_s = 600;
  int keep_alive_timeout_s = 2;
  size_t max_body_bytes = 64u << 20;
  size_t max_record_bytes = 64u << 20;
  int drain_timeout_s = 30;
  std::string log_file;
  std::string port_file;
  std::string log_format = "text";
  bool quiet = false;
  bool print_config = false;
  // replay
  std::string latency = "recorded";
  std::string on_miss = "error";
  std::string repeat = "sequence";
  uint64_t seed = 0;
  bool seeded = false;  // --seed was given
  bool include_incomplete = false;
  bool immutable = false;
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
    return Status::InvalidArgument("--embedding-dimensions must be from 1 to 65536");
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
    const std::string parent = eq == std::string::npos ? o->model : l.substr(eq + 1);
    if (name.empty() || parent.empty()) {
      return Status::InvalidArgument("bad --lora \"" + l + "\": use NAME=PARENT");
    }
    if (!o->models.empty() &&
        std::find(o->models.begin(), o->models.end(), parent) == o->models.end()) {
      return Status::InvalidArgument("--lora " + name + ": its parent \"" + parent +
                                     "\" is not a --model");
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
  cmd->add_option("--log-file", f->log_file,
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

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  return signals;
}

// Writes "port" to "path" through a temporary file renamed into place, so
// a reader never sees a partial number.
Status WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    out.close();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return Status::IOError("cannot write --port-file " + tmp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    return Status::IOError("cannot write --port-file " + path + ": " + ec.message());
  }
  return Status::Ok();
}

// Removes a recording this process created when the command fails before
// anything was stored in it, so a failed start leaves no empty file behind.
// A file that existed before is never touched.
class NewRecordingGuard {
 public:
  explicit NewRecordingGuard(std::string path) : path_(std::move(path)) {
    for (const char* suffix : kSuffixes) {
      struct stat st;
      existed_.push_back(::lstat((path_ + suffix).c_str(), &st) == 0);
    }
  }
  // Closes "store" (nullptr when opening it failed) and removes the files
  // this process created if no exchange was stored.
  void Abandon(std::unique_ptr<Store> store) {
    if (existed_[0]) return;
    if (store) {
      Result<int64_t> n = store->Count();
      store.reset();
      if (!n.ok() || n.value() != 0) return;
    } else {
      std::error_code ec;
      if (std::filesystem::file_size(path_, ec) != 0 && !ec) return;
    }
    for (size_t i = 0; i < std::size(kSuffixes); ++i) {
      if (existed_[i]) continue;
      std::error_code ec;
      std::filesystem::remove(path_ + kSuffixes[i], ec);
    }
  }

 private:
  static constexpr const char* kSuffixes[] = {"", "-wal", "-shm", "-journal"};
  const std::string path_;
  std::vector<bool> existed_;
};

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
  if (!IsLoopback(options.host)) {
    std::cerr << "rewind: warning: listening on " << options.host
              << ", reachable from other machines; recordings may hold "
                 "private prompts and answers\n";
  }
  std::string host = options.host.find(':') != std::string::npos
                         ? "[" + options.host + "]"
                         : options.host;
  std::cout << "rewind " << mode_name << " listening on http://" << host << ":"
            << port.value() << std::endl;

  Server* raw = server.value().get();
  std::atomic<bool> serving{true};
  Store* store = options.store;
  const std::string port_file = f.port_file;
  std::thread watcher([raw, signals, &serving, drain_timeout_s, store, port_file] {
    int sig = 0;
    while (true) {
      sigwait(&signals, &sig);
      if (!serving) return;  // woken by the main thread below
      if (sig != SIGHUP) break;
      Status reopened = raw->ReopenLogs();
      if (!reopened.ok()) std::cerr << "rewind: " << reopened.message() << "\n";
    }
    std::cerr << "rewind: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
              << ": draining in-flight requests (at most " << drain_timeout_s
              << " s)\n";
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
      std::_Exit(kExitOk);
    }
  });

  Status s = raw->Run();
  // The watcher may still be inside Stop(): wake it if no signal came, and
  // join it before the server goes away.
  serving = false;
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  server.value().reset();
  if (!port_file.empty()) ::unlink(port_file.c_str());
  if (!s.ok()) return Fail(s);
  return kExitOk;
}

// Runs "fn" while a thread turns the first SIGINT, SIGTERM or SIGHUP into
// "*stop_signal" (so "fn" can stop and report); a second one ends the
// process as if it were not handled.
// REQUIRES: StopSignals() blocked in every thread (main does it first).
int WithStopSignal(std::atomic<int>* stop_signal, const std::function<int()>& fn) {
  const sigset_t signals = StopSignals();
  std::atomic<bool> running{true};
  std::thread watcher([&] {
    int sig = 0;
    while (true) {
      sigwait(&signals, &sig);
      if (!running) return;  // woken by the main thread below
      if (stop_signal->load() == 0) {
        stop_signal->store(sig);
        std::cerr << "rewind: " << (sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP")
                  << ": stopping (again to end at once)\n";
        continue;
      }
      ::signal(sig, SIG_DFL);
      sigset_t one;
      sigemptyset(&one);
      sigaddset(&one, sig);
      pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
      raise(sig);
    }
  });
  const int code = fn();
  running = false;
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  return code;
}

// "writable" false opens the recording read-only: replay never changes it.
Result<std::unique_ptr<Store>> OpenStore(const ServeFlags& f, bool writable) {
  StoreOptions so;
  so.path = f.db;
  so.create_if_missing = writable;
  so.read_only = !writable;
  so.immutable = f.immutable;
  if (!f.ignore_fields.empty() || !f.match_headers.empty() ||
      !f.redact_fields.empty()) {
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
    so.rules = rules;
  }
  Result<std::unique_ptr<Store>> store = Store::Open(so);
  if (!store.ok() && store.status().IsNotFound()) {
    return Status::NotFound(store.status().message() +
                            "; make one with `rewind record --backend URL "
                            "--db " + f.db + "`");
  }
  return store;
}

// Everything the flags say that can be checked without touching the disk:
// a usage error must leave no file behind.
Status FillServerOptions(const ServeFlags& f, ServerOptions* o) {
  Result<ListenAddress> listen = ParseListen(f.listen);
  if (!listen.ok()) return listen.status();
  o->host = listen->host;
  o->port = listen->port;
  o->backend = f.backend;
  o->redact_headers = f.redact_headers;
  o->redact_fields = f.redact_fields;
  o->client_timeout_s = f.client_timeout_s;
  o->admin_token = f.admin_token;
  o->metrics_token = f.metrics_token;
  o->log_path = f.log_file;
  o->log_json = f.log_format == "json";
  o->quiet = f.quiet;
  if (f.drain_timeout_s <= 0) {
    return Status::InvalidArgument("--drain-timeout must be positive");
  }
  o->max_connections = f.max_connections;
  o->backend_timeout_s = f.backend_timeout_s;
  o->keep_alive_timeout_s = f.keep_alive_timeout_s;
  o->max_body_bytes = f.max_body_bytes;
  o->max_record_bytes = f.max_record_bytes;
  if (!f.log_file.empty()) {
    Status s = CheckOutputPath("--log-file", f.log_file);
    if (!s.ok()) return s;
  }
  if (!f.port_file.empty()) {
    Status s = CheckOutputPath("--port-file", f.port_file);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// Opens the recording (creating it when "writable") and serves; a start
// that fails leaves no new empty recording behind.
int OpenAndServe(ServerOptions o, const ServeFlags& f, bool writable,
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
  o.latency = latency.value();
  Result<MissPolicy> miss = ParseMissPolicy(f.on_miss);
  if (!miss.ok()) return Fail(miss.status());
  o.on_miss = miss.value();
  Result<RepeatPolicy> repeat = ParseRepeatPolicy(f.repeat);
  if (!repeat.ok()) return Fail(repeat.status());
  o.repeat = repeat.value();
  o.seed = f.seed;
  o.include_incomplete = f.include_incomplete;
  s = o.Validate();
  const bool synthesizes = o.on_miss == MissPolicy::kSynthesize;
  if (s.ok() && synthesizes && f.synth.output != "history") {
    s = BuildSynthOptions(f.synth, f.seed, f.seeded, nullptr, &o.synth);
  }
  const bool writable = o.on_miss == MissPolicy::kRecord;
  if (s.ok()) s = CheckRecordingPath(f.db, writable);
  if (!s.ok()) return Fail(s);
  return OpenAndServe(o, f, writable, "replay",
                      [&f, synthesizes](Store* store, ServerOptions* opts) {
                        if (!synthesizes) return Status::Ok();
                        return BuildSynthOptions(f.synth, f.seed, f.seeded, store,
                                                 &opts->synth);
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

  ServeFlags record_flags;
  CLI::App* record = app.add_subcommand(
      "record",
      "Proxy every request to --backend and store each exchange with its "
      "timings.\nExample: rewind record --backend http://127.0.0.1:8000 "
      "--db recordings/prod.sqlite");
  AddCommonFlags(record, &record_flags, ServerMode::kRecord);
  record->add_option("--backend", record_flags.backend,
                     "Backend base URL, e.g. http://127.0.0.1:8000")
      ->required();
  record->add_option("--ignore-field", record_flags.ignore_fields,
                     "Dotted JSON body path left out of the request key "
                     "(repeatable; added to user, request_id, metadata, "
                     "store, service_tier, safety_identifier, "
                     "prompt_cache_key)");
  record->add_option("--match-header", record_flags.match_headers,
                     "Header whose value joins the request key (repeatable)");
  record->add_option("--redact-field", record_flags.redact_fields,
                     "Dotted JSON body path holding a secret: stored as "
                     "[REDACTED] and left out of the key (repeatable)");
  record->add_option("--max-record-bytes", record_flags.max_record_bytes,
                     "Largest response body recorded; a larger one is "
                     "relayed to the client in full but not stored")
      ->capture_default_str();

  ServeFlags replay_flags;
  CLI::App* replay = app.add_subcommand(
      "replay",
      "Serve recorded responses, paced by a latency model.\nExample: rewind "
      "replay --db recordings/prod.sqlite --latency scaled:0.5");
  AddCommonFlags(replay, &replay_flags, ServerMode::kReplay);
  replay
      ->add_option("--latency", replay_flags.latency,
                   "recorded | scaled:K | none | fixed:TTFT[,ITL] | "
                   "uniform:MIN..MAX | normal:MEAN,SD | lognormal:MEDIAN,SIGMA "
                   "(ms; add ;itl=DIST for random gaps) | empirical (drawn "
                   "from this endpoint's recordings). A request may "
                   "override it with the X-Rewind-Latency header")
      ->capture_default_str();
  replay
      ->add_option("--on-miss", replay_flags.on_miss,
                   "error (404 naming the nearest recording) | passthrough "
                   "(forward to --backend) | record (forward and add to the "
                   "recording) | synthesize (the dummy engine answers; see "
                   "`rewind serve --help` for its flags) | convert (a request "
                   "that differs from a recorded one only in stream or "
                   "stream_options is answered from it, a stream assembled "
                   "into one completion or a completion replayed as a "
                   "stream; X-Rewind: converted)")
      ->capture_default_str();
  replay
      ->add_option("--repeat", replay_flags.repeat,
                   "Which recording answers the n-th identical request: "
                   "sequence | cycle | random | first")
      ->capture_default_str();
  replay->add_option("--seed", replay_flags.seed,
                     "Seed of random latencies, --repeat random and the "
                     "dummy engine")
      ->capture_default_str();
  replay->add_option("--backend", replay_flags.backend,
                     "Backend for --on-miss passthrough or record");
  replay->add_option("--redact-field", replay_flags.redact_fields,
                     "With --on-miss record: JSON body path stored as "
                     "[REDACTED] (must be among the recording's ignored "
                     "fields; repeatable)");
  replay->add_option("--max-record-bytes", replay_flags.max_record_bytes,
                     "With --on-miss record: largest response body recorded; "
                     "a larger one is relayed but not stored")
      ->capture_default_str();
  replay->add_flag("--include-incomplete", replay_flags.include_incomplete,
                   "Also serve exchanges whose recording broke off");
  replay->add_flag("--immutable", replay_flags.immutable,
                   "Open the recording as an immutable file: no locks, no "
                   "-wal/-shm files, so many replicas can share it on "
                   "read-only storage (it must not change meanwhile)");
  AddSynthFlags(replay, &replay_flags.synth);

  ServeFlags serve_flags;
  CLI::App* serve = app.add_subcommand(
      "serve",
      "The dummy inference engine: OpenAI-compatible answers with no model, "
      "with configurable latency, faults and capacity.\nExample: rewind "
      "serve --output random --ttft normal:200,40 --itl fixed:20 --seed 7 "
      "--max-concurrency 8 --max-queue 16 --fault rate=0.05,types=429|drop");
  AddCommonFlags(serve, &serve_flags, ServerMode::kServe);
  serve->get_option("--db")->description(
      "Recording whose answers --output history replays");
  AddSynthFlags(serve, &serve_flags.synth);
  serve->add_option("--seed", serve_flags.seed,
                    "Makes every answer, latency and fault reproducible "
                    "(and fixes \"created\")");

  RecordingFlags recording_flags;
  std::vector<std::pair<CLI::App*, std::function<int()>>> recording_commands;
  AddRecordingCommands(app, &recording_flags, &recording_commands);
  app.footer(
      "Exit codes: 0 success, 1 findings (verify found problems, show found "
      "nothing), 2 usage or I/O error.\nrewind COMMAND --help shows each "
      "command's flags and an example.");

  for (CLI::App* sub : {record, replay, serve}) {
    sub->add_option("--config", "JSON file of flags (keys are flag names without "
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
  replay_flags.seeded = replay->count("--seed") > 0;
  serve_flags.seeded = serve->count("--seed") > 0;
  if (*record) return RunRecord(record_flags);
  if (*replay) return RunReplay(replay_flags);
  if (*serve) return RunServe(serve_flags);
  for (auto& [cmd, fn] : recording_commands) {
    if (!*cmd) continue;
    // Only the servers and load handle these signals; the other commands
    // end on them as any program does.
    if (cmd->get_name() != "load") pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    return fn();
  }
  return kExitError;
}
