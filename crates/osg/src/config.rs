//! Gateway configuration: the `[osg]` table of a seccf TOML file.
//!
//! Parsing is pure ([`OsgConfig::from_toml_str`]); files named in the configuration are
//! read by [`crate::Osg::new`]. Every rule that can be checked without reading files is
//! checked by [`OsgConfig::validate`] before any socket is bound. The full reference is
//! in the crate's README.md.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use seccf_gba::naf::{NafId, UaSecurityProtocolId};
use seccf_tls::client::ClientTlsConfig;
use serde::Deserialize;

use crate::ua::UaOrg;

/// Longest listener or route name.
pub const MAX_NAME_LEN: usize = 64;

/// Default period of OCSP staple refreshes (`tls.ocsp_stapling_refresh_secs`).
pub const DEFAULT_STAPLE_REFRESH_SECS: u64 = 3600;

/// Configuration errors (the field and what is wrong with it).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// TOML syntax or a field of the wrong type / unknown field.
    #[error("configuration syntax: {0}")]
    Syntax(String),
    /// A value is out of its allowed range or inconsistent with another.
    #[error("configuration: {0}")]
    Invalid(String),
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// The whole file: only the `[osg]` table is read; other tables (`[kmc]` …) belong
/// to other components and are ignored here.
#[derive(Deserialize)]
struct FileRoot {
    osg: OsgConfig,
}

/// The `[osg]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsgConfig {
    /// The NAF FQDN terminals use; Ks_NAF is derived for it. Also the Digest realm
    /// suffix and the PROXY v2 authority.
    pub fqdn: String,
    /// The Zn client.
    pub kmc: KmcLink,
    /// Key cache sizing.
    #[serde(default)]
    pub key_cache: KeyCacheConfig,
    /// Identity assertions; absent = an ephemeral key and issuer `https://<fqdn>`.
    #[serde(default)]
    pub assertion: AssertionConfig,
    /// Metrics, health and JWKS listener; absent = none.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// File holding 64 hex digits: the HMAC key of audit identity hashes. Absent = a
    /// random key per process (hashes then do not correlate across restarts).
    #[serde(default)]
    pub audit_key_file: Option<PathBuf>,
    /// Time allowed for in-flight work to finish at shutdown.
    #[serde(default = "default_drain")]
    pub shutdown_grace_secs: u64,
    /// The listeners (`[[osg.listener]]`).
    #[serde(rename = "listener", default)]
    pub listeners: Vec<ListenerConfig>,
}

fn default_drain() -> u64 {
    20
}

/// `[osg.kmc]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmcLink {
    /// `https://host:port` (or `host:port`) of the KMC's Zn listener.
    pub url: String,
    /// CA of the KMC and this gateway's client certificate (registered at the KMC).
    pub tls: ClientTlsConfig,
    /// Parallel Zn connections (each carries one request at a time).
    #[serde(default = "default_zn_conns")]
    pub connections: usize,
}

fn default_zn_conns() -> usize {
    4
}

/// `[osg.key_cache]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyCacheConfig {
    /// Most (B-TID, NAF_Id) entries kept.
    pub max_entries: usize,
    /// How long "unknown B-TID" answers are remembered.
    pub negative_ttl_secs: u64,
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        KeyCacheConfig {
            max_entries: 100_000,
            negative_ttl_secs: 5,
        }
    }
}

/// `[osg.assertion]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionConfig {
    /// EC P-256 private key, PEM. Absent = generated at start (development only:
    /// replicas and restarts then publish different keys).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// `iss`; default `https://<fqdn>`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Lifetime of one assertion; default 60 s.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// `[osg.admin]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Plain-HTTP listener for `/metrics`, `/healthz`, `/.well-known/jwks.json`.
    pub listen: SocketAddr,
}

/// What a listener carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// HTTPS reverse proxy.
    Https,
    /// TLS tunnel to a TCP upstream.
    Tcp,
}

/// Authentication methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// PSK-TLS with GBA keys.
    Psk,
    /// Server-certificate TLS + HTTP Digest (GBA, and plain users from a file).
    Digest,
    /// Mutual certificate TLS.
    Mtls,
}

