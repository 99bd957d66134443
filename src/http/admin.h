// The admin endpoints under /__rewind/, rewind's own and never proxied or
// recorded:
//
//   GET  /__rewind/health  {"status":"ok"|"degraded"|"full","mode":...,
//                          "exchanges":N} (no token needed; degraded: the
//                          store fails; full: record reached a cap)
//   GET  /__rewind/config  the effective configuration
//   GET  /__rewind/stats   the outcome counters
//   POST /__rewind/reset   restarts every --repeat sequence, forgets the
//                          journal and what was served; ?scope=NAME: those
//                          of one scope alone
//   GET  /__rewind/requests[?scope=NAME]  the journal (src/modes/journal.h)
//   GET  /__rewind/unused[?scope=NAME]    recordings not served since start
//                          or the last reset (of that scope)
//
// A request under a scope prefix (/__scope/NAME/__rewind/...) or with
// X-Rewind-Scope: NAME reads that scope unless ?scope= names another.
//
// Their JSON is written with RapidJSON's Writer. Every endpoint but health
// needs "Authorization: Bearer TOKEN" when --admin-token is set, and is
// refused beyond loopback without one; /metrics uses the same check with
// --metrics-token.
//
// Thread-safety: Serve() is safe for concurrent use.
#ifndef REWIND_SRC_HTTP_ADMIN_H_
#define REWIND_SRC_HTTP_ADMIN_H_

#include <httplib.h>

#include <string>
#include <vector>

#include "modes/journal.h"
#include "modes/scope.h"
#include "modes/synth_mode.h"
#include "rewind/mode.h"
#include "rewind/replay.h"
#include "rewind/request_key.h"
#include "rewind/server.h"

namespace rwd {

inline constexpr const char* kAdminPrefix = "/__rewind/";

// "record", "replay" or "serve".
const char* ModeName(ServerMode mode);

// Checks "Authorization: Bearer TOKEN" in constant time. An empty "token"
// means no check on loopback ("loopback") and no access elsewhere. On
// refusal, writes the 401 or 403 into "res" and returns false.
bool Authorized(const Request& req, const std::string& token, bool loopback,
                httplib::Response* res);

// What the admin endpoints read and reset. Every pointer must outlive the
// Admin; "synth" may be null (no dummy engine).
struct AdminSources {
  const ServerOptions* options = nullptr;
  // The redacted headers in effect: the defaults and --redact-header.
  const std::vector<std::string>* redact_headers = nullptr;
  const Canonicalizer* canonicalizer = nullptr;
  const ModeCounters* counters = nullptr;
  const ReplayIndex* index = nullptr;
  const SynthMode* synth = nullptr;
  // The mode that answers requests: what a reset restarts.
  Mode* mode = nullptr;
  Journal* journal = nullptr;
  ScopeRegistry* scopes = nullptr;
  // How the log names paths (scrubbed when the recording scrubs): what a
  // report written to disk uses.
  ModeEvents* events = nullptr;
  bool loopback = true;
};

class Admin {
 public:
  explicit Admin(AdminSources sources) : s_(sources) {}

  // Answers the admin endpoint "name" (the path after kAdminPrefix),
  // token checked. "scope" is the scope the request is under ("" for
  // none): what ?scope= defaults to.
  void Serve(const Request& req, const std::string& name,
             const std::string& scope, httplib::Response* res);

  // The effective configuration, as GET /__rewind/config shows it.
  std::string ConfigJson() const;

  // The run's verdict: its totals since start, the misses (--strict) and
  // the recordings never served (--require-all).
  RunReport Report() const;

  // The most entries GET /__rewind/unused lists ("total" counts them all).
  static constexpr size_t kMaxUnusedListed = 10000;

 private:
  std::string HealthJson() const;
  std::string StatsJson() const;
  std::string RequestsJson(const std::string& scope) const;
  std::string UnusedJson(const std::string& scope) const;
  // Restarts everything ("scope" empty) or one scope.
  std::string Reset(const std::string& scope);

  const AdminSources s_;
};

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_ADMIN_H_
