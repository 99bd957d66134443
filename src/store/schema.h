// The recording's schema: the SQL that makes a new recording, the checks an
// existing one passes before it is used, the migrations from older schema
// versions (rewind/store.h: kSchemaVersion), and the meta table (key rules,
// canonicalizer). Internal to src/store/: it speaks SQLiteCpp.
#ifndef REWIND_SRC_STORE_SCHEMA_H_
#define REWIND_SRC_STORE_SCHEMA_H_

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>

#include "rewind/request_key.h"
#include "rewind/status.h"
#include "rewind/store.h"

namespace rwd {

// On "db", just opened at options.path: makes the schema in an empty file
// open for writing (WAL mode; options.rules or the default rules), or
// checks an existing one (a rewind recording, of a schema this build
// reads, keyed by a canonicalizer this build reads unless
// options.any_canonicalizer,
// with rules equal to options.rules if given) and, open for writing,
// switches it to WAL mode and upgrades it to kSchemaVersion. A connection
// open for writing is then set to synchronous=NORMAL. Sets *rules to the
// recording's rules. Throws SQLite::Exception when SQLite fails.
Status CheckOrCreateSchema(SQLite::Database* db, const StoreOptions& options,
                           KeyRules* rules);

// Whether the exchanges table has schema 3's own-time columns (a file of
// an older schema opened read-only has not). Throws SQLite::Exception.
bool HasOwnTimeColumns(SQLite::Database* db);

// Stores "rules" as the recording's key rules, and the canonicalizer that
// makes keys under them (Canonicalizer::NameFor) as the one its keys were
// made with. Throws
// SQLite::Exception when SQLite fails.
void WriteKeyRules(SQLite::Database* db, const KeyRules& rules);

}  // namespace rwd

#endif  // REWIND_SRC_STORE_SCHEMA_H_
