// Helpers for tests that talk real HTTP on 127.0.0.1 with ephemeral ports:
// a backend run on a thread, an in-process rewind server, a rewind child
// process, and a temporary directory.
#ifndef REWIND_TESTS_TESTUTIL_TEST_SERVER_H_
#define REWIND_TESTS_TESTUTIL_TEST_SERVER_H_

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "rewind/server.h"
#include "rewind/store.h"

namespace rwd::testing {

// A directory removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "rewind-test-XXXXXX")
            .string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Opens (and by default creates) a recording, failing the test on error.
inline std::unique_ptr<Store> OpenTestStore(const std::string& path,
                                            bool create = true) {
  StoreOptions o;
  o.path = path;
  o.create_if_missing = create;
  Result<std::unique_ptr<Store>> s = Store::Open(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s.value()) : nullptr;
}

// An httplib::Server listening on 127.0.0.1:<ephemeral> on its own thread.
class BackgroundServer {
 public:
  BackgroundServer() {
    server_.set_tcp_nodelay(true);
    server_.set_keep_alive_max_count(1u << 30);
    server_.new_task_queue = [] { return new httplib::ThreadPool(32); };
  }
  ~BackgroundServer() { Stop(); }
  httplib::Server& server() { return server_; }
  void Start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs.
    while (!server_.is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void Stop() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }
  int port() const { return port_; }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

// A rewind Server (record or replay) run in this process on its own thread.
class InProcessRewind {
 public:
  // "options.store" must outlive this object.
  explicit InProcessRewind(ServerOptions options) {
    options.front.host = "127.0.0.1";
    options.front.port = 0;
    if (options.front.max_connections == 1024) {
      options.front.max_connections = 64;
    }
    Result<std::unique_ptr<Server>> s = Server::Create(options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return;
    server_ = std::move(s.value());
    Result<int> port = server_->Bind();
    EXPECT_TRUE(port.ok()) << port.status().ToString();
    port_ = port.ok() ? port.value() : 0;
    thread_ = std::thread([this] { run_status_ = server_->Run(); });
    // Bound and listening already: connections wait in the backlog.
  }
  ~InProcessRewind() { Stop(); }
  Status Stop() {
    if (thread_.joinable()) {
      server_->Stop();
      thread_.join();
    }
    return run_status_;
  }
  int port() const { return port_; }
  std::unique_ptr<httplib::Client> Client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(30, 0);
    c->set_decompress(false);
    return c;
  }

 private:
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
  Status run_status_;
};

// What a process that has not finished in time is doing: each thread's
// name, state and kernel wait channel, and its stacks when gdb can attach.
inline std::string DescribeStuck(pid_t pid) {
  namespace fs = std::filesystem;
  auto read = [](const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  };
  std::ostringstream out;
  out << "process " << pid << ":\n";
  std::error_code ec;
  const fs::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : fs::directory_iterator(tasks, ec)) {
    const std::string stat = read(task.path() / "stat");
    const size_t paren = stat.rfind(')');
    out << "  thread " << task.path().filename().string() << " "
        << read(task.path() / "comm") << " state "
        << (paren + 2 < stat.size() ? stat.substr(paren + 2, 1) : "?") << " in "
        << read(task.path() / "wchan") << "\n";
  }
  if (fs::exists("/usr/bin/gdb")) {
    const std::string cmd = "timeout 60 gdb -p " + std::to_string(pid) +
                            " -batch -ex 'thread apply all bt' 2>&1";
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.write(buf, n);
      pclose(p);
    }
  }
  return out.str();
}

