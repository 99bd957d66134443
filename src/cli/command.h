// What every `rewind` command shares: how a chosen command is found and
// run, its exit on failure, the stop signals, and a recording it created
// removed again when it fails.
#ifndef REWIND_SRC_CLI_COMMAND_H_
#define REWIND_SRC_CLI_COMMAND_H_

#include <signal.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rewind/status.h"
#include "rewind/store.h"

namespace CLI {
class App;
}  // namespace CLI

namespace rwd {

// A command of `rewind`: its CLI11 subcommand and what runs it once the
// command line chose it (and parsed into the flags "run" reads).
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
  // The servers and load handle SIGINT, SIGTERM and SIGHUP themselves;
  // the other commands end on them as any program does.
  bool handles_stop_signals = false;
};

// Prints "rewind: MESSAGE" on stderr; returns kExitError.
int Fail(const Status& s);

// SIGINT, SIGTERM and SIGHUP.
sigset_t StopSignals();

// Runs "fn" while a thread turns the first SIGINT, SIGTERM or SIGHUP into
// "*stop_signal" (so "fn" can stop and report); a second one ends the
// process as if it were not handled.
// REQUIRES: StopSignals() blocked in every thread (main does it first).
int WithStopSignal(std::atomic<int>* stop_signal,
                   const std::function<int()>& fn);

// Removes a recording this process created when the command fails before
// anything was stored in it, so a failed start leaves no empty file behind.
// A file that existed before is never touched.
class NewRecordingGuard {
 public:
  explicit NewRecordingGuard(std::string path);
  // Closes "store" (nullptr when opening it failed) and removes the files
  // this process created if no exchange was stored.
  void Abandon(std::unique_ptr<Store> store);

 private:
  static constexpr const char* kSuffixes[] = {"", "-wal", "-shm", "-journal"};
  const std::string path_;
  std::vector<bool> existed_;
};

}  // namespace rwd

#endif  // REWIND_SRC_CLI_COMMAND_H_
