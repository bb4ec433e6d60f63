//! Observability: Prometheus metrics and the audit trail.
//!
//! Audit events go to the `seccf::audit` tracing target (the binary can route that
//! target to an append-only file). Identities in audit events are keyed hashes
//! (HMAC-SHA-256 under a deployment key, truncated), so the log can correlate events of
//! one subscriber without holding IMPIs or B-TIDs; secrets never appear.

use hmac::{Hmac, Mac};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use seccf_secret::Secret;
use sha2::Sha256;

type Labels = Vec<(String, String)>;

/// KMC counters.
pub struct Metrics {
    registry: Registry,
    ub: Family<Labels, Counter>,
    zn: Family<Labels, Counter>,
    admin: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the KMC's metric families.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("seccf_kmc");
        let ub = Family::<Labels, Counter>::default();
        let zn = Family::<Labels, Counter>::default();
        let admin = Family::<Labels, Counter>::default();
        registry.register(
            "ub_requests",
            "Ub (bootstrapping) requests by outcome",
            ub.clone(),
        );
        registry.register(
            "zn_requests",
            "Zn (key retrieval) requests by outcome",
            zn.clone(),
        );
        registry.register(
            "admin_requests",
            "Admin API requests by outcome",
            admin.clone(),
        );
        Metrics {
            registry,
            ub,
            zn,
            admin,
        }
    }

    /// Counts one Ub request with its outcome label.
    pub fn ub(&self, outcome: &str) {
        self.ub
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
    }

    /// Counts one Zn request with its outcome label.
    pub fn zn(&self, outcome: &str) {
        self.zn
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
    }

    /// Counts one admin request with its outcome label.
    pub fn admin(&self, outcome: &str) {
        self.admin
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Keyed hashing of identities for the audit trail.
pub struct Audit {
    key: Secret<32>,
}

impl Audit {
    /// `key` should be stable for a deployment (derived from the master key).
    pub fn new(key: Secret<32>) -> Self {
        Audit { key }
    }

    /// 16 hex digits of HMAC-SHA-256(key, value).
    pub fn hash(&self, value: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.key.expose()) else {
            return String::from("-");
        };
        mac.update(value.as_bytes());
        let out = mac.finalize().into_bytes();
        hex::encode(&out[..8])
    }
}
