// The lower bound for the replay benchmark: cpp-httplib configured as
// rewind configures it (thread pool of --threads, TCP_NODELAY, keep-alive,
// backlog), answering every request with the bytes of one file and doing
// nothing else. rewind replay / this = what rewind's own work costs;
// this / nginx = what the HTTP library costs.
//
// Usage: rewind-bench-hello BODY_FILE [THREADS [PORT]]
// Prints "listening on http://127.0.0.1:PORT" and serves until killed
// (PORT 0 or none: any free port).
#include <httplib.h>
#include <sys/socket.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

class HelloServer : public httplib::Server {
 public:
  int listening_socket() const { return svr_sock_; }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s BODY_FILE [THREADS [PORT]]\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 2;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string body = ss.str();
  const size_t threads = argc > 2 ? std::stoul(argv[2]) : 1024;

  HelloServer server;
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(1u << 30);
  server.set_keep_alive_timeout(2);
  auto answer = [&body](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "application/json");
  };
  server.Get(".*", answer);
  server.Post(".*", answer);
  int port = argc > 3 ? std::stoi(argv[3]) : 0;
  if (port == 0) {
    port = server.bind_to_any_port("127.0.0.1");
  } else if (!server.bind_to_port("127.0.0.1", port)) {
    port = -1;
  }
  if (port <= 0) {
    std::fprintf(stderr, "cannot listen on 127.0.0.1\n");
    return 1;
  }
  ::listen(server.listening_socket(), 4096);
  std::printf("listening on http://127.0.0.1:%d\n", port);
  std::fflush(stdout);
  server.listen_after_bind();
  return 0;
}
