//! The backend conformance suite: the [`Store`] contract written once as async
//! functions over any `S: Store`, run by every backend's tests (SQLite in this crate's
//! `tests/sqlite.rs`; PostgreSQL later).
//!
//! Each function panics with a message naming the broken rule. Every record a function
//! creates carries a fresh random tag in its keys, so the functions can run against a
//! shared, non-empty database (a PostgreSQL test instance) and in parallel; they only
//! assert about their own records. Functions that take several handles expect handles
//! to the same underlying database (two connections, two pools, or two processes' worth
//! of state), which is how cross-process atomicity is exercised.
//!
//! Compiled only with the `conformance` feature.

use std::collections::HashSet;
use std::sync::Arc;

use seccf_gba::GbaType;
use seccf_secret::Secret;

use crate::{
    BootstrapContext, NafRecord, PendingChallenge, Store, StoreError, Subscriber,
    UserSecuritySettings, MAX_SQN,
};

/// The "current time" the suite uses; any fixed value works since the store reads no clock.
pub const NOW: i64 = 1_700_000_000;

/// A random tag that makes this run's keys unique in a shared database.
fn tag() -> String {
    let bytes: [u8; 8] = seccf_secret::random_array().expect("OS random source");
    hex::encode(bytes)
}

fn random_secret<const N: usize>() -> Secret<N> {
    Secret::random().expect("OS random source")
}

fn subscriber(impi: &str) -> Subscriber {
    Subscriber {
        impi: impi.to_owned(),
        k: random_secret(),
        opc: random_secret(),
        amf: [0x80, 0x01],
        sqn: 41,
        gba_type: GbaType::Me,
        key_lifetime_secs: Some(7200),
        uss: UserSecuritySettings {
            public_ids: vec![format!("sip:{impi}"), "tel:+15550100".into()],
            flags: vec!["mbms".into()],
            naf_groups: vec!["default".into()],
        },
    }
}

fn challenge(nonce: &str, impi: &str, expires_at: i64) -> PendingChallenge {
    PendingChallenge {
        nonce: nonce.to_owned(),
        impi: impi.to_owned(),
        rand: seccf_secret::random_array().expect("OS random source"),
        xres: random_secret(),
        ck: random_secret(),
        ik: random_secret(),
        opaque: "b3BhcXVl".into(),
        realm: "bsf.example.com".into(),
        gba_type: GbaType::U,
        expires_at,
    }
}

fn context(btid: &str, impi: &str, created_at: i64, expires_at: i64) -> BootstrapContext {
    BootstrapContext {
        btid: btid.to_owned(),
        impi: impi.to_owned(),
        rand: seccf_secret::random_array().expect("OS random source"),
        ks: random_secret(),
        gba_type: GbaType::Me,
        created_at,
        expires_at,
    }
}

fn naf(name: &str) -> NafRecord {
    let cert: [u8; 32] = seccf_secret::random_array().expect("OS random source");
    NafRecord {
        name: name.to_owned(),
        fqdns: vec!["naf.example.com".into(), "*.apps.example.com".into()],
        cert_sha256: hex::encode(cert),
        gba_u_aware: true,
    }
}

fn assert_same_subscriber(got: &Subscriber, want: &Subscriber) {
    assert_eq!(got.impi, want.impi, "impi");
    assert!(got.k == want.k, "K did not round-trip");
    assert!(got.opc == want.opc, "OPc did not round-trip");
    assert_eq!(got.amf, want.amf, "AMF");
    assert_eq!(got.sqn, want.sqn, "SQN");
    assert_eq!(got.gba_type, want.gba_type, "GBA type");
    assert_eq!(
        got.key_lifetime_secs, want.key_lifetime_secs,
        "key lifetime"
    );
    assert_eq!(got.uss, want.uss, "USS");
}

fn assert_same_challenge(got: &PendingChallenge, want: &PendingChallenge) {
    assert_eq!(got.nonce, want.nonce, "nonce");
    assert_eq!(got.impi, want.impi, "impi");
    assert_eq!(got.rand, want.rand, "RAND");
    assert!(got.xres == want.xres, "XRES did not round-trip");
    assert!(got.ck == want.ck, "CK did not round-trip");
    assert!(got.ik == want.ik, "IK did not round-trip");
    assert_eq!(got.opaque, want.opaque, "opaque");
    assert_eq!(got.realm, want.realm, "realm");
    assert_eq!(got.gba_type, want.gba_type, "GBA type");
    assert_eq!(got.expires_at, want.expires_at, "expiry");
}

