//! A bounded cache of OCSP answers, keyed by a digest of (leaf, issuer). Sans-IO: the
//! caller passes `now`.

use std::collections::HashMap;
use std::time::Instant;

use super::OcspOutcome;

/// Most certificates whose status is remembered at once.
pub(crate) const MAX_CACHE_ENTRIES: usize = 4096;

#[derive(Debug)]
struct Entry {
    outcome: OcspOutcome,
    expires: Instant,
}

#[derive(Debug)]
pub(crate) struct Cache {
    map: HashMap<[u8; 32], Entry>,
    max: usize,
}

impl Cache {
    pub(crate) fn new(max: usize) -> Cache {
        Cache {
            map: HashMap::new(),
            max,
        }
    }

    pub(crate) fn get(&mut self, key: &[u8; 32], now: Instant) -> Option<OcspOutcome> {
        match self.map.get(key) {
            Some(e) if now < e.expires => Some(e.outcome.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put(
        &mut self,
        key: [u8; 32],
        outcome: OcspOutcome,
        expires: Instant,
        now: Instant,
    ) {
        if expires <= now || self.max == 0 {
            return;
        }
        if self.map.len() >= self.max && !self.map.contains_key(&key) {
            self.map.retain(|_, e| now < e.expires);
            if self.map.len() >= self.max {
                // Still full of live entries: drop the one that would expire first.
                let soonest = self
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| *k);
                if let Some(k) = soonest {
                    self.map.remove(&k);
                }
            }
        }
        self.map.insert(key, Entry { outcome, expires });
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(n: u16) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..2].copy_from_slice(&n.to_be_bytes());
        k
    }

    #[test]
    fn entries_expire() {
        let t0 = Instant::now();
        let mut c = Cache::new(8);
        c.put(key(1), OcspOutcome::Good, t0 + Duration::from_secs(10), t0);
        assert_eq!(
            c.get(&key(1), t0 + Duration::from_secs(9)),
            Some(OcspOutcome::Good)
        );
        assert_eq!(c.get(&key(1), t0 + Duration::from_secs(10)), None);
        assert_eq!(c.len(), 0);
        // Already expired: not stored.
        c.put(key(2), OcspOutcome::Good, t0, t0);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn bounded_and_evicts_expired_then_soonest() {
        let t0 = Instant::now();
        let mut c = Cache::new(3);
        c.put(key(1), OcspOutcome::Good, t0 + Duration::from_secs(5), t0);
        c.put(key(2), OcspOutcome::Good, t0 + Duration::from_secs(50), t0);
        c.put(key(3), OcspOutcome::Good, t0 + Duration::from_secs(30), t0);
        // Full of live entries: key 1 (soonest) goes.
        c.put(key(4), OcspOutcome::Good, t0 + Duration::from_secs(40), t0);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&key(1), t0), None);
        assert!(c.get(&key(2), t0).is_some());
        // Later, key 3 has expired: it is the one cleaned out, not key 2.
        let t1 = t0 + Duration::from_secs(35);
        c.put(key(5), OcspOutcome::Good, t1 + Duration::from_secs(100), t1);
        assert_eq!(c.len(), 3);
        assert!(c.get(&key(2), t1).is_some());
        assert!(c.get(&key(4), t1).is_some());
        assert!(c.get(&key(5), t1).is_some());
        for n in 0..1000 {
            c.put(
                key(100 + n),
                OcspOutcome::Good,
                t1 + Duration::from_secs(1000),
                t1,
            );
        }
        assert_eq!(c.len(), 3);
        let mut off = Cache::new(0);
        off.put(key(1), OcspOutcome::Good, t1 + Duration::from_secs(1), t1);
        assert_eq!(off.get(&key(1), t1), None);
    }
}
