// The in-memory store is rwd::MemoryStore (src/store/memory_store.h); this
// name stays for tests written against rwd::testing::MemoryStore.
#ifndef REWIND_TESTS_TESTUTIL_MEMORY_STORE_H_
#define REWIND_TESTS_TESTUTIL_MEMORY_STORE_H_

#include "store/memory_store.h"

namespace rwd::testing {

using MemoryStore = ::rwd::MemoryStore;

}  // namespace rwd::testing

#endif  // REWIND_TESTS_TESTUTIL_MEMORY_STORE_H_