impl AuthMethod {
    /// Label used in headers, metrics, logs and the `amr` claim.
    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::Psk => "psk-tls",
            AuthMethod::Digest => "digest",
            AuthMethod::Mtls => "mtls",
        }
    }
}

/// Where OCSP requests go: `tls.ocsp` (checking client certificates) and
/// `tls.ocsp_stapling` (the gateway's own certificate).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OcspSetting {
    /// No OCSP.
    #[default]
    Off,
    /// The responder named in the certificate's AIA extension.
    Aia,
    /// A fixed responder URL.
    Responder(String),
}

impl<'de> Deserialize<'de> for OcspSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "off" => OcspSetting::Off,
            "aia" => OcspSetting::Aia,
            url if url.starts_with("http://") => OcspSetting::Responder(url.to_string()),
            _ => {
                return Err(serde::de::Error::custom(
                    "ocsp must be \"off\", \"aia\" or an http:// responder URL",
                ))
            }
        })
    }
}

/// `tls = { … }` of a listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// Server certificate chain (PEM). Required for `digest` and `mtls`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Its private key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// CAs client certificates must chain to (`mtls`).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// CRLs (PEM) checked for client certificates; re-read on reload.
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    /// OCSP for client certificates.
    #[serde(default)]
    pub ocsp: OcspSetting,
    /// Refuse clients whose revocation status cannot be established.
    #[serde(default)]
    pub revocation_hard_fail: bool,
    /// Offer TLS 1.3 external PSK as well as TLS 1.2 PSK suites (default true).
    #[serde(default = "yes")]
    pub psk_tls13: bool,
    /// Also accept TLS 1.3 `psk_ke` (PSK without ECDHE: no forward secrecy), which some
    /// clients (gnutls priority `+PSK`) insist on. Default false.
    #[serde(default)]
    #[serde(rename = "dangerous_psk_ke_without_dhe")]
    pub psk_ke_without_dhe: bool,
    /// OCSP stapling (RFC 6066 `status_request`) of this listener's own certificate
    /// (`cert_file`): `"off"` (default), `"aia"` (the responder named in the
    /// certificate) or an `http://` responder URL.
    #[serde(default)]
    pub ocsp_stapling: OcspSetting,
    /// CAs trusted to sign (directly or through a delegated responder) the OCSP answers
    /// for `cert_file`; its issuer is taken from `cert_file`'s chain or from here.
    /// Default: `client_ca_file`. One of the two is needed when `ocsp_stapling` is on.
    #[serde(default)]
    pub ocsp_stapling_ca_file: Option<PathBuf>,
    /// Seconds between staple refreshes (a failed refresh is retried after at most
    /// 60 s). Keep it well below the responder's nextUpdate interval. Default 3600.
    #[serde(default = "default_staple_refresh")]
    pub ocsp_stapling_refresh_secs: u64,
}

fn default_staple_refresh() -> u64 {
    DEFAULT_STAPLE_REFRESH_SECS
}

impl ListenerTls {
    /// The CA file that verifies the OCSP answers for the own certificate.
    pub fn stapling_ca_file(&self) -> Option<&std::path::Path> {
        self.ocsp_stapling_ca_file
            .as_deref()
            .or(self.client_ca_file.as_deref())
    }
}

fn yes() -> bool {
    true
}

impl Default for ListenerTls {
    fn default() -> Self {
        ListenerTls {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            crl_files: Vec::new(),
            ocsp: OcspSetting::Off,
            revocation_hard_fail: false,
            psk_tls13: true,
            psk_ke_without_dhe: false,
            ocsp_stapling: OcspSetting::Off,
            ocsp_stapling_ca_file: None,
            ocsp_stapling_refresh_secs: DEFAULT_STAPLE_REFRESH_SECS,
        }
    }
}