fn assert_same_context(got: &BootstrapContext, want: &BootstrapContext) {
    assert_eq!(got.btid, want.btid, "B-TID");
    assert_eq!(got.impi, want.impi, "impi");
    assert_eq!(got.rand, want.rand, "RAND");
    assert!(got.ks == want.ks, "Ks did not round-trip");
    assert_eq!(got.gba_type, want.gba_type, "GBA type");
    assert_eq!(got.created_at, want.created_at, "created_at");
    assert_eq!(got.expires_at, want.expires_at, "expires_at");
}

/// Insert, read back, duplicate, update, list, delete; input limits.
pub async fn subscriber_round_trip<S: Store>(store: &S) {
    let t = tag();
    let alice = subscriber(&format!("alice-{t}@ims.example.com"));
    store.insert_subscriber(&alice).await.expect("insert");
    let got = store
        .get_subscriber(&alice.impi)
        .await
        .expect("get")
        .expect("present");
    assert_same_subscriber(&got, &alice);

    let again = store.insert_subscriber(&subscriber(&alice.impi)).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists(_))),
        "duplicate insert: {again:?}"
    );
    // The failed insert must not have replaced the keys.
    let got = store
        .get_subscriber(&alice.impi)
        .await
        .expect("get")
        .expect("present");
    assert_same_subscriber(&got, &alice);

    let missing = format!("nobody-{t}");
    assert!(store.get_subscriber(&missing).await.expect("get").is_none());

    let mut changed = subscriber(&alice.impi);
    changed.amf = [0x00, 0x00];
    changed.sqn = 1000;
    changed.gba_type = GbaType::U;
    changed.key_lifetime_secs = None;
    changed.uss = UserSecuritySettings::default();
    store.update_subscriber(&changed).await.expect("update");
    let got = store
        .get_subscriber(&alice.impi)
        .await
        .expect("get")
        .expect("present");
    assert_same_subscriber(&got, &changed);
    assert!(got.k != alice.k, "update must replace K");

    let upd = store.update_subscriber(&subscriber(&missing)).await;
    assert!(
        matches!(upd, Err(StoreError::NotFound(_))),
        "update missing: {upd:?}"
    );
    assert!(
        store.get_subscriber(&missing).await.expect("get").is_none(),
        "update must not insert"
    );

    let bob = subscriber(&format!("bob-{t}@ims.example.com"));
    store.insert_subscriber(&bob).await.expect("insert bob");
    let list = store.list_subscribers().await.expect("list");
    let ours: Vec<_> = list.iter().filter(|s| s.impi.contains(&t)).collect();
    assert_eq!(ours.len(), 2, "list shows both subscribers");
    assert!(
        list.windows(2).all(|w| w[0].impi <= w[1].impi),
        "list is ordered by IMPI"
    );
    let a = ours
        .iter()
        .find(|s| s.impi == alice.impi)
        .expect("alice listed");
    assert_eq!(a.gba_type, "GBA_U");
    assert_eq!(a.amf, "0000");
    assert_eq!(a.sqn, 1000);
    assert_eq!(a.key_lifetime_secs, None);
    let b = ours
        .iter()
        .find(|s| s.impi == bob.impi)
        .expect("bob listed");
    assert_eq!(b.gba_type, "GBA_ME");
    assert_eq!(b.amf, "8001");
    assert_eq!(b.uss, bob.uss);

    assert!(store.delete_subscriber(&alice.impi).await.expect("delete"));
    assert!(!store
        .delete_subscriber(&alice.impi)
        .await
        .expect("delete twice"));
    assert!(store
        .get_subscriber(&alice.impi)
        .await
        .expect("get")
        .is_none());
    assert!(
        store
            .get_subscriber(&bob.impi)
            .await
            .expect("get")
            .is_some(),
        "delete is per IMPI"
    );
}

