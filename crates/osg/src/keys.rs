//! NAF keys for (B-TID, NAF_Id): fetched from the KMC over Zn, cached until their
//! expiry, with a short negative cache for unknown B-TIDs and single-flight fetching.
//!
//! - **Cache**: a bounded map. Entries live until `keyExpiryTime` (NAF keys expire with
//!   Ks; they are never renewed individually). When full, expired and negative entries
//!   go first, then the entries that expire soonest (an approximation of LRU that needs
//!   no bookkeeping on hits).
//! - **Negative cache**: "unknown or expired B-TID" answers are remembered for
//!   `negative_ttl_secs`, so a terminal (or an attacker) repeating a dead B-TID costs one
//!   Zn call per period. Transport failures are not cached: the next request retries.
//! - **Single flight**: concurrent misses for the same key wait for one Zn call.
//!   A fetch whose caller is cancelled hands the slot back (the waiters retry).
//! - **Synchronous use** ([`KeyProvider::get_blocking`]): the PSK callback of OpenSSL
//!   cannot await. A cache hit is answered at once; a miss runs the async fetch with
//!   `tokio::task::block_in_place` + `Handle::block_on`, which moves the other tasks of
//!   this worker thread elsewhere while it waits. That only works on the multi-thread
//!   runtime; [`crate::Osg::run`] refuses to start on a current-thread runtime.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use seccf_gba::naf::NafId;
use seccf_kmc::zn_client::{ZnClient, ZnClientError};
use seccf_secret::Secret;
use tokio::sync::watch;

/// The keys and facts about one subscriber that the gateway uses.
#[derive(Debug)]
pub struct NafKeys {
    /// Ks_NAF (GBA_ME) or Ks_ext_NAF (GBA_U).
    pub me_key: Secret<32>,
    /// Expiry (unix seconds).
    pub expires_at: i64,
    /// IMPI.
    pub impi: String,
    /// UE identities from the user security settings (public ids; the KMC puts the
    /// IMPI there when the subscriber has none).
    pub ue_ids: Vec<String>,
    /// USS flags.
    pub flags: Vec<u32>,
}

/// Why keys could not be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The KMC does not know the B-TID (or it expired): the terminal must bootstrap again.
    #[error("unknown or expired B-TID")]
    UnknownBtid,
    /// The KMC refused for another reason (e.g. this NAF is not allowed that FQDN).
    #[error("KMC refused the key request: {0}")]
    Refused(String),
    /// The KMC could not be reached or answered garbage.
    #[error("KMC unavailable: {0}")]
    Unavailable(String),
}

/// A future returned by [`KeySource::fetch`].
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<NafKeys, KeyError>> + Send + 'a>>;

/// Where keys come from (the Zn client; tests substitute their own).
pub trait KeySource: Send + Sync + 'static {
    /// Retrieves the keys for `btid` and `naf`.
    fn fetch<'a>(&'a self, btid: &'a str, naf: &'a NafId) -> FetchFuture<'a>;
}

/// [`KeySource`] over the KMC's Zn interface. Holds a few connections so that one slow
/// request does not serialise all others (each [`ZnClient`] keeps one connection).
pub struct ZnKeySource {
    clients: Vec<ZnClient>,
    next: std::sync::atomic::AtomicUsize,
}

