// SqliteStore: the Store on one SQLite file (rewind/store.h). Opening the
// file and choosing how (Init), the reads on a pool of read-only
// connections, maintenance on the writer's connection, and Settle(). The
// schema is in schema.cc, the write path (writer and checkpointer threads)
// in write_batcher.cc, the file checks in file_access.cc.
#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "rewind/store.h"
#include "store/codec.h"
#include "store/file_access.h"
#include "store/schema.h"
#include "store/ticket.h"
#include "store/write_batcher.h"

namespace rwd {

namespace {

// One exchange. A file of a schema before 3, read as it is, has no
// own-time columns: they read as NULL (not known).
std::string SelectOne(bool own_time_columns) {
  return std::string(R"sql(
SELECT id, request_key, method, path, query, request_headers, request_body,
  status, response_headers, chunked, headers_us, timeline, response_body,
  started_at_us, arrival_offset_us, complete, error, )sql") +
         (own_time_columns ? "own_before_us, own_after_us" : "NULL, NULL") +
         "\nFROM exchanges WHERE id = ?";
}

// A nullable own-time column: -1 for NULL (not known).
int64_t OwnTime(const SQLite::Column& c) {
  return c.isNull() ? -1 : c.getInt64();
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const StoreOptions& options) : options_(options) {}

  ~SqliteStore() override {
    // Leaves one self-contained file when nothing else has it open; when
    // something does, the file stays in WAL mode, intact.
    if (writer_) Settle();
  }

  Status Init() {
    if (options_.immutable && !options_.read_only) {
      return Status::InvalidArgument(
          "an immutable recording must be opened read-only");
    }
    const bool exists = FileExists(options_.path);
    if (!exists && !options_.create_if_missing) {
      return Status::NotFound("no recording at " + options_.path);
    }
    if (exists && !options_.read_only && !LocationWritable(options_.path)) {
      return Status::IOError(
          options_.path +
          " is on storage this process cannot write (a "
          "read-only file, directory or mount); this command writes the "
          "recording, so run it on a writable copy");
    }
    if (options_.read_only) {
      Status s = ChooseReadAccess(options_, &state_);
      if (!s.ok()) return s;
    }
    if (!exists) {
      Status s = CreatePrivateFile(options_.path);
      if (!s.ok()) return s;
    }
    try {
      int flags =
          options_.read_only ? SQLite::OPEN_READONLY : SQLite::OPEN_READWRITE;
      if (state_.immutable) flags = SQLite::OPEN_READONLY | SQLite::OPEN_URI;
      db_ = std::make_unique<SQLite::Database>(ReadPath(), flags,
                                               options_.busy_timeout_ms);
      Status s = CheckOrCreateSchema(db_.get(), options_, &rules_);
      if (!s.ok()) return s;
      select_ = SelectOne(HasOwnTimeColumns(db_.get()));
      if (!options_.read_only) {
        writer_ = std::make_unique<WriteBatcher>(
            db_.get(), &maintenance_mu_, options_.path, options_.max_batch,
            options_.busy_timeout_ms);
      }
    } catch (const SQLite::Exception& e) {
      if (state_.wal_bytes > 0 && !LocationWritable(options_.path)) {
        return Status::IOError(
            MidWriteReadOnly(options_.path, state_.wal_bytes));
      }
      return Status::Corruption(options_.path +
                                " is not a readable rewind recording (" +
                                e.what() + ")");
    }
    return Status::Ok();
  }

  FileState file_state() const override { return state_; }

  Status Settle() override {
    if (!writer_) return Status::Ok();
    writer_->Stop();  // commits everything queued first
    std::lock_guard<std::mutex> maintenance(maintenance_mu_);
    if (settled_) return Status::Ok();
    {
      // Every other connection of this store goes: SQLite leaves WAL mode
      // only on the last one.
      std::lock_guard<std::mutex> lock(readers_mu_);
      readers_.clear();
    }
    sqlite3* db = db_->getHandle();
    const std::string busy = options_.path +
                             " stays in WAL mode (intact, with its -wal "
                             "file): another process has it open";
    int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE,
                                       nullptr, nullptr);
    if (rc != SQLITE_OK) {
      return Status::IOError(busy + " (" + sqlite3_errmsg(db) + ")");
    }
    try {
      const std::string mode =
          db_->execAndGet("PRAGMA journal_mode=DELETE").getString();
      if (mode != "delete") {
        return Status::IOError(busy + " (journal mode " + mode + ")");
      }
    } catch (const SQLite::Exception& e) {
      return Status::IOError(busy + " (" + e.what() + ")");
    }
    settled_ = true;
    return Status::Ok();
  }

