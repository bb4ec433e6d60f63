//! On-disk format stability: `testdata/store-v1.sqlite` is a schema-1 database written
//! by this crate from the TS 35.208 test-set-1 values in `testdata/ts35208_set1.txt`,
//! sealed under that file's test-only MASTER_KEY. Every later build must open it and
//! read the same values back; a change to the schema, the column encodings or the
//! sealing associated data that would strand deployed databases fails here.
//!
//! Regenerate (only when deliberately starting a new format version, with a new file
//! name) with: `cargo test -p seccf-store --test golden -- --ignored`.

mod common;

use std::path::Path;

use rusqlite::Connection;
use seccf_secret::{MasterKey, Secret};
use seccf_store::sqlite::SqliteStore;
use seccf_store::{NafRecord, Store, StoreError};

use common::{testdata, Vectors};

const GOLDEN: &str = "store-v1.sqlite";
const CREATED_AT: i64 = 1_700_000_000;
const EXPIRES_AT: i64 = 1_700_003_600;

fn golden_naf() -> NafRecord {
    NafRecord {
        name: "osg-1".into(),
        fqdns: vec!["naf.example.com".into(), "*.osg.example.com".into()],
        // SHA-256 of the empty string, as a stand-in certificate hash.
        cert_sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        gba_u_aware: false,
    }
}

/// A private copy, because opening a database writes to it (WAL, shm).
fn copy_golden(dir: &Path) -> std::path::PathBuf {
    let path = dir.join(GOLDEN);
    std::fs::copy(testdata(GOLDEN), &path).expect("copy golden database");
    path
}

#[tokio::test]
async fn schema_1_database_still_reads_back() {
    let v = Vectors::load();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = copy_golden(dir.path());
    let store = SqliteStore::open(&path, v.master_key()).expect("open golden database");

    let s = store
        .get_subscriber(v.text("IMPI"))
        .await
        .expect("get")
        .expect("subscriber");
    assert_eq!(s.k.expose(), &v.bytes::<16>("K"));
    assert_eq!(s.opc.expose(), &v.bytes::<16>("OPC"));
    assert_eq!(s.amf, v.bytes::<2>("AMF"));
    assert_eq!(s.sqn, v.sqn());
    assert_eq!(s.uss, v.subscriber().uss);
    assert_eq!(s.key_lifetime_secs, Some(3600));

    let c = store
        .get_context(&v.btid(), CREATED_AT)
        .await
        .expect("get")
        .expect("context");
    assert_eq!(c.ks.expose(), &v.ks());
    assert_eq!(c.rand, v.bytes::<16>("RAND"));
    assert_eq!((c.created_at, c.expires_at), (CREATED_AT, EXPIRES_AT));

    let ch = store
        .take_challenge(&v.nonce(), CREATED_AT)
        .await
        .expect("take")
        .expect("challenge");
    assert_eq!(ch.xres.expose(), &v.bytes::<8>("RES"));
    assert_eq!(ch.ck.expose(), &v.bytes::<16>("CK"));
    assert_eq!(ch.ik.expose(), &v.bytes::<16>("IK"));

    let naf = golden_naf();
    assert_eq!(
        store.naf_by_cert(&naf.cert_sha256).await.expect("by cert"),
        Some(naf)
    );
    drop(store);

    let version: i64 = Connection::open(&path)
        .expect("raw open")
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 1);
}

#[test]
fn golden_database_holds_no_clear_secrets() {
    let v = Vectors::load();
    let bytes = std::fs::read(testdata(GOLDEN)).expect("read golden database");
    let find = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    // The IMPI is stored in clear: finding it shows the scan reads the right bytes.
    assert!(find(v.text("IMPI").as_bytes()));
    for name in ["K", "OPC", "CK", "IK"] {
        let secret = v.bytes::<16>(name);
        assert!(!find(&secret), "{name} in clear");
        assert!(!find(hex::encode(secret).as_bytes()), "{name} as hex");
    }
    assert!(!find(&v.ks()), "Ks in clear");
}

#[test]
fn golden_database_refuses_another_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = copy_golden(dir.path());
    let err = SqliteStore::open(&path, MasterKey::new(Secret::new([0; 32])))
        .expect_err("another key must be refused");
    assert!(matches!(err, StoreError::Seal(_)), "{err:?}");
}

#[tokio::test]
#[ignore = "writes testdata/store-v1.sqlite; run by hand only"]
async fn regenerate_golden_v1() {
    let v = Vectors::load();
    let path = testdata(GOLDEN);
    let _ = std::fs::remove_file(&path);
    {
        let store = SqliteStore::open(&path, v.master_key()).expect("create");
        store
            .insert_subscriber(&v.subscriber())
            .await
            .expect("subscriber");
        store
            .put_context(&v.context(CREATED_AT, EXPIRES_AT))
            .await
            .expect("context");
        store
            .put_challenge(&v.challenge(EXPIRES_AT))
            .await
            .expect("challenge");
        store.put_naf(&golden_naf()).await.expect("naf");
    }
    // Compact and leave a single self-contained file (no -wal/-shm) to commit.
    let raw = Connection::open(&path).expect("raw open");
    raw.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("vacuum");
}