/// Per-listener limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request head (HTTP/1.1) or header list (HTTP/2).
    pub max_header_bytes: usize,
    /// Largest request body (and auth-int response body).
    pub max_body_bytes: usize,
    /// Time for a request head to arrive.
    pub header_read_timeout_secs: u64,
    /// Time for a request body to arrive.
    pub body_read_timeout_secs: u64,
    /// Time for the TLS handshake (including a Zn round trip for PSK).
    pub tls_handshake_timeout_secs: u64,
    /// An idle keep-alive connection or tunnel is closed after this long.
    pub idle_timeout_secs: u64,
    /// Time for the upstream to connect and send its response head.
    pub upstream_timeout_secs: u64,
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            tls_handshake_timeout_secs: 10,
            idle_timeout_secs: 60,
            upstream_timeout_secs: 30,
            max_connections: 4096,
        }
    }
}

/// `[[osg.listener]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Unique name (metrics label, key of [`crate::OsgListeners`]).
    pub name: String,
    /// Address to bind.
    pub listen: SocketAddr,
    /// `https` or `tcp`.
    pub kind: ListenerKind,
    /// Accepted methods.
    pub auth: Vec<AuthMethod>,
    /// Which Ua security protocol ids (see [`crate::ua`]).
    #[serde(default)]
    pub ua_org: UaOrg,
    /// TLS material.
    #[serde(default)]
    pub tls: ListenerTls,
    /// Plain RFC 7616 users (see [`crate::users`]).
    #[serde(default)]
    pub digest_users_file: Option<PathBuf>,
    /// Realm of those users; default `seccf@<fqdn>`.
    #[serde(default)]
    pub digest_users_realm: Option<String>,
    /// How long a Digest nonce is good for (then `stale=true`).
    #[serde(default = "default_nonce_lifetime")]
    pub nonce_lifetime_secs: u64,
    /// `http://host:port` (https kind) or `host:port` (tcp kind). Required, except on
    /// an https listener with routes, where it is the default `upstream` of its routes.
    /// Empty = not given (a plain string rather than an `Option` so that code written
    /// before routes keeps compiling); read it with [`ListenerConfig::upstream`].
    #[serde(default)]
    pub upstream: String,
    /// tcp kind: send a PROXY protocol v2 header first.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Identities allowed; `"*"` = any authenticated one.
    #[serde(default = "any")]
    pub allow: Vec<String>,
    /// USS flags that must all be present (GBA methods only; certificate and plain
    /// Digest users have no USS and are refused when this is non-empty).
    #[serde(default)]
    pub required_flags: Vec<u32>,
    /// Limits.
    #[serde(default)]
    pub limits: Limits,
    /// Routes of an https listener (`[[osg.listener.route]]`). None: the listener's
    /// own `upstream`, `allow`, `required_flags` and limits form one implicit route
    /// for every request (see [`crate::routes`]).
    #[serde(rename = "route", default)]
    pub routes: Vec<RouteConfig>,
}

/// `[[osg.listener.route]]`: where requests whose path (and host) match go, and who
/// may send them. Unset optional fields take the listener's value; a value set here
/// replaces it (it is not combined with it).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Metrics and audit label: 1..=64 of `[A-Za-z0-9_-]`, unique on the listener.
    pub name: String,
    /// Requests whose path is this or below it (segment-wise: `/api` matches `/api`
    /// and `/api/x`, not `/apix`; a prefix ending in `/` matches anything under it).
    /// Must start with `/`, in canonical form (no `.`/`..` segments, no `//`, no `%`).
    pub path_prefix: String,
    /// Only requests for this authority (`:authority` or `Host`), compared without
    /// case; without a port it matches any port. Absent: any host.
    #[serde(default)]
    pub host: Option<String>,
    /// `http://host:port`; default the listener's `upstream`.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Methods accepted on this route, a subset of the listener's `auth`; default all
    /// of them. A connection authenticated otherwise gets a Digest challenge (401)
    /// when `digest` is listed, else 403.
    #[serde(default)]
    pub auth: Option<Vec<AuthMethod>>,
    /// Identities allowed; default the listener's `allow`.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// USS flags that must all be present; default the listener's `required_flags`.
    #[serde(default)]
    pub required_flags: Option<Vec<u32>>,
    /// Send the identity headers (`X-3GPP-Asserted-Identity`, `X-Seccf-Auth-Method`,
    /// `X-Seccf-Assertion`) upstream. Default true. With false, client-supplied
    /// identity headers are still stripped but none are added (the `Forwarded` /
    /// `X-Forwarded-*` client address headers still are).
    #[serde(default = "yes")]
    pub forward_identity: bool,
    /// Time for the upstream to connect and answer; default `limits.upstream_timeout_secs`.
    #[serde(default)]
    pub upstream_timeout_secs: Option<u64>,
    /// Largest request body; default `limits.max_body_bytes`.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

