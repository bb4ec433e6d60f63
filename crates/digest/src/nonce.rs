//! Server nonces: stateless issue/check, and nonce-count replay detection.
//!
//! [`NonceFactory`] makes nonces that carry their own issue time and a MAC, so any
//! gateway instance holding the key can check them without shared state:
//!
//! ```text
//! nonce = base64( issued_at (8, big-endian) ‖ random (16) ‖ tag (16) )      56 chars
//! tag   = HMAC-SHA-256(key, issued_at ‖ random ‖ bound)[..16]
//! ```
//!
//! `bound` ties a nonce to a context the server knows at check time (the realm, or a
//! TLS session's exporter value), so a nonce cannot be replayed in another context.
//! Ub (AKA) nonces are base64(RAND ‖ AUTN) instead and do not come from here.
//!
//! [`NonceCounter`] remembers the highest `nc` accepted per nonce. RFC 7616 §3.4 lets a
//! server require every request on a nonce to carry a count strictly greater than any
//! accepted before; we take that strict reading, so a request that arrives after a later
//! one on the same nonce (reordering by the client's pipelining) is refused as a replay
//! and the client must retry. That refusal is what makes a captured request worthless.
//!
//! Neither type reads the clock: `now_unix` is always a parameter.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use seccf_secret::{ct_eq, random_array, RandomError, Secret};
use sha2::{Digest, Sha256};

/// Length of a nonce issued by [`NonceFactory`], in characters.
pub const NONCE_TEXT_LEN: usize = 56;
/// How far in the future an issue time may be before the nonce is refused; absorbs
/// clock differences between gateway instances sharing a key.
pub const MAX_FUTURE_SKEW_SECS: u64 = 60;

const RAW_LEN: usize = 40;
const TAG_LEN: usize = 16;

/// Why a nonce or nonce count is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// Authentic but older than its lifetime: answer 401 with `stale=true` if the
    /// digest itself was right (RFC 7616 §3.3).
    #[error("nonce is stale")]
    Stale,
    /// Not a nonce this server issued for this context (malformed, tampered, another
    /// key or another `bound`, or issued too far in the future).
    #[error("nonce is invalid")]
    Invalid,
    /// The nonce count is not greater than one already accepted for this nonce.
    #[error("nonce count replayed")]
    Replay,
}

/// Issues and checks stateless server nonces (see the module documentation).
#[derive(Debug)]
pub struct NonceFactory {
    key: Secret<32>,
    lifetime_secs: u64,
}

impl NonceFactory {
    /// A factory with its MAC key and the nonce lifetime in seconds.
    pub fn new(key: Secret<32>, lifetime_secs: u64) -> Self {
        NonceFactory { key, lifetime_secs }
    }

    /// The configured lifetime.
    pub fn lifetime_secs(&self) -> u64 {
        self.lifetime_secs
    }

    fn tag(&self, issued: &[u8; 8], random: &[u8; 16], bound: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose())
            .expect("invariant: HMAC accepts keys of any length");
        mac.update(issued);
        mac.update(random);
        mac.update(bound);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_LEN];
        for (o, b) in out.iter_mut().zip(full.iter()) {
            *o = *b;
        }
        out
    }

    /// A new nonce issued at `now_unix` for context `bound`.
    pub fn issue(&self, now_unix: u64, bound: &[u8]) -> Result<String, RandomError> {
        let issued = now_unix.to_be_bytes();
        let random: [u8; 16] = random_array()?;
        let tag = self.tag(&issued, &random, bound);
        let mut raw = Vec::with_capacity(RAW_LEN);
        raw.extend_from_slice(&issued);
        raw.extend_from_slice(&random);
        raw.extend_from_slice(&tag);
        Ok(base64::engine::general_purpose::STANDARD.encode(raw))
    }

    /// Checks a nonce received at `now_unix` in context `bound`. Returns its issue time,
    /// [`NonceError::Stale`] when it is authentic but more than `lifetime_secs` old, or
    /// [`NonceError::Invalid`]. The MAC is checked first, so a forged nonce is never
    /// reported as merely stale.
    pub fn check(&self, nonce: &str, now_unix: u64, bound: &[u8]) -> Result<u64, NonceError> {
        if nonce.len() != NONCE_TEXT_LEN {
            return Err(NonceError::Invalid);
        }
        // STANDARD decoding rejects non-canonical padding and trailing bits, so one
        // nonce has exactly one spelling (the counter below is keyed by the text).
        let raw = base64::engine::general_purpose::STANDARD
            .decode(nonce)
            .map_err(|_| NonceError::Invalid)?;
        let (issued, rest) = raw.split_first_chunk::<8>().ok_or(NonceError::Invalid)?;
        let (random, tag) = rest.split_first_chunk::<16>().ok_or(NonceError::Invalid)?;
        let expected = self.tag(issued, random, bound);
        if !ct_eq(&expected, tag) {
            return Err(NonceError::Invalid);
        }
        let issued_at = u64::from_be_bytes(*issued);
        if issued_at > now_unix.saturating_add(MAX_FUTURE_SKEW_SECS) {
            return Err(NonceError::Invalid);
        }
        if now_unix.saturating_sub(issued_at) > self.lifetime_secs {
            return Err(NonceError::Stale);
        }
        Ok(issued_at)
    }
}

struct Entry {
    last_nc: u32,
    /// Issue time when known ([`NonceCounter::check_and_record_issued`]), otherwise
    /// the time the nonce was first seen.
    since: u64,
}

