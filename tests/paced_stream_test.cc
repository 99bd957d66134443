#include "http/paced_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

namespace rwd {
namespace {

using State = PacedStream::State;
using Framing = PacedStream::Framing;

// A stream stepped by hand at chosen times (the loop's timers, without a
// loop) into one end of a socket pair; the test reads the other end.
class Paced : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
    fcntl(fds_[0], F_SETFL, fcntl(fds_[0], F_GETFL) | O_NONBLOCK);
    fcntl(fds_[1], F_SETFL, fcntl(fds_[1], F_GETFL) | O_NONBLOCK);
  }
  void TearDown() override {
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }
  // What the client end has received since the last call.
  std::string Read() {
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = read(fds_[1], buf, sizeof(buf))) > 0) got.append(buf, n);
    return got;
  }
  static Timeline Stream(std::vector<std::pair<int64_t, std::string>> pieces,
                         int64_t headers_us = 0) {
    auto r = std::make_shared<Response>();
    r->status = 200;
    r->chunked = true;
    Timeline t;
    t.at.headers_us = headers_us;
    for (auto& [at, data] : pieces) {
      r->chunks.push_back({at, data});
      t.at.chunk_us.push_back(at);
    }
    t.response = std::move(r);
    return t;
  }

  int fds_[2] = {-1, -1};
};

constexpr int64_t kStart = 1'000'000;

TEST_F(Paced, EachPartGoesAtItsDeadlineAndNotBefore) {
  PacedStream s("HEAD\r\n\r\n", Stream({{100, "a"}, {250, "bb"}}, 40), kStart,
                Framing::kChunked);
  PacedStream::Next n = s.Step(fds_[0], kStart);
  EXPECT_EQ(n.state, State::kWaitUntil);
  EXPECT_EQ(n.at_us, kStart + 40);
  EXPECT_EQ(Read(), "");

  n = s.Step(fds_[0], kStart + 40);
  EXPECT_EQ(n.state, State::kWaitUntil);
  EXPECT_EQ(n.at_us, kStart + 100);
  EXPECT_EQ(Read(), "HEAD\r\n\r\n");

  n = s.Step(fds_[0], kStart + 100);
  EXPECT_EQ(n.at_us, kStart + 250);
  EXPECT_EQ(Read(), "1\r\na\r\n");

  n = s.Step(fds_[0], kStart + 250);
  EXPECT_EQ(n.state, State::kDone);
  EXPECT_EQ(Read(), "2\r\nbb\r\n0\r\n\r\n");
  EXPECT_EQ(s.body_bytes(), 3u);
}

TEST_F(Paced, ALateStepSendsEverythingDueInOneGo) {
  PacedStream s("H\r\n\r\n", Stream({{10, "a"}, {20, "b"}, {500, "c"}}), kStart,
                Framing::kLength);
  PacedStream::Next n = s.Step(fds_[0], kStart + 30);
  EXPECT_EQ(n.state, State::kWaitUntil);
  EXPECT_EQ(n.at_us, kStart + 500);
  EXPECT_EQ(Read(), "H\r\n\r\nab");
  EXPECT_EQ(s.Step(fds_[0], kStart + 500).state, State::kDone);
  EXPECT_EQ(Read(), "c");
}

TEST_F(Paced, EmptyPiecesNeverEndAChunkedBodyEarly) {
  PacedStream s("H\r\n\r\n", Stream({{0, ""}, {0, "x"}}), kStart,
                Framing::kChunked);
  EXPECT_EQ(s.Step(fds_[0], kStart).state, State::kDone);
  EXPECT_EQ(Read(), "H\r\n\r\n1\r\nx\r\n0\r\n\r\n");
}

TEST_F(Paced, TheHeadAloneForHead) {
  PacedStream s("H\r\n\r\n", Stream({{0, "body"}}, 70), kStart, Framing::kNone);
  EXPECT_EQ(s.Step(fds_[0], kStart + 69).state, State::kWaitUntil);
  EXPECT_EQ(s.Step(fds_[0], kStart + 70).state, State::kDone);
  EXPECT_EQ(Read(), "H\r\n\r\n");
  EXPECT_EQ(s.body_bytes(), 0u);
}