fn default_nonce_lifetime() -> u64 {
    300
}

fn any() -> Vec<String> {
    vec!["*".to_string()]
}

impl ListenerConfig {
    /// True when `m` is accepted.
    pub fn accepts(&self, m: AuthMethod) -> bool {
        self.auth.contains(&m)
    }

    /// The listener's `upstream`, `None` when not given.
    pub fn upstream(&self) -> Option<&str> {
        Some(self.upstream.as_str()).filter(|u| !u.is_empty())
    }

    /// True when the listener has `[[osg.listener.route]]` entries.
    pub fn has_routes(&self) -> bool {
        !self.routes.is_empty()
    }
}

/// True for 1..=[`MAX_NAME_LEN`] characters of `[A-Za-z0-9_-]`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl OsgConfig {
    /// Parses a TOML document with an `[osg]` table, then [`OsgConfig::validate`]s it.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let root: FileRoot =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.message().to_string()))?;
        root.osg.validate()?;
        Ok(root.osg)
    }

    /// Reads and parses a file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Checks everything that needs no file access.
    pub fn validate(&self) -> Result<(), ConfigError> {
        NafId::new(&self.fqdn, UaSecurityProtocolId::HTTP_DIGEST)
            .map_err(|e| invalid(format!("osg.fqdn: {e}")))?;
        if self.kmc.connections == 0 || self.kmc.connections > 64 {
            return Err(invalid("osg.kmc.connections must be 1..=64"));
        }
        if self.key_cache.max_entries == 0 {
            return Err(invalid("osg.key_cache.max_entries must be at least 1"));
        }
        if self.assertion.ttl_secs == Some(0) {
            return Err(invalid("osg.assertion.ttl_secs must be at least 1"));
        }
        if self.listeners.is_empty() {
            return Err(invalid("at least one [[osg.listener]] is needed"));
        }
        let mut names = HashSet::new();
        for l in &self.listeners {
            let at = format!("listener {:?}", l.name);
            if !is_valid_name(&l.name) {
                return Err(invalid(format!(
                    "{at}: name must be 1..={MAX_NAME_LEN} of [A-Za-z0-9_-]"
                )));
            }
            if !names.insert(l.name.as_str()) {
                return Err(invalid(format!("{at}: duplicate name")));
            }
            validate_listener(l, &at)?;
        }
        Ok(())
    }
}

