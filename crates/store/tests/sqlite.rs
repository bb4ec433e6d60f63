//! The SQLite backend: the shared conformance suite (in memory and on a file, one and
//! two handles) and what only a file database has (open checks, tamper evidence,
//! secrets at rest, locking between handles).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rusqlite::Connection;
use seccf_secret::{MasterKey, Secret};
use seccf_store::conformance;
use seccf_store::sqlite::{SqliteOptions, SqliteStore};
use seccf_store::{Store, StoreError, DEFAULT_MAX_CONTEXTS_PER_IMPI};

use common::Vectors;

fn key(byte: u8) -> MasterKey {
    MasterKey::new(Secret::new([byte; 32]))
}

fn memory() -> SqliteStore {
    SqliteStore::open_in_memory(key(7)).expect("open in memory")
}

struct FileDb {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn file_db() -> FileDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kmc.sqlite");
    FileDb { _dir: dir, path }
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, key(7)).expect("open file")
}

/// One test per conformance function, against a fresh in-memory and a fresh file store.
macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod in_memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    conformance::$name(&memory()).await;
                }
            )*
        }
        mod on_file {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = file_db();
                    conformance::$name(&open(&db.path)).await;
                }
            )*
        }
    };
}

conformance_tests!(
    subscriber_round_trip,
    rejects_invalid_input,
    sqn_counter,
    challenge_single_use,
    context_round_trip,
    delete_subscriber_cascades,
    naf_registry,
    gc_removes_expired,
    ping,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn context_cap_default_in_memory() {
    let store = memory();
    assert_eq!(store.max_contexts_per_impi(), DEFAULT_MAX_CONTEXTS_PER_IMPI);
    conformance::context_cap(&store, DEFAULT_MAX_CONTEXTS_PER_IMPI).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn context_cap_configured_on_file() {
    let db = file_db();
    let store = SqliteStore::open_with(
        &db.path,
        key(7),
        SqliteOptions::default().max_contexts_per_impi(3),
    )
    .expect("open");
    conformance::context_cap(&store, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn next_sqn_concurrent_one_handle() {
    conformance::next_sqn_concurrent(&[Arc::new(memory())]).await;
    let db = file_db();
    conformance::next_sqn_concurrent(&[Arc::new(open(&db.path))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn next_sqn_concurrent_two_handles_on_one_file() {
    // Two SqliteStore values are two independent sets of connections, like two processes.
    let db = file_db();
    conformance::next_sqn_concurrent(&[Arc::new(open(&db.path)), Arc::new(open(&db.path))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn challenge_race_one_handle() {
    conformance::challenge_race(&[Arc::new(memory())]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn challenge_race_two_handles_on_one_file() {
    let db = file_db();
    conformance::challenge_race(&[Arc::new(open(&db.path)), Arc::new(open(&db.path))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn second_handle_sees_first_handles_writes() {
    let db = file_db();
    let (a, b) = (open(&db.path), open(&db.path));
    conformance::handles_share_state(&a, &b).await;
    // And with no read connections, reads go through the writer.
    let c = SqliteStore::open_with(
        &db.path,
        key(7),
        SqliteOptions::default().read_connections(0),
    )
    .expect("open");
    conformance::handles_share_state(&a, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_suite_on_one_shared_file_store() {
    // run_all on a store that already holds other records checks that the suite, like a
    // shared PostgreSQL database would need, does not assume an empty store.
    let db = file_db();
    let store = Arc::new(open(&db.path));
    conformance::run_all(Arc::clone(&store), DEFAULT_MAX_CONTEXTS_PER_IMPI).await;
    conformance::run_all(store, DEFAULT_MAX_CONTEXTS_PER_IMPI).await;
}

#[tokio::test]
async fn wrong_master_key_is_refused_at_open() {
    let db = file_db();
    drop(open(&db.path));
    let err = SqliteStore::open(&db.path, key(8)).expect_err("other key must be refused");
    assert!(matches!(err, StoreError::Seal(_)), "{err:?}");
    assert!(err.to_string().contains("wrong master key"), "{err}");
    // The right key still works: the failed open changed nothing.
    open(&db.path).ping().await.expect("ping");
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let db = file_db();
    drop(open(&db.path));
    let raw = Connection::open(&db.path).expect("raw open");
    raw.execute("UPDATE schema_version SET version = version + 1", [])
        .expect("bump");
    drop(raw);
    let err = SqliteStore::open(&db.path, key(7)).expect_err("newer schema must be refused");
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("newer")),
        "{err:?}"
    );
}

#[test]
fn missing_parent_directory_is_an_error() {
    let db = file_db();
    let path = db.path.with_file_name("no-such-dir").join("kmc.sqlite");
    let err = SqliteStore::open(&path, key(7)).expect_err("must fail");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
}

#[cfg(unix)]
#[test]
fn database_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let db = file_db();
    let store = open(&db.path);
    let mode = std::fs::metadata(&db.path)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    drop(store);
}

#[tokio::test]
async fn pragmas_give_durable_commits() {
    let db = file_db();
    drop(open(&db.path));
    let raw = Connection::open(&db.path).expect("raw open");
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(
        mode.to_ascii_lowercase(),
        "wal",
        "WAL mode persists in the file"
    );
}

#[tokio::test]
async fn data_survives_reopen() {
    let v = Vectors::load();
    let db = file_db();
    {
        let store = open(&db.path);
        store
            .insert_subscriber(&v.subscriber())
            .await
            .expect("insert");
        store
            .put_context(&v.context(1_000, 2_000))
            .await
            .expect("put context");
        store
            .next_sqn(v.text("IMPI"))
            .await
            .expect("next")
            .expect("present");
    }
    let store = open(&db.path);
    let s = store
        .get_subscriber(v.text("IMPI"))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(s.sqn, v.sqn() + 1);
    assert_eq!(s.k.expose(), &v.bytes::<16>("K"));
    let c = store
        .get_context(&v.btid(), 1_500)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(c.ks.expose(), &v.ks());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_for_another_connections_lock() {
    let v = Vectors::load();
    let db = file_db();
    let store = open(&db.path);
    store
        .insert_subscriber(&v.subscriber())
        .await
        .expect("insert");
    // Another "process" holds the write lock for a while; next_sqn must wait for it
    // (busy_timeout) and then succeed, not fail with "database is locked".
    let path = db.path.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let mut raw = Connection::open(&path).expect("raw open");
        let tx = raw
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("lock");
        locked_tx.send(()).expect("signal");
        std::thread::sleep(Duration::from_millis(300));
        tx.commit().expect("release");
    });
    locked_rx.recv().expect("holder started");
    let started = std::time::Instant::now();
    let sqn = store
        .next_sqn(v.text("IMPI"))
        .await
        .expect("next_sqn waits")
        .expect("present");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "it did wait for the lock"
    );
    assert_eq!(sqn, v.sqn() + 1);
    holder.join().expect("holder");
}

/// Raw access to the rows, as an attacker with write access to the file would have.
fn raw(path: &Path) -> Connection {
    Connection::open(path).expect("raw open")
}

#[tokio::test]
async fn swapped_or_edited_rows_do_not_open() {
    let v = Vectors::load();
    let db = file_db();
    let store = open(&db.path);
    let alice = v.subscriber();
    let mut bob = v.subscriber();
    bob.impi = "bob@ims.example.com".into();
    bob.k = Secret::new([0x11; 16]);
    store.insert_subscriber(&alice).await.expect("insert");
    store.insert_subscriber(&bob).await.expect("insert");
    store
        .put_context(&v.context(1_000, 2_000))
        .await
        .expect("put context");
    store
        .put_challenge(&v.challenge(2_000))
        .await
        .expect("put challenge");

    // Give bob alice's sealed K: it must not open as bob's K.
    raw(&db.path)
        .execute(
            "UPDATE subscribers SET k_sealed = (SELECT k_sealed FROM subscribers WHERE impi = ?1) WHERE impi = ?2",
            [&alice.impi, &bob.impi],
        )
        .expect("swap");
    let r = store.get_subscriber(&bob.impi).await;
    assert!(matches!(r, Err(StoreError::Seal(_))), "moved K: {r:?}");
    assert!(store
        .get_subscriber(&alice.impi)
        .await
        .expect("alice intact")
        .is_some());

    // Re-attribute alice's context to bob: the NAF would get alice's key as bob's.
    raw(&db.path)
        .execute("UPDATE contexts SET impi = ?1", [&bob.impi])
        .expect("edit");
    let r = store.get_context(&v.btid(), 1_500).await;
    assert!(
        matches!(r, Err(StoreError::Seal(_))),
        "re-attributed context: {r:?}"
    );

    // Extend a challenge's life.
    raw(&db.path)
        .execute("UPDATE challenges SET expires_at = expires_at + 1000", [])
        .expect("edit");
    let r = store.take_challenge(&v.nonce(), 1_500).await;
    assert!(
        matches!(r, Err(StoreError::Seal(_))),
        "extended challenge: {r:?}"
    );
}

#[tokio::test]
async fn corrupt_columns_are_reported_not_panicked() {
    let v = Vectors::load();
    let db = file_db();
    let store = open(&db.path);
    store
        .insert_subscriber(&v.subscriber())
        .await
        .expect("insert");
    raw(&db.path)
        .execute("UPDATE subscribers SET gba_type = 'GBA_X'", [])
        .expect("edit");
    let r = store.get_subscriber(v.text("IMPI")).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    let r = store.list_subscribers().await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    raw(&db.path)
        .execute(
            "UPDATE subscribers SET gba_type = 'GBA_ME', amf = x'010203'",
            [],
        )
        .expect("edit");
    let r = store.get_subscriber(v.text("IMPI")).await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    raw(&db.path)
        .execute(
            "UPDATE subscribers SET amf = x'0000', uss = '{\"flags\": 3}'",
            [],
        )
        .expect("edit");
    let r = store.list_subscribers().await;
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
}

#[test]
fn debug_output_shows_no_key() {
    let store = SqliteStore::open_in_memory(key(0xAB)).expect("open");
    let text = format!("{store:?}");
    assert!(text.contains("SqliteStore"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("abab"), "{text}");
}

/// Every spelling of a secret an implementation might have written by mistake.
fn spellings(secret: &[u8]) -> Vec<(String, Vec<u8>)> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    vec![
        ("raw".into(), secret.to_vec()),
        ("hex".into(), hex::encode(secret).into_bytes()),
        ("HEX".into(), hex::encode_upper(secret).into_bytes()),
        (
            "base64".into(),
            b64.trim_end_matches('=').as_bytes().to_vec(),
        ),
        ("base64url".into(), b64url.into_bytes()),
    ]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that none of the files holds any spelling of any secret, and that the scan
/// does see what is stored in clear (so a vacuous scan cannot pass).
fn assert_no_secrets(files: &[PathBuf], secrets: &[(&str, Vec<u8>)], visible: &[u8]) {
    let mut seen_visible = false;
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        seen_visible |= contains(&bytes, visible);
        for (name, secret) in secrets {
            for (form, pattern) in spellings(secret) {
                assert!(
                    !contains(&bytes, &pattern),
                    "{name} found as {form} in {}",
                    file.display()
                );
            }
        }
    }
    assert!(
        seen_visible,
        "the scan did not find the clear-text IMPI; it reads the wrong files"
    );
}

#[tokio::test]
async fn secrets_are_never_on_disk_in_clear() {
    let v = Vectors::load();
    let db = file_db();
    let wal = PathBuf::from(format!("{}-wal", db.path.display()));
    let store = open(&db.path);
    let mut s = v.subscriber();
    store.insert_subscriber(&s).await.expect("insert");
    store
        .put_context(&v.context(1_000, 2_000))
        .await
        .expect("put context");
    store
        .put_challenge(&v.challenge(2_000))
        .await
        .expect("put challenge");
    // Rewrite the row too, so an old page version sits in the WAL.
    s.amf = [0, 0];
    store.update_subscriber(&s).await.expect("update");
    store.next_sqn(&s.impi).await.expect("next");

    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("K", v.bytes::<16>("K").to_vec()),
        ("OPc", v.bytes::<16>("OPC").to_vec()),
        ("Ks", v.ks().to_vec()),
        ("CK", v.bytes::<16>("CK").to_vec()),
        ("IK", v.bytes::<16>("IK").to_vec()),
        ("XRES", v.bytes::<8>("RES").to_vec()),
    ];
    let files = vec![db.path.clone(), wal.clone()];
    // While open, the new pages live in the WAL.
    assert!(wal.exists(), "WAL file exists while the store is open");
    assert_no_secrets(&files, &secrets, s.impi.as_bytes());

    // Closing the last connection checkpoints everything into the main file.
    drop(store);
    assert!(
        !wal.exists() || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0,
        "WAL checkpointed on close"
    );
    assert_no_secrets(&files, &secrets, s.impi.as_bytes());
}
