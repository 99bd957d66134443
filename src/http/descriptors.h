// Open-file descriptors for many connections: how many they take, and
// making room for them before the first is accepted.
//
// Thread-safety: call before serving (PrepareDescriptors changes process
// limits).
#ifndef REWIND_SRC_HTTP_DESCRIPTORS_H_
#define REWIND_SRC_HTTP_DESCRIPTORS_H_

#include <sys/resource.h>

#include <cstddef>

namespace rwd {

// Descriptors one connection can take: the client's socket and, when
// proxying, the backend's plus the two of libcurl's wake-up socket pair.
constexpr size_t kDescriptorsPerConnection = 4;

// Descriptors "connections" clients can take, and a margin for the rest
// (the recording, logs, the listening socket).
size_t DescriptorsFor(size_t connections);

// Makes room for "want" descriptors up front (see descriptors.cc) and
// returns the number available, for a warning when it is short.
size_t PrepareDescriptors(rlim_t want, int any_fd);

}  // namespace rwd

#endif  // REWIND_SRC_HTTP_DESCRIPTORS_H_
