// The write path of an SQLite store: group commits on a writer thread and
// background checkpoints on a checkpointer thread (see write_batcher.h).
#include "store/write_batcher.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "store/codec.h"
#include "store/ticket.h"

namespace rwd {
namespace {

constexpr const char* kInsert = R"sql(
INSERT INTO exchanges (request_key, method, path, query, request_headers,
  request_body, status, response_headers, chunked, headers_us, total_us,
  timeline, response_body, started_at_us, arrival_offset_us, complete, error,
  id, own_before_us, own_after_us)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
)sql";

// A response body at least this long has its pieces freed as they are
// joined for the insert, and the memory they took handed back to the
// system: the store then holds the body twice at most (the joined bytes
// and SQLite's row as it writes it), and not for longer than the commit.
constexpr size_t kLargeBody = 1u << 20;

// Write-ahead-log checkpoints. SQLite's own (every 1,000 pages, inside the
// commit that crosses the mark) copies the log into the database and
// fsyncs both files while every client waiting for that commit waits too:
// about 4 ms once per ~2,000 exchanges here. Instead a checkpointer thread
// with its own connection copies the log in the background every
// kCheckpointPages new pages (a PASSIVE checkpoint never blocks the
// writer). The log only starts over when a transaction begins with all of
// it copied, which a steady stream of commits never allows; so once it
// holds kRestartPages the writer waits, before its next transaction, for
// one checkpoint of what is left (the few pages since the last one).
constexpr int kCheckpointPages = 250;
constexpr int kRestartPages = 4000;  // 16 MB with 4 KB pages

// Binds "bytes" as a BLOB without copying them: they must stay unchanged
// until the statement has run.
void BindBlob(SQLite::Statement* st, int index, const std::string& bytes) {
  st->bindNoCopy(index, static_cast<const void*>(bytes.data()),
                 static_cast<int>(bytes.size()));
}

}  // namespace

WriteBatcher::WriteBatcher(SQLite::Database* db, std::mutex* db_mu,
                           const std::string& path, size_t max_batch,
                           int busy_timeout_ms)
    : db_(db),
      db_mu_(db_mu),
      path_(path),
      max_batch_(max_batch),
      next_checkpoint_at_(kCheckpointPages),
      restart_at_(kRestartPages) {
  insert_ = std::make_unique<SQLite::Statement>(*db_, kInsert);
  page_count_ = std::make_unique<SQLite::Statement>(*db_, "PRAGMA page_count");
  page_size_ =
      static_cast<uint64_t>(db_->execAndGet("PRAGMA page_size").getInt64());
  {
    std::lock_guard<std::mutex> lock(*db_mu_);
    stats_.bytes = DatabaseBytes();
  }
  checkpoint_db_ = std::make_unique<SQLite::Database>(
      path_, SQLite::OPEN_READWRITE, busy_timeout_ms);
  // A connection learns the file is in WAL mode on its first read.
  checkpoint_db_->execAndGet("SELECT count(*) FROM meta");
  // Replaces SQLite's automatic checkpoint on the writer's connection.
  sqlite3_wal_hook(db_->getHandle(), &WriteBatcher::OnWalCommit, this);
  checkpointer_ = std::thread([this] { CheckpointLoop(); });
  writer_ = std::thread([this] { WriterLoop(); });
}

WriteBatcher::~WriteBatcher() {
  Stop();
  std::lock_guard<std::mutex> lock(*db_mu_);
  sqlite3_wal_hook(db_->getHandle(), nullptr, nullptr);
}

std::shared_ptr<Store::Ticket> WriteBatcher::Append(Exchange exchange,
                                                    bool recorded) {
  auto ticket = std::make_shared<Store::Ticket>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ticket->done = true;
      ticket->status = Status::IOError("recording is not open for writing");
      return ticket;
    }
    queue_.push_back(Pending{std::move(exchange), ticket, recorded,
                             recorded
                                 ? std::chrono::steady_clock::now()
                                 : std::chrono::steady_clock::time_point()});
  }
  work_cv_.notify_one();
  return ticket;
}

Result<int64_t> WriteBatcher::WaitCommitted(
    const std::shared_ptr<Store::Ticket>& t) {
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return t->done; });
  if (!t->status.ok()) return t->status;
  return t->id;
}

Status WriteBatcher::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t target = enqueued_total();
  done_cv_.wait(lock, [&] { return finished_ >= target; });
  return write_health_;
}

Status WriteBatcher::WriteHealth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_health_;
}

Store::WriterStats WriteBatcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Store::WriterStats w = stats_;
  w.queued = queue_.size() + in_flight_;
  return w;
}