// A child process run from "argv" (argv[0] a path), its stdout on a pipe.
// Every wait on it is bounded: a process that hangs fails the test with
// what its threads were doing, and is killed.
class ChildProcess {
 public:
  // "stderr_path": a file that gets the process's stderr ("": this
  // process's stderr). Waits at most "first_line_limit" for the first
  // stdout line (a server's "listening on http://HOST:PORT", whose port
  // port() gives).
  explicit ChildProcess(
      std::vector<std::string> argv, const std::string& stderr_path = "",
      std::chrono::seconds first_line_limit = std::chrono::seconds(60))
      : argv_(std::move(argv)) {
    // Everything the child needs is made before fork: between fork and
    // exec only async-signal-safe calls.
    std::vector<char*> args;
    for (std::string& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    int out[2];
    if (pipe(out) != 0) return;
    const int err = stderr_path.empty()
                        ? -1
                        : open(stderr_path.c_str(),
                               O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    pid_ = fork();
    if (pid_ == 0) {
      if (err >= 0) dup2(err, STDERR_FILENO);
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execv(args[0], args.data());
      _exit(127);
    }
    if (err >= 0) close(err);
    close(out[1]);
    stdout_fd_ = out[0];
    if (pid_ < 0) return;
    first_line_ = ReadLine(first_line_limit);
    size_t colon = first_line_.rfind(':');
    if (first_line_.find("listening on") != std::string::npos &&
        colon != std::string::npos) {
      port_ = std::atoi(first_line_.c_str() + colon + 1);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0 && !waited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) close(stdout_fd_);
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& first_line() const { return first_line_; }
  void Signal(int sig) { kill(pid_, sig); }

  // The rest of stdout, until the process closes it or "limit" passes
  // (then the test fails and the process is killed).
  std::string ReadAll(std::chrono::seconds limit) {
    std::string all;
    Read(limit, [&](char c) {
      all += c;
      return true;
    });
    return all;
  }

  // Exit code, or 128 + signal. A process still running after "limit"
  // fails the test, is killed, and gives -1.
  int Wait(std::chrono::seconds limit = std::chrono::seconds(90)) {
    if (pid_ <= 0) return -1;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        Stuck("did not exit within " + std::to_string(limit.count()) + " s");
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    waited_ = true;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
  }

 private:
  std::string ReadLine(std::chrono::seconds limit) {
    std::string line;
    Read(limit, [&](char c) {
      line += c;
      return c != '\n';
    });
    return line;
  }

  // Feeds stdout to "take" a byte at a time until it returns false, the
  // pipe closes or "limit" passes. Reads in blocks; bytes read past the
  // one "take" refused wait in "pending_" for the next call.
  template <typename Take>
  void Read(std::chrono::seconds limit, Take take) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      size_t used = 0;
      bool more = true;
      while (more && used < pending_.size()) more = take(pending_[used++]);
      pending_.erase(0, used);
      if (!more || stdout_fd_ < 0) return;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{stdout_fd_, POLLIN, 0};
      const int ready =
          left.count() > 0 ? poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) {
        Stuck("wrote nothing more within " + std::to_string(limit.count()) +
              " s");
        return;
      }
      char buf[4096];
      const ssize_t n = read(stdout_fd_, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      pending_.append(buf, static_cast<size_t>(n));
    }
  }

  void Stuck(const std::string& what) {
    std::string command;
    for (const std::string& a : argv_)
      command += (command.empty() ? "" : " ") + a;
    ADD_FAILURE() << "`" << command << "` " << what << "; "
                  << DescribeStuck(pid_);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    waited_ = true;
  }

  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string pending_;  // read from stdout, not yet taken
  std::string first_line_;
  int port_ = 0;
  bool waited_ = false;
};

// The rewind binary run as a child process. Waits for its
// "listening on http://HOST:PORT" line.
class RewindProcess : public ChildProcess {
 public:
  explicit RewindProcess(std::vector<std::string> args,
                         const std::string& stderr_path = "")
      : ChildProcess(WithBinary(std::move(args)), stderr_path) {}

 private:
  static std::vector<std::string> WithBinary(std::vector<std::string> args) {
    args.insert(args.begin(), REWIND_BINARY);
    return args;
  }
};

// Runs the shell command "cmd" with stderr joined to stdout; returns its
// exit code (-1 if a signal ended it) and, in "out", what it printed. A
// command still running after "limit" fails the test and is killed.
inline int RunShell(const std::string& cmd, std::string* out,
                    std::chrono::seconds limit = std::chrono::seconds(120)) {
  ChildProcess p({"/bin/sh", "-c", "exec " + cmd + " 2>&1"}, "", limit);
  std::string all = p.first_line() + p.ReadAll(limit);
  const int code = p.Wait(limit);
  if (out) *out = std::move(all);
  return code > 128 ? -1 : code;
}

// Runs the rewind binary to completion; returns its exit code and, in
// "err", its stdout and stderr together.
inline int RunRewind(const std::string& args, std::string* err) {
  return RunShell(std::string(REWIND_BINARY) + " " + args, err);
}

}  // namespace rwd::testing

#endif  // REWIND_TESTS_TESTUTIL_TEST_SERVER_H_
