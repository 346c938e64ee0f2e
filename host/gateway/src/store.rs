//! [`Store`]: the gateway's log in SQLite (SPEC.md §9.1): the schema, the
//! directory it lives in and its lock, and every statement. Synchronous;
//! only the writer thread (`writer.rs`) holds a `Store`.
//!
//! # Invariants
//!
//! * One gateway per directory: the directory's `lock` file is held
//!   (`flock`) for the store's life; a second open fails with
//!   [`StoreError::Locked`].
//! * On disk the database is in WAL mode with `synchronous = FULL`: a
//!   committed transaction survives a crash of the process or the machine.
//!   `--in-memory` is the same schema in a private in-memory database.
//! * `log` holds exactly one row (the log id, drawn from 1..=2^63-1 so it
//!   reads as a positive integer in `sqlite3`, and the last sequence number
//!   published); `schema_version` one row, [`SCHEMA_VERSION`].
//! * `verdicts` holds the first verdict per request id, apart from the
//!   replay retention in `events`: trimming `events` never removes a
//!   verdict record; only age does (`recorded_unix_ms`).

use rusqlite::{Connection, OptionalExtension, params};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The schema this code reads and writes; a database with another version
/// is refused rather than guessed at.
pub const SCHEMA_VERSION: i64 = 1;

/// The database file inside a gateway's data directory.
pub const DATABASE_FILE: &str = "log.sqlite3";

/// The lock file inside a gateway's data directory.
const LOCK_FILE: &str = "lock";

const SCHEMA: &str = "
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE log (
    id INTEGER NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    last_seq INTEGER NOT NULL
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE verdicts (
    request_id TEXT PRIMARY KEY,
    decision INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    recorded_unix_ms INTEGER NOT NULL,
    event BLOB NOT NULL
);
CREATE INDEX verdicts_by_age ON verdicts (recorded_unix_ms);
";

/// Why the log could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory or its lock file could not be made or opened.
    #[error("{path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another gateway holds the directory.
    #[error("{dir} is in use by another gateway (its lock file is held)")]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// The database was written by another schema version.
    #[error("the log's schema version is {found}; this gateway reads version {SCHEMA_VERSION}")]
    Schema {
        /// The version found.
        found: i64,
    },
    /// A limit is out of range (the field and its range).
    #[error("log limits: {0}")]
    Limits(String),
    /// SQLite failed (a full disk, a damaged file, ...).
    #[error("the log's database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread has stopped (the log is being dropped).
    #[error("the log is closed")]
    Closed,
}

/// What a store holds when it is opened.
pub(crate) struct Loaded {
    pub(crate) log_id: u64,
    pub(crate) last_seq: u64,
    /// The retained events, oldest first: `(seq, encoded event)`.
    pub(crate) events: Vec<(u64, Vec<u8>)>,
    /// Verdict records, expired ones included.
    pub(crate) verdicts: u64,
}

/// A recorded verdict: its decision (wire value), the key that signed it
/// ("" unsigned) and the seq of the event that published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) decision: i32,
    pub(crate) key_id: String,
    pub(crate) seq: u64,
}

/// The gateway's log in SQLite.
pub(crate) struct Store {
    conn: Connection,
    /// Held for the store's life (the directory's lock); `None` in memory.
    _lock: Option<File>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The SQLite integer of a sequence number or log id (both below 2^63).
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Opens `path` for writing, created mode 0600 when missing (never
/// truncated).
fn private_file(path: &Path) -> Result<File, StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io(path))
}