fn validate_listener(l: &ListenerConfig, at: &str) -> Result<(), ConfigError> {
    use AuthMethod::*;
    if l.auth.is_empty() {
        return Err(invalid(format!("{at}: auth must name at least one method")));
    }
    let set: HashSet<AuthMethod> = l.auth.iter().copied().collect();
    if set.len() != l.auth.len() {
        return Err(invalid(format!("{at}: auth lists a method twice")));
    }
    if set.contains(&Psk) && set.contains(&Mtls) {
        return Err(invalid(format!(
            "{at}: psk and mtls cannot share a listener (use two listeners)"
        )));
    }
    if l.kind == ListenerKind::Tcp && set.contains(&Digest) {
        return Err(invalid(format!("{at}: digest needs an https listener")));
    }
    let has_cert = l.tls.cert_file.is_some() && l.tls.key_file.is_some();
    if l.tls.cert_file.is_some() != l.tls.key_file.is_some() {
        return Err(invalid(format!(
            "{at}: tls.cert_file and tls.key_file go together"
        )));
    }
    if (set.contains(&Digest) || set.contains(&Mtls)) && !has_cert {
        return Err(invalid(format!(
            "{at}: digest and mtls need tls.cert_file and tls.key_file"
        )));
    }
    if set.contains(&Mtls) && l.tls.client_ca_file.is_none() {
        return Err(invalid(format!("{at}: mtls needs tls.client_ca_file")));
    }
    if l.tls.ocsp_stapling != OcspSetting::Off {
        if !has_cert {
            return Err(invalid(format!(
                "{at}: tls.ocsp_stapling needs tls.cert_file and tls.key_file"
            )));
        }
        if l.tls.stapling_ca_file().is_none() {
            return Err(invalid(format!(
                "{at}: tls.ocsp_stapling needs tls.ocsp_stapling_ca_file (the issuer of cert_file)"
            )));
        }
        if l.tls.ocsp_stapling_refresh_secs == 0 {
            return Err(invalid(format!(
                "{at}: tls.ocsp_stapling_refresh_secs must be at least 1"
            )));
        }
    } else if l.tls.ocsp_stapling_ca_file.is_some() {
        return Err(invalid(format!(
            "{at}: tls.ocsp_stapling_ca_file without tls.ocsp_stapling"
        )));
    }
    if !set.contains(&Mtls)
        && (!l.tls.crl_files.is_empty()
            || l.tls.ocsp != OcspSetting::Off
            || l.tls.client_ca_file.is_some())
    {
        return Err(invalid(format!(
            "{at}: client_ca_file, crl_files and ocsp only apply to mtls listeners"
        )));
    }
    if l.digest_users_file.is_some() && !set.contains(&Digest) {
        return Err(invalid(format!(
            "{at}: digest_users_file needs auth = [\"digest\"]"
        )));
    }
    if let Some(r) = &l.digest_users_realm {
        if r.is_empty()
            || r.len() > 256
            || r.contains(['"', '\\', ':'])
            || r.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "{at}: digest_users_realm is not a usable realm"
            )));
        }
        if r.starts_with(crate::ua::GBA_REALM_PREFIX.trim_end_matches('@')) {
            return Err(invalid(format!(
                "{at}: digest_users_realm must not look like a GBA realm"
            )));
        }
    }
    if l.nonce_lifetime_secs == 0 {
        return Err(invalid(format!(
            "{at}: nonce_lifetime_secs must be at least 1"
        )));
    }
    if l.allow.is_empty() {
        return Err(invalid(format!(
            "{at}: allow is empty (nobody could connect); use [\"*\"] for any identity"
        )));
    }
    match l.kind {
        ListenerKind::Https => {
            match (l.upstream(), l.has_routes()) {
                (Some(u), _) => {
                    parse_http_upstream(u).map_err(|e| invalid(format!("{at}: upstream {e}")))?;
                }
                (None, false) => {
                    return Err(invalid(format!(
                        "{at}: upstream is required (or [[osg.listener.route]] entries)"
                    )))
                }
                (None, true) => {}
            }
            if l.proxy_protocol {
                return Err(invalid(format!(
                    "{at}: proxy_protocol is for tcp listeners"
                )));
            }
        }
        ListenerKind::Tcp => {
            let u = l
                .upstream()
                .ok_or_else(|| invalid(format!("{at}: upstream is required")))?;
            parse_host_port(u).map_err(|e| invalid(format!("{at}: upstream {e}")))?;
            if l.has_routes() {
                return Err(invalid(format!("{at}: routes are for https listeners")));
            }
        }
    }
    let lim = &l.limits;
    if lim.max_header_bytes < 1024
        || lim.max_connections == 0
        || lim.header_read_timeout_secs == 0
        || lim.body_read_timeout_secs == 0
        || lim.tls_handshake_timeout_secs == 0
        || lim.idle_timeout_secs == 0
        || lim.upstream_timeout_secs == 0
    {
        return Err(invalid(format!(
            "{at}: limits must be positive (max_header_bytes at least 1024)"
        )));
    }
    if l.kind == ListenerKind::Https {
        // Building the table checks every route rule (names, prefixes, hosts, auth
        // subsets, duplicates, upstreams, limits).
        crate::routes::RouteTable::from_listener(l).map_err(|e| invalid(format!("{at}: {e}")))?;
    }
    Ok(())
}

/// Splits `host:port` (IPv6 in brackets).
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?} has no valid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(format!("{s:?} is not host:port"));
    }
    Ok((host.to_string(), port))
}

