//! KMC configuration (the `[kmc]` table of the seccf TOML file).

use std::net::SocketAddr;

use serde::Deserialize;

use crate::http::Limits;

/// Digest algorithm the KMC challenges with on Ub.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum UbAlgorithm {
    /// RFC 3310 AKAv1-MD5 (TS 24.109 default).
    #[default]
    #[serde(rename = "AKAv1-MD5")]
    AkaV1Md5,
    /// RFC 4169 AKAv2-MD5.
    #[serde(rename = "AKAv2-MD5")]
    AkaV2Md5,
}

/// `[kmc]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmcConfig {
    /// Domain part of every B-TID (`base64(RAND)@bsf_domain`), also the default Ub realm.
    pub bsf_domain: String,
    /// Ub Digest realm; defaults to `bsf_domain`.
    #[serde(default)]
    pub realm: Option<String>,
    /// Default Ks lifetime in seconds (a subscriber may override it).
    #[serde(default = "default_key_lifetime")]
    pub key_lifetime_secs: u64,
    /// How long a Ub challenge (one authentication vector) may wait for its answer.
    #[serde(default = "default_challenge_lifetime")]
    pub challenge_lifetime_secs: u64,
    /// How often expired contexts and challenges are deleted.
    #[serde(default = "default_gc_interval")]
    pub gc_interval_secs: u64,
    /// Ub digest algorithm.
    #[serde(default)]
    pub ub_algorithm: UbAlgorithm,
    /// Ub listener.
    pub ub: ListenerConfig,
    /// Zn listener (HTTPS with mutual TLS; required).
    pub zn: ZnListenerConfig,
    /// Admin API listener (REST, bearer token), metrics and health.
    pub admin: AdminConfig,
}

fn default_key_lifetime() -> u64 {
    3600
}
fn default_challenge_lifetime() -> u64 {
    60
}
fn default_gc_interval() -> u64 {
    60
}

/// A listener: address, optional TLS, limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address to bind, e.g. `0.0.0.0:80`.
    pub listen: SocketAddr,
    /// Serve HTTPS instead of HTTP.
    #[serde(default)]
    pub tls: Option<seccf_tls::server::ServerTlsConfig>,
    /// Connection and request limits.
    #[serde(default)]
    pub limits: Limits,
}

/// The Zn listener: TLS with client certificates is mandatory.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZnListenerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Server certificate and the CA that NAF client certificates must chain to.
    pub tls: seccf_tls::server::ServerTlsConfig,
    /// Connection and request limits.
    #[serde(default)]
    pub limits: Limits,
}

/// The admin listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to bind (keep it on loopback or a management network).
    pub listen: SocketAddr,
    /// SHA-256 (hex) of the bearer token that admin requests must present.
    pub token_sha256: String,
    /// Optional TLS.
    #[serde(default)]
    pub tls: Option<seccf_tls::server::ServerTlsConfig>,
    /// Connection and request limits.
    #[serde(default)]
    pub limits: Limits,
}

/// A configuration that parses but cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Explained in the message.
    #[error("invalid kmc configuration: {0}")]
    Invalid(String),
}

impl KmcConfig {
    /// Ub realm in force.
    pub fn realm(&self) -> &str {
        self.realm.as_deref().unwrap_or(&self.bsf_domain)
    }

    /// Checks what serde cannot: value ranges and the Zn mutual-TLS requirement.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.bsf_domain.is_empty()
            || self.bsf_domain.len() > 253
            || !self
                .bsf_domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return bad("kmc.bsf_domain must be a DNS name");
        }
        if self.key_lifetime_secs < 60 || self.key_lifetime_secs > 30 * 24 * 3600 {
            return bad("kmc.key_lifetime_secs must be between 60 and 2592000");
        }
        if self.challenge_lifetime_secs < 5 || self.challenge_lifetime_secs > 3600 {
            return bad("kmc.challenge_lifetime_secs must be between 5 and 3600");
        }
        if self.zn.tls.client_ca_file.is_none() || !self.zn.tls.require_client_cert {
            return bad("kmc.zn.tls must set client_ca_file and require_client_cert = true: Zn releases keys only to authenticated gateways");
        }
        if hex::decode(&self.admin.token_sha256).map(|v| v.len()) != Ok(32) {
            return bad("kmc.admin.token_sha256 must be 64 hex digits (sha256 of the admin token)");
        }
        Ok(())
    }
}
