#include "http/connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

namespace rwd {
namespace {

// How long a worker waits on its connection for the next request before
// handing the connection back to the reactor. Long enough that a client
// sending requests back to back keeps its worker (no hand-off per
// request), short enough that an idle or trickling client frees it.
constexpr int kWorkerGraceMs = 50;
// A body announced by Content-Length gets this much time per MiB on top of
// --client-timeout (a floor of 1 MiB/s on upload speed).
constexpr int64_t kBodyMsPerMiB = 1000;
constexpr int kReadBuffer = 16 * 1024;
// How long a closing connection's unread input is read and dropped before
// the socket is closed anyway (see Linger).
constexpr int64_t kLingerMs = 2000;

// The longest the reactor sleeps before it looks at its deadlines again.
constexpr int64_t kSweepUs = 100'000;

void SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int PortOf(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  return 0;
}

}  // namespace

struct ConnectionLoop::Conn {
  Conn(int fd_, const RequestLimits& limits) : fd(fd_), parser(limits) {}
  int fd;
  std::string in;
  RequestParser parser;
  // When the connection is cut if no whole request has arrived.
  int64_t deadline_ms = 0;
  // Between requests, before any byte of the next one.
  bool idle = false;
  bool head_seen = false;
  // Answered and shut for writing: what still arrives is read and dropped
  // until the client closes or the deadline passes (Linger).
  bool draining = false;
  // Writing a paced response (the reactor's, between requests).
  std::unique_ptr<PacedStream> paced;
  std::function<void(bool, uint64_t)> finished;
  bool close_after_paced = false;
  TimerQueue::Id timer = 0;  // the paced stream's next piece, or the
                             // next pipelined request (see EndPaced)
  uint32_t events = 0;       // what epoll watches for
  // Handed to a worker by ServeHere: what answers the request taken.
  std::function<Served(const ClientEnd&)> resume;
  bool resume_close = false;
};

ConnectionLoop::ConnectionLoop(ConnectionOptions options, ServeFn serve,
                               RejectFn reject)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : SystemClock()),
      serve_(std::move(serve)),
      reject_(std::move(reject)),
      // Made here, not in Run(): Stop() may come from another thread
      // before Run() starts, and writes to wake_fd_.
      epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ConnectionLoop::~ConnectionLoop() {
  for (auto& c : waiting_) {
    if (c) close(c->fd);
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

Result<int> ConnectionLoop::Bind(const std::string& host, int port,
                                 int backlog) {
  const std::string where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int gai = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (gai != 0) {
    return Status::IOError("cannot listen on " + where + ": " +
                           gai_strerror(gai));
  }
  int error = 0;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    // SO_REUSEADDR lets a restarted rewind bind past TIME_WAIT; unlike
    // SO_REUSEPORT it never lets two listeners share the port.
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        listen(fd, backlog) != 0) {
      error = errno;
      close(fd);
      continue;
    }
    listen_fd_ = fd;
    break;
  }
  freeaddrinfo(found);
  if (listen_fd_ < 0) {
    if (error == EADDRINUSE) {
      return Status::IOError(where + " is already in use");
    }
    return Status::IOError("cannot listen on " + where + ": " +
                           std::strerror(error));
  }
  SetNonBlocking(listen_fd_);
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  return PortOf(addr);
}

