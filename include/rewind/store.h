// Store: a recording on disk, one SQLite file per recording.
//
// While a store writes, the file is in WAL mode (a -wal and a -shm file sit
// beside it). A store that closes cleanly folds the log into the file and
// leaves it in rollback-journal mode: one self-contained file, which any
// later reader opens read-only, on read-only storage too (see
// StoreOptions::read_only).
//
// Writes go through one writer thread that commits whatever has queued as a
// single transaction (group commit), so a burst of exchanges costs one commit
// instead of one each. Append() queues; WaitCommitted() blocks until the
// exchange is durable against a crash of the process (WAL with
// synchronous=NORMAL: a committed transaction survives SIGKILL; only an
// operating-system crash or power loss can lose the last commits).
//
// Reads use a pool of read-only connections, one per concurrent reader.
//
// The file records its schema version (PRAGMA user_version), the
// canonicalizer's name and the key rules it was made with. Open() refuses a
// file of a newer schema, another canonicalizer, or one that is not a rewind
// recording, without modifying it.
//
// Thread-safety: all methods are safe for concurrent use.
#ifndef REWIND_STORE_H_
#define REWIND_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rewind/exchange.h"
#include "rewind/request_key.h"
#include "rewind/status.h"

namespace rwd {

// The on-disk schema this build writes and reads. 2 added the covering
// index exchanges_by_key_cover (replay start-up reads it instead of the
// table); 3 the columns own_before_us and own_after_us (rewind's own time,
// rewind/exchange.h: Response; NULL in rows recorded before). An older
// file is upgraded when opened for writing and read as it is otherwise
// (its exchanges' own times read as -1, not known).
constexpr int kSchemaVersion = 3;

struct StoreOptions {
  // Path of the SQLite file. Required.
  std::string path;
  // Create the file (mode 0600) when it does not exist. Default: false.
  bool create_if_missing = false;
  // Open without write access; Append() then fails. Default: false.
  //
  // A read-only store on storage this process cannot write (a read-only
  // file, directory or mount) opens a file rewind closed cleanly with
  // ordinary shared locks. A file still in WAL mode there cannot be opened
  // that way (SQLite would need to create its -shm file): with no -wal
  // beside it (its last writer closed it, or an older rewind wrote it) it
  // is opened as immutable, which assumes no process writes it while it
  // is open; with a -wal beside it (left mid-write) it is read through the
  // existing -wal and -shm if both are there, else refused with a message
  // saying how to settle it.
  bool read_only = false;
  // With read_only: open as an immutable file (SQLite's immutable=1): no
  // locking and no -wal/-shm files, so many processes can share one file,
  // even on read-only storage. The file must not change while open; one
  // left mid-write (a non-empty -wal beside it) is refused. Default: false.
  bool immutable = false;
  // For a new recording: the rules to store. For an existing one: nullopt
  // uses the stored rules; a value must equal them (else InvalidArgument).
  // Default: nullopt (a new recording then gets the default rules).
  std::optional<KeyRules> rules;
  // Open a recording keyed by another canonicalizer version too (for
  // `rekey`, and inputs whose keys are recomputed anyway). Its stored keys
  // are then stale until UpdateKeys(); SetRules() stamps the recording with
  // this build's canonicalizer. Default: false.
  bool any_canonicalizer = false;
  // Most exchanges committed in one transaction. Default: 512.
  size_t max_batch = 512;
  // How long a statement waits for a lock held by another process.
  // Default: 5000 ms.
  int busy_timeout_ms = 5000;
};

// The stored request of one exchange, without its response.
struct StoredRequest {
  int64_t id = 0;
  std::string key_hex;
  // Method, path, query, headers; the body only when it was asked for.
  Request request;
  int64_t body_bytes = 0;    // the stored body's length
  bool body_loaded = false;  // request.body holds it
};

// The columns of one exchange that indexes and listings need.
struct ExchangeSummary {
  int64_t id = 0;
  std::string key_hex;
  std::string method;
  std::string path;
  std::string query;
  std::string model;  // the JSON request body's "model", or ""
  int status = 0;
  bool complete = true;
  int64_t started_at_us = 0;
  int64_t headers_us = 0;
  int64_t total_us = 0;
  int64_t response_bytes = 0;
  int64_t chunks = 0;
};

// About what storing "exchange" adds to a recording: its request and
// response, headers, key and timeline, and a row's overhead.
uint64_t ExchangeBytes(const Exchange& exchange);

class Store {
 public:
  // Handle for one queued write: Append() returns it, WaitCommitted()
  // takes it back. Opaque: what it holds belongs to the store that made it.
  struct Ticket;

  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  // Commits everything queued, then closes; a store open for writing then
  // settles the file as Settle() does, if no other connection has it open.
  virtual ~Store() = default;

