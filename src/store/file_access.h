// How a recording file is reached on disk, before and beside SQLite: whether
// it and its -wal exist, what its header says, whether this process may
// write where it lies, creating it private to its owner, and, for a
// read-only open, how to open it (StoreOptions::read_only, immutable). No
// SQLite here: plain files and POSIX calls. Internal to src/store/.
#ifndef REWIND_SRC_STORE_FILE_ACCESS_H_
#define REWIND_SRC_STORE_FILE_ACCESS_H_

#include <cstdint>
#include <string>

#include "rewind/status.h"
#include "rewind/store.h"

namespace rwd {

bool FileExists(const std::string& path);

// Whether this process may write both the file and its directory (where
// SQLite makes the -wal and -shm files). A read-only mount says no even
// to root; otherwise root may write anything.
bool LocationWritable(const std::string& path);

// Creates an empty file readable by its owner only; SQLite keeps the mode
// for the database and gives it to its -wal and -shm files.
Status CreatePrivateFile(const std::string& path);

// For a read-only open of "options.path": notes how the file stands in
// *state (WAL mode, -wal size) and chooses whether to open it immutable
// (state->immutable), as StoreOptions::read_only says; fails when the file
// cannot be read as asked (left mid-write).
Status ChooseReadAccess(const StoreOptions& options, Store::FileState* state);

// Why a file left mid-write ("wal_bytes" in its -wal) cannot be read where
// it lies, and how to settle it.
std::string MidWriteReadOnly(const std::string& path, int64_t wal_bytes);

// The name SQLite opens for "path": the path itself, or with "immutable" a
// URI with immutable=1 for shared read-only files (no locks, no -wal or
// -shm files, no change detection); open it with SQLITE_OPEN_URI.
std::string SqliteName(const std::string& path, bool immutable);

}  // namespace rwd

#endif  // REWIND_SRC_STORE_FILE_ACCESS_H_
