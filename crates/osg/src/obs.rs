//! Prometheus metrics and the audit trail of the gateway.
//!
//! Audit lines go to the `seccf::audit` tracing target, one per authentication
//! decision. Identities (B-TIDs, IMPIs, certificate names, user names) appear only as
//! keyed hashes (HMAC-SHA-256 under the deployment's audit key, 16 hex digits), so the
//! trail correlates the events of one subscriber without holding identities; keys and
//! passwords never appear.

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use seccf_secret::Secret;
use sha2::Sha256;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// The gateway's metric families.
pub struct Metrics {
    registry: Registry,
    connections: Family<Labels, Counter>,
    open: Family<Labels, Gauge>,
    handshakes: Family<Labels, Counter>,
    auth: Family<Labels, Counter>,
    upstream_latency: Family<Labels, Histogram>,
    upstream_errors: Family<Labels, Counter>,
    route_requests: Family<Labels, Counter>,
    route_latency: Family<Labels, Histogram>,
    staple_refreshes: Family<Labels, Counter>,
    key_cache_hits: Gauge,
    key_cache_fetches: Gauge,
    key_cache_entries: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Metrics {
    /// A registry with every family, prefix `seccf_osg`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("seccf_osg");
        let connections = Family::<Labels, Counter>::default();
        let open = Family::<Labels, Gauge>::default();
        let handshakes = Family::<Labels, Counter>::default();
        let auth = Family::<Labels, Counter>::default();
        let upstream_latency = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let upstream_errors = Family::<Labels, Counter>::default();
        let route_requests = Family::<Labels, Counter>::default();
        let route_latency = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let staple_refreshes = Family::<Labels, Counter>::default();
        let key_cache_hits = Gauge::default();
        let key_cache_fetches = Gauge::default();
        let key_cache_entries = Gauge::default();
        registry.register(
            "connections",
            "TCP connections by listener and result (accepted, over_limit)",
            connections.clone(),
        );
        registry.register("open_connections", "Connections being served", open.clone());
        registry.register(
            "tls_handshakes",
            "TLS handshakes by listener and result (ok, failed, timeout)",
            handshakes.clone(),
        );
        registry.register(
            "auth_decisions",
            "Authentication decisions by listener, method and result",
            auth.clone(),
        );
        registry.register(
            "upstream_latency_seconds",
            "Time from sending a request upstream to its response head",
            upstream_latency.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream failures by listener and kind (connect, timeout, protocol)",
            upstream_errors.clone(),
        );
        registry.register(
            "route_requests",
            "HTTPS requests by listener, route and result (forwarded, or why not)",
            route_requests.clone(),
        );
        registry.register(
            "route_upstream_latency_seconds",
            "Time from sending a request upstream to its response head, by route",
            route_latency.clone(),
        );
        registry.register(
            "ocsp_staple_refreshes",
            "OCSP staple refreshes of the listeners' own certificates by result (good, revoked, unknown, unavailable)",
            staple_refreshes.clone(),
        );
        registry.register(
            "key_cache_hits",
            "Key lookups answered from the cache (since start)",
            key_cache_hits.clone(),
        );
        registry.register(
            "key_cache_fetches",
            "Zn key fetches started (since start)",
            key_cache_fetches.clone(),
        );
        registry.register(
            "key_cache_entries",
            "Entries in the key cache",
            key_cache_entries.clone(),
        );
        Metrics {
            registry,
            connections,
            open,
            handshakes,
            auth,
            upstream_latency,
            upstream_errors,
            route_requests,
            route_latency,
            staple_refreshes,
            key_cache_hits,
            key_cache_fetches,
            key_cache_entries,
        }
    }

    /// One accepted or refused TCP connection.
    pub fn connection(&self, listener: &str, result: &str) {
        self.connections
            .get_or_create(&labels(&[("listener", listener), ("result", result)]))
            .inc();
    }

    /// Tracks an open connection until the guard is dropped.
    pub fn open_guard(&self, listener: &str) -> OpenGuard {
        let g = self
            .open
            .get_or_create(&labels(&[("listener", listener)]))
            .clone();
        g.inc();
        OpenGuard(g)
    }

    /// One TLS handshake outcome.
    pub fn handshake(&self, listener: &str, result: &str) {
        self.handshakes
            .get_or_create(&labels(&[("listener", listener), ("result", result)]))
            .inc();
    }

    /// One authentication decision.
    pub fn auth(&self, listener: &str, method: &str, result: &str) {
        self.auth
            .get_or_create(&labels(&[
                ("listener", listener),
                ("method", method),
                ("result", result),
            ]))
            .inc();
    }

    /// Upstream response-head latency.
    pub fn upstream_latency(&self, listener: &str, secs: f64) {
        self.upstream_latency
            .get_or_create(&labels(&[("listener", listener)]))
            .observe(secs);
    }