void ConnectionLoop::Stop() {
  stopping_ = true;
  const uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

int ConnectionLoop::Wait(epoll_event* events, int size, int64_t max_us) {
  int64_t wait_us = max_us;
  // The timer the wait ends for, if it does not end sooner.
  bool for_timer = false;
  int64_t due = 0;
  if (std::optional<int64_t> next = timers_.Next()) {
    due = *next;
    const int64_t until = due - clock_->NowMicros();
    for_timer = until <= max_us;
    wait_us = std::clamp<int64_t>(until, 0, max_us);
  }
  // Microsecond timeouts: a paced piece is due to the microsecond, and
  // epoll_wait's milliseconds would make each one up to 1 ms late.
  timespec timeout{static_cast<time_t>(wait_us / 1'000'000),
                   static_cast<long>(wait_us % 1'000'000) * 1000};
  int n = epoll_pwait2(epoll_fd_, events, size, &timeout, nullptr);
  if (n < 0 && errno == ENOSYS) {  // a kernel before 5.11
    n = epoll_wait(epoll_fd_, events, size,
                   static_cast<int>((wait_us + 999) / 1000));
  }
  // Waited for a timer: the time has come on the real clock, and a fake
  // one (tests) moves to it here, as SleepUntil says.
  if (n == 0 && for_timer && due > clock_->NowMicros()) {
    clock_->SleepUntil(due);
  }
  return n;
}

bool ConnectionLoop::Drained() {
  if (writing_count_ > 0 || on_workers_.load() > 0) return false;
  std::lock_guard<std::mutex> lock(adopt_mu_);
  return adopted_.empty();
}

void ConnectionLoop::Run(std::unique_ptr<httplib::TaskQueue> workers) {
  workers_ = std::move(workers);
  // Timers fire to the microsecond: no timer slack for this thread.
  prctl(PR_SET_TIMERSLACK, 1UL);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  ev.data.fd = listen_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);

  int64_t next_sweep = NowMs() + kSweepUs / 1000;
  epoll_event events[256];
  bool stopped = false;  // the stop's first steps are taken
  while (true) {
    if (stopping_ && !stopped) {
      // Stop: no new connections; idle ones are closed; requests in
      // flight finish on their workers, paced streams here.
      stopped = true;
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
      close(listen_fd_);
      listen_fd_ = -1;
      for (auto& c : waiting_) {
        if (c && !c->paced) Close(c->fd);
      }
    }
    if (stopped && Drained()) break;
    const int n = Wait(events, 256, kSweepUs);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t count;
        ssize_t ignored = read(wake_fd_, &count, sizeof(count));
        (void)ignored;
        std::vector<std::unique_ptr<Conn>> adopted;
        {
          std::lock_guard<std::mutex> lock(adopt_mu_);
          adopted.swap(adopted_);
        }
        for (auto& c : adopted) Watch(std::move(c));
      } else if (fd == listen_fd_) {
        if (!stopping_) Accept();
      } else if (static_cast<size_t>(fd) < waiting_.size() && waiting_[fd]) {
        Conn* c = waiting_[fd].get();
        if (!c->paced) {
          OnReadable(c);
        } else if (events[i].events & (EPOLLERR | EPOLLHUP)) {
          EndPaced(c, false);  // the client is gone
        } else if (events[i].events & EPOLLOUT) {
          Pump(c);
        }
      }
    }
    timers_.RunDue(clock_->NowMicros());
    const int64_t now = NowMs();
    if (now >= next_sweep) {
      SweepDeadlines();
      next_sweep = now + kSweepUs / 1000;
      if (!accepting_ && !stopping_) {
        // Descriptors ran out earlier: try again.
        epoll_event le{};
        le.events = EPOLLIN;
        le.data.fd = listen_fd_;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &le) == 0) {
          accepting_ = true;
        }
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(adopt_mu_);
    reactor_done_ = true;
    for (auto& c : adopted_) close(c->fd);
    adopted_.clear();
  }
  for (auto& c : waiting_) {
    if (c) Close(c->fd);
  }
  waiting_count_ = 0;
  workers_->shutdown();
}

void ConnectionLoop::Accept() {
  for (int i = 0; i < 256; ++i) {
    const int fd =
        accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        // Leave the rest in the backlog until descriptors free up.
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        accepting_ = false;
      }
      return;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Conn>(fd, options_.limits);
    c->deadline_ms = NowMs() + options_.client_timeout_s * 1000;
    Watch(std::move(c));
  }
}

void ConnectionLoop::Watch(std::unique_ptr<Conn> c) {
  if (stopping_ && !c->paced) {
    close(c->fd);
    return;
  }
  const int fd = c->fd;
  epoll_event ev{};
  // A paced stream is watched for room only when it runs out of it; epoll
  // reports a broken connection whatever the events asked for.
  c->events = c->paced ? 0 : (EPOLLIN | EPOLLRDHUP);
  ev.events = c->events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    if (c->paced && c->finished) c->finished(false, 0);
    close(fd);
    return;
  }
  if (static_cast<size_t>(fd) >= waiting_.size()) waiting_.resize(fd + 1);
  Conn* raw = c.get();
  waiting_[fd] = std::move(c);
  waiting_count_++;
  if (raw->paced) {
    writing_count_++;
    Pump(raw);
  }
}

