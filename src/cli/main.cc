// rewind: record and replay inference traffic. See README.md.
//
// Exit codes: 0 success, 1 findings (reserved for checks), 2 usage or I/O
// error.
//
// This file only dispatches: each command's flags and runner are in
// server_commands.cc (record, replay, serve) and recording_commands.cc.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/recording_commands.h"
#include "cli/scrub_commands.h"
#include "cli/server_commands.h"
#include "cli/usage.h"

int main(int argc, char** argv) {
  using namespace rwd;
  // Before any thread exists (the store starts one), so that every thread
  // inherits the mask and only the commands that handle these signals
  // receive them.
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

  // In this order in --help.
  const std::vector<Command> servers = {
      AddRecordCommand(app), AddReplayCommand(app), AddServeCommand(app)};
  const std::vector<Command> recording_commands = {
      AddLsCommand(app),     AddShowCommand(app),   AddStatsCommand(app),
      AddExportCommand(app), AddImportCommand(app), AddMergeCommand(app),
      AddVerifyCommand(app), AddRekeyCommand(app),  AddCheckCommand(app),
      AddLoadCommand(app),   AddPruneCommand(app),  AddScanCommand(app),
      AddScrubCommand(app)};
  app.footer(
      "Exit codes: 0 success, 1 findings (verify found problems, show found "
      "nothing, scan found matches), 2 usage or I/O error.\nrewind COMMAND "
      "--help shows each "
      "command's flags and an example.");
  for (const Command& server : servers) AddConfigOption(server.app);

  std::vector<std::string> raw_args(argv, argv + argc);
  if (raw_args.size() >= 2 && raw_args[1] == "help") {  // rewind help [COMMAND]
    raw_args.erase(raw_args.begin() + 1);
    raw_args.push_back("--help");
  }
  Status command_line = CheckCommandLine(app, raw_args);
  if (!command_line.ok()) return Fail(command_line);
  Result<std::vector<std::string>> args = ExpandConfig(app, raw_args);
  if (!args.ok()) return Fail(args.status());
  std::vector<char*> expanded;
  for (std::string& a : args.value()) expanded.push_back(a.data());
  try {
    app.parse(static_cast<int>(expanded.size()), expanded.data());
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitError;
  }
  for (const std::vector<Command>* commands : {&servers, &recording_commands}) {
    for (const Command& command : *commands) {
      if (!*command.app) continue;
      if (!command.handles_stop_signals)
        pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
      return command.run();
    }
  }
  return kExitError;
}