    /// One upstream failure.
    pub fn upstream_error(&self, listener: &str, kind: &str) {
        self.upstream_errors
            .get_or_create(&labels(&[("listener", listener), ("kind", kind)]))
            .inc();
    }

    /// One HTTPS request's fate on a route (`-` when no route was selected).
    pub fn route_request(&self, listener: &str, route: &str, result: &str) {
        self.route_requests
            .get_or_create(&labels(&[
                ("listener", listener),
                ("route", route),
                ("result", result),
            ]))
            .inc();
    }

    /// Upstream response-head latency of one route.
    pub fn route_latency(&self, listener: &str, route: &str, secs: f64) {
        self.route_latency
            .get_or_create(&labels(&[("listener", listener), ("route", route)]))
            .observe(secs);
    }

    /// One OCSP staple refresh.
    pub fn staple_refresh(&self, listener: &str, result: &str) {
        self.staple_refreshes
            .get_or_create(&labels(&[("listener", listener), ("result", result)]))
            .inc();
    }

    /// Updates the key cache gauges (called before rendering).
    pub fn key_cache(&self, stats: crate::keys::CacheStats) {
        self.key_cache_hits
            .set(i64::try_from(stats.hits).unwrap_or(i64::MAX));
        self.key_cache_fetches
            .set(i64::try_from(stats.fetches).unwrap_or(i64::MAX));
        self.key_cache_entries
            .set(i64::try_from(stats.entries).unwrap_or(i64::MAX));
    }

    /// OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Decrements the open-connections gauge on drop.
pub struct OpenGuard(Gauge);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Keyed identity hashing and audit lines.
pub struct Audit {
    key: Secret<32>,
}

impl Audit {
    /// `key` should be stable for a deployment.
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
        hex::encode(out.get(..8).unwrap_or_default())
    }

    /// One authentication decision.
    pub fn decision(&self, d: &Decision<'_>) {
        let identity = d
            .identity
            .map(|i| self.hash(i))
            .unwrap_or_else(|| "-".into());
        tracing::info!(
            target: "seccf::audit",
            event = "osg_auth",
            listener = d.listener,
            route = d.route.unwrap_or("-"),
            method = d.method,
            outcome = d.outcome,
            identity = %identity,
            peer = %d.peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "-".into()),
            reason = d.reason,
        );
    }
}

/// What [`Audit::decision`] records.
pub struct Decision<'a> {
    /// Listener name.
    pub listener: &'a str,
    /// Route name, when the decision concerns a request on a route (`None`: a
    /// connection-level decision, logged as `-`).
    pub route: Option<&'a str>,
    /// Method label (`psk-tls`, `digest`, `mtls`).
    pub method: &'a str,
    /// `allow` or `deny`.
    pub outcome: &'a str,
    /// The identity involved (hashed before logging), if one was claimed.
    pub identity: Option<&'a str>,
    /// Remote address (unknown inside the PSK callback).
    pub peer: Option<SocketAddr>,
    /// Short machine-readable reason (`ok`, `bad_credentials`, `unknown_btid`, …).
    pub reason: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_labels() {
        let m = Metrics::new();
        m.handshake("l1", "ok");
        m.auth("l1", "digest", "ok");
        m.upstream_latency("l1", 0.002);
        m.route_request("l1", "api", "forwarded");
        m.route_latency("l1", "api", 0.001);
        m.staple_refresh("l1", "good");
        {
            let _g = m.open_guard("l1");
            assert!(m
                .render()
                .contains("seccf_osg_open_connections{listener=\"l1\"} 1"));
        }
        let text = m.render();
        assert!(
            text.contains("seccf_osg_tls_handshakes_total{listener=\"l1\",result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "seccf_osg_auth_decisions_total{listener=\"l1\",method=\"digest\",result=\"ok\"} 1"
        ));
        assert!(text.contains("seccf_osg_upstream_latency_seconds_count{listener=\"l1\"} 1"));
        assert!(text.contains("seccf_osg_open_connections{listener=\"l1\"} 0"));
        assert!(text.contains(
            "seccf_osg_route_requests_total{listener=\"l1\",route=\"api\",result=\"forwarded\"} 1"
        ));
        assert!(text.contains(
            "seccf_osg_route_upstream_latency_seconds_count{listener=\"l1\",route=\"api\"} 1"
        ));
        assert!(text
            .contains("seccf_osg_ocsp_staple_refreshes_total{listener=\"l1\",result=\"good\"} 1"));
    }

    #[test]
    fn audit_hash_is_keyed() {
        let a = Audit::new(Secret::new([1; 32]));
        let b = Audit::new(Secret::new([2; 32]));
        assert_eq!(a.hash("x").len(), 16);
        assert_eq!(a.hash("x"), a.hash("x"));
        assert_ne!(a.hash("x"), b.hash("x"));
        assert_ne!(a.hash("x"), a.hash("y"));
    }
}