/// Values the store must refuse rather than store.
pub async fn rejects_invalid_input<S: Store>(store: &S) {
    let t = tag();
    let mut s = subscriber(&format!("limits-{t}"));
    s.sqn = MAX_SQN + 1;
    let r = store.insert_subscriber(&s).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "SQN above 48 bits: {r:?}"
    );
    s.sqn = MAX_SQN;
    store
        .insert_subscriber(&s)
        .await
        .expect("SQN of exactly 48 bits is fine");
    let r = store.insert_subscriber(&subscriber("")).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "empty IMPI: {r:?}"
    );
    let r = store
        .insert_subscriber(&subscriber(&"x".repeat(crate::MAX_IMPI_LEN + 1)))
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "long IMPI: {r:?}");
    let mut u = subscriber(&format!("uss-{t}"));
    u.uss.flags = vec!["f".into(); crate::MAX_USS_ENTRIES + 1];
    let r = store.insert_subscriber(&u).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "oversize USS: {r:?}"
    );
    let mut l = subscriber(&format!("lifetime-{t}"));
    l.key_lifetime_secs = Some(u64::MAX);
    let r = store.insert_subscriber(&l).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "lifetime out of range: {r:?}"
    );
    for bad in [&u.impi, &l.impi] {
        assert!(
            store.get_subscriber(bad).await.expect("get").is_none(),
            "refused means not stored"
        );
    }
}

/// next_sqn increments and returns the new value; set_sqn overwrites; both report
/// unknown subscribers; the counter stops at 48 bits instead of wrapping.
pub async fn sqn_counter<S: Store>(store: &S) {
    let t = tag();
    let s = subscriber(&format!("sqn-{t}"));
    store.insert_subscriber(&s).await.expect("insert");
    assert_eq!(
        store.next_sqn(&s.impi).await.expect("next"),
        Some(s.sqn + 1)
    );
    assert_eq!(
        store.next_sqn(&s.impi).await.expect("next"),
        Some(s.sqn + 2)
    );
    let got = store
        .get_subscriber(&s.impi)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.sqn, s.sqn + 2, "next_sqn persists the counter");

    assert!(store.set_sqn(&s.impi, 5000).await.expect("set"));
    assert_eq!(store.next_sqn(&s.impi).await.expect("next"), Some(5001));
    // Unconditional: a resync may move the counter backwards.
    assert!(store.set_sqn(&s.impi, 7).await.expect("set lower"));
    assert_eq!(store.next_sqn(&s.impi).await.expect("next"), Some(8));

    let missing = format!("nobody-{t}");
    assert_eq!(store.next_sqn(&missing).await.expect("next"), None);
    assert!(!store.set_sqn(&missing, 1).await.expect("set"));

    let r = store.set_sqn(&s.impi, MAX_SQN + 1).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "set above 48 bits: {r:?}"
    );
    assert!(store
        .set_sqn(&s.impi, MAX_SQN - 1)
        .await
        .expect("set near top"));
    assert_eq!(store.next_sqn(&s.impi).await.expect("next"), Some(MAX_SQN));
    let r = store.next_sqn(&s.impi).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "exhausted counter: {r:?}"
    );
    let got = store
        .get_subscriber(&s.impi)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.sqn, MAX_SQN, "an exhausted counter stays put");
}

const SQN_TASKS: usize = 8;
const SQN_CALLS_PER_TASK: usize = 50;

/// 8 tasks × 50 `next_sqn` on one subscriber → 400 distinct values, final sqn = start +
/// 400. Tasks take turns over `handles` (one handle, or several onto one database).
pub async fn next_sqn_concurrent<S: Store>(handles: &[Arc<S>]) {
    let first = handles.first().expect("at least one handle");
    let s = subscriber(&format!("sqn-race-{}", tag()));
    store_subscriber(first.as_ref(), &s).await;
    let mut tasks = Vec::new();
    for i in 0..SQN_TASKS {
        let store = Arc::clone(&handles[i % handles.len()]);
        let impi = s.impi.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(SQN_CALLS_PER_TASK);
            for _ in 0..SQN_CALLS_PER_TASK {
                got.push(
                    store
                        .next_sqn(&impi)
                        .await
                        .expect("next_sqn")
                        .expect("subscriber exists"),
                );
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let got = t.await.expect("task");
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "one caller sees increasing values"
        );
        all.extend(got);
    }
    let total = SQN_TASKS * SQN_CALLS_PER_TASK;
    let distinct: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), total, "every next_sqn value is distinct");
    let start = s.sqn;
    let expected: HashSet<u64> = (start + 1..=start + total as u64).collect();
    assert_eq!(
        distinct, expected,
        "values are exactly start+1 ..= start+{total}"
    );
    let got = first
        .get_subscriber(&s.impi)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.sqn, start + total as u64, "final SQN");
}