/// Replay detection of (nonce, nc), bounded in memory.
///
/// At most `capacity` nonces are tracked (oldest inserted evicted first) and entries are
/// forgotten `lifetime_secs` after their start time; use the same lifetime as the
/// [`NonceFactory`], so a forgotten nonce is refused as stale there anyway.
///
/// Call it only *after* the digest verified: otherwise anyone who saw a challenge could
/// burn a victim's nonce by sending `nc=ffffffff` with a wrong response.
///
/// Eviction for capacity is the one gap a bounded table has: a nonce pushed out early
/// could be replayed. [`NonceCounter::check_and_record_issued`] closes it by refusing,
/// as [`NonceError::Stale`], unknown nonces issued no later than the newest evicted
/// one; the client then simply retries with a fresh nonce. Prefer it when the nonce's
/// issue time is known (it is, from [`NonceFactory::check`]).
pub struct NonceCounter {
    capacity: usize,
    lifetime_secs: u64,
    entries: HashMap<[u8; 32], Entry>,
    /// Keys in insertion order; always the same key set as `entries`.
    order: VecDeque<[u8; 32]>,
    /// Newest start time among entries evicted for capacity.
    evicted_floor: Option<u64>,
}

impl std::fmt::Debug for NonceCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceCounter")
            .field("capacity", &self.capacity)
            .field("lifetime_secs", &self.lifetime_secs)
            .field("len", &self.entries.len())
            .finish()
    }
}

impl NonceCounter {
    /// A counter tracking at most `capacity` nonces (at least 1) for `lifetime_secs`.
    pub fn new(capacity: usize, lifetime_secs: u64) -> Self {
        NonceCounter {
            capacity: capacity.max(1),
            lifetime_secs,
            entries: HashMap::new(),
            order: VecDeque::new(),
            evicted_floor: None,
        }
    }

    /// Accepts `nc` for `nonce` if it is greater than every count accepted before for
    /// that nonce (and not 0), and records it; otherwise [`NonceError::Replay`].
    pub fn check_and_record(
        &mut self,
        nonce: &str,
        nc: u32,
        now_unix: u64,
    ) -> Result<(), NonceError> {
        self.record(nonce, nc, now_unix, None)
    }

    /// [`NonceCounter::check_and_record`] for a nonce whose issue time is known; closes
    /// the eviction gap (see the type documentation).
    pub fn check_and_record_issued(
        &mut self,
        nonce: &str,
        issued_at: u64,
        nc: u32,
        now_unix: u64,
    ) -> Result<(), NonceError> {
        self.record(nonce, nc, now_unix, Some(issued_at))
    }

    fn record(
        &mut self,
        nonce: &str,
        nc: u32,
        now_unix: u64,
        issued_at: Option<u64>,
    ) -> Result<(), NonceError> {
        self.expire(now_unix);
        // Keyed by a hash so memory per entry is fixed whatever the nonce length.
        let key: [u8; 32] = Sha256::digest(nonce.as_bytes()).into();
        if let Some(e) = self.entries.get_mut(&key) {
            if nc <= e.last_nc {
                return Err(NonceError::Replay);
            }
            e.last_nc = nc;
            return Ok(());
        }
        if nc == 0 {
            return Err(NonceError::Replay);
        }
        if let (Some(issued), Some(floor)) = (issued_at, self.evicted_floor) {
            if issued <= floor {
                return Err(NonceError::Stale);
            }
        }
        while self.entries.len() >= self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(e) = self.entries.remove(&old) {
                self.evicted_floor = Some(self.evicted_floor.map_or(e.since, |f| f.max(e.since)));
            }
        }
        self.entries.insert(
            key,
            Entry {
                last_nc: nc,
                since: issued_at.unwrap_or(now_unix),
            },
        );
        self.order.push_back(key);
        Ok(())
    }

    /// Drops entries older than the lifetime, oldest first.
    fn expire(&mut self, now_unix: u64) {
        while let Some(front) = self.order.front() {
            let expired = match self.entries.get(front) {
                Some(e) => now_unix.saturating_sub(e.since) > self.lifetime_secs,
                None => true,
            };
            if !expired {
                break;
            }
            if let Some(k) = self.order.pop_front() {
                self.entries.remove(&k);
            }
        }
    }

    /// Number of nonces currently tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no nonce is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The maximum number of nonces tracked.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_nonce_shape() {
        let f = NonceFactory::new(Secret::new([3; 32]), 300);
        let n = f.issue(1_700_000_000, b"realm").unwrap();
        assert_eq!(n.len(), NONCE_TEXT_LEN);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&n)
            .unwrap();
        assert_eq!(raw.len(), RAW_LEN);
        assert_eq!(&raw[..8], &1_700_000_000u64.to_be_bytes());
        // Independent recomputation of the tag with the documented layout.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[3; 32]).unwrap();
        mac.update(&raw[..24]);
        mac.update(b"realm");
        assert_eq!(&mac.finalize().into_bytes()[..16], &raw[24..]);
    }

    #[test]
    fn expire_keeps_order_and_map_in_sync() {
        let mut c = NonceCounter::new(4, 10);
        for i in 0..4u64 {
            c.check_and_record(&format!("n{i}"), 1, 100 + i).unwrap();
        }
        assert_eq!(c.len(), 4);
        c.expire(112); // n0 (100) and n1 (101) are > 10 s old
        assert_eq!(c.len(), 2);
        assert_eq!(c.order.len(), 2);
    }
}