  const KeyRules& rules() const override { return rules_; }

  std::shared_ptr<Ticket> Append(Exchange exchange) override {
    return AppendTo(std::move(exchange), /*recorded=*/false);
  }

  std::shared_ptr<Ticket> AppendRecorded(Exchange exchange) override {
    return AppendTo(std::move(exchange), /*recorded=*/true);
  }

  Result<int64_t> WaitCommitted(const std::shared_ptr<Ticket>& t) override {
    if (writer_) return writer_->WaitCommitted(t);
    return t->status;  // a read-only store's tickets are failed at once
  }

  Status Flush() override { return writer_ ? writer_->Flush() : Status::Ok(); }

  WriterStats writer_stats() const override {
    return writer_ ? writer_->stats() : WriterStats{};
  }

  Status WriteHealth() const override {
    return writer_ ? writer_->WriteHealth() : Status::Ok();
  }

  Result<Exchange> Get(int64_t id) override {
    ReadConnection conn(this);
    try {
      SQLite::Statement& st = conn.select();
      st.reset();
      st.bind(1, static_cast<int64_t>(id));
      if (!st.executeStep()) {
        return Status::NotFound("no exchange " + std::to_string(id));
      }
      Exchange e;
      e.id = st.getColumn(0).getInt64();
      e.key_hex = st.getColumn(1).getString();
      e.request.method = st.getColumn(2).getString();
      e.request.path = st.getColumn(3).getString();
      e.request.query = st.getColumn(4).getString();
      Status s = DecodeHeaders(st.getColumn(5).getString(), &e.request.headers);
      e.request.body = st.getColumn(6).getString();
      e.response.status = st.getColumn(7).getInt();
      if (s.ok()) {
        s = DecodeHeaders(st.getColumn(8).getString(), &e.response.headers);
      }
      e.response.chunked = st.getColumn(9).getInt() != 0;
      e.response.headers_us = st.getColumn(10).getInt64();
      if (s.ok()) {
        s = DecodeTimeline(st.getColumn(11).getString(),
                           st.getColumn(12).getString(), &e.response.chunks);
      }
      e.started_at_us = st.getColumn(13).getInt64();
      e.arrival_offset_us = st.getColumn(14).getInt64();
      e.complete = st.getColumn(15).getInt() != 0;
      e.error = st.getColumn(16).getString();
      e.response.own_before_us = OwnTime(st.getColumn(17));
      e.response.own_after_us = OwnTime(st.getColumn(18));
      st.reset();
      if (!s.ok()) {
        return Status::Corruption("exchange " + std::to_string(id) + ": " +
                                  s.message());
      }
      return e;
    } catch (const SQLite::Exception& ex) {
      conn.select().tryReset();
      return Status::IOError("reading exchange " + std::to_string(id) + ": " +
                             ex.what());
    }
  }

  Result<std::vector<StoredRequest>> GetRequests(
      const std::vector<int64_t>& ids, size_t max_body) override {
    ReadConnection conn(this);
    std::vector<StoredRequest> out;
    try {
      // length() of a BLOB does not read it; CASE reads only short ones.
      SQLite::Statement st(
          conn.db(),
          "SELECT request_key, method, path, query, request_headers, "
          "length(request_body), "
          "CASE WHEN length(request_body) <= ? THEN request_body END "
          "FROM exchanges WHERE id = ?");
      for (int64_t id : ids) {
        st.reset();
        st.bind(1, static_cast<int64_t>(max_body));
        st.bind(2, static_cast<int64_t>(id));
        if (!st.executeStep()) continue;
        StoredRequest r;
        r.id = id;
        r.key_hex = st.getColumn(0).getString();
        r.request.method = st.getColumn(1).getString();
        r.request.path = st.getColumn(2).getString();
        r.request.query = st.getColumn(3).getString();
        Status s =
            DecodeHeaders(st.getColumn(4).getString(), &r.request.headers);
        if (!s.ok()) {
          return Status::Corruption("exchange " + std::to_string(id) + ": " +
                                    s.message());
        }
        r.body_bytes = st.getColumn(5).getInt64();
        r.body_loaded = !st.getColumn(6).isNull();
        if (r.body_loaded) r.request.body = st.getColumn(6).getString();
        out.push_back(std::move(r));
      }
    } catch (const SQLite::Exception& ex) {
      return Status::IOError(std::string("reading requests: ") + ex.what());
    }
    return out;
  }

