// The admin endpoints under /__rewind/, rewind's own and never proxied or
// recorded:
//
//   GET  /__rewind/health  {"status":"ok"|"degraded","mode":...,"exchanges":N}
//                          (no token needed)
//   GET  /__rewind/config  the effective configuration
//   GET  /__rewind/stats   the outcome counters
//   POST /__rewind/reset   restarts every --repeat sequence
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
bool Authorized(const httplib::Request& req, const std::string& token,
                bool loopback, httplib::Response* res);

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
  bool loopback = true;
};

class Admin {
 public:
  explicit Admin(AdminSources sources) : s_(sources) {}

  // Answers a request whose path starts with kAdminPrefix, token checked.
  void Serve(const httplib::Request& req, httplib::Response* res);

  // The effective configuration, as GET /__rewind/config shows it.
  std::string ConfigJson() const;

 private:
  std::string HealthJson() const;
  std::string StatsJson() const;

  const AdminSources s_;
};

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_ADMIN_H_
