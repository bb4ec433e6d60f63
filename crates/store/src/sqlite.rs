//! The embedded SQLite backend.
//!
//! One database file holds everything. The file is created owner-only (0600 on Unix),
//! runs in WAL mode with `synchronous=FULL` (a commit is on disk when the call returns),
//! and enforces foreign keys so that contexts and challenges cannot outlive their
//! subscriber. Writes go through one connection behind a mutex and always run in
//! `BEGIN IMMEDIATE` transactions: taking the write lock up front makes a second process
//! (the admin CLI next to a running KMC) wait on `busy_timeout` instead of failing with a
//! stale snapshot. Reads use a few read-only connections, which WAL lets run beside the
//! writer. rusqlite blocks, so every call runs in `tokio::task::spawn_blocking`.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use seccf_secret::MasterKey;

use crate::codec::{self, ChallengeBinding, ContextBinding, SealedChallenge};
use crate::{
    BootstrapContext, GcStats, NafRecord, PendingChallenge, Store, StoreError, Subscriber,
    SubscriberSummary, DEFAULT_MAX_CONTEXTS_PER_IMPI,
};

/// Schema migrations, applied in order inside one transaction; entry `i` moves the
/// database from version `i` to `i + 1`. Never edit a released entry: append.
const MIGRATIONS: &[&str] = &[
    // Version 1. STRICT tables make SQLite refuse a value of the wrong type instead of
    // storing it, so a bug cannot put text where a sealed blob belongs.
    r#"
    CREATE TABLE meta (
        name  TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) STRICT;
    CREATE TABLE subscribers (
        impi              TEXT PRIMARY KEY,
        k_sealed          BLOB NOT NULL,
        opc_sealed        BLOB NOT NULL,
        amf               BLOB NOT NULL,
        sqn               INTEGER NOT NULL,
        gba_type          TEXT NOT NULL,
        key_lifetime_secs INTEGER,
        uss               TEXT NOT NULL
    ) STRICT;
    CREATE TABLE challenges (
        nonce       TEXT PRIMARY KEY,
        impi        TEXT NOT NULL REFERENCES subscribers(impi) ON DELETE CASCADE,
        rand        BLOB NOT NULL,
        xres_sealed BLOB NOT NULL,
        ck_sealed   BLOB NOT NULL,
        ik_sealed   BLOB NOT NULL,
        opaque      TEXT NOT NULL,
        realm       TEXT NOT NULL,
        gba_type    TEXT NOT NULL,
        expires_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX challenges_impi ON challenges(impi);
    CREATE INDEX challenges_expires_at ON challenges(expires_at);
    CREATE TABLE contexts (
        id         INTEGER PRIMARY KEY,
        btid       TEXT NOT NULL UNIQUE,
        impi       TEXT NOT NULL REFERENCES subscribers(impi) ON DELETE CASCADE,
        rand       BLOB NOT NULL,
        ks_sealed  BLOB NOT NULL,
        gba_type   TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX contexts_impi ON contexts(impi, id);
    CREATE INDEX contexts_expires_at ON contexts(expires_at);
    CREATE TABLE nafs (
        name        TEXT PRIMARY KEY,
        fqdns       TEXT NOT NULL,
        cert_sha256 TEXT NOT NULL UNIQUE,
        gba_u_aware INTEGER NOT NULL
    ) STRICT;
    "#,
];

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Tuning of a [`SqliteStore`]. Built with [`SqliteOptions::default`] and the setters.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    max_contexts_per_impi: usize,
    busy_timeout: Duration,
    read_connections: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            max_contexts_per_impi: DEFAULT_MAX_CONTEXTS_PER_IMPI,
            busy_timeout: Duration::from_secs(5),
            read_connections: 2,
        }
    }
}

impl SqliteOptions {
    /// How many bootstrapping contexts one IMPI keeps (oldest deleted first); at least 1.
    pub fn max_contexts_per_impi(mut self, n: usize) -> Self {
        self.max_contexts_per_impi = n.max(1);
        self
    }
    /// How long a call waits for another connection's or process's write lock.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
    /// Read-only connections used beside the writer (0: reads use the writer too).
    /// Ignored for in-memory databases, which have a single connection.
    pub fn read_connections(mut self, n: usize) -> Self {
        self.read_connections = n;
        self
    }
}