  Status Scan(const std::function<void(const ExchangeSummary&)>& fn) override {
    ReadConnection conn(this);
    try {
      SQLite::Statement st(
          conn.db(),
          "SELECT id, request_key, method, path, query, status, complete, "
          "started_at_us, headers_us, total_us, length(response_body), "
          "length(timeline) / 16, "
          "CASE WHEN json_valid(CAST(request_body AS TEXT)) "
          "THEN json_extract(CAST(request_body AS TEXT), '$.model') END "
          "FROM exchanges ORDER BY id");
      while (st.executeStep()) {
        ExchangeSummary s;
        s.id = st.getColumn(0).getInt64();
        s.key_hex = st.getColumn(1).getString();
        s.method = st.getColumn(2).getString();
        s.path = st.getColumn(3).getString();
        s.query = st.getColumn(4).getString();
        s.status = st.getColumn(5).getInt();
        s.complete = st.getColumn(6).getInt() != 0;
        s.started_at_us = st.getColumn(7).getInt64();
        s.headers_us = st.getColumn(8).getInt64();
        s.total_us = st.getColumn(9).getInt64();
        s.response_bytes = st.getColumn(10).getInt64();
        s.chunks = st.getColumn(11).getInt64();
        if (st.getColumn(12).isText()) s.model = st.getColumn(12).getString();
        fn(s);
      }
    } catch (const SQLite::Exception& ex) {
      return Status::IOError(std::string("scanning the recording: ") +
                             ex.what());
    }
    return Status::Ok();
  }

  Status ScanKeys(
      const std::function<void(const ExchangeSummary&)>& fn) override {
    ReadConnection conn(this);
    try {
      // No ORDER BY: SQLite then scans the covering index (schema 2), a
      // fraction of the table's pages; callers order ids themselves.
      SQLite::Statement st(
          conn.db(),
          "SELECT id, request_key, method, path, status, complete "
          "FROM exchanges");
      ExchangeSummary s;
      while (st.executeStep()) {
        s.id = st.getColumn(0).getInt64();
        s.key_hex = st.getColumn(1).getString();
        s.method = st.getColumn(2).getString();
        s.path = st.getColumn(3).getString();
        s.status = st.getColumn(4).getInt();
        s.complete = st.getColumn(5).getInt() != 0;
        fn(s);
      }
    } catch (const SQLite::Exception& ex) {
      return Status::IOError(std::string("scanning the recording: ") +
                             ex.what());
    }
    return Status::Ok();
  }

  Result<int64_t> Count() override {
    ReadConnection conn(this);
    try {
      return conn.db().execAndGet("SELECT count(*) FROM exchanges").getInt64();
    } catch (const SQLite::Exception& ex) {
      return Status::IOError(std::string("counting exchanges: ") + ex.what());
    }
  }

  Status SetRules(const KeyRules& rules) override {
    return Maintain("storing key rules", [&] {
      WriteKeyRules(db_.get(), rules);
      rules_ = rules;
    });
  }

  Status UpdateKeys(
      const std::vector<std::pair<int64_t, std::string>>& keys) override {
    return Maintain("updating keys", [&] {
      SQLite::Statement st(*db_,
                           "UPDATE exchanges SET request_key = ? WHERE id = ?");
      for (const auto& [id, key] : keys) {
        st.bind(1, key);
        st.bind(2, static_cast<int64_t>(id));
        st.exec();
        st.reset();
      }
    });
  }