  // How the file stood when it was opened read-only. All false and 0 for a
  // store open for writing (the store is then its writer).
  struct FileState {
    // The header still says WAL: the file's last writer has not closed it
    // (still running, killed, crashed) or was an older rewind.
    bool wal_mode = false;
    // Size of the -wal file beside it: commits that may not be in the file
    // itself yet. Non-zero means the file was left mid-write.
    int64_t wal_bytes = 0;
    // Opened with SQLite's immutable=1 (asked for, or chosen for a WAL
    // file on read-only storage).
    bool immutable = false;
  };
  virtual FileState file_state() const { return {}; }

  // For a store open for writing: commits everything queued, stops
  // writing, copies the write-ahead log into the file and switches it to
  // rollback-journal mode, leaving one self-contained file (no -wal or
  // -shm). Fails, leaving the file in WAL mode and intact, when another
  // connection has it open (a recorder or reader in another process).
  // Append() fails afterwards; reads still work. Ok for a read-only store.
  virtual Status Settle() { return Status::Ok(); }

  // The key rules of this recording.
  virtual const KeyRules& rules() const = 0;

  // Queues "exchange" for the writer thread. Never blocks on I/O. An
  // exchange whose id is not 0 keeps that id (imports preserve ids); the
  // commit fails if it is taken.
  virtual std::shared_ptr<Ticket> Append(Exchange exchange) = 0;
  // As Append, for an exchange recorded live, whose response.own_after_us
  // was measured up to this call: the store adds the time it waits for
  // the writer to take it (when it is >= 0). Append() keeps the value as
  // given (an import).
  virtual std::shared_ptr<Ticket> AppendRecorded(Exchange exchange) {
    return Append(std::move(exchange));
  }
  // Blocks until the ticket's exchange is committed; returns its id, or the
  // error that made the commit fail.
  virtual Result<int64_t> WaitCommitted(const std::shared_ptr<Ticket>&) = 0;
  // Blocks until everything queued so far is committed.
  virtual Status Flush() = 0;
  // The last write error, or Ok. Lets health checks report a degraded store.
  virtual Status WriteHealth() const = 0;

  // What the writer has done so far, for metrics.
  struct WriterStats {
    uint64_t queued = 0;        // exchanges waiting now
    uint64_t written = 0;       // exchanges committed
    uint64_t commits = 0;       // transactions committed
    uint64_t failures = 0;      // transactions that failed
    double commit_seconds = 0;  // time spent in commits, failed ones too
    // The recording's size as of the last commit: SQLite's pages in use
    // times the page size, what was there before it was opened included;
    // the file's size once settled (the -wal aside). MemoryStore: the
    // bytes of what it holds (ExchangeBytes()).
    uint64_t bytes = 0;
  };
  virtual WriterStats writer_stats() const { return {}; }

  // Returns NotFound if there is no exchange "id".
  virtual Result<Exchange> Get(int64_t id) = 0;
  // The stored requests of those of "ids" that exist, in the order given,
  // without reading responses. A body is read only when it is at most
  // "max_body" bytes long (0: no body is read); its length always is.
  virtual Result<std::vector<StoredRequest>> GetRequests(
      const std::vector<int64_t>& ids, size_t max_body);
  // Calls "fn" for every exchange in id order.
  virtual Status Scan(
      const std::function<void(const ExchangeSummary&)>& fn) = 0;
  // Like Scan, but fills only id, key_hex, method, path, status and
  // complete: what a replay index needs, without reading bodies. The
  // order is unspecified.
  virtual Status ScanKeys(
      const std::function<void(const ExchangeSummary&)>& fn) {
    return Scan(fn);
  }
  // Number of exchanges.
  virtual Result<int64_t> Count() = 0;

  // Maintenance. Each runs as one transaction after Flush(); none is meant
  // to run while a server writes to the same file.
  //
  // Replaces the stored key rules, and records that the keys are now this
  // build's canonicalizer's (call after UpdateKeys()).
  virtual Status SetRules(const KeyRules& rules) = 0;
  // Sets the request key of each (id, key_hex).
  virtual Status UpdateKeys(
      const std::vector<std::pair<int64_t, std::string>>& keys) = 0;
  // Deletes the exchanges "ids".
  virtual Status Delete(const std::vector<int64_t>& ids) = 0;
  // PRAGMA integrity_check: "ok", or SQLite's list of problems.
  virtual Result<std::string> IntegrityCheck() = 0;

 protected:
  Store() = default;
};

}  // namespace rwd

#endif  // REWIND_STORE_H_