/// Parses `http://host:port[/]` into its authority (`host:port`). Only plain HTTP
/// upstreams are supported: the gateway and its resources share a trusted network.
pub fn parse_http_upstream(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .ok_or_else(|| format!("{s:?} must start with http://"))?;
    let authority = rest.trim_end_matches('/');
    if authority.contains('/') {
        return Err(format!("{s:?}: a path prefix is not supported"));
    }
    parse_host_port(authority)?;
    Ok(authority.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(listeners: &str) -> String {
        format!(
            r#"
[kmc]
ignored = true
[osg]
fqdn = "naf.example.org"
[osg.kmc]
url = "https://127.0.0.1:7482"
tls = {{ ca_file = "/ca.pem", client_cert_file = "/c.pem", client_key_file = "/c.key" }}
{listeners}
"#
        )
    }

    const PSK: &str = r#"
[[osg.listener]]
name = "psk-https"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk"]
upstream = "http://127.0.0.1:9000"
"#;

    #[test]
    fn minimal_psk_listener() {
        let c = OsgConfig::from_toml_str(&base(PSK)).unwrap();
        let l = &c.listeners[0];
        assert_eq!(l.kind, ListenerKind::Https);
        assert_eq!(l.ua_org, UaOrg::ThreeGpp);
        assert_eq!(l.allow, vec!["*"]);
        assert!(l.tls.psk_tls13);
        assert_eq!(c.key_cache.negative_ttl_secs, 5);
    }

    #[test]
    fn full_example_parses() {
        let text = base(
            r#"
[osg.key_cache]
max_entries = 1000
negative_ttl_secs = 3
[osg.assertion]
key_file = "/a.pem"
issuer = "https://naf.example.org"
ttl_secs = 30
[osg.admin]
listen = "127.0.0.1:7490"
[[osg.listener]]
name = "digest"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk", "digest"]
ua_org = "oma"
tls = { cert_file = "/s.pem", key_file = "/s.key" }
digest_users_file = "/users"
upstream = "http://127.0.0.1:9000/"
allow = ["sip:alice@example.org"]
required_flags = [1, 2]
limits = { max_header_bytes = 8192, idle_timeout_secs = 5 }
[[osg.listener]]
name = "mtls-tcp"
listen = "127.0.0.1:0"
kind = "tcp"
auth = ["mtls"]
tls = { cert_file = "/s.pem", key_file = "/s.key", client_ca_file = "/ca.pem", crl_files = ["/crl.pem"], ocsp = "http://127.0.0.1:8888", revocation_hard_fail = true }
upstream = "127.0.0.1:9001"
proxy_protocol = true
"#,
        );
        let c = OsgConfig::from_toml_str(&text).unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.listeners[0].ua_org, UaOrg::Oma);
        assert_eq!(c.listeners[0].limits.max_header_bytes, 8192);
        assert_eq!(c.listeners[0].limits.max_connections, 4096);
        assert_eq!(
            c.listeners[1].tls.ocsp,
            OcspSetting::Responder("http://127.0.0.1:8888".into())
        );
    }

    #[test]
    fn refusals() {
        let cases: &[(&str, &str)] = &[
            ("auth = [\"psk\"]", "auth = []"),
            ("auth = [\"psk\"]", "auth = [\"psk\", \"psk\"]"),
            ("auth = [\"psk\"]", "auth = [\"digest\"]"),
            ("auth = [\"psk\"]", "auth = [\"psk\", \"mtls\"]"),
            (
                "kind = \"https\"",
                "kind = \"tcp\"\nproxy_protocol = true\nauth2 = 1",
            ),
            ("http://127.0.0.1:9000", "https://127.0.0.1:9000"),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000/prefix"),
            ("name = \"psk-https\"", "name = \"bad name\""),
            ("auth = [\"psk\"]", "auth = [\"psk\"]\nallow = []"),
            (
                "auth = [\"psk\"]",
                "auth = [\"psk\"]\ndigest_users_file = \"/u\"",
            ),
            (
                "auth = [\"psk\"]",
                "auth = [\"psk\"]\nlimits = { max_connections = 0 }",
            ),
            ("auth = [\"psk\"]", "auth = [\"psk\"]\nunknown_field = 1"),
        ];
        for (from, to) in cases {
            let text = base(&PSK.replace(from, to));
            assert!(OsgConfig::from_toml_str(&text).is_err(), "{to}");
        }
        // Two listeners with one name.
        let text = base(&format!("{PSK}{PSK}"));
        let e = OsgConfig::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("duplicate"), "{e}");
        // Bad FQDN.
        let text = base(PSK).replace("naf.example.org", "naf example");
        assert!(OsgConfig::from_toml_str(&text).is_err());
        // tcp + digest.
        let tcp = PSK
            .replace("kind = \"https\"", "kind = \"tcp\"")
            .replace("http://127.0.0.1:9000", "127.0.0.1:9001")
            .replace(
                "[\"psk\"]",
                "[\"digest\"]\ntls = { cert_file = \"/a\", key_file = \"/b\" }",
            );
        assert!(OsgConfig::from_toml_str(&base(&tcp)).is_err());
    }

    const ROUTED: &str = r#"