impl ZnKeySource {
    /// Wraps `clients` (at least one).
    pub fn new(clients: Vec<ZnClient>) -> Self {
        ZnKeySource {
            clients,
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl KeySource for ZnKeySource {
    fn fetch<'a>(&'a self, btid: &'a str, naf: &'a NafId) -> FetchFuture<'a> {
        Box::pin(async move {
            let n = self.clients.len();
            let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let client = self
                .clients
                .get(i % n.max(1))
                .ok_or_else(|| KeyError::Unavailable("no Zn client configured".into()))?;
            match client.bootstrapping_info(btid, naf, false).await {
                Ok(k) => Ok(NafKeys {
                    me_key: k.me_key,
                    expires_at: k.key_expiry_unix,
                    impi: k.impi,
                    ue_ids: k.ue_ids,
                    flags: k.flags,
                }),
                Err(e) if e.is_unknown_btid() => Err(KeyError::UnknownBtid),
                Err(ZnClientError::Refused { status, cause }) => {
                    Err(KeyError::Refused(format!("HTTP {status} {cause}")))
                }
                Err(e) => Err(KeyError::Unavailable(e.to_string())),
            }
        })
    }
}

type Key = (String, NafId);

enum Slot {
    Ready(Arc<NafKeys>),
    Negative { until: i64 },
    Pending(watch::Receiver<bool>),
}

/// Cache counters (for metrics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answers from the cache (positive or negative).
    pub hits: u64,
    /// Zn fetches started.
    pub fetches: u64,
    /// Entries currently held.
    pub entries: usize,
}

struct Inner {
    map: HashMap<Key, Slot>,
    hits: u64,
    fetches: u64,
}

/// The cache in front of a [`KeySource`].
pub struct KeyProvider {
    source: Arc<dyn KeySource>,
    inner: Mutex<Inner>,
    max_entries: usize,
    negative_ttl_secs: i64,
    clock: Box<dyn Fn() -> i64 + Send + Sync>,
}

enum Step {
    Done(Result<Arc<NafKeys>, KeyError>),
    Wait(watch::Receiver<bool>),
    Fetch(watch::Sender<bool>),
}

/// Hands a pending slot back if the fetch is dropped before it finished, so waiters
/// retry instead of waiting on a fetch nobody drives.
struct PendingGuard<'a> {
    provider: &'a KeyProvider,
    key: Option<Key>,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            if let Ok(mut inner) = self.provider.inner.lock() {
                if matches!(inner.map.get(&key), Some(Slot::Pending(_))) {
                    inner.map.remove(&key);
                }
            }
        }
    }
}

