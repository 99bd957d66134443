// The recording's schema, its checks and migrations (see schema.h).
#include "store/schema.h"

#include <utility>

namespace rwd {
namespace {

// own_before_us and own_after_us (schema 3): the time rewind itself took
// (rewind/exchange.h: Response), from receipt to the request handed to the
// backend and from the answer's last byte to the row written; NULL: not
// measured. (No SQL comment beside them: SQLite's DROP COLUMN, which a
// test uses to make an older file, trips on one after the last column.)
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
  error             TEXT    NOT NULL,
  own_before_us     INTEGER,
  own_after_us      INTEGER
);
CREATE INDEX exchanges_by_key ON exchanges (request_key);
)sql";

// Schema 3: rewind's own time per exchange. Adding a column with no
// default rewrites nothing: older rows read it as NULL.
constexpr const char* kOwnTimeColumns = R"sql(
ALTER TABLE exchanges ADD COLUMN own_before_us INTEGER;
ALTER TABLE exchanges ADD COLUMN own_after_us INTEGER;
)sql";

// Schema 2: what a replay index reads, in an index it can scan alone.
constexpr const char* kCoverIndex = R"sql(
CREATE INDEX IF NOT EXISTS exchanges_by_key_cover
  ON exchanges (request_key, method, path, status, complete);
)sql";

std::string Meta(SQLite::Database* db, const std::string& name) {
  SQLite::Statement st(*db, "SELECT value FROM meta WHERE name = ?");
  st.bind(1, name);
  return st.executeStep() ? st.getColumn(0).getString() : std::string();
}

}  // namespace

Status CheckOrCreateSchema(SQLite::Database* db, const StoreOptions& options,
                           KeyRules* rules) {
  int version = db->execAndGet("PRAGMA user_version").getInt();
  int tables = db->execAndGet("SELECT count(*) FROM sqlite_master").getInt();
  if (version == 0 && tables == 0) {
    if (options.read_only) {
      return Status::Corruption(options.path +
                                " is an empty file, not a recording");
    }
    *rules = options.rules.value_or(KeyRules{DefaultIgnoredFields(), {}});
    db->exec("PRAGMA journal_mode=WAL");
    SQLite::Transaction t(*db);
    db->exec(kSchema);
    db->exec(kCoverIndex);
    SQLite::Statement meta(*db, "INSERT INTO meta (name, value) VALUES (?, ?)");
    for (const auto& [name, value] :
         {std::pair<std::string, std::string>{"canonicalizer",
                                              Canonicalizer::NameFor(*rules)},
          {"key_rules", rules->ToJson()},
          {"created_by", "rewind"}}) {
      meta.bind(1, name);
      meta.bind(2, value);
      meta.exec();
      meta.reset();
    }
    db->exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
    t.commit();
  } else {
    if (version == 0 || !db->tableExists("meta") ||
        !db->tableExists("exchanges")) {
      return Status::Corruption(options.path +
                                " is an SQLite database but not a rewind "
                                "recording (no rewind schema in it)");
    }
    if (version > kSchemaVersion) {
      return Status::Corruption(
          options.path + " has schema version " + std::to_string(version) +
          ", newer than this rewind reads (" + std::to_string(kSchemaVersion) +
          "); upgrade rewind");
    }
    std::string canonicalizer = Meta(db, "canonicalizer");
    if (!Canonicalizer::Reads(canonicalizer) && !options.any_canonicalizer) {
      return Status::Corruption(
          options.path + " was keyed by canonicalizer \"" + canonicalizer +
          "\"; this rewind uses \"" + Canonicalizer::Name() +
          "\". Re-key it once (its rules and exchanges are kept): "
          "rewind rekey --db " +
          options.path);
    }
    Result<KeyRules> stored = KeyRules::FromJson(Meta(db, "key_rules"));
    if (!stored.ok()) return stored.status();
    *rules = stored.value();
    if (options.rules && !(*options.rules == *rules)) {
      return Status::InvalidArgument(
          options.path + " was recorded with key rules " + rules->ToJson() +
          "; the options ask for " + options.rules->ToJson() +
          ". Omit the key options to use the recording's rules");
    }
    if (!options.read_only) {
      db->exec("PRAGMA journal_mode=WAL");
      // Migrations, one per version this build knows.
      if (version < 2) {
        SQLite::Transaction t(*db);
        db->exec(kCoverIndex);
        db->exec("PRAGMA user_version = 2");
        t.commit();
      }
      if (version < 3) {
        SQLite::Transaction t(*db);
        db->exec(kOwnTimeColumns);
        db->exec("PRAGMA user_version = 3");
        t.commit();
      }
    }
  }
  if (!options.read_only) db->exec("PRAGMA synchronous=NORMAL");
  return Status::Ok();
}

bool HasOwnTimeColumns(SQLite::Database* db) {
  return db->execAndGet(
               "SELECT count(*) FROM pragma_table_info('exchanges') "
               "WHERE name IN ('own_before_us', 'own_after_us')")
             .getInt() == 2;
}

void WriteKeyRules(SQLite::Database* db, const KeyRules& rules) {
  SQLite::Statement st(*db,
                       "UPDATE meta SET value = ? WHERE name = 'key_rules'");
  st.bind(1, rules.ToJson());
  st.exec();
  SQLite::Statement name(
      *db, "UPDATE meta SET value = ? WHERE name = 'canonicalizer'");
  name.bind(1, std::string(Canonicalizer::NameFor(rules)));
  name.exec();
}

}  // namespace rwd