impl Store {
    /// Opens (creating when missing, mode 0700) the log in `dir`, holding
    /// its lock.
    pub(crate) fn open(dir: &Path, now_ms: i64) -> Result<Store, StoreError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = private_file(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    dir: dir.to_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        // Made private before SQLite opens it: its `-wal` and `-shm` files
        // take the database file's mode.
        let db_path = dir.join(DATABASE_FILE);
        drop(private_file(&db_path)?);
        let conn = Connection::open(&db_path)?;
        // WAL: readers never block the writer; FULL: a commit is on disk
        // before it returns, so an acknowledged verdict survives a crash.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "SQLite refused WAL mode; commits are slower");
        }
        conn.execute_batch("PRAGMA synchronous = FULL;")?;
        Self::ready(conn, Some(lock), now_ms)
    }

    /// A private in-memory log (`--in-memory`): the same schema, lost when
    /// the store is dropped.
    pub(crate) fn in_memory(now_ms: i64) -> Result<Store, StoreError> {
        Self::ready(Connection::open_in_memory()?, None, now_ms)
    }

    /// Creates the schema in an empty database, or checks its version.
    fn ready(mut conn: Connection, lock: Option<File>, now_ms: i64) -> Result<Store, StoreError> {
        let tx = conn.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )?;
        if exists {
            let found: i64 =
                tx.query_row("SELECT version FROM schema_version", [], |r| r.get(0))?;
            if found != SCHEMA_VERSION {
                return Err(StoreError::Schema { found });
            }
        } else {
            tx.execute_batch(SCHEMA)?;
            tx.execute("INSERT INTO schema_version VALUES (?1)", [SCHEMA_VERSION])?;
            // Drawn from 1..: never 0, which means "unknown log".
            let id = fastrand::i64(1..=i64::MAX);
            tx.execute("INSERT INTO log VALUES (?1, ?2, 0)", params![id, now_ms])?;
        }
        tx.commit()?;
        Ok(Store { conn, _lock: lock })
    }

    /// Everything the in-memory side needs at start.
    pub(crate) fn load(&self) -> Result<Loaded, StoreError> {
        let (log_id, last_seq): (i64, i64) =
            self.conn
                .query_row("SELECT id, last_seq FROM log", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        let mut events = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT seq, body FROM events ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            events.push((uint(row.get(0)?), row.get(1)?));
        }
        let verdicts: i64 = self
            .conn
            .query_row("SELECT count(*) FROM verdicts", [], |r| r.get(0))?;
        Ok(Loaded {
            log_id: uint(log_id),
            last_seq: uint(last_seq),
            events,
            verdicts: uint(verdicts),
        })
    }

    /// Starts a transaction: every write goes through one.
    pub(crate) fn transaction(&mut self) -> Result<Batch<'_>, StoreError> {
        Ok(Batch(self.conn.transaction()?))
    }

    /// The verdict records of `ids` younger than `since_ms`, as the events
    /// that published them.
    pub(crate) fn lookup(&self, ids: &[String], since_ms: i64) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT event FROM verdicts WHERE request_id = ?1 AND recorded_unix_ms >= ?2",
        )?;
        let mut found = Vec::new();
        for id in ids {
            if let Some(event) = stmt
                .query_row(params![id, since_ms], |r| r.get(0))
                .optional()?
            {
                found.push(event);
            }
        }
        Ok(found)
    }
}

/// One transaction of the writer: a group of requests committed together.
pub(crate) struct Batch<'a>(rusqlite::Transaction<'a>);

impl Batch<'_> {
    /// The record of `request_id`, if one younger than `since_ms` stands.
    pub(crate) fn record(
        &self,
        request_id: &str,
        since_ms: i64,
    ) -> Result<Option<Record>, StoreError> {
        let mut stmt = self.0.prepare_cached(
            "SELECT decision, key_id, seq FROM verdicts \
             WHERE request_id = ?1 AND recorded_unix_ms >= ?2",
        )?;
        Ok(stmt
            .query_row(params![request_id, since_ms], |r| {
                Ok(Record {
                    decision: r.get(0)?,
                    key_id: r.get(1)?,
                    seq: uint(r.get(2)?),
                })
            })
            .optional()?)
    }

    /// Appends an event (its body encoded with its seq and the log id).
    pub(crate) fn append(&self, seq: u64, body: &[u8]) -> Result<(), StoreError> {
        self.0
            .prepare_cached("INSERT INTO events (seq, body) VALUES (?1, ?2)")?
            .execute(params![int(seq), body])?;
        Ok(())
    }

    /// Records the first verdict of `request_id`, replacing an expired
    /// record of the id; returns how many records it replaced (0 or 1).
    pub(crate) fn record_verdict(
        &self,
        request_id: &str,
        record: Record,
        now_ms: i64,
        body: &[u8],
    ) -> Result<u64, StoreError> {
        let replaced = self
            .0
            .prepare_cached("DELETE FROM verdicts WHERE request_id = ?1")?
            .execute([request_id])?;
        self.0
            .prepare_cached(
                "INSERT INTO verdicts (request_id, decision, key_id, seq, recorded_unix_ms, event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                request_id,
                record.decision,
                record.key_id,
                int(record.seq),
                now_ms,
                body
            ])?;
        Ok(replaced as u64)
    }

    /// Removes verdict records older than `before_ms`; returns how many.
    pub(crate) fn expire(&self, before_ms: i64) -> Result<u64, StoreError> {
        let removed = self
            .0
            .prepare_cached("DELETE FROM verdicts WHERE recorded_unix_ms < ?1")?
            .execute([before_ms])?;
        Ok(removed as u64)
    }

    /// Drops events before `oldest` from the replay retention.
    pub(crate) fn trim(&self, oldest: u64) -> Result<(), StoreError> {
        self.0
            .prepare_cached("DELETE FROM events WHERE seq < ?1")?
            .execute([int(oldest)])?;
        Ok(())
    }

    /// Stores the last sequence number published.
    pub(crate) fn set_last_seq(&self, last_seq: u64) -> Result<(), StoreError> {
        self.0
            .prepare_cached("UPDATE log SET last_seq = ?1")?
            .execute([int(last_seq)])?;
        Ok(())
    }

    /// Makes the batch durable (with `synchronous = FULL`, on disk).
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit()?)
    }
}