void ConnectionLoop::Interest(Conn* c, uint32_t events) {
  if (c->events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = c->fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev);
  c->events = events;
}

void ConnectionLoop::Close(int fd) {
  Conn* c = waiting_[fd].get();
  if (c->timer) timers_.Cancel(c->timer);
  if (c->paced) {
    writing_count_--;
    if (c->finished) c->finished(false, c->paced->body_bytes());
  }
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  waiting_[fd].reset();
  waiting_count_--;
}

void ConnectionLoop::Pump(Conn* c) {
  if (c->timer) {
    timers_.Cancel(c->timer);
    c->timer = 0;
  }
  const PacedStream::Next next = c->paced->Step(c->fd, clock_->NowMicros());
  switch (next.state) {
    case PacedStream::State::kWaitUntil:
      Interest(c, 0);
      c->deadline_ms = 0;
      c->timer = timers_.At(next.at_us, [this, c] {
        c->timer = 0;
        Pump(c);
      });
      return;
    case PacedStream::State::kWaitWritable:
      // Each wake-up for room follows progress: the client is given
      // --client-timeout from the last of it.
      Interest(c, EPOLLOUT);
      c->deadline_ms = NowMs() + options_.write_timeout_s * 1000;
      return;
    case PacedStream::State::kDone:
      EndPaced(c, true);
      return;
    case PacedStream::State::kBroken:
      EndPaced(c, false);
      return;
  }
}

void ConnectionLoop::EndPaced(Conn* c, bool ok) {
  if (c->timer) {
    timers_.Cancel(c->timer);
    c->timer = 0;
  }
  const uint64_t bytes = c->paced->body_bytes();
  c->paced.reset();
  writing_count_--;
  auto finished = std::move(c->finished);
  c->finished = nullptr;
  if (finished) finished(ok, bytes);
  if (!ok) {
    Close(c->fd);
    return;
  }
  if (c->close_after_paced || stopping_) {
    LingerHere(c);
    return;
  }
  // The next request: pipelined already, or still to come.
  c->idle = c->in.empty();
  c->deadline_ms = NowMs() + (c->idle ? options_.keep_alive_timeout_s
                                      : options_.client_timeout_s) *
                                 1000;
  Interest(c, EPOLLIN | EPOLLRDHUP);
  // A request pipelined behind this answer is taken up on the next turn of
  // the loop, not from here: a client pipelining thousands of requests
  // must not nest one answer inside another on the stack.
  if (!c->in.empty()) {
    c->timer = timers_.At(clock_->NowMicros(), [this, c] {
      c->timer = 0;
      Advance(c);
    });
  }
}