TEST_F(Paced, AnAbortedStreamBreaksTheConnectionAfterItsLastPiece) {
  Timeline t = Stream({{0, "a"}});
  t.end = Timeline::End::kAbort;
  PacedStream s("H\r\n\r\n", std::move(t), kStart, Framing::kChunked);
  EXPECT_EQ(s.Step(fds_[0], kStart).state, State::kBroken);
  // No last chunk: the client sees the stream cut off.
  EXPECT_EQ(Read(), "H\r\n\r\n1\r\na\r\n");
}

TEST_F(Paced, ABodyShorterThanItsAnnouncedLengthBreaks) {
  Timeline t = Stream({{0, "abc"}});
  t.content_length = 10;  // a "drop" fault
  PacedStream s("H\r\n\r\n", std::move(t), kStart, Framing::kLength);
  EXPECT_EQ(s.Step(fds_[0], kStart).state, State::kBroken);
}

// Back-pressure: a client that stops reading pauses its stream; nothing
// more is taken from the timeline until it reads, and then what fell due
// meanwhile goes at once.
TEST_F(Paced, AClientThatStopsReadingPausesItsOwnTimeline) {
  int size = 4096;
  setsockopt(fds_[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  setsockopt(fds_[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  const std::string big(1 << 20, 'x');
  PacedStream s("H\r\n\r\n", Stream({{0, big}, {10, "tail"}}), kStart,
                Framing::kLength);
  EXPECT_EQ(s.Step(fds_[0], kStart).state, State::kWaitWritable);
  // Time passes; the client still does not read: nothing changes.
  EXPECT_EQ(s.Step(fds_[0], kStart + 1000).state, State::kWaitWritable);
  std::string got;
  PacedStream::Next n{State::kWaitWritable};
  for (int i = 0; i < 100000 && n.state == State::kWaitWritable; ++i) {
    got += Read();
    n = s.Step(fds_[0], kStart + 2000);
  }
  got += Read();
  EXPECT_EQ(n.state, State::kDone);
  EXPECT_EQ(got, "H\r\n\r\n" + big + "tail");
}

// Thousands of events all due at once are queued a batch at a time: a
// reader that stops holds a few hundred segments, not one per event, and
// one that reads gets them all, in order.
TEST_F(Paced, ManyPiecesDueAtOnceAreQueuedInBatches) {
  int size = 4096;
  setsockopt(fds_[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  setsockopt(fds_[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  std::vector<std::pair<int64_t, std::string>> pieces;
  std::string expected;
  for (int i = 0; i < 10000; ++i) {
    pieces.push_back({0, "data: " + std::to_string(i) + "\n\n"});
    expected += pieces.back().second;
  }
  PacedStream s("H\r\n\r\n", Stream(pieces), kStart, Framing::kLength);
  EXPECT_EQ(s.Step(fds_[0], kStart).state, State::kWaitWritable);
  EXPECT_LE(s.queued(), 256u);
  std::string got;
  PacedStream::Next n{State::kWaitWritable};
  for (int i = 0; i < 100000 && n.state != State::kDone; ++i) {
    got += Read();
    n = s.Step(fds_[0], kStart + 1);
    EXPECT_LE(s.queued(), 256u);
  }
  got += Read();
  EXPECT_EQ(n.state, State::kDone);
  EXPECT_EQ(got, "H\r\n\r\n" + expected);
}

TEST_F(Paced, AGoneClientBreaksTheStream) {
  PacedStream s("H\r\n\r\n", Stream({{0, "a"}, {10, "b"}}), kStart,
                Framing::kChunked);
  EXPECT_EQ(s.Step(fds_[0], kStart).state, State::kWaitUntil);
  close(fds_[1]);
  fds_[1] = -1;
  EXPECT_EQ(s.Step(fds_[0], kStart + 10).state, State::kBroken);
}

}  // namespace
}  // namespace rwd
