// The child-process helpers the integration tests run rewind with: every
// wait is bounded, and a process that hangs fails the test and is killed.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>

#include "testutil/test_server.h"

namespace rwd::testing {
namespace {

using std::chrono::seconds;

TEST(ChildProcess, GivesTheExitCodeAndWhatWasPrinted) {
  std::string out;
  EXPECT_EQ(RunShell("sh -c 'echo one; echo two >&2; exit 3'", &out), 3);
  EXPECT_EQ(out, "one\ntwo\n");
}

TEST(ChildProcess, ReadsTheListeningLinesPort) {
  ChildProcess p(
      {"/bin/sh", "-c", "echo 'x listening on http://127.0.0.1:4321'"});
  EXPECT_EQ(p.port(), 4321);
  EXPECT_EQ(p.Wait(), 0);
}

TEST(ChildProcess, ASignalIsReportedAs128PlusIt) {
  ChildProcess p({"/bin/sh", "-c", "echo ready; exec sleep 30"});
  EXPECT_EQ(p.first_line(), "ready\n");
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(), 128 + SIGTERM);
}

TEST(ChildProcess, AProcessThatDoesNotExitFailsTheTestAndIsKilled) {
  pid_t pid = 0;
  EXPECT_NONFATAL_FAILURE(
      {
        ChildProcess p({"/bin/sh", "-c", "echo ready; exec sleep 30"});
        pid = p.pid();
        EXPECT_EQ(p.Wait(seconds(1)), -1);
      },
      "did not exit within 1 s");
  ASSERT_GT(pid, 0);
  EXPECT_NE(kill(pid, 0), 0) << "the process was left running";
}

TEST(ChildProcess, ACommandThatPrintsNothingMoreFailsTheTest) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NONFATAL_FAILURE(
      RunShell("sh -c 'echo started; exec sleep 30'", nullptr, seconds(1)),
      "wrote nothing more within 1 s");
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(20));
}

}  // namespace
}  // namespace rwd::testing