void WriteBatcher::Stop() {
  std::lock_guard<std::mutex> stop(stop_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (writer_.joinable()) writer_.join();  // after it commits everything queued
  {
    std::lock_guard<std::mutex> lock(checkpoint_mu_);
    checkpoint_stop_ = true;
  }
  checkpoint_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
  insert_.reset();
  page_count_.reset();
  checkpoint_db_.reset();
}

void WriteBatcher::Insert(Exchange& e) {
  std::vector<Chunk>& chunks = e.response.chunks;
  SQLite::Statement& st = *insert_;
  st.reset();
  st.clearBindings();
  st.bind(1, e.key_hex);
  st.bind(2, e.request.method);
  st.bind(3, e.request.path);
  st.bind(4, e.request.query);
  st.bind(5, EncodeHeaders(e.request.headers));
  BindBlob(&st, 6, e.request.body);
  st.bind(7, e.response.status);
  st.bind(8, EncodeHeaders(e.response.headers));
  st.bind(9, e.response.chunked ? 1 : 0);
  st.bind(10, static_cast<int64_t>(e.response.headers_us));
  st.bind(11, static_cast<int64_t>(e.response.TotalMicros()));
  const std::string timeline = EncodeTimeline(chunks);
  BindBlob(&st, 12, timeline);
  std::string body;
  if (chunks.size() == 1) {
    body = std::move(chunks.front().data);
  } else {
    size_t size = 0;
    for (const Chunk& c : chunks) size += c.data.size();
    body.reserve(size);
    for (Chunk& c : chunks) {
      body += c.data;
      std::string().swap(c.data);
    }
    if (size >= kLargeBody) malloc_trim(0);
  }
  BindBlob(&st, 13, body);
  st.bind(14, static_cast<int64_t>(e.started_at_us));
  st.bind(15, static_cast<int64_t>(e.arrival_offset_us));
  st.bind(16, e.complete ? 1 : 0);
  st.bind(17, e.error);
  if (e.id != 0) {
    st.bind(18, static_cast<int64_t>(e.id));
  } else {
    st.bind(18);  // NULL: the next id
  }
  // NULL: not known.
  auto bind_own = [&st](int index, int64_t us) {
    if (us >= 0) {
      st.bind(index, static_cast<int64_t>(us));
    } else {
      st.bind(index);
    }
  };
  bind_own(19, e.response.own_before_us);
  bind_own(20, e.response.own_after_us);
  st.exec();
  // Nothing bound may outlive this call.
  st.clearBindings();
}

uint64_t WriteBatcher::DatabaseBytes() {
  try {
    page_count_->reset();
    const uint64_t pages =
        page_count_->executeStep()
            ? static_cast<uint64_t>(page_count_->getColumn(0).getInt64())
            : 0;
    page_count_->reset();
    return pages * page_size_;
  } catch (const SQLite::Exception&) {
    page_count_->tryReset();
    return 0;
  }
}

int WriteBatcher::OnWalCommit(void* self, sqlite3*, const char*, int pages) {
  auto* batcher = static_cast<WriteBatcher*>(self);
  if (pages < batcher->wal_pages_) {  // the log started over
    batcher->next_checkpoint_at_ = kCheckpointPages;
    batcher->restart_at_ = kRestartPages;
  }
  batcher->wal_pages_ = pages;
  if (pages >= batcher->next_checkpoint_at_) {
    batcher->next_checkpoint_at_ = pages + kCheckpointPages;
    {
      std::lock_guard<std::mutex> lock(batcher->checkpoint_mu_);
      batcher->checkpoint_wanted_ = true;
    }
    batcher->checkpoint_cv_.notify_one();
  }
  return SQLITE_OK;
}

void WriteBatcher::RestartLogIfLong() {
  if (wal_pages_ < restart_at_) return;
  // If a reader keeps the log from starting over, try again only after
  // as many pages more.
  restart_at_ = wal_pages_ + kRestartPages;
  std::unique_lock<std::mutex> lock(checkpoint_mu_);
  // A checkpoint already running may have begun before the last commit.
  const uint64_t target = checkpoints_done_ + (checkpoint_running_ ? 2 : 1);
  checkpoint_wanted_ = true;
  checkpoint_cv_.notify_one();
  checkpoint_cv_.wait(
      lock, [&] { return checkpoint_stop_ || checkpoints_done_ >= target; });
}

void WriteBatcher::CheckpointLoop() {
  std::unique_lock<std::mutex> lock(checkpoint_mu_);
  while (true) {
    checkpoint_cv_.wait(lock,
                        [&] { return checkpoint_stop_ || checkpoint_wanted_; });
    if (checkpoint_stop_) return;
    checkpoint_wanted_ = false;
    checkpoint_running_ = true;
    lock.unlock();
    // SQLITE_BUSY (another checkpoint running, a reader holding old
    // pages) leaves the pages for the next round.
    sqlite3_wal_checkpoint_v2(checkpoint_db_->getHandle(), nullptr,
                              SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    lock.lock();
    checkpoint_running_ = false;
    ++checkpoints_done_;
    checkpoint_cv_.notify_all();
  }
}

void WriteBatcher::WriterLoop() {
  std::vector<Pending> batch;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is written
      size_t n = std::min(queue_.size(), max_batch_);
      batch.clear();
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      in_flight_ = n;
    }
    Status status;
    std::vector<int64_t> ids;
    uint64_t bytes = 0;
    std::lock_guard<std::mutex> transaction(*db_mu_);
    RestartLogIfLong();
    const auto commit_start = std::chrono::steady_clock::now();
    try {
      SQLite::Transaction t(*db_);
      for (Pending& p : batch) {
        int64_t& after = p.exchange.response.own_after_us;
        if (p.recorded && after >= 0) {
          after += std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::steady_clock::now() - p.queued)
                       .count();
        }
        Insert(p.exchange);
        ids.push_back(db_->getLastInsertRowid());
      }
      t.commit();
      bytes = DatabaseBytes();
    } catch (const SQLite::Exception& e) {
      status = Status::IOError(std::string("committing to ") + path_ + ": " +
                               e.what());
      insert_->tryReset();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i].ticket->done = true;
        batch[i].ticket->status = status;
        if (status.ok()) batch[i].ticket->id = ids[i];
      }
      finished_ += batch.size();
      in_flight_ = 0;
      write_health_ = status;
      stats_.commit_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                        commit_start)
              .count();
      if (status.ok()) {
        ++stats_.commits;
        stats_.written += batch.size();
        if (bytes > 0) stats_.bytes = bytes;
      } else {
        ++stats_.failures;
      }
    }
    done_cv_.notify_all();
    // The exchanges are on disk: free their bytes now rather than when
    // the next batch comes.
    batch.clear();
  }
}

}  // namespace rwd
