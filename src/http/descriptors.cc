#include "http/descriptors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace rwd {

// Descriptors "connections" clients can take, and a margin for the rest
// (the recording, logs, the listening socket).
size_t DescriptorsFor(size_t connections) {
  return connections * kDescriptorsPerConnection + 64;
}

// Makes room for "want" descriptors up front. The soft limit on open files
// is raised to the hard one: a paced stream holds a connection but no
// worker, so connections can outnumber --max-connections many times (10,000
// streams on the default 1,024 workers), and each takes a descriptor. The
// process's descriptor table is grown to "want" once, now: the kernel grows it
// by doubling as descriptors are opened, and each growth in a multi-threaded
// process waits for an RCU grace period, a stall of ~5 ms for every thread
// seen at 256 and 512 descriptors. Returns the number of descriptors
// available, for a warning when it is short.
size_t PrepareDescriptors(rlim_t want, int any_fd) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return want;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY
                          ? std::max<rlim_t>(want, limit.rlim_cur)
                          : limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  const rlim_t available =
      limit.rlim_cur == RLIM_INFINITY ? want : std::min(want, limit.rlim_cur);
  const int grown =
      fcntl(any_fd, F_DUPFD_CLOEXEC, static_cast<int>(available) - 1);
  if (grown >= 0) close(grown);
  return available;
}

}  // namespace rwd
