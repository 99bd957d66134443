// Helpers for tests that talk real HTTP on 127.0.0.1 with ephemeral ports:
// a backend run on a thread, an in-process rewind server, a rewind child
// process, and a temporary directory.
#ifndef REWIND_TESTS_TESTUTIL_TEST_SERVER_H_
#define REWIND_TESTS_TESTUTIL_TEST_SERVER_H_

#include <gtest/gtest.h>
#include <httplib.h>
#include <fcntl.h>
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
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void Stop() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

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
    options.host = "127.0.0.1";
    options.port = 0;
    if (options.max_connections == 1024) options.max_connections = 64;
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

// The rewind binary run as a child process. Waits for its
// "listening on http://HOST:PORT" line.
class RewindProcess {
 public:
  // "stderr_path": a file that gets the process's stderr ("": this
  // process's stderr).
  explicit RewindProcess(std::vector<std::string> args,
                         const std::string& stderr_path = "") {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      if (!stderr_path.empty()) {
        int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (err >= 0) dup2(err, STDERR_FILENO);
      }
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      std::vector<char*> argv;
      static std::string binary = REWIND_BINARY;
      argv.push_back(binary.data());
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    stdout_ = fdopen(out[0], "r");
    char line[512];
    if (stdout_ && fgets(line, sizeof(line), stdout_)) {
      first_line_ = line;
      size_t colon = first_line_.rfind(':');
      if (first_line_.find("listening on") != std::string::npos &&
          colon != std::string::npos) {
        port_ = std::atoi(first_line_.c_str() + colon + 1);
      }
    }
  }
  ~RewindProcess() {
    if (pid_ > 0 && !waited_) {
      kill(pid_, SIGKILL);
      Wait();
    }
    if (stdout_) fclose(stdout_);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& first_line() const { return first_line_; }
  void Signal(int sig) { kill(pid_, sig); }
  // Exit code, or 128 + signal.
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    waited_ = true;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  FILE* stdout_ = nullptr;
  std::string first_line_;
  int port_ = 0;
  bool waited_ = false;
};

// Runs the rewind binary to completion; returns its exit code and stderr.
inline int RunRewind(const std::string& args, std::string* err) {
  std::string cmd = std::string(REWIND_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (err) *err = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace rwd::testing

#endif  // REWIND_TESTS_TESTUTIL_TEST_SERVER_H_