bool ConnectionLoop::StartDraining(Conn* c) {
  char probe;
  const ssize_t n = recv(c->fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  // Nothing unread (or the client is gone): a plain close loses nothing.
  if (n <= 0) return false;
  shutdown(c->fd, SHUT_WR);
  c->draining = true;
  c->in.clear();
  c->deadline_ms = NowMs() + kLingerMs;
  return true;
}

void ConnectionLoop::LingerHere(Conn* c) {
  if (!StartDraining(c)) {
    Close(c->fd);
    return;
  }
  Interest(c, EPOLLIN | EPOLLRDHUP);
}

void ConnectionLoop::OnReadable(Conn* c) {
  char buf[kReadBuffer];
  if (c->draining) {
    // A bounded amount per wake-up; level-triggered epoll calls again.
    for (int i = 0; i < 16; ++i) {
      const ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      Close(c->fd);  // the client closed, or the connection broke
      return;
    }
    return;
  }
  bool eof = false;
  // A bounded amount per wake-up, so one fast uploader cannot starve the
  // others; level-triggered epoll calls again for the rest.
  for (int i = 0; i < 16; ++i) {
    const ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n > 0) {
      c->in.append(buf, static_cast<size_t>(n));
      if (n < static_cast<ssize_t>(sizeof(buf))) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    eof = true;
    break;
  }
  if (Advance(c)) return;
  if (eof) Close(c->fd);
}

std::unique_ptr<ConnectionLoop::Conn> ConnectionLoop::TakeOut(Conn* c) {
  if (c->timer) {
    timers_.Cancel(c->timer);
    c->timer = 0;
  }
  const int fd = c->fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  std::unique_ptr<Conn> owned = std::move(waiting_[fd]);
  waiting_count_--;
  owned->events = 0;
  return owned;
}

void ConnectionLoop::ServeHere(Conn* c) {
  const size_t consumed = c->parser.consumed();
  ParsedRequest request = c->parser.Take();
  const bool close_after = request.close || request.http10 || stopping_;
  Served served =
      serve_(std::move(request),
             ClientEnd{c->fd, options_.write_timeout_s * 1000}, close_after,
             /*on_loop=*/true);
  c->in.erase(0, consumed);
  c->head_seen = false;
  if (served.on_worker) {
    std::unique_ptr<Conn> owned = TakeOut(c);
    owned->resume = std::move(served.on_worker);
    owned->resume_close = close_after;
    Dispatch(std::move(owned));
    return;
  }
  if (served.paced) {
    c->paced = std::move(served.paced);
    c->finished = std::move(served.finished);
    c->close_after_paced = close_after || served.close_after;
    writing_count_++;
    // Pump stops watching for input only if the answer has to wait: one
    // written at once leaves the connection as it was, with no epoll_ctl.
    Pump(c);
    return;
  }
  // Written already (a server that wrote on the loop): as after a paced
  // answer.
  c->paced = PacedStream::Now(std::string());
  c->close_after_paced = close_after || !served.ok;
  writing_count_++;
  Pump(c);
}

bool ConnectionLoop::Advance(Conn* c) {
  if (c->timer && !c->paced) {  // a pipelined request EndPaced left for now
    timers_.Cancel(c->timer);
    c->timer = 0;
  }
  if (c->in.empty()) return false;
  const int64_t now = NowMs();
  if (c->idle) {
    c->idle = false;
    c->deadline_ms = now + options_.client_timeout_s * 1000;
  }
  const RequestParser::State state = c->parser.Parse(c->in);
  if (state == RequestParser::State::kError) {
    Reject(c);
    return true;
  }
  if (state == RequestParser::State::kComplete) {
    if (options_.serve_on_loop) {
      ServeHere(c);
    } else {
      Dispatch(TakeOut(c));
    }
    return true;
  }
  if (c->parser.head_done() && !c->head_seen) {
    c->head_seen = true;
    c->deadline_ms += static_cast<int64_t>(c->parser.announced_body() *
                                           kBodyMsPerMiB / (1u << 20));
  }
  if (c->parser.wants_continue()) {
    static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    SendAll(c->fd, kContinue, sizeof(kContinue) - 1, 0);
    c->parser.continue_sent();
  }
  return false;
}

void ConnectionLoop::Reject(Conn* c) {
  const std::string response =
      RejectionResponse(c->parser.status(), c->parser.message());
  SendAll(c->fd, response.data(), response.size(), 0);
  if (reject_) reject_(c->parser.status(), c->parser.message());
  // The rest of what the client sent is unread: closing now could reset
  // the connection before it reads the answer. Drop what comes, then close.
  shutdown(c->fd, SHUT_WR);
  c->draining = true;
  c->in.clear();
  c->deadline_ms = NowMs() + kLingerMs;
}

void ConnectionLoop::SweepDeadlines() {
  const int64_t now = NowMs();
  for (auto& c : waiting_) {
    if (!c || c->deadline_ms > now) continue;
    if (c->paced) {
      // 0: waiting for its next piece, not for the client.
      if (c->deadline_ms != 0) EndPaced(c.get(), false);
      continue;
    }
    if (c->parser.started() && !c->draining) {
      const std::string response = RejectionResponse(
          408, "the request did not arrive whole within --client-timeout (" +
                   std::to_string(options_.client_timeout_s) + " s)");
      SendAll(c->fd, response.data(), response.size(), 0);
      if (reject_) reject_(408, "request timeout");
    }
    Close(c->fd);
  }
}

void ConnectionLoop::Dispatch(std::unique_ptr<Conn> c) {
  // std::function needs a copyable callable: the task owns a raw pointer
  // and rebuilds the unique_ptr when it runs.
  Conn* raw = c.release();
  on_workers_++;
  workers_->enqueue(
      [this, raw] { ServeConnection(std::unique_ptr<Conn>(raw)); });
}

void ConnectionLoop::Adopt(std::unique_ptr<Conn> c) {
  {
    std::lock_guard<std::mutex> lock(adopt_mu_);
    if (!reactor_done_) {
      adopted_.push_back(std::move(c));
    }
  }
  if (c) {
    if (c->paced && c->finished) c->finished(false, 0);
    close(c->fd);
    return;
  }
  const uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void ConnectionLoop::ServeConnection(std::unique_ptr<Conn> c) {
  // However this worker lets go of the connection (handed back to the
  // reactor first), a stopping reactor is told it has one fewer to wait
  // for.
  struct Release {
    ConnectionLoop* loop;
    ~Release() {
      if (--loop->on_workers_ == 0 && loop->stopping_) {
        const uint64_t one = 1;
        ssize_t ignored = write(loop->wake_fd_, &one, sizeof(one));
        (void)ignored;
      }
    }
  } release{this};
  const int write_timeout_ms = options_.write_timeout_s * 1000;
  while (true) {
    Served served;
    bool close_after = false;
    if (c->resume) {
      // Taken on the reactor, which left the answering to a worker.
      auto resume = std::move(c->resume);
      c->resume = nullptr;
      close_after = c->resume_close || stopping_;
      served = resume(ClientEnd{c->fd, write_timeout_ms});
    } else {
      const size_t consumed = c->parser.consumed();
      ParsedRequest request = c->parser.Take();
      // HTTP/1.0: a body of unknown length ends when the connection does.
      close_after = request.close || request.http10 || stopping_;
      served = serve_(std::move(request), ClientEnd{c->fd, write_timeout_ms},
                      close_after, /*on_loop=*/false);
      c->in.erase(0, consumed);
    }
    c->head_seen = false;
    if (served.paced) {
      // The reactor writes it, then reads the next request.
      c->paced = std::move(served.paced);
      c->finished = std::move(served.finished);
      c->close_after_paced = close_after || served.close_after;
      Adopt(std::move(c));
      return;
    }
    const bool ok = served.ok;
    if (!ok || close_after) {
      Linger(std::move(c));
      return;
    }
    if (stopping_) break;

    // The next request: pipelined already, or arriving soon on this
    // worker; otherwise the reactor waits for it.
    c->idle = c->in.empty();
    c->deadline_ms = NowMs() + (c->idle ? options_.keep_alive_timeout_s
                                        : options_.client_timeout_s) *
                                   1000;
    // With the reactor serving, the connection goes back to it at once:
    // its next request is answered there when it can be.
    const int64_t grace_end =
        NowMs() + (options_.serve_on_loop ? 0 : kWorkerGraceMs);
    RequestParser::State state = c->in.empty()
                                     ? RequestParser::State::kIncomplete
                                     : c->parser.Parse(c->in);
    bool eof = false;
    while (state == RequestParser::State::kIncomplete && !stopping_) {
      const int64_t wait = std::min(grace_end, c->deadline_ms) - NowMs();
      if (wait <= 0) break;
      pollfd p{c->fd, POLLIN, 0};
      const int r = poll(&p, 1, static_cast<int>(wait));
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        break;
      }
      char buf[kReadBuffer];
      const ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        eof = true;
        break;
      }
      if (c->idle) {
        c->idle = false;
        c->deadline_ms = NowMs() + options_.client_timeout_s * 1000;
      }
      c->in.append(buf, static_cast<size_t>(n));
      state = c->parser.Parse(c->in);
      if (c->parser.wants_continue()) {
        static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        SendAll(c->fd, kContinue, sizeof(kContinue) - 1, write_timeout_ms);
        c->parser.continue_sent();
      }
    }
    if (state == RequestParser::State::kComplete) continue;
    if (state == RequestParser::State::kError) {
      const std::string response =
          RejectionResponse(c->parser.status(), c->parser.message());
      SendAll(c->fd, response.data(), response.size(), write_timeout_ms);
      if (reject_) reject_(c->parser.status(), c->parser.message());
      Linger(std::move(c));
      return;
    }
    if (eof || stopping_) break;
    if (c->parser.head_done() && !c->head_seen) {
      c->head_seen = true;
      c->deadline_ms += static_cast<int64_t>(c->parser.announced_body() *
                                             kBodyMsPerMiB / (1u << 20));
    }
    Adopt(std::move(c));
    return;
  }
  close(c->fd);
}

void ConnectionLoop::Linger(std::unique_ptr<Conn> c) {
  if (!StartDraining(c.get())) {
    close(c->fd);
    return;
  }
  Adopt(std::move(c));
}

}  // namespace rwd