impl KeyProvider {
    /// A provider holding at most `max_entries` entries, remembering unknown B-TIDs for
    /// `negative_ttl_secs`; `clock` gives unix seconds (tests pass a fake one).
    pub fn new(
        source: Arc<dyn KeySource>,
        max_entries: usize,
        negative_ttl_secs: u64,
        clock: Box<dyn Fn() -> i64 + Send + Sync>,
    ) -> Self {
        KeyProvider {
            source,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                hits: 0,
                fetches: 0,
            }),
            max_entries: max_entries.max(1),
            negative_ttl_secs: i64::try_from(negative_ttl_secs).unwrap_or(60),
            clock,
        }
    }

    /// Counters and size.
    pub fn stats(&self) -> CacheStats {
        match self.inner.lock() {
            Ok(i) => CacheStats {
                hits: i.hits,
                fetches: i.fetches,
                entries: i.map.len(),
            },
            Err(_) => CacheStats::default(),
        }
    }

    /// Drops every entry (e.g. after a KMC-side revocation, through reload).
    pub fn clear(&self) {
        if let Ok(mut i) = self.inner.lock() {
            i.map.retain(|_, s| matches!(s, Slot::Pending(_)));
        }
    }

    fn step(&self, key: &Key) -> Step {
        let now = (self.clock)();
        let Ok(mut inner) = self.inner.lock() else {
            return Step::Done(Err(KeyError::Unavailable("key cache poisoned".into())));
        };
        let mut stale = false;
        match inner.map.get(key) {
            Some(Slot::Ready(k)) if k.expires_at > now => {
                let k = k.clone();
                inner.hits += 1;
                return Step::Done(Ok(k));
            }
            Some(Slot::Negative { until }) if *until > now => {
                inner.hits += 1;
                return Step::Done(Err(KeyError::UnknownBtid));
            }
            Some(Slot::Pending(rx)) => return Step::Wait(rx.clone()),
            Some(_) => stale = true,
            None => {}
        }
        if stale {
            inner.map.remove(key);
        }
        if inner.map.len() >= self.max_entries {
            Self::evict(&mut inner.map, self.max_entries, now);
        }
        let (tx, rx) = watch::channel(false);
        inner.map.insert(key.clone(), Slot::Pending(rx));
        inner.fetches += 1;
        Step::Fetch(tx)
    }

    fn evict(map: &mut HashMap<Key, Slot>, max: usize, now: i64) {
        map.retain(|_, s| match s {
            Slot::Ready(k) => k.expires_at > now,
            Slot::Negative { .. } => false,
            Slot::Pending(_) => true,
        });
        if map.len() < max {
            return;
        }
        // Still full of live keys: drop the 1/16 that expire soonest (at least one), so
        // the O(n) scan runs once per max/16 insertions, not on every miss.
        let mut expiries: Vec<(i64, Key)> = map
            .iter()
            .filter_map(|(k, s)| match s {
                Slot::Ready(v) => Some((v.expires_at, k.clone())),
                _ => None,
            })
            .collect();
        expiries.sort_by_key(|(e, _)| *e);
        let drop_n = (max / 16).max(1);
        for (_, k) in expiries.into_iter().take(drop_n) {
            map.remove(&k);
        }
    }

    /// The keys for `btid` and `naf`, from the cache or the KMC.
    pub async fn get(&self, btid: &str, naf: &NafId) -> Result<Arc<NafKeys>, KeyError> {
        let key: Key = (btid.to_string(), naf.clone());
        // Bounded: each round either answers, fetches, or waits for a fetch that ends;
        // a waiter whose fetcher vanished loops once more and becomes the fetcher.
        for _ in 0..8 {
            match self.step(&key) {
                Step::Done(r) => return r,
                Step::Wait(mut rx) => {
                    // Err = sender dropped without a result: retry.
                    let _ = rx.wait_for(|done| *done).await;
                }
                Step::Fetch(tx) => {
                    let mut guard = PendingGuard {
                        provider: self,
                        key: Some(key.clone()),
                    };
                    let result = self.source.fetch(btid, naf).await;
                    let now = (self.clock)();
                    let out = {
                        let Ok(mut inner) = self.inner.lock() else {
                            return Err(KeyError::Unavailable("key cache poisoned".into()));
                        };
                        guard.key = None;
                        match result {
                            Ok(k) => {
                                let k = Arc::new(k);
                                if k.expires_at > now {
                                    inner.map.insert(key.clone(), Slot::Ready(k.clone()));
                                } else {
                                    inner.map.remove(&key);
                                }
                                Ok(k)
                            }
                            Err(KeyError::UnknownBtid) => {
                                inner.map.insert(
                                    key.clone(),
                                    Slot::Negative {
                                        until: now.saturating_add(self.negative_ttl_secs),
                                    },
                                );
                                Err(KeyError::UnknownBtid)
                            }
                            Err(e) => {
                                inner.map.remove(&key);
                                Err(e)
                            }
                        }
                    };
                    let _ = tx.send(true);
                    return out;
                }
            }
        }
        Err(KeyError::Unavailable(
            "key fetch kept being abandoned".into(),
        ))
    }

    /// [`KeyProvider::get`] for synchronous callers inside the runtime (the PSK
    /// callback). Needs a multi-thread runtime: see the module documentation.
    pub fn get_blocking(
        &self,
        handle: &tokio::runtime::Handle,
        btid: &str,
        naf: &NafId,
    ) -> Result<Arc<NafKeys>, KeyError> {
        let key: Key = (btid.to_string(), naf.clone());
        // Fast path without leaving the worker thread.
        {
            let now = (self.clock)();
            if let Ok(mut inner) = self.inner.lock() {
                let hit = match inner.map.get(&key) {
                    Some(Slot::Ready(k)) if k.expires_at > now => Some(Ok(k.clone())),
                    Some(Slot::Negative { until }) if *until > now => {
                        Some(Err(KeyError::UnknownBtid))
                    }
                    _ => None,
                };
                if let Some(hit) = hit {
                    inner.hits += 1;
                    return hit;
                }
            }
        }
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err(KeyError::Unavailable(
                "key lookup from a synchronous callback needs the multi-thread runtime".into(),
            ));
        }
        tokio::task::block_in_place(|| handle.block_on(self.get(btid, naf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccf_gba::naf::UaSecurityProtocolId;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use std::time::Duration;

    struct Fake {
        calls: AtomicUsize,
        delay_ms: u64,
        expires_at: i64,
    }

    impl KeySource for Fake {
        fn fetch<'a>(&'a self, btid: &'a str, _naf: &'a NafId) -> FetchFuture<'a> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
                match btid {
                    "unknown" => Err(KeyError::UnknownBtid),
                    "down" => Err(KeyError::Unavailable("down".into())),
                    _ => Ok(NafKeys {
                        me_key: Secret::new([7; 32]),
                        expires_at: self.expires_at,
                        impi: "impi".into(),
                        ue_ids: vec![],
                        flags: vec![],
                    }),
                }
            })
        }
    }

    fn naf() -> NafId {
        NafId::new("naf.example.org", UaSecurityProtocolId::TLS13_SHARED_KEY).unwrap()
    }

    fn provider(max: usize, delay_ms: u64) -> (Arc<KeyProvider>, Arc<Fake>, Arc<AtomicI64>) {
        let fake = Arc::new(Fake {
            calls: AtomicUsize::new(0),
            delay_ms,
            expires_at: 1000,
        });
        let now = Arc::new(AtomicI64::new(100));
        let n2 = now.clone();
        let p = KeyProvider::new(
            fake.clone(),
            max,
            5,
            Box::new(move || n2.load(Ordering::SeqCst)),
        );
        (Arc::new(p), fake, now)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_flight_and_expiry() {
        let (p, fake, now) = provider(10, 50);
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move { p.get("b1", &naf()).await }));
        }
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            1,
            "one Zn call for 16 misses"
        );
        p.get("b1", &naf()).await.unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        // Past the key expiry the entry is refetched.
        now.store(1000, Ordering::SeqCst);
        p.get("b1", &naf()).await.unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn negative_cache_and_no_caching_of_outages() {
        let (p, fake, now) = provider(10, 0);
        assert_eq!(
            p.get("unknown", &naf()).await.unwrap_err(),
            KeyError::UnknownBtid
        );
        assert_eq!(
            p.get("unknown", &naf()).await.unwrap_err(),
            KeyError::UnknownBtid
        );
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
        now.fetch_add(6, Ordering::SeqCst);
        let _ = p.get("unknown", &naf()).await;
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            2,
            "negative entry expired"
        );
        assert!(matches!(
            p.get("down", &naf()).await,
            Err(KeyError::Unavailable(_))
        ));
        assert!(matches!(
            p.get("down", &naf()).await,
            Err(KeyError::Unavailable(_))
        ));
        assert_eq!(fake.calls.load(Ordering::SeqCst), 4, "outages are retried");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bounded_size() {
        let (p, _fake, _now) = provider(32, 0);
        for i in 0..200 {
            p.get(&format!("b{i}"), &naf()).await.unwrap();
            assert!(p.stats().entries <= 32);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_fetch_releases_the_slot() {
        let (p, fake, _now) = provider(10, 300);
        let p2 = p.clone();
        let t = tokio::spawn(async move { p2.get("b1", &naf()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        t.abort();
        let _ = t.await;
        // A new caller fetches again rather than waiting forever.
        tokio::time::timeout(Duration::from_secs(2), p.get("b1", &naf()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_adapter_works_inside_the_runtime() {
        let (p, fake, _now) = provider(10, 20);
        let h = tokio::runtime::Handle::current();
        let p2 = p.clone();
        let r =
            tokio::spawn(async move { p2.get_blocking(&h, "b9", &naf()).map(|k| k.impi.clone()) })
                .await
                .unwrap();
        assert_eq!(r.unwrap(), "impi");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn blocking_adapter_refuses_current_thread_runtime() {
        let (p, _fake, _now) = provider(10, 0);
        let h = tokio::runtime::Handle::current();
        assert!(matches!(
            p.get_blocking(&h, "b1", &naf()),
            Err(KeyError::Unavailable(_))
        ));
    }
}
