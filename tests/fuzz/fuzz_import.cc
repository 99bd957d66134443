// Fuzzes `rewind import` (rewind JSON and HAR) into an in-memory store.
#include <cstdint>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "store/memory_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  for (const char* format : {"", "json", "har"}) {
    rwd::MemoryStore store;
    std::istringstream in(input);
    std::ostringstream err;
    rwd::RunImport(&store, format, in, /*rekey=*/false, err);
    // Whatever was imported must export again.
    std::ostringstream out;
    rwd::RunExport(&store, "json", out, err);
  }
  return 0;
}