[[osg.listener]]
name = "gw"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk", "digest"]
tls = { cert_file = "/s.pem", key_file = "/s.key" }
[[osg.listener.route]]
name = "a"
path_prefix = "/a"
upstream = "http://127.0.0.1:9001"
auth = ["psk"]
[[osg.listener.route]]
name = "b"
host = "b.example.org"
path_prefix = "/"
upstream = "http://127.0.0.1:9002"
forward_identity = false
max_body_bytes = 10
"#;

    #[test]
    fn routes_parse_and_are_checked() {
        let c = OsgConfig::from_toml_str(&base(ROUTED)).unwrap();
        let l = &c.listeners[0];
        assert!(l.has_routes() && l.upstream().is_none());
        assert_eq!(l.routes.len(), 2);
        assert_eq!(l.routes[0].auth, Some(vec![AuthMethod::Psk]));
        assert!(l.routes[0].forward_identity);
        assert!(!l.routes[1].forward_identity);
        assert_eq!(l.routes[1].host.as_deref(), Some("b.example.org"));
        // The problems named by the route table surface with the listener's name.
        for (from, to, what) in [
            ("path_prefix = \"/a\"", "path_prefix = \"a\"", "path_prefix"),
            (
                "path_prefix = \"/a\"",
                "path_prefix = \"/a/../b\"",
                "path_prefix",
            ),
            ("auth = [\"psk\"]", "auth = [\"mtls\"]", "subset"),
            ("name = \"b\"", "name = \"a\"", "duplicate route name"),
            ("name = \"b\"", "name = \"b!\"", "name"),
            (
                "host = \"b.example.org\"\npath_prefix = \"/\"",
                "path_prefix = \"/a\"",
                "same host and path_prefix",
            ),
            (
                "upstream = \"http://127.0.0.1:9002\"\n",
                "",
                "upstream is required",
            ),
            ("max_body_bytes = 10", "max_body_bytes = 0", "positive"),
            (
                "forward_identity = false",
                "forward_identiy = false",
                "unknown field",
            ),
        ] {
            assert!(ROUTED.contains(from), "{from}");
            let e = OsgConfig::from_toml_str(&base(&ROUTED.replacen(from, to, 1)))
                .unwrap_err()
                .to_string();
            assert!(e.contains(what), "{to}: {e}");
            if !what.contains("unknown") {
                assert!(e.contains("listener \"gw\""), "{e}");
            }
        }
        // A listener without routes still needs its upstream; with routes it may give
        // one as their default.
        let no_up = PSK.replace("upstream = \"http://127.0.0.1:9000\"\n", "");
        let e = OsgConfig::from_toml_str(&base(&no_up))
            .unwrap_err()
            .to_string();
        assert!(e.contains("upstream is required"), "{e}");
        let with_default = ROUTED
            .replace("upstream = \"http://127.0.0.1:9002\"\n", "")
            .replace(
                "tls = { cert_file",
                "upstream = \"http://127.0.0.1:9009\"\ntls = { cert_file",
            );
        assert!(OsgConfig::from_toml_str(&base(&with_default)).is_ok());
        // Routes are for https listeners.
        let tcp = "[[osg.listener]]\nname = \"t\"\nlisten = \"127.0.0.1:0\"\nkind = \"tcp\"\nauth = [\"psk\"]\nupstream = \"127.0.0.1:9\"\n\
                   [[osg.listener.route]]\nname = \"r\"\npath_prefix = \"/\"\n";
        let e = OsgConfig::from_toml_str(&base(tcp))
            .unwrap_err()
            .to_string();
        assert!(e.contains("https"), "{e}");
    }

    #[test]
    fn ocsp_stapling_settings() {
        let digest = |tls: &str| {
            base(&format!(
                "[[osg.listener]]\nname = \"d\"\nlisten = \"127.0.0.1:0\"\nkind = \"https\"\nauth = [\"digest\"]\nupstream = \"http://127.0.0.1:9\"\ntls = {{ cert_file = \"/s.pem\", key_file = \"/s.key\"{tls} }}\n"
            ))
        };
        let c = OsgConfig::from_toml_str(&digest("")).unwrap();
        assert_eq!(c.listeners[0].tls.ocsp_stapling, OcspSetting::Off);
        let c = OsgConfig::from_toml_str(&digest(
            ", ocsp_stapling = \"aia\", ocsp_stapling_ca_file = \"/ca.pem\"",
        ))
        .unwrap();
        let t = &c.listeners[0].tls;
        assert_eq!(t.ocsp_stapling, OcspSetting::Aia);
        assert_eq!(t.ocsp_stapling_refresh_secs, DEFAULT_STAPLE_REFRESH_SECS);
        assert_eq!(t.stapling_ca_file(), Some(std::path::Path::new("/ca.pem")));
        let c = OsgConfig::from_toml_str(&digest(
            ", ocsp_stapling = \"http://127.0.0.1:8888/\", ocsp_stapling_ca_file = \"/ca.pem\", ocsp_stapling_refresh_secs = 5",
        ))
        .unwrap();
        assert_eq!(
            c.listeners[0].tls.ocsp_stapling,
            OcspSetting::Responder("http://127.0.0.1:8888/".into())
        );
        // An mtls listener falls back to its client CA file.
        let mtls = base(
            "[[osg.listener]]\nname = \"m\"\nlisten = \"127.0.0.1:0\"\nkind = \"tcp\"\nauth = [\"mtls\"]\nupstream = \"127.0.0.1:9\"\n\
             tls = { cert_file = \"/s.pem\", key_file = \"/s.key\", client_ca_file = \"/clients.pem\", ocsp_stapling = \"aia\" }\n",
        );
        let c = OsgConfig::from_toml_str(&mtls).unwrap();
        assert_eq!(
            c.listeners[0].tls.stapling_ca_file(),
            Some(std::path::Path::new("/clients.pem"))
        );
        for (tls, what) in [
            (", ocsp_stapling = \"aia\"", "ocsp_stapling_ca_file"),
            (", ocsp_stapling = \"https://x\"", "ocsp must be"),
            (
                ", ocsp_stapling = \"aia\", ocsp_stapling_ca_file = \"/ca.pem\", ocsp_stapling_refresh_secs = 0",
                "at least 1",
            ),
            (", ocsp_stapling_ca_file = \"/ca.pem\"", "without tls.ocsp_stapling"),
        ] {
            let e = OsgConfig::from_toml_str(&digest(tls)).unwrap_err().to_string();
            assert!(e.contains(what), "{tls}: {e}");
        }
        // A PSK-only listener has no certificate to staple.
        let psk = PSK.replace(
            "auth = [\"psk\"]",
            "auth = [\"psk\"]\ntls = { ocsp_stapling = \"aia\", ocsp_stapling_ca_file = \"/ca.pem\" }",
        );
        let e = OsgConfig::from_toml_str(&base(&psk))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs tls.cert_file"), "{e}");
    }

    #[test]
    fn upstream_parsing() {
        assert_eq!(
            parse_http_upstream("http://127.0.0.1:9000/").unwrap(),
            "127.0.0.1:9000"
        );
        assert_eq!(parse_http_upstream("http://[::1]:80").unwrap(), "[::1]:80");
        assert!(parse_http_upstream("http://host").is_err());
        assert_eq!(parse_host_port("[::1]:9").unwrap(), ("::1".to_string(), 9));
        assert!(parse_host_port("host:0").is_err());
        assert!(parse_host_port(":80").is_err());
    }
}