/// The SQLite [`Store`]. Cloning is cheap and shares the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    // Field order matters: fields drop in declaration order, and the writer must close
    // last, because only a read-write connection can checkpoint the WAL into the main
    // file and remove it when the database is closed.
    readers: Vec<Mutex<Connection>>,
    writer: Mutex<Connection>,
    next_reader: AtomicUsize,
    master_key: MasterKey,
    max_contexts_per_impi: usize,
    location: String,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.inner.location)
            .field("read_connections", &self.inner.readers.len())
            .field("max_contexts_per_impi", &self.inner.max_contexts_per_impi)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens/creates the database file (parent dir must exist), applies migrations
    /// (a `schema_version` table; refuse a newer schema), sets WAL + synchronous=FULL +
    /// busy_timeout, and verifies the master key against a sealed check value stored
    /// on first open (wrong master key → [`StoreError::Seal`] here, not at first read).
    pub fn open(path: &Path, master_key: MasterKey) -> Result<Self, StoreError> {
        Self::open_with(path, master_key, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with explicit options.
    pub fn open_with(
        path: &Path,
        master_key: MasterKey,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        create_private_file(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer =
            Connection::open_with_flags(path, flags).map_err(db_err("open database"))?;
        configure_writer(&writer, &options, true)?;
        migrate(&mut writer, &master_key)?;
        let readers = (0..options.read_connections)
            .map(|_| open_reader(path, &options).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_parts(
            writer,
            readers,
            master_key,
            &options,
            path.display().to_string(),
        ))
    }

    /// A private in-memory database (tests, `seccf dev`); gone when the last clone drops.
    pub fn open_in_memory(master_key: MasterKey) -> Result<Self, StoreError> {
        Self::open_in_memory_with(master_key, SqliteOptions::default())
    }

    /// [`SqliteStore::open_in_memory`] with explicit options.
    pub fn open_in_memory_with(
        master_key: MasterKey,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        let mut writer = Connection::open_in_memory().map_err(db_err("open database"))?;
        configure_writer(&writer, &options, false)?;
        migrate(&mut writer, &master_key)?;
        Ok(Self::from_parts(
            writer,
            Vec::new(),
            master_key,
            &options,
            ":memory:".to_owned(),
        ))
    }

    fn from_parts(
        writer: Connection,
        readers: Vec<Mutex<Connection>>,
        master_key: MasterKey,
        options: &SqliteOptions,
        location: String,
    ) -> Self {
        SqliteStore {
            inner: Arc::new(Inner {
                readers,
                writer: Mutex::new(writer),
                next_reader: AtomicUsize::new(0),
                master_key,
                max_contexts_per_impi: options.max_contexts_per_impi,
                location,
            }),
        }
    }

    /// The configured cap on contexts per IMPI.
    pub fn max_contexts_per_impi(&self) -> usize {
        self.inner.max_contexts_per_impi
    }

    /// Runs `f` on the writer connection in the blocking pool.
    async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = lock(&inner.writer);
            f(&mut conn, &inner)
        })
        .await
        .map_err(|_| StoreError::Backend(format!("{op}: worker task failed")))?
    }

    /// Runs `f` on a read connection (the writer if there are none) in the blocking pool.
    async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let n = inner.readers.len();
            let pick = inner.next_reader.fetch_add(1, Ordering::Relaxed);
            let conn = match pick.checked_rem(n).and_then(|i| inner.readers.get(i)) {
                Some(reader) => lock(reader),
                None => lock(&inner.writer),
            };
            f(&conn, &inner)
        })
        .await
        .map_err(|_| StoreError::Backend(format!("{op}: worker task failed")))?
    }
}

/// A poisoned mutex only means another call panicked while holding the connection; any
/// transaction it had open was rolled back when its `Transaction` dropped during the
/// unwind, so the connection is still usable.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Creates the database file owner-only before SQLite does (SQLite would use the umask).
/// The `-wal` and `-shm` files inherit the main file's permissions.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(format!(
            "create database file {}: {e}",
            path.display()
        ))),
    }
}

