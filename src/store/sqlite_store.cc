#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <malloc.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "rewind/store.h"
#include "store/codec.h"
#include "store/ticket.h"

namespace rwd {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE exchanges (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  request_key       TEXT    NOT NULL,  -- RequestKey::ToHex()
  method            TEXT    NOT NULL,
  path              TEXT    NOT NULL,
  query             TEXT    NOT NULL,
  request_headers   TEXT    NOT NULL,  -- JSON [[name, value], ...]
  request_body      BLOB    NOT NULL,
  status            INTEGER NOT NULL,
  response_headers  TEXT    NOT NULL,  -- JSON [[name, value], ...]
  chunked           INTEGER NOT NULL,
  headers_us        INTEGER NOT NULL,
  total_us          INTEGER NOT NULL,
  timeline          BLOB    NOT NULL,  -- (offset_us, length) int64 LE pairs
  response_body     BLOB    NOT NULL,
  started_at_us     INTEGER NOT NULL,  -- wall clock, Unix microseconds
  arrival_offset_us INTEGER NOT NULL,  -- since the recording session began
  complete          INTEGER NOT NULL,
  error             TEXT    NOT NULL
);
CREATE INDEX exchanges_by_key ON exchanges (request_key);
)sql";

// Schema 2: what a replay index reads, in an index it can scan alone.
constexpr const char* kCoverIndex = R"sql(
CREATE INDEX IF NOT EXISTS exchanges_by_key_cover
  ON exchanges (request_key, method, path, status, complete);
)sql";

constexpr const char* kInsert = R"sql(
INSERT INTO exchanges (request_key, method, path, query, request_headers,
  request_body, status, response_headers, chunked, headers_us, total_us,
  timeline, response_body, started_at_us, arrival_offset_us, complete, error,
  id)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
)sql";

// A response body at least this long has its pieces freed as they are
// joined for the insert, and the memory they took handed back to the
// system: the store then holds the body twice at most (the joined bytes
// and SQLite's row as it writes it), and not for longer than the commit.
constexpr size_t kLargeBody = 1u << 20;

constexpr const char* kSelect = R"sql(
SELECT id, request_key, method, path, query, request_headers, request_body,
  status, response_headers, chunked, headers_us, timeline, response_body,
  started_at_us, arrival_offset_us, complete, error
FROM exchanges WHERE id = ?
)sql";

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

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

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

// Whether this process may write both the file and its directory (where
// SQLite makes the -wal and -shm files). A read-only mount says no even
// to root; otherwise root may write anything.
bool LocationWritable(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return ::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) == 0 &&
         ::faccessat(AT_FDCWD, dir.c_str(), W_OK, AT_EACCESS) == 0;
}

