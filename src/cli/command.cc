#include "cli/command.h"

#include <pthread.h>
#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/commands.h"

namespace rwd {

int Fail(const Status& s) {
  std::cerr << "rewind: " << s.message() << "\n";
  return kExitError;
}

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  return signals;
}

int WithStopSignal(std::atomic<int>* stop_signal,
                   const std::function<int()>& fn) {
  const sigset_t signals = StopSignals();
  std::atomic<bool> running{true};
  std::thread watcher([&] {
    int sig = 0;
    while (true) {
      sigwait(&signals, &sig);
      if (!running) return;  // woken by the main thread below
      if (stop_signal->load() == 0) {
        stop_signal->store(sig);
        std::cerr << "rewind: "
                  << (sig == SIGINT    ? "SIGINT"
                      : sig == SIGTERM ? "SIGTERM"
                                       : "SIGHUP")
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

NewRecordingGuard::NewRecordingGuard(std::string path)
    : path_(std::move(path)) {
  for (const char* suffix : kSuffixes) {
    struct stat st;
    existed_.push_back(::lstat((path_ + suffix).c_str(), &st) == 0);
  }
}

void NewRecordingGuard::Abandon(std::unique_ptr<Store> store) {
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

}  // namespace rwd