async fn store_subscriber<S: Store>(store: &S, s: &Subscriber) {
    store.insert_subscriber(s).await.expect("insert subscriber");
}

/// put/take round trip, single use, duplicates, unknown subscriber, expiry boundary.
pub async fn challenge_single_use<S: Store>(store: &S) {
    let t = tag();
    let s = subscriber(&format!("chal-{t}"));
    store_subscriber(store, &s).await;
    let c = challenge(&format!("nonce-{t}-1"), &s.impi, NOW + 1);
    store.put_challenge(&c).await.expect("put");
    let dup = store
        .put_challenge(&challenge(&c.nonce, &s.impi, NOW + 60))
        .await;
    assert!(
        matches!(dup, Err(StoreError::AlreadyExists(_))),
        "duplicate nonce: {dup:?}"
    );

    let got = store
        .take_challenge(&c.nonce, NOW)
        .await
        .expect("take")
        .expect("present");
    assert_same_challenge(&got, &c);
    assert!(
        store
            .take_challenge(&c.nonce, NOW)
            .await
            .expect("take")
            .is_none(),
        "a challenge is single use"
    );

    // expires_at <= now is expired, and taking it removes it.
    let e = challenge(&format!("nonce-{t}-2"), &s.impi, NOW);
    store.put_challenge(&e).await.expect("put");
    assert!(
        store
            .take_challenge(&e.nonce, NOW)
            .await
            .expect("take")
            .is_none(),
        "expired at now"
    );
    assert!(
        store
            .take_challenge(&e.nonce, NOW - 100)
            .await
            .expect("take")
            .is_none(),
        "an expired challenge is removed when taken"
    );

    let orphan = challenge(&format!("nonce-{t}-3"), &format!("nobody-{t}"), NOW + 60);
    let r = store.put_challenge(&orphan).await;
    assert!(
        matches!(r, Err(StoreError::NotFound(_))),
        "challenge for unknown IMPI: {r:?}"
    );
    assert!(store
        .take_challenge(&format!("nonce-{t}-none"), NOW)
        .await
        .expect("take")
        .is_none());
}