// Creates an empty file readable by its owner only; SQLite keeps the mode
// for the database and gives it to its -wal and -shm files.
Status CreatePrivateFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::IOError("cannot create " + path + ": " + strerror(errno));
  }
  ::close(fd);
  return Status::Ok();
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const StoreOptions& options) : options_(options) {}

  ~SqliteStore() override {
    // Leaves one self-contained file when nothing else has it open; when
    // something does, the file stays in WAL mode, intact.
    if (writing_) Settle();
    StopThreads();
  }

  Status Init() {
    if (options_.immutable && !options_.read_only) {
      return Status::InvalidArgument("an immutable recording must be opened read-only");
    }
    const bool exists = FileExists(options_.path);
    if (!exists && !options_.create_if_missing) {
      return Status::NotFound("no recording at " + options_.path);
    }
    if (exists && !options_.read_only && !LocationWritable(options_.path)) {
      return Status::IOError(
          options_.path + " is on storage this process cannot write (a "
          "read-only file, directory or mount); this command writes the "
          "recording, so run it on a writable copy");
    }
    if (options_.read_only) {
      Status s = ChooseReadAccess();
      if (!s.ok()) return s;
    }
    if (!exists) {
      Status s = CreatePrivateFile(options_.path);
      if (!s.ok()) return s;
    }
    try {
      int flags = options_.read_only ? SQLite::OPEN_READONLY
                                     : SQLite::OPEN_READWRITE;
      if (immutable_) flags = SQLite::OPEN_READONLY | SQLite::OPEN_URI;
      db_ = std::make_unique<SQLite::Database>(ReadPath(), flags,
                                               options_.busy_timeout_ms);
      Status s = CheckOrCreateSchema();
      if (!s.ok()) return s;
      if (!options_.read_only) {
        insert_ = std::make_unique<SQLite::Statement>(*db_, kInsert);
        checkpoint_db_ = std::make_unique<SQLite::Database>(
            options_.path, SQLite::OPEN_READWRITE, options_.busy_timeout_ms);
        // A connection learns the file is in WAL mode on its first read.
        checkpoint_db_->execAndGet("SELECT count(*) FROM meta");
        // Replaces SQLite's automatic checkpoint on the writer's connection.
        sqlite3_wal_hook(db_->getHandle(), &SqliteStore::OnWalCommit, this);
        checkpointer_ = std::thread([this] { CheckpointLoop(); });
        writer_ = std::thread([this] { WriterLoop(); });
        writing_ = true;
      }
    } catch (const SQLite::Exception& e) {
      if (state_.wal_bytes > 0 && !LocationWritable(options_.path)) {
        return Status::IOError(MidWriteReadOnly());
      }
      return Status::Corruption(options_.path +
                                " is not a readable rewind recording (" +
                                e.what() + ")");
    }
    return Status::Ok();
  }

  FileState file_state() const override { return state_; }

  Status Settle() override {
    if (!writing_) return Status::Ok();
    StopThreads();  // the writer commits everything queued first
    std::lock_guard<std::mutex> maintenance(maintenance_mu_);
    if (settled_) return Status::Ok();
    {
      // Every other connection of this store goes: SQLite leaves WAL mode
      // only on the last one.
      std::lock_guard<std::mutex> lock(readers_mu_);
      readers_.clear();
    }
    insert_.reset();
    checkpoint_db_.reset();
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
    auto ticket = std::make_shared<Ticket>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (options_.read_only || stopping_) {
        ticket->done = true;
        ticket->status = Status::IOError("recording is not open for writing");
        return ticket;
      }
      queue_.push_back(Pending{std::move(exchange), ticket});
    }
    work_cv_.notify_one();
    return ticket;
  }

  Result<int64_t> WaitCommitted(const std::shared_ptr<Ticket>& t) override {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return t->done; });
    if (!t->status.ok()) return t->status;
    return t->id;
  }

  Status Flush() override {
    std::unique_lock<std::mutex> lock(mu_);
    uint64_t target = enqueued_total();
    done_cv_.wait(lock, [&] { return finished_ >= target; });
    return write_health_;
  }

  WriterStats writer_stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    WriterStats w = stats_;
    w.queued = queue_.size() + in_flight_;
    return w;
  }

  Status WriteHealth() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return write_health_;
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

  Result<std::vector<StoredRequest>> GetRequests(const std::vector<int64_t>& ids,
                                                 size_t max_body) override {
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
        Status s = DecodeHeaders(st.getColumn(4).getString(), &r.request.headers);
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

  Status ScanKeys(const std::function<void(const ExchangeSummary&)>& fn) override {
    ReadConnection conn(this);
    try {
      // No ORDER BY: SQLite then scans the covering index (schema 2), a
      // fraction of the table's pages; callers order ids themselves.
      SQLite::Statement st(conn.db(),
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
      return Status::IOError(std::string("scanning the recording: ") + ex.what());
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
      SQLite::Statement st(*db_,
                           "UPDATE meta SET value = ? WHERE name = 'key_rules'");
      st.bind(1, rules.ToJson());
      st.exec();
      SQLite::Statement name(
          *db_, "UPDATE meta SET value = ? WHERE name = 'canonicalizer'");
      name.bind(1, std::string(Canonicalizer::Name()));
      name.exec();
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

  struct Pending {
    Exchange exchange;
    std::shared_ptr<Ticket> ticket;
  };

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
            SQLite::OPEN_READONLY | (store_->immutable_ ? SQLite::OPEN_URI : 0),
            store_->options_.busy_timeout_ms);
        reader_.select = std::make_unique<SQLite::Statement>(*reader_.db,
                                                             kSelect);
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

  // The name SQLite opens: a URI with immutable=1 for shared read-only
  // files (no locks, no -wal or -shm files, no change detection).
  std::string ReadPath() const {
    if (!immutable_) return options_.path;
    std::string uri = "file:";
    for (char c : options_.path) {
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

  // Stops the writer (after it has committed everything queued) and the
  // checkpointer. Idempotent.
  void StopThreads() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    {
      std::lock_guard<std::mutex> lock(checkpoint_mu_);
      checkpoint_stop_ = true;
    }
    checkpoint_cv_.notify_all();
    if (checkpointer_.joinable()) checkpointer_.join();
  }

  // For a read-only open: notes how the file stands and picks how to open
  // it (see StoreOptions::read_only).
  Status ChooseReadAccess() {
    state_.wal_mode = HeaderSaysWal(options_.path);
    state_.wal_bytes = FileSize(options_.path + "-wal");
    if (options_.immutable) {
      if (state_.wal_bytes > 0) {
        return Status::IOError(
            options_.path + " was left mid-write: a -wal file of " +
            std::to_string(state_.wal_bytes) +
            " bytes beside it holds commits an immutable open would not "
            "see. Settle it first where it is writable: rewind verify "
            "--settle --db " + options_.path);
      }
      immutable_ = true;
    } else if (state_.wal_mode && !LocationWritable(options_.path)) {
      // SQLite would have to create the -shm file to read a WAL file.
      if (state_.wal_bytes == 0) {
        immutable_ = true;
      } else if (!FileExists(options_.path + "-shm")) {
        return Status::IOError(MidWriteReadOnly());
      }  // else SQLite reads the log through the -wal and -shm files there
    }
    state_.immutable = immutable_;
    return Status::Ok();
  }

  std::string MidWriteReadOnly() const {
    return options_.path + " was left mid-write (a -wal file of " +
           std::to_string(state_.wal_bytes) +
           " bytes beside it) on storage this process cannot write, where "
           "SQLite cannot read its log. Copy the file and its -wal file to "
           "a writable place and run: rewind verify --settle --db COPY";
  }

  uint64_t enqueued_total() const { return finished_ + queue_.size() + in_flight_; }

  std::string Meta(const std::string& name) {
    SQLite::Statement st(*db_, "SELECT value FROM meta WHERE name = ?");
    st.bind(1, name);
    return st.executeStep() ? st.getColumn(0).getString() : std::string();
  }

  Status CheckOrCreateSchema() {
    int version = db_->execAndGet("PRAGMA user_version").getInt();
    int tables =
        db_->execAndGet("SELECT count(*) FROM sqlite_master").getInt();
    if (version == 0 && tables == 0) {
      if (options_.read_only) {
        return Status::Corruption(options_.path +
                                  " is an empty file, not a recording");
      }
      rules_ = options_.rules.value_or(KeyRules{DefaultIgnoredFields(), {}});
      db_->exec("PRAGMA journal_mode=WAL");
      SQLite::Transaction t(*db_);
      db_->exec(kSchema);
      db_->exec(kCoverIndex);
      SQLite::Statement meta(*db_, "INSERT INTO meta (name, value) VALUES (?, ?)");
      for (const auto& [name, value] :
           {std::pair<std::string, std::string>{"canonicalizer",
                                                Canonicalizer::Name()},
            {"key_rules", rules_.ToJson()},
            {"created_by", "rewind"}}) {
        meta.bind(1, name);
        meta.bind(2, value);
        meta.exec();
        meta.reset();
      }
      db_->exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
      t.commit();
    } else {
      if (version == 0 || !db_->tableExists("meta") ||
          !db_->tableExists("exchanges")) {
        return Status::Corruption(options_.path +
                                  " is an SQLite database but not a rewind "
                                  "recording (no rewind schema in it)");
      }
      if (version > kSchemaVersion) {
        return Status::Corruption(
            options_.path + " has schema version " + std::to_string(version) +
            ", newer than this rewind reads (" +
            std::to_string(kSchemaVersion) + "); upgrade rewind");
      }
      std::string canonicalizer = Meta("canonicalizer");
      if (canonicalizer != Canonicalizer::Name() &&
          !options_.any_canonicalizer) {
        return Status::Corruption(
            options_.path + " was keyed by canonicalizer \"" + canonicalizer +
            "\"; this rewind uses \"" + Canonicalizer::Name() +
            "\". Re-key it once (its rules and exchanges are kept): "
            "rewind rekey --db " + options_.path);
      }
      Result<KeyRules> stored = KeyRules::FromJson(Meta("key_rules"));
      if (!stored.ok()) return stored.status();
      rules_ = stored.value();
      if (options_.rules && !(*options_.rules == rules_)) {
        return Status::InvalidArgument(
            options_.path + " was recorded with key rules " + rules_.ToJson() +
            "; the options ask for " + options_.rules->ToJson() +
            ". Omit the key options to use the recording's rules");
      }
      if (!options_.read_only) {
        db_->exec("PRAGMA journal_mode=WAL");
        if (version < 2) {
          SQLite::Transaction t(*db_);
          db_->exec(kCoverIndex);
          db_->exec("PRAGMA user_version = 2");
          t.commit();
        }
      }
    }
    if (!options_.read_only) db_->exec("PRAGMA synchronous=NORMAL");
    return Status::Ok();
  }

  // Inserts "e". Its response chunks are emptied: their bytes move into
  // the row.
  void Insert(Exchange& e) {
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
    st.exec();
    // Nothing bound may outlive this call.
    st.clearBindings();
  }

  // Called by SQLite after each commit on the writer's connection (under
  // maintenance_mu_), with the number of pages now in the log.
  static int OnWalCommit(void* self, sqlite3*, const char*, int pages) {
    auto* store = static_cast<SqliteStore*>(self);
    if (pages < store->wal_pages_) {  // the log started over
      store->next_checkpoint_at_ = kCheckpointPages;
      store->restart_at_ = kRestartPages;
    }
    store->wal_pages_ = pages;
    if (pages >= store->next_checkpoint_at_) {
      store->next_checkpoint_at_ = pages + kCheckpointPages;
      {
        std::lock_guard<std::mutex> lock(store->checkpoint_mu_);
        store->checkpoint_wanted_ = true;
      }
      store->checkpoint_cv_.notify_one();
    }
    return SQLITE_OK;
  }

  // Before a transaction on the writer's connection (under
  // maintenance_mu_): lets the log start over once it is long.
  void RestartLogIfLong() {
    if (wal_pages_ < restart_at_) return;
    // If a reader keeps the log from starting over, try again only after
    // as many pages more.
    restart_at_ = wal_pages_ + kRestartPages;
    std::unique_lock<std::mutex> lock(checkpoint_mu_);
    // A checkpoint already running may have begun before the last commit.
    const uint64_t target = checkpoints_done_ + (checkpoint_running_ ? 2 : 1);
    checkpoint_wanted_ = true;
    checkpoint_cv_.notify_one();
    checkpoint_cv_.wait(lock, [&] {
      return checkpoint_stop_ || checkpoints_done_ >= target;
    });
  }

  void CheckpointLoop() {
    std::unique_lock<std::mutex> lock(checkpoint_mu_);
    while (true) {
      checkpoint_cv_.wait(lock, [&] { return checkpoint_stop_ || checkpoint_wanted_; });
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

  void WriterLoop() {
    std::vector<Pending> batch;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything is written
        size_t n = std::min(queue_.size(), options_.max_batch);
        batch.clear();
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        in_flight_ = n;
      }
      Status status;
      std::vector<int64_t> ids;
      std::lock_guard<std::mutex> maintenance(maintenance_mu_);
      RestartLogIfLong();
      const auto commit_start = std::chrono::steady_clock::now();
      try {
        SQLite::Transaction t(*db_);
        for (Pending& p : batch) {
          Insert(p.exchange);
          ids.push_back(db_->getLastInsertRowid());
        }
        t.commit();
      } catch (const SQLite::Exception& e) {
        status = Status::IOError(std::string("committing to ") +
                                 options_.path + ": " + e.what());
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
        stats_.commit_seconds += std::chrono::duration<double>(
                                     std::chrono::steady_clock::now() - commit_start)
                                     .count();
        if (status.ok()) {
          ++stats_.commits;
          stats_.written += batch.size();
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

  const StoreOptions options_;
  KeyRules rules_;
  bool immutable_ = false;  // opened with immutable=1
  FileState state_;         // for a read-only open
  bool writing_ = false;    // opened for writing, and the threads run
  bool settled_ = false;    // guarded by maintenance_mu_
  std::unique_ptr<SQLite::Database> db_;  // the writer's connection
  std::unique_ptr<SQLite::Statement> insert_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  size_t in_flight_ = 0;       // guarded by mu_
  uint64_t finished_ = 0;      // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  Status write_health_;        // guarded by mu_
  WriterStats stats_;          // guarded by mu_
  std::thread writer_;

  // The background checkpoint (see kCheckpointPages).
  std::unique_ptr<SQLite::Database> checkpoint_db_;
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;  // guarded by checkpoint_mu_
  bool checkpoint_stop_ = false;    // guarded by checkpoint_mu_
  bool checkpoint_running_ = false; // guarded by checkpoint_mu_
  uint64_t checkpoints_done_ = 0;   // guarded by checkpoint_mu_
  // Log length as the commits see it; guarded by maintenance_mu_.
  int wal_pages_ = 0;
  int next_checkpoint_at_ = kCheckpointPages;
  int restart_at_ = kRestartPages;
  std::thread checkpointer_;

  // Serializes maintenance with the writer thread's transactions.
  std::mutex maintenance_mu_;
  std::mutex readers_mu_;
  std::vector<Reader> readers_;  // guarded by readers_mu_
};

}  // namespace

Result<std::vector<StoredRequest>> Store::GetRequests(
    const std::vector<int64_t>& ids, size_t max_body) {
  std::vector<StoredRequest> out;
  for (int64_t id : ids) {
    Result<Exchange> e = Get(id);
    if (!e.ok()) {
      if (e.status().IsNotFound()) continue;
      return e.status();
    }
    StoredRequest r;
    r.id = id;
    r.key_hex = std::move(e->key_hex);
    r.request = std::move(e->request);
    r.body_bytes = static_cast<int64_t>(r.request.body.size());
    r.body_loaded = r.request.body.size() <= max_body;
    if (!r.body_loaded) r.request.body.clear();
    out.push_back(std::move(r));
  }
  return out;
}

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