  Status Delete(const std::vector<int64_t>& ids) override {
    return Maintain("deleting exchanges", [&] {
      SQLite::Statement st(*db_, "DELETE FROM exchanges WHERE id = ?");
      for (int64_t id : ids) {
        st.bind(1, static_cast<int64_t>(id));
        st.exec();
        st.reset();
      }
    });
  }

  Result<std::string> IntegrityCheck() override {
    ReadConnection conn(this);
    try {
      SQLite::Statement st(conn.db(), "PRAGMA integrity_check");
      std::string out;
      while (st.executeStep()) {
        if (!out.empty()) out += "\n";
        out += st.getColumn(0).getString();
      }
      return out;
    } catch (const SQLite::Exception& ex) {
      return Status::Corruption(std::string("integrity check: ") + ex.what());
    }
  }

 private:
  // Append() and AppendRecorded().
  std::shared_ptr<Ticket> AppendTo(Exchange exchange, bool recorded) {
    if (writer_) return writer_->Append(std::move(exchange), recorded);
    auto ticket = std::make_shared<Ticket>();
    ticket->done = true;
    ticket->status = Status::IOError("recording is not open for writing");
    return ticket;
  }

  // Runs "body" in one transaction on the writer's connection, after
  // everything queued is committed.
  template <typename Fn>
  Status Maintain(const char* what, Fn&& body) {
    if (options_.read_only) {
      return Status::IOError(std::string(what) + ": " + options_.path +
                             " is open read-only");
    }
    Status flushed = Flush();
    if (!flushed.ok()) return flushed;
    std::lock_guard<std::mutex> lock(maintenance_mu_);
    try {
      SQLite::Transaction t(*db_);
      body();
      t.commit();
    } catch (const SQLite::Exception& e) {
      return Status::IOError(std::string(what) + " in " + options_.path + ": " +
                             e.what());
    }
    return Status::Ok();
  }

  // A read-only connection with its prepared select, borrowed from the pool
  // for the lifetime of this object.
  struct Reader {
    std::unique_ptr<SQLite::Database> db;
    std::unique_ptr<SQLite::Statement> select;
  };
  class ReadConnection {
   public:
    explicit ReadConnection(SqliteStore* store) : store_(store) {
      {
        std::lock_guard<std::mutex> lock(store_->readers_mu_);
        if (!store_->readers_.empty()) {
          reader_ = std::move(store_->readers_.back());
          store_->readers_.pop_back();
        }
      }
      if (!reader_.db) {
        reader_.db = std::make_unique<SQLite::Database>(
            store_->ReadPath(),
            SQLite::OPEN_READONLY |
                (store_->state_.immutable ? SQLite::OPEN_URI : 0),
            store_->options_.busy_timeout_ms);
        reader_.select =
            std::make_unique<SQLite::Statement>(*reader_.db, store_->select_);
      }
    }
    ~ReadConnection() {
      std::lock_guard<std::mutex> lock(store_->readers_mu_);
      store_->readers_.push_back(std::move(reader_));
    }
    SQLite::Database& db() { return *reader_.db; }
    SQLite::Statement& select() { return *reader_.select; }

   private:
    SqliteStore* store_;
    Reader reader_;
  };

  std::string ReadPath() const {
    return SqliteName(options_.path, state_.immutable);
  }

  const StoreOptions options_;
  KeyRules rules_;
  std::string select_;    // one exchange by id (SelectOne), set by Init()
  FileState state_;       // for a read-only open; .immutable: opened so
  bool settled_ = false;  // guarded by maintenance_mu_
  std::unique_ptr<SQLite::Database> db_;  // the writer's connection
  // Serializes the transactions on db_: the writer's and maintenance.
  std::mutex maintenance_mu_;
  // Opened for writing: the write path, until the store closes.
  std::unique_ptr<WriteBatcher> writer_;
  std::mutex readers_mu_;
  std::vector<Reader> readers_;  // guarded by readers_mu_
};

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (options.path.empty()) {
    return Status::InvalidArgument("a recording path is required (--db)");
  }
  auto store = std::make_unique<SqliteStore>(options);
  Status s = store->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace rwd