/// Two `take_challenge` calls racing (on `handles`, round robin) → exactly one wins,
/// repeated over several challenges.
pub async fn challenge_race<S: Store>(handles: &[Arc<S>]) {
    let first = handles.first().expect("at least one handle");
    let t = tag();
    let s = subscriber(&format!("chal-race-{t}"));
    store_subscriber(first.as_ref(), &s).await;
    for round in 0..20 {
        let c = challenge(&format!("race-{t}-{round}"), &s.impi, NOW + 60);
        first.put_challenge(&c).await.expect("put");
        let racers: Vec<_> = (0..2)
            .map(|i| {
                let store = Arc::clone(&handles[(round + i) % handles.len()]);
                let nonce = c.nonce.clone();
                tokio::spawn(async move { store.take_challenge(&nonce, NOW).await })
            })
            .collect();
        let mut winners = 0;
        for r in racers {
            if r.await.expect("task").expect("take").is_some() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one take_challenge wins");
    }
}

/// put/get round trip, expiry boundary, duplicates, unknown subscriber, several
/// contexts per IMPI.
pub async fn context_round_trip<S: Store>(store: &S) {
    let t = tag();
    let s = subscriber(&format!("ctx-{t}"));
    store_subscriber(store, &s).await;
    let c = context(
        &format!("ctx1-{t}@bsf.example.com"),
        &s.impi,
        NOW,
        NOW + 3600,
    );
    store.put_context(&c).await.expect("put");
    let got = store
        .get_context(&c.btid, NOW)
        .await
        .expect("get")
        .expect("present");
    assert_same_context(&got, &c);
    assert!(store
        .get_context(&c.btid, NOW + 3599)
        .await
        .expect("get")
        .is_some());
    assert!(
        store
            .get_context(&c.btid, NOW + 3600)
            .await
            .expect("get")
            .is_none(),
        "expires_at <= now is expired"
    );

    let dup = store
        .put_context(&context(&c.btid, &s.impi, NOW, NOW + 10))
        .await;
    assert!(
        matches!(dup, Err(StoreError::AlreadyExists(_))),
        "duplicate B-TID: {dup:?}"
    );
    let got = store
        .get_context(&c.btid, NOW)
        .await
        .expect("get")
        .expect("present");
    assert!(got.ks == c.ks, "a refused duplicate must not replace Ks");

    let second = context(
        &format!("ctx2-{t}@bsf.example.com"),
        &s.impi,
        NOW + 5,
        NOW + 3605,
    );
    store.put_context(&second).await.expect("put second");
    assert!(
        store
            .get_context(&c.btid, NOW + 10)
            .await
            .expect("get")
            .is_some(),
        "a new context does not delete older ones"
    );
    assert!(store
        .get_context(&second.btid, NOW + 10)
        .await
        .expect("get")
        .is_some());

    let orphan = context(
        &format!("ctx3-{t}@bsf.example.com"),
        &format!("nobody-{t}"),
        NOW,
        NOW + 60,
    );
    let r = store.put_context(&orphan).await;
    assert!(
        matches!(r, Err(StoreError::NotFound(_))),
        "context for unknown IMPI: {r:?}"
    );
    assert!(store
        .get_context(&orphan.btid, NOW)
        .await
        .expect("get")
        .is_none());
}

/// At most `max_contexts_per_impi` contexts per IMPI: the oldest inserted go first, and
/// other subscribers' contexts are untouched.
pub async fn context_cap<S: Store>(store: &S, max_contexts_per_impi: usize) {
    let t = tag();
    let s = subscriber(&format!("cap-{t}"));
    let other = subscriber(&format!("cap-other-{t}"));
    store_subscriber(store, &s).await;
    store_subscriber(store, &other).await;
    let other_ctx = context(&format!("other-{t}@bsf"), &other.impi, NOW, NOW + 3600);
    store.put_context(&other_ctx).await.expect("put other");

    let extra = 3;
    let btids: Vec<String> = (0..max_contexts_per_impi + extra)
        .map(|i| format!("cap{i}-{t}@bsf"))
        .collect();
    for (i, btid) in btids.iter().enumerate() {
        // created_at deliberately not monotonic: insertion order decides what is oldest.
        let created = NOW + if i % 2 == 0 { i as i64 } else { -(i as i64) };
        store
            .put_context(&context(btid, &s.impi, created, NOW + 3600))
            .await
            .expect("put");
    }
    for (i, btid) in btids.iter().enumerate() {
        let present = store.get_context(btid, NOW).await.expect("get").is_some();
        assert_eq!(
            present,
            i >= extra,
            "context #{i} of {} (cap {max_contexts_per_impi})",
            btids.len()
        );
    }
    assert!(
        store
            .get_context(&other_ctx.btid, NOW)
            .await
            .expect("get")
            .is_some(),
        "the cap is per IMPI"
    );
}

/// Deleting a subscriber deletes its contexts and challenges, also from a later
/// subscriber re-created under the same IMPI.
pub async fn delete_subscriber_cascades<S: Store>(store: &S) {
    let t = tag();
    let s = subscriber(&format!("del-{t}"));
    store_subscriber(store, &s).await;
    let c = context(&format!("del-{t}@bsf"), &s.impi, NOW, NOW + 3600);
    let ch = challenge(&format!("del-nonce-{t}"), &s.impi, NOW + 60);
    store.put_context(&c).await.expect("put context");
    store.put_challenge(&ch).await.expect("put challenge");

    assert!(store.delete_subscriber(&s.impi).await.expect("delete"));
    assert!(
        store
            .get_context(&c.btid, NOW)
            .await
            .expect("get")
            .is_none(),
        "context deleted"
    );
    store_subscriber(store, &s).await;
    assert!(
        store
            .get_context(&c.btid, NOW)
            .await
            .expect("get")
            .is_none(),
        "a re-created subscriber does not inherit contexts"
    );
    assert!(
        store
            .take_challenge(&ch.nonce, NOW)
            .await
            .expect("take")
            .is_none(),
        "challenge deleted"
    );
}

/// NAF registry: put, clashes on name and certificate, lookups, validation, delete.
pub async fn naf_registry<S: Store>(store: &S) {
    let t = tag();
    let a = naf(&format!("naf-a-{t}"));
    let b = naf(&format!("naf-b-{t}"));
    store.put_naf(&b).await.expect("put b");
    store.put_naf(&a).await.expect("put a");

    let list = store.list_nafs().await.expect("list");
    let ours: Vec<_> = list
        .iter()
        .filter(|n| n.name.contains(&t))
        .cloned()
        .collect();
    assert_eq!(
        ours,
        vec![a.clone(), b.clone()],
        "list returns records ordered by name"
    );
    assert!(
        list.windows(2).all(|w| w[0].name <= w[1].name),
        "list ordered by name"
    );

    assert_eq!(
        store.naf_by_cert(&a.cert_sha256).await.expect("by cert"),
        Some(a.clone())
    );
    assert_eq!(
        store
            .naf_by_cert(&a.cert_sha256.to_ascii_uppercase())
            .await
            .expect("by cert"),
        Some(a.clone()),
        "lookup accepts upper-case hex"
    );
    assert_eq!(
        store.naf_by_cert(&"00".repeat(32)).await.expect("by cert"),
        None
    );

    let mut same_name = naf(&a.name);
    same_name.fqdns = vec!["other.example.com".into()];
    let r = store.put_naf(&same_name).await;
    assert!(
        matches!(r, Err(StoreError::AlreadyExists(_))),
        "name clash: {r:?}"
    );
    let mut same_cert = naf(&format!("naf-c-{t}"));
    same_cert.cert_sha256 = a.cert_sha256.clone();
    let r = store.put_naf(&same_cert).await;
    assert!(
        matches!(r, Err(StoreError::AlreadyExists(_))),
        "certificate clash: {r:?}"
    );
    assert_eq!(
        store.naf_by_cert(&a.cert_sha256).await.expect("by cert"),
        Some(a.clone())
    );

    let mut upper = naf(&format!("naf-d-{t}"));
    upper.cert_sha256 = upper.cert_sha256.to_ascii_uppercase();
    let r = store.put_naf(&upper).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "upper-case hash: {r:?}"
    );
    let mut bad_fqdn = naf(&format!("naf-e-{t}"));
    bad_fqdn.fqdns = vec!["NAF.Example.com".into()];
    let r = store.put_naf(&bad_fqdn).await;
    assert!(
        matches!(r, Err(StoreError::Invalid(_))),
        "upper-case FQDN: {r:?}"
    );

    assert!(store.delete_naf(&a.name).await.expect("delete"));
    assert!(!store.delete_naf(&a.name).await.expect("delete twice"));
    assert_eq!(
        store.naf_by_cert(&a.cert_sha256).await.expect("by cert"),
        None
    );
    // With `a` gone its certificate hash is free again.
    same_cert.cert_sha256 = a.cert_sha256.clone();
    store
        .put_naf(&same_cert)
        .await
        .expect("re-use a freed certificate hash");
}