fn configure_writer(
    conn: &Connection,
    options: &SqliteOptions,
    file: bool,
) -> Result<(), StoreError> {
    conn.busy_timeout(options.busy_timeout)
        .map_err(db_err("set busy_timeout"))?;
    // Cascading deletes and the "context needs a subscriber" rule depend on this.
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(db_err("enable foreign keys"))?;
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(db_err("enable foreign keys"))?;
    if fk != 1 {
        return Err(StoreError::Backend(
            "this SQLite library does not enforce foreign keys".into(),
        ));
    }
    // The schema uses no functions; refuse any a tampered file might try to run.
    conn.pragma_update(None, "trusted_schema", "OFF")
        .map_err(db_err("set trusted_schema"))?;
    if file {
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db_err("enable WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "database refused WAL mode (journal_mode is {mode})"
            )));
        }
        // FULL syncs the WAL on every commit: an acknowledged write survives power loss.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err("set synchronous=FULL"))?;
    }
    Ok(())
}

fn open_reader(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err("open read connection"))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(db_err("set busy_timeout"))?;
    conn.pragma_update(None, "trusted_schema", "OFF")
        .map_err(db_err("set trusted_schema"))?;
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`] and checks (or, on a new database, stores) the
/// master-key check value, all in one transaction: a crash mid-migration leaves the old
/// schema, and two processes opening a new file at once cannot both store a check value.
fn migrate(conn: &mut Connection, mk: &MasterKey) -> Result<(), StoreError> {
    let tx = immediate(conn, "migrate schema")?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT;",
    )
    .map_err(db_err("migrate schema"))?;
    let current: i64 = tx
        .query_row(
            "SELECT coalesce(max(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(db_err("read schema version"))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "database schema version {current} is newer than this build supports ({SCHEMA_VERSION}); upgrade seccf"
        )));
    }
    let done = usize::try_from(current)
        .map_err(|_| StoreError::Corrupt("negative schema version".into()))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        tx.execute_batch(sql).map_err(db_err("migrate schema"))?;
        tracing::info!(version = index + 1, "applied store schema migration");
    }
    if current < SCHEMA_VERSION {
        tx.execute("DELETE FROM schema_version", [])
            .map_err(db_err("migrate schema"))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [SCHEMA_VERSION],
        )
        .map_err(db_err("migrate schema"))?;
    }
    let check: Option<Vec<u8>> = tx
        .query_row("SELECT value FROM meta WHERE name = 'key_check'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_err("read master key check"))?;
    match check {
        Some(sealed) => codec::verify_key_check(mk, &sealed)?,
        None => {
            let sealed = mk.seal(&codec::key_check_aad(), codec::KEY_CHECK_PLAINTEXT)?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('key_check', ?1)",
                [sealed],
            )
            .map_err(db_err("store master key check"))?;
        }
    }
    tx.commit().map_err(db_err("migrate schema"))
}

fn immediate<'c>(
    conn: &'c mut Connection,
    op: &'static str,
) -> Result<Transaction<'c>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err(op))
}

/// Maps a driver error to [`StoreError`] without its parameters: SQLite's own messages
/// name tables and columns, never bound values, but some rusqlite variants carry values.
fn db_err(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| match e {
        rusqlite::Error::SqliteFailure(code, msg) => StoreError::Backend(match msg {
            Some(m) => format!("{op}: {m}"),
            None => format!("{op}: {:?} (code {})", code.code, code.extended_code),
        }),
        rusqlite::Error::InvalidColumnType(_, name, ty) => {
            StoreError::Corrupt(format!("{op}: column {name} holds {ty}"))
        }
        rusqlite::Error::FromSqlConversionFailure(idx, _, _)
        | rusqlite::Error::IntegralValueOutOfRange(idx, _) => {
            StoreError::Corrupt(format!("{op}: column {idx} does not convert"))
        }
        _ => StoreError::Backend(format!("{op}: driver error")),
    }
}

fn is_constraint(e: &rusqlite::Error, extended: i32) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::ConstraintViolation && f.extended_code == extended)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    is_constraint(e, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
        || is_constraint(e, rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

fn is_fk_violation(e: &rusqlite::Error) -> bool {
    is_constraint(e, rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// The raw columns of a subscriber row, decoded outside the row callback so decode
/// errors keep their own type.
struct SubscriberRow {
    impi: String,
    k_sealed: Vec<u8>,
    opc_sealed: Vec<u8>,
    amf: Vec<u8>,
    sqn: i64,
    gba_type: String,
    key_lifetime_secs: Option<i64>,
    uss: String,
}

const SUBSCRIBER_COLUMNS: &str =
    "impi, k_sealed, opc_sealed, amf, sqn, gba_type, key_lifetime_secs, uss";

impl SubscriberRow {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(SubscriberRow {
            impi: r.get(0)?,
            k_sealed: r.get(1)?,
            opc_sealed: r.get(2)?,
            amf: r.get(3)?,
            sqn: r.get(4)?,
            gba_type: r.get(5)?,
            key_lifetime_secs: r.get(6)?,
            uss: r.get(7)?,
        })
    }

    fn open(self, mk: &MasterKey) -> Result<Subscriber, StoreError> {
        let (k, opc) = codec::open_subscriber(mk, &self.impi, &self.k_sealed, &self.opc_sealed)?;
        Ok(Subscriber {
            k,
            opc,
            amf: codec::decode_array(&self.amf, "AMF")?,
            sqn: codec::decode_sqn(self.sqn)?,
            gba_type: codec::decode_gba_type(&self.gba_type)?,
            key_lifetime_secs: codec::decode_lifetime(self.key_lifetime_secs)?,
            uss: codec::decode_uss(&self.uss)?,
            impi: self.impi,
        })
    }

    fn summary(self) -> Result<SubscriberSummary, StoreError> {
        Ok(SubscriberSummary {
            gba_type: codec::decode_gba_type(&self.gba_type)?.as_str().to_owned(),
            sqn: codec::decode_sqn(self.sqn)?,
            amf: hex::encode(codec::decode_array::<2>(&self.amf, "AMF")?),
            key_lifetime_secs: codec::decode_lifetime(self.key_lifetime_secs)?,
            uss: codec::decode_uss(&self.uss)?,
            impi: self.impi,
        })
    }
}

/// Owned column values of a subscriber ready to bind (secrets already sealed).
struct SubscriberParams {
    impi: String,
    k_sealed: Vec<u8>,
    opc_sealed: Vec<u8>,
    amf: [u8; 2],
    sqn: i64,
    gba_type: &'static str,
    key_lifetime_secs: Option<i64>,
    uss: String,
}

impl SubscriberParams {
    fn new(mk: &MasterKey, s: &Subscriber) -> Result<Self, StoreError> {
        codec::check_subscriber(s)?;
        let sealed = codec::seal_subscriber(mk, s)?;
        Ok(SubscriberParams {
            impi: s.impi.clone(),
            k_sealed: sealed.k,
            opc_sealed: sealed.opc,
            amf: s.amf,
            sqn: codec::sqn_to_db(s.sqn)?,
            gba_type: s.gba_type.as_str(),
            key_lifetime_secs: codec::lifetime_to_db(s.key_lifetime_secs)?,
            uss: codec::encode_uss(&s.uss)?,
        })
    }
}

struct ChallengeRow {
    nonce: String,
    impi: String,
    rand: Vec<u8>,
    sealed: SealedChallenge,
    opaque: String,
    realm: String,
    gba_type: String,
    expires_at: i64,
}

impl ChallengeRow {
    fn open(self, mk: &MasterKey) -> Result<PendingChallenge, StoreError> {
        let rand: [u8; 16] = codec::decode_array(&self.rand, "RAND")?;
        let binding = ChallengeBinding {
            nonce: &self.nonce,
            impi: &self.impi,
            rand: &rand,
            opaque: &self.opaque,
            realm: &self.realm,
            gba_type: codec::decode_gba_type(&self.gba_type)?,
            expires_at: self.expires_at,
        };
        codec::open_challenge(mk, binding, &self.sealed)
    }
}

struct ContextRow {
    btid: String,
    impi: String,
    rand: Vec<u8>,
    ks_sealed: Vec<u8>,
    gba_type: String,
    created_at: i64,
    expires_at: i64,
}

impl ContextRow {
    fn open(self, mk: &MasterKey) -> Result<BootstrapContext, StoreError> {
        let rand: [u8; 16] = codec::decode_array(&self.rand, "RAND")?;
        let binding = ContextBinding {
            btid: &self.btid,
            impi: &self.impi,
            rand: &rand,
            gba_type: codec::decode_gba_type(&self.gba_type)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
        };
        codec::open_context(mk, binding, &self.ks_sealed)
    }
}

struct NafRow {
    name: String,
    fqdns: String,
    cert_sha256: String,
    gba_u_aware: i64,
}

impl NafRow {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(NafRow {
            name: r.get(0)?,
            fqdns: r.get(1)?,
            cert_sha256: r.get(2)?,
            gba_u_aware: r.get(3)?,
        })
    }

    fn decode(self) -> Result<NafRecord, StoreError> {
        Ok(NafRecord {
            name: self.name,
            fqdns: codec::decode_fqdns(&self.fqdns)?,
            cert_sha256: self.cert_sha256,
            gba_u_aware: codec::decode_bool(self.gba_u_aware)?,
        })
    }
}

impl Store for SqliteStore {
    async fn insert_subscriber(&self, s: &Subscriber) -> Result<(), StoreError> {
        let p = SubscriberParams::new(&self.inner.master_key, s)?;
        self.write("insert subscriber", move |conn, _| {
            let tx = immediate(conn, "insert subscriber")?;
            let inserted = tx.execute(
                "INSERT INTO subscribers (impi, k_sealed, opc_sealed, amf, sqn, gba_type, key_lifetime_secs, uss)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![p.impi, p.k_sealed, p.opc_sealed, p.amf, p.sqn, p.gba_type, p.key_lifetime_secs, p.uss],
            );
            match inserted {
                Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists("subscriber")),
                other => other.map_err(db_err("insert subscriber"))?,
            };
            tx.commit().map_err(db_err("insert subscriber"))
        })
        .await
    }

    async fn update_subscriber(&self, s: &Subscriber) -> Result<(), StoreError> {
        let p = SubscriberParams::new(&self.inner.master_key, s)?;
        self.write("update subscriber", move |conn, _| {
            let tx = immediate(conn, "update subscriber")?;
            let changed = tx
                .execute(
                    "UPDATE subscribers SET k_sealed = ?2, opc_sealed = ?3, amf = ?4, sqn = ?5,
                         gba_type = ?6, key_lifetime_secs = ?7, uss = ?8
                     WHERE impi = ?1",
                    params![
                        p.impi,
                        p.k_sealed,
                        p.opc_sealed,
                        p.amf,
                        p.sqn,
                        p.gba_type,
                        p.key_lifetime_secs,
                        p.uss
                    ],
                )
                .map_err(db_err("update subscriber"))?;
            if changed == 0 {
                return Err(StoreError::NotFound("subscriber"));
            }
            tx.commit().map_err(db_err("update subscriber"))
        })
        .await
    }

    async fn get_subscriber(&self, impi: &str) -> Result<Option<Subscriber>, StoreError> {
        let impi = impi.to_owned();
        self.read("get subscriber", move |conn, inner| {
            let row = conn
                .prepare_cached(&format!(
                    "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE impi = ?1"
                ))
                .and_then(|mut st| st.query_row([&impi], SubscriberRow::from_row).optional())
                .map_err(db_err("get subscriber"))?;
            row.map(|r| r.open(&inner.master_key)).transpose()
        })
        .await
    }

    async fn list_subscribers(&self) -> Result<Vec<SubscriberSummary>, StoreError> {
        self.read("list subscribers", move |conn, _| {
            let rows = conn
                .prepare_cached(&format!(
                    "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers ORDER BY impi"
                ))
                .and_then(|mut st| {
                    st.query_map([], SubscriberRow::from_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(db_err("list subscribers"))?;
            rows.into_iter().map(SubscriberRow::summary).collect()
        })
        .await
    }

    async fn delete_subscriber(&self, impi: &str) -> Result<bool, StoreError> {
        let impi = impi.to_owned();
        self.write("delete subscriber", move |conn, _| {
            let tx = immediate(conn, "delete subscriber")?;
            // The foreign keys cascade too; deleting the children explicitly keeps the
            // behaviour even for a file some other tool opened with foreign keys off.
            for sql in [
                "DELETE FROM contexts WHERE impi = ?1",
                "DELETE FROM challenges WHERE impi = ?1",
            ] {
                tx.execute(sql, [&impi])
                    .map_err(db_err("delete subscriber"))?;
            }
            let removed = tx
                .execute("DELETE FROM subscribers WHERE impi = ?1", [&impi])
                .map_err(db_err("delete subscriber"))?;
            tx.commit().map_err(db_err("delete subscriber"))?;
            Ok(removed > 0)
        })
        .await
    }

    async fn next_sqn(&self, impi: &str) -> Result<Option<u64>, StoreError> {
        let impi = impi.to_owned();
        let limit = codec::sqn_to_db(crate::MAX_SQN)?;
        self.write("next SQN", move |conn, _| {
            let tx = immediate(conn, "next SQN")?;
            // One statement reads and bumps the counter under the write lock, so two
            // processes can never be handed the same value.
            let new: Option<i64> = tx
                .query_row(
                    "UPDATE subscribers SET sqn = sqn + 1 WHERE impi = ?1 AND sqn < ?2 RETURNING sqn",
                    params![impi, limit],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err("next SQN"))?;
            let Some(new) = new else {
                let exists = tx
                    .query_row("SELECT 1 FROM subscribers WHERE impi = ?1", [&impi], |_| Ok(()))
                    .optional()
                    .map_err(db_err("next SQN"))?
                    .is_some();
                return if exists {
                    Err(StoreError::Invalid("SQN (48-bit counter exhausted)"))
                } else {
                    Ok(None)
                };
            };
            tx.commit().map_err(db_err("next SQN"))?;
            codec::decode_sqn(new).map(Some)
        })
        .await
    }

    async fn set_sqn(&self, impi: &str, value: u64) -> Result<bool, StoreError> {
        let impi = impi.to_owned();
        let value = codec::sqn_to_db(value)?;
        self.write("set SQN", move |conn, _| {
            let tx = immediate(conn, "set SQN")?;
            let changed = tx
                .execute(
                    "UPDATE subscribers SET sqn = ?2 WHERE impi = ?1",
                    params![impi, value],
                )
                .map_err(db_err("set SQN"))?;
            tx.commit().map_err(db_err("set SQN"))?;
            Ok(changed > 0)
        })
        .await
    }

    async fn put_challenge(&self, c: &PendingChallenge) -> Result<(), StoreError> {
        codec::check_challenge(c)?;
        let sealed = codec::seal_challenge(&self.inner.master_key, c)?;
        let (nonce, impi, rand, opaque, realm) = (
            c.nonce.clone(),
            c.impi.clone(),
            c.rand,
            c.opaque.clone(),
            c.realm.clone(),
        );
        let (gba_type, expires_at) = (c.gba_type.as_str(), c.expires_at);
        self.write("put challenge", move |conn, _| {
            let tx = immediate(conn, "put challenge")?;
            let inserted = tx.execute(
                "INSERT INTO challenges (nonce, impi, rand, xres_sealed, ck_sealed, ik_sealed, opaque, realm, gba_type, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![nonce, impi, rand, sealed.xres, sealed.ck, sealed.ik, opaque, realm, gba_type, expires_at],
            );
            match inserted {
                Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists("challenge")),
                Err(e) if is_fk_violation(&e) => return Err(StoreError::NotFound("subscriber")),
                other => other.map_err(db_err("put challenge"))?,
            };
            tx.commit().map_err(db_err("put challenge"))
        })
        .await
    }

    async fn take_challenge(
        &self,
        nonce: &str,
        now: i64,
    ) -> Result<Option<PendingChallenge>, StoreError> {
        let nonce = nonce.to_owned();
        self.write("take challenge", move |conn, inner| {
            let tx = immediate(conn, "take challenge")?;
            // DELETE … RETURNING reads and removes in one step under the write lock:
            // of two racing callers (threads or processes) exactly one gets the row.
            let row = tx
                .query_row(
                    "DELETE FROM challenges WHERE nonce = ?1
                     RETURNING nonce, impi, rand, xres_sealed, ck_sealed, ik_sealed, opaque, realm, gba_type, expires_at",
                    [&nonce],
                    |r| {
                        Ok(ChallengeRow {
                            nonce: r.get(0)?,
                            impi: r.get(1)?,
                            rand: r.get(2)?,
                            sealed: SealedChallenge { xres: r.get(3)?, ck: r.get(4)?, ik: r.get(5)? },
                            opaque: r.get(6)?,
                            realm: r.get(7)?,
                            gba_type: r.get(8)?,
                            expires_at: r.get(9)?,
                        })
                    },
                )
                .optional()
                .map_err(db_err("take challenge"))?;
            tx.commit().map_err(db_err("take challenge"))?;
            match row {
                Some(row) if row.expires_at > now => row.open(&inner.master_key).map(Some),
                _ => Ok(None),
            }
        })
        .await
    }

    async fn put_context(&self, c: &BootstrapContext) -> Result<(), StoreError> {
        codec::check_context(c)?;
        let ks_sealed = codec::seal_context(&self.inner.master_key, c)?;
        let (btid, impi, rand) = (c.btid.clone(), c.impi.clone(), c.rand);
        let (gba_type, created_at, expires_at) = (c.gba_type.as_str(), c.created_at, c.expires_at);
        self.write("put context", move |conn, inner| {
            let keep = i64::try_from(inner.max_contexts_per_impi).unwrap_or(i64::MAX);
            let tx = immediate(conn, "put context")?;
            let inserted = tx.execute(
                "INSERT INTO contexts (btid, impi, rand, ks_sealed, gba_type, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![btid, impi, rand, ks_sealed, gba_type, created_at, expires_at],
            );
            match inserted {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::AlreadyExists("bootstrapping context"))
                }
                Err(e) if is_fk_violation(&e) => return Err(StoreError::NotFound("subscriber")),
                other => other.map_err(db_err("put context"))?,
            };
            // Oldest = inserted first (the id only grows), so the context just written is
            // always kept even if its created_at is behind another replica's clock.
            tx.execute(
                "DELETE FROM contexts WHERE impi = ?1 AND id NOT IN
                     (SELECT id FROM contexts WHERE impi = ?1 ORDER BY id DESC LIMIT ?2)",
                params![impi, keep],
            )
            .map_err(db_err("put context"))?;
            tx.commit().map_err(db_err("put context"))
        })
        .await
    }

    async fn get_context(
        &self,
        btid: &str,
        now: i64,
    ) -> Result<Option<BootstrapContext>, StoreError> {
        let btid = btid.to_owned();
        self.read("get context", move |conn, inner| {
            let row = conn
                .prepare_cached(
                    "SELECT btid, impi, rand, ks_sealed, gba_type, created_at, expires_at
                     FROM contexts WHERE btid = ?1 AND expires_at > ?2",
                )
                .and_then(|mut st| {
                    st.query_row(params![btid, now], |r| {
                        Ok(ContextRow {
                            btid: r.get(0)?,
                            impi: r.get(1)?,
                            rand: r.get(2)?,
                            ks_sealed: r.get(3)?,
                            gba_type: r.get(4)?,
                            created_at: r.get(5)?,
                            expires_at: r.get(6)?,
                        })
                    })
                    .optional()
                })
                .map_err(db_err("get context"))?;
            row.map(|r| r.open(&inner.master_key)).transpose()
        })
        .await
    }

    async fn put_naf(&self, n: &NafRecord) -> Result<(), StoreError> {
        codec::check_naf(n)?;
        let fqdns = codec::encode_fqdns(&n.fqdns)?;
        let (name, cert, aware) = (n.name.clone(), n.cert_sha256.clone(), n.gba_u_aware);
        self.write("put NAF", move |conn, _| {
            let tx = immediate(conn, "put NAF")?;
            // Look first to say which value clashes; the unique constraints still guard
            // the insert itself.
            let exists = |sql: &str, value: &str| {
                tx.query_row(sql, [value], |_| Ok(()))
                    .optional()
                    .map(|o| o.is_some())
                    .map_err(db_err("put NAF"))
            };
            if exists("SELECT 1 FROM nafs WHERE name = ?1", &name)? {
                return Err(StoreError::AlreadyExists("NAF name"));
            }
            if exists("SELECT 1 FROM nafs WHERE cert_sha256 = ?1", &cert)? {
                return Err(StoreError::AlreadyExists("NAF certificate"));
            }
            let inserted = tx.execute(
                "INSERT INTO nafs (name, fqdns, cert_sha256, gba_u_aware) VALUES (?1, ?2, ?3, ?4)",
                params![name, fqdns, cert, i64::from(aware)],
            );
            match inserted {
                Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists("NAF")),
                other => other.map_err(db_err("put NAF"))?,
            };
            tx.commit().map_err(db_err("put NAF"))
        })
        .await
    }

    async fn delete_naf(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write("delete NAF", move |conn, _| {
            let tx = immediate(conn, "delete NAF")?;
            let removed = tx
                .execute("DELETE FROM nafs WHERE name = ?1", [&name])
                .map_err(db_err("delete NAF"))?;
            tx.commit().map_err(db_err("delete NAF"))?;
            Ok(removed > 0)
        })
        .await
    }

    async fn list_nafs(&self) -> Result<Vec<NafRecord>, StoreError> {
        self.read("list NAFs", move |conn, _| {
            let rows = conn
                .prepare_cached(
                    "SELECT name, fqdns, cert_sha256, gba_u_aware FROM nafs ORDER BY name",
                )
                .and_then(|mut st| {
                    st.query_map([], NafRow::from_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(db_err("list NAFs"))?;
            rows.into_iter().map(NafRow::decode).collect()
        })
        .await
    }

    async fn naf_by_cert(&self, cert_sha256: &str) -> Result<Option<NafRecord>, StoreError> {
        // Stored hashes are lowercase (put_naf insists); accept either case here.
        let cert = cert_sha256.to_ascii_lowercase();
        self.read("find NAF", move |conn, _| {
            let row = conn
                .prepare_cached(
                    "SELECT name, fqdns, cert_sha256, gba_u_aware FROM nafs WHERE cert_sha256 = ?1",
                )
                .and_then(|mut st| st.query_row([&cert], NafRow::from_row).optional())
                .map_err(db_err("find NAF"))?;
            row.map(NafRow::decode).transpose()
        })
        .await
    }

    async fn gc(&self, now: i64) -> Result<GcStats, StoreError> {
        self.write("gc", move |conn, _| {
            let tx = immediate(conn, "gc")?;
            let contexts = tx
                .execute("DELETE FROM contexts WHERE expires_at <= ?1", [now])
                .map_err(db_err("gc"))?;
            let challenges = tx
                .execute("DELETE FROM challenges WHERE expires_at <= ?1", [now])
                .map_err(db_err("gc"))?;
            tx.commit().map_err(db_err("gc"))?;
            Ok(GcStats {
                contexts: u64::try_from(contexts).unwrap_or(u64::MAX),
                challenges: u64::try_from(challenges).unwrap_or(u64::MAX),
            })
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Through the writer: a health check should notice a wedged write path.
        self.write("ping", |conn, _| {
            conn.query_row("SELECT count(*) FROM schema_version", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(db_err("ping"))
            .map(drop)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccf_secret::Secret;

    fn mk(byte: u8) -> MasterKey {
        MasterKey::new(Secret::new([byte; 32]))
    }

    #[test]
    fn migrations_are_numbered_and_version_recorded() {
        let store = SqliteStore::open_in_memory(mk(1)).unwrap();
        let conn = lock(&store.inner.writer);
        let v: i64 = conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn migrate_twice_is_a_no_op_and_checks_the_key() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure_writer(&conn, &SqliteOptions::default(), false).unwrap();
        migrate(&mut conn, &mk(1)).unwrap();
        migrate(&mut conn, &mk(1)).unwrap();
        assert!(matches!(
            migrate(&mut conn, &mk(2)),
            Err(StoreError::Seal(_))
        ));
    }

    #[test]
    fn failed_migration_leaves_nothing_behind() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A table the migration wants to create already exists, so migration 1 fails
        // half-way; the transaction must undo the tables it had created before that.
        conn.execute_batch("CREATE TABLE nafs (x INTEGER);")
            .unwrap();
        assert!(migrate(&mut conn, &mk(1)).is_err());
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('meta', 'subscribers', 'schema_version')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn db_errors_do_not_leak_values() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT UNIQUE)")
            .unwrap();
        conn.execute("INSERT INTO t VALUES (?1)", ["secret-value-123"])
            .unwrap();
        let e = conn
            .execute("INSERT INTO t VALUES (?1)", ["secret-value-123"])
            .unwrap_err();
        assert!(is_unique_violation(&e));
        let mapped = db_err("op")(e).to_string();
        assert!(!mapped.contains("secret-value-123"), "{mapped}");
        assert!(mapped.contains("UNIQUE"), "{mapped}");
    }
}
