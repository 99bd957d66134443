// WriteBatcher: the write path of an SQLite store open for writing.
//
// One writer thread commits whatever has queued as a single transaction
// (group commit), at most max_batch exchanges each. One checkpointer
// thread, on its own connection, copies the write-ahead log into the file
// in the background, and lets the log start over once it is long (see
// kCheckpointPages in write_batcher.cc). Internal to src/store/: it speaks
// SQLiteCpp.
//
// Thread-safety: all methods are safe for concurrent use.
#ifndef REWIND_SRC_STORE_WRITE_BATCHER_H_
#define REWIND_SRC_STORE_WRITE_BATCHER_H_

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "rewind/exchange.h"
#include "rewind/status.h"
#include "rewind/store.h"

namespace rwd {

class WriteBatcher {
 public:
  // Prepares the insert on "db" (the writer's connection to "path", its
  // schema in place), opens the checkpointer's connection, takes over the
  // log's checkpoints from SQLite's automatic ones, and starts both
  // threads. "db" and "db_mu" must outlive this. "db_mu" serializes the
  // transactions on "db": the writer holds it for each batch, and anyone
  // else running one on "db" must hold it too. Throws SQLite::Exception
  // when the statement or the connection cannot be made.
  WriteBatcher(SQLite::Database* db, std::mutex* db_mu, const std::string& path,
               size_t max_batch, int busy_timeout_ms);
  // Stop(), then hands "db" back to SQLite's own checkpoints.
  ~WriteBatcher();

  WriteBatcher(const WriteBatcher&) = delete;
  WriteBatcher& operator=(const WriteBatcher&) = delete;

  // As Store::Append (Store::AppendRecorded when "recorded") and the rest:
  // queues, waits for one, waits for all, the last commit's result, and
  // what the writer has done.
  std::shared_ptr<Store::Ticket> Append(Exchange exchange,
                                        bool recorded = false);
  Result<int64_t> WaitCommitted(const std::shared_ptr<Store::Ticket>& ticket);
  Status Flush();
  Status WriteHealth() const;
  Store::WriterStats stats() const;

  // Commits everything queued, stops both threads, and closes the insert
  // statement and the checkpointer's connection, leaving "db" alone open;
  // Append() fails afterwards. Idempotent.
  void Stop();

 private:
  struct Pending {
    Exchange exchange;
    std::shared_ptr<Store::Ticket> ticket;
    // Recorded live: the time it waits in the queue is rewind's own too
    // (added to exchange.response.own_after_us when the row is written).
    bool recorded = false;
    std::chrono::steady_clock::time_point queued;
  };

  // Inserts "e". Its response chunks are emptied: their bytes move into
  // the row.
  void Insert(Exchange& e);
  // Called by SQLite after each commit on "db" (under *db_mu_), with the
  // number of pages now in the log.
  static int OnWalCommit(void* self, sqlite3*, const char*, int pages);
  // Before a transaction on "db" (under *db_mu_): lets the log start over
  // once it is long.
  void RestartLogIfLong();
  void CheckpointLoop();
  void WriterLoop();
  uint64_t enqueued_total() const {
    return finished_ + queue_.size() + in_flight_;
  }
  // The database's size now, on "db" (under *db_mu_): pages × page size.
  uint64_t DatabaseBytes();

  SQLite::Database* const db_;  // the writer's connection
  std::mutex* const db_mu_;
  const std::string path_;
  const size_t max_batch_;
  std::unique_ptr<SQLite::Statement> insert_;
  std::unique_ptr<SQLite::Statement> page_count_;
  uint64_t page_size_ = 0;

  std::mutex stop_mu_;  // one Stop() at a time

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  size_t in_flight_ = 0;       // guarded by mu_
  uint64_t finished_ = 0;      // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  Status write_health_;        // guarded by mu_
  Store::WriterStats stats_;   // guarded by mu_
  std::thread writer_;

  // The background checkpoint.
  std::unique_ptr<SQLite::Database> checkpoint_db_;
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;   // guarded by checkpoint_mu_
  bool checkpoint_stop_ = false;     // guarded by checkpoint_mu_
  bool checkpoint_running_ = false;  // guarded by checkpoint_mu_
  uint64_t checkpoints_done_ = 0;    // guarded by checkpoint_mu_
  // Log length as the commits see it; guarded by *db_mu_.
  int wal_pages_ = 0;
  int next_checkpoint_at_;
  int restart_at_;
  std::thread checkpointer_;
};

}  // namespace rwd

#endif  // REWIND_SRC_STORE_WRITE_BATCHER_H_
