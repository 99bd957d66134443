// A recording file on disk, before and beside SQLite (see file_access.h).
#include "store/file_access.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace rwd {
namespace {

// Size of "path", 0 when it does not exist.
int64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

// Whether the database header says WAL mode: bytes 18 and 19 (the file
// format's write and read versions) are 2 in WAL mode, 1 in rollback mode.
bool HeaderSaysWal(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char header[20];
  if (!in.read(header, sizeof(header))) return false;
  return header[18] == 2 || header[19] == 2;
}

}  // namespace

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool LocationWritable(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return ::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) == 0 &&
         ::faccessat(AT_FDCWD, dir.c_str(), W_OK, AT_EACCESS) == 0;
}

Status CreatePrivateFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IOError("cannot create " + path + ": " + strerror(errno));
  }
  ::close(fd);
  return Status::Ok();
}

Status ChooseReadAccess(const StoreOptions& options, Store::FileState* state) {
  state->wal_mode = HeaderSaysWal(options.path);
  state->wal_bytes = FileSize(options.path + "-wal");
  bool immutable = false;
  if (options.immutable) {
    if (state->wal_bytes > 0) {
      return Status::IOError(
          options.path + " was left mid-write: a -wal file of " +
          std::to_string(state->wal_bytes) +
          " bytes beside it holds commits an immutable open would not "
          "see. Settle it first where it is writable: rewind verify "
          "--settle --db " +
          options.path);
    }
    immutable = true;
  } else if (state->wal_mode && !LocationWritable(options.path)) {
    // SQLite would have to create the -shm file to read a WAL file.
    if (state->wal_bytes == 0) {
      immutable = true;
    } else if (!FileExists(options.path + "-shm")) {
      return Status::IOError(MidWriteReadOnly(options.path, state->wal_bytes));
    }  // else SQLite reads the log through the -wal and -shm files there
  }
  state->immutable = immutable;
  return Status::Ok();
}

std::string MidWriteReadOnly(const std::string& path, int64_t wal_bytes) {
  return path + " was left mid-write (a -wal file of " +
         std::to_string(wal_bytes) +
         " bytes beside it) on storage this process cannot write, where "
         "SQLite cannot read its log. Copy the file and its -wal file to "
         "a writable place and run: rewind verify --settle --db COPY";
}

std::string SqliteName(const std::string& path, bool immutable) {
  if (!immutable) return path;
  std::string uri = "file:";
  for (char c : path) {
    if (c == '?' || c == '#' || c == '%') {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", static_cast<unsigned char>(c));
      uri += buf;
    } else {
      uri += c;
    }
  }
  return uri + "?immutable=1";
}

}  // namespace rwd