/// gc deletes exactly the expired contexts and challenges and counts them.
pub async fn gc_removes_expired<S: Store>(store: &S) {
    let t = tag();
    let s = subscriber(&format!("gc-{t}"));
    store_subscriber(store, &s).await;
    let dead_ctx: Vec<_> = (0..3)
        .map(|i| context(&format!("gc-dead{i}-{t}@bsf"), &s.impi, NOW - 100, NOW - i))
        .collect();
    let live_ctx = context(&format!("gc-live-{t}@bsf"), &s.impi, NOW - 100, NOW + 1);
    for c in dead_ctx.iter().chain([&live_ctx]) {
        store.put_context(c).await.expect("put context");
    }
    let dead_ch: Vec<_> = (0..2)
        .map(|i| challenge(&format!("gc-dead{i}-{t}"), &s.impi, NOW - i))
        .collect();
    let live_ch = challenge(&format!("gc-live-{t}"), &s.impi, NOW + 1);
    for c in dead_ch.iter().chain([&live_ch]) {
        store.put_challenge(c).await.expect("put challenge");
    }

    let stats = store.gc(NOW).await.expect("gc");
    // A shared database may hold other expired records too.
    assert!(
        stats.contexts >= 3 && stats.challenges >= 2,
        "gc counts: {stats:?}"
    );
    for c in &dead_ctx {
        // Asking "as of" creation time would still find the context if gc had kept it.
        assert!(
            store
                .get_context(&c.btid, NOW - 100)
                .await
                .expect("get")
                .is_none(),
            "expired context deleted"
        );
    }
    for c in &dead_ch {
        assert!(
            store
                .take_challenge(&c.nonce, NOW - 100)
                .await
                .expect("take")
                .is_none(),
            "expired challenge deleted"
        );
    }
    assert!(
        store
            .get_context(&live_ctx.btid, NOW)
            .await
            .expect("get")
            .is_some(),
        "live context kept"
    );
    assert!(
        store
            .take_challenge(&live_ch.nonce, NOW)
            .await
            .expect("take")
            .is_some(),
        "live challenge kept"
    );
    let again = store.gc(NOW).await.expect("gc");
    assert!(
        store
            .get_context(&live_ctx.btid, NOW)
            .await
            .expect("get")
            .is_some(),
        "second gc keeps live records ({again:?})"
    );
}

/// The liveness check succeeds on a working store.
pub async fn ping<S: Store>(store: &S) {
    store.ping().await.expect("ping");
}

/// Two handles onto one database see each other's writes, share the SQN counter and
/// the single use of challenges.
pub async fn handles_share_state<S: Store>(a: &S, b: &S) {
    let t = tag();
    let s = subscriber(&format!("shared-{t}"));
    a.insert_subscriber(&s).await.expect("insert via a");
    let got = b
        .get_subscriber(&s.impi)
        .await
        .expect("get via b")
        .expect("b sees a's insert");
    assert_same_subscriber(&got, &s);
    let r = b.insert_subscriber(&s).await;
    assert!(
        matches!(r, Err(StoreError::AlreadyExists(_))),
        "duplicate via b: {r:?}"
    );

    assert_eq!(a.next_sqn(&s.impi).await.expect("next"), Some(s.sqn + 1));
    assert_eq!(b.next_sqn(&s.impi).await.expect("next"), Some(s.sqn + 2));
    assert_eq!(a.next_sqn(&s.impi).await.expect("next"), Some(s.sqn + 3));

    let c = challenge(&format!("shared-nonce-{t}"), &s.impi, NOW + 60);
    a.put_challenge(&c).await.expect("put via a");
    assert!(b
        .take_challenge(&c.nonce, NOW)
        .await
        .expect("take via b")
        .is_some());
    assert!(a
        .take_challenge(&c.nonce, NOW)
        .await
        .expect("take via a")
        .is_none());

    let ctx = context(&format!("shared-{t}@bsf"), &s.impi, NOW, NOW + 60);
    b.put_context(&ctx).await.expect("put via b");
    let got = a
        .get_context(&ctx.btid, NOW)
        .await
        .expect("get via a")
        .expect("a sees b's context");
    assert_same_context(&got, &ctx);

    let n = naf(&format!("shared-naf-{t}"));
    b.put_naf(&n).await.expect("put NAF via b");
    assert_eq!(
        a.naf_by_cert(&n.cert_sha256).await.expect("by cert via a"),
        Some(n)
    );

    assert!(b.delete_subscriber(&s.impi).await.expect("delete via b"));
    assert!(a
        .get_subscriber(&s.impi)
        .await
        .expect("get via a")
        .is_none());
    assert!(a
        .get_context(&ctx.btid, NOW)
        .await
        .expect("get via a")
        .is_none());
}

/// Runs every single-handle function of the suite in turn.
pub async fn run_all<S: Store>(store: Arc<S>, max_contexts_per_impi: usize) {
    subscriber_round_trip(store.as_ref()).await;
    rejects_invalid_input(store.as_ref()).await;
    sqn_counter(store.as_ref()).await;
    next_sqn_concurrent(&[Arc::clone(&store)]).await;
    challenge_single_use(store.as_ref()).await;
    challenge_race(&[Arc::clone(&store)]).await;
    context_round_trip(store.as_ref()).await;
    context_cap(store.as_ref(), max_contexts_per_impi).await;
    delete_subscriber_cascades(store.as_ref()).await;
    naf_registry(store.as_ref()).await;
    gc_removes_expired(store.as_ref()).await;
    ping(store.as_ref()).await;
}
