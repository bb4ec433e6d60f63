//! seccf-osg: the SEC_CF security gateway (OSG) for HTTP and TCP enablers.
//!
//! The OSG sits in front of existing services and authenticates terminals with their
//! GBA credentials or certificates, then forwards traffic with the authenticated
//! identity (SEC-1 in, SEC-3 out):
//!
//! - **PSK-TLS** (TS 33.222 §5.4): TLS 1.2 PSK suites and TLS 1.3 external PSK, identity
//!   hint `3GPP-bootstrapping`, identity `3GPP-bootstrapping.<B-TID>` (or a bare
//!   B-TID), PSK = Ks_(ext)_NAF for NAF_Id = FQDN ‖ Ua id of the negotiated protocol
//!   ([`ua`] has the rules).
//! - **TLS + HTTP Digest** (TS 33.222 §5.3, TS 24.109 §5.2): realm
//!   `3GPP-bootstrapping@<fqdn>`, username = B-TID, password = base64(Ks_NAF), nc
//!   replay protection, `stale=true`, `Authentication-Info`; plain RFC 7616 SHA-256
//!   users from a file ([`digest_auth`], [`users`]).
//! - **Mutual TLS** with CRLs (reloadable) and OCSP (soft or hard fail).
//! - **HTTPS reverse proxy** (HTTP/1.1 and HTTP/2 to terminals, pooled HTTP/1.1 to the
//!   resource) that strips client-supplied identity headers and sets
//!   `X-3GPP-Asserted-Identity`, `X-Seccf-Auth-Method` and `X-Seccf-Assertion`, a
//!   signed ES256 JWT verifiable with the JWKS of the admin listener ([`assertion`]).
//! - **Routes** ([`routes`]): one listener fronts several enablers by path prefix
//!   and/or host name (the Authentication Proxy), each route with its own upstream,
//!   accepted methods, allowed identities, USS flags, identity forwarding, upstream
//!   timeout and body limit.
//! - **OCSP stapling** of the listeners' own certificates, refreshed in the background.
//! - **TCP tunnels** with a PROXY protocol v2 header carrying the identity ([`proxy_v2`]).
//! - Keys come from the KMC over Zn through a bounded, single-flight cache with a
//!   negative cache ([`keys`]); authorisation by identity and USS flags ([`principal`]).
//! - Operations: graceful shutdown, reload of certificates/CRLs/users without dropping
//!   connections ([`ReloadHandle`]), Prometheus metrics, an audit line per decision
//!   ([`obs`]).
//!
//! What it does not do: UDP/DTLS, SIP, SEC-2 gateway-to-gateway forwarding, GBA push,
//! HTTPS or HTTP/2 towards the upstream (upstreams are `http://` on a trusted network),
//! WebSocket/Upgrade forwarding, path rewriting on routes, routes on TCP tunnels,
//! rotation of the assertion key at reload, reloading routes (they are configuration),
//! and Diameter Zn. It needs tokio's multi-thread runtime
//! (the PSK callback blocks its worker thread with `block_in_place` on a key-cache
//! miss); [`Osg::run`] refuses a current-thread runtime.
//!
//! The sans-IO parts ([`proxy_v2`], [`ua`], [`users`], [`assertion`],
//! [`digest_auth`], [`config`], [`routes`]) have no sockets and take the time as a
//! parameter.

pub mod assertion;
pub mod config;
pub mod conn;
pub mod digest_auth;
mod http_proxy;
pub mod keys;
pub mod obs;
pub mod principal;
pub mod proxy_v2;
pub mod routes;
mod session;
pub mod tls_setup;
mod tunnel;
pub mod ua;
pub mod users;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use openssl::ssl::SslAcceptor;
use seccf_secret::Secret;
use seccf_tls::psk::PskKeyLookup;
use seccf_tls::revocation::{OcspChecker, OcspMode, OcspOutcome, OcspStapler, RevocationConfig};
use sha2::Digest as _;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};

pub use assertion::{verify_assertion, Claims};
pub use config::{ConfigError, OsgConfig};
pub use session::ConnAuth;

use crate::assertion::AssertionSigner;
use crate::config::{AuthMethod, ListenerConfig, ListenerKind, OcspSetting};
use crate::conn::Drain;
use crate::keys::{KeyProvider, KeySource, ZnKeySource};
use crate::obs::{Audit, Metrics};
use crate::routes::RouteTable;
use crate::tls_setup::GbaPskLookup;
use crate::users::UsersDb;

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Start-up and run-time failures.
#[derive(Debug, thiserror::Error)]
pub enum OsgError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TLS material could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The assertion key could not be loaded.
    #[error("assertion key: {0}")]
    Assertion(String),
    /// A users file could not be loaded.
    #[error("users file {path}: {reason}")]
    Users {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The Zn client could not be built.
    #[error("Zn client: {0}")]
    Zn(String),
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The runtime cannot host the gateway.
    #[error("runtime: {0}")]
    Runtime(String),
    /// A configured listener was not handed a bound socket.
    #[error("no bound socket for listener {0:?}")]
    MissingListener(String),
    /// Binding a socket failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What every listener task shares.
pub(crate) struct Shared {
    pub(crate) fqdn: String,
    pub(crate) keys: Arc<KeyProvider>,
    pub(crate) signer: AssertionSigner,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) audit: Arc<Audit>,
    pub(crate) grace: Duration,
}

/// A failed staple refresh is retried after this long (or the refresh period, if
/// shorter).
const STAPLE_RETRY: Duration = Duration::from_secs(60);

/// An OCSP stapler and the digest of what it was built from (mode, certificate and CA
/// file contents): a reload that changes none of them keeps the stapler, and with it
/// the staple, so handshakes never go without one just because of a reload.
#[derive(Clone)]
struct StaplerSlot {
    stapler: Arc<OcspStapler>,
    source: [u8; 32],
}

/// The reloadable material of one listener.
pub(crate) struct ListenerState {
    pub(crate) cfg: ListenerConfig,
    fqdn: String,
    psk: Option<Arc<dyn PskKeyLookup>>,
    acceptor: RwLock<Arc<SslAcceptor>>,
    users: RwLock<Option<Arc<UsersDb>>>,
    ocsp: RwLock<Option<Arc<OcspChecker>>>,
    stapler: RwLock<Option<StaplerSlot>>,
    /// Wakes the staple refresh task when a reload installed another stapler.
    stapler_changed: Notify,
    /// The routes (https listeners); configuration, so not reloaded.
    pub(crate) routes: Option<Arc<RouteTable>>,
}

struct Loaded {
    acceptor: Arc<SslAcceptor>,
    users: Option<Arc<UsersDb>>,
    ocsp: Option<Arc<OcspChecker>>,
    stapler: Option<StaplerSlot>,
}

fn read_file(path: &Path) -> Result<Vec<u8>, OsgError> {
    std::fs::read(path).map_err(|e| OsgError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The realm of a listener's plain users (default `seccf@<fqdn>`).
pub fn users_realm(l: &ListenerConfig, fqdn: &str) -> String {
    l.digest_users_realm
        .clone()
        .unwrap_or_else(|| format!("seccf@{fqdn}"))
}

impl ListenerState {
    fn load(&self) -> Result<Loaded, OsgError> {
        load_listener(
            &self.cfg,
            &self.fqdn,
            self.psk.clone(),
            self.stapler_slot().as_ref(),
        )
    }

    fn install(&self, loaded: Loaded) {
        if let Some(slot) = loaded.stapler {
            match self.stapler.write() {
                Ok(mut s) => *s = Some(slot),
                Err(p) => *p.into_inner() = Some(slot),
            }
            // A stored permit if the task is busy refreshing: it refreshes again next.
            self.stapler_changed.notify_one();
        }
        if let Ok(mut a) = self.acceptor.write() {
            *a = loaded.acceptor;
        }
        if let Ok(mut u) = self.users.write() {
            *u = loaded.users;
        }
        if let Ok(mut o) = self.ocsp.write() {
            *o = loaded.ocsp;
        }
    }

    /// The acceptor for a new connection (established ones keep theirs).
    pub(crate) fn acceptor(&self) -> Arc<SslAcceptor> {
        match self.acceptor.read() {
            Ok(a) => a.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(crate) fn users(&self) -> Option<Arc<UsersDb>> {
        match self.users.read() {
            Ok(u) => u.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(crate) fn ocsp(&self) -> Option<Arc<OcspChecker>> {
        match self.ocsp.read() {
            Ok(o) => o.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn stapler_slot(&self) -> Option<StaplerSlot> {
        match self.stapler.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// The OCSP stapler of a listener's own certificate (`None` when stapling is off).
/// `previous` is reused when built from the same mode, certificate and CA files.
fn load_stapler(
    l: &ListenerConfig,
    previous: Option<&StaplerSlot>,
) -> Result<Option<StaplerSlot>, OsgError> {
    let mode = match &l.tls.ocsp_stapling {
        OcspSetting::Off => return Ok(None),
        OcspSetting::Aia => OcspMode::Aia,
        OcspSetting::Responder(u) => OcspMode::Responder(u.clone()),
    };
    let (Some(cert), Some(ca)) = (&l.tls.cert_file, l.tls.stapling_ca_file()) else {
        // validate() makes this unreachable; refuse rather than serve without.
        return Err(OsgError::Tls(format!(
            "listener {:?}: OCSP stapling needs cert_file and a CA file",
            l.name
        )));
    };
    let mut h = sha2::Sha256::new();
    for part in [
        format!("{mode:?}").into_bytes(),
        read_file(cert)?,
        read_file(ca)?,
    ] {
        h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(&part);
    }
    let source: [u8; 32] = h.finalize().into();
    if let Some(prev) = previous.filter(|p| p.source == source) {
        return Ok(Some(prev.clone()));
    }
    let rc = RevocationConfig {
        ocsp: mode,
        ..RevocationConfig::default()
    };
    let stapler = OcspStapler::new(&rc, ca, cert)
        .map_err(|e| OsgError::Tls(format!("listener {:?}: OCSP stapling: {e}", l.name)))?;
    Ok(Some(StaplerSlot {
        stapler: Arc::new(stapler),
        source,
    }))
}

/// Reads every file of a listener and builds its TLS context, users, OCSP checker and
/// OCSP stapler.
fn load_listener(
    l: &ListenerConfig,
    fqdn: &str,
    psk: Option<Arc<dyn PskKeyLookup>>,
    previous_stapler: Option<&StaplerSlot>,
) -> Result<Loaded, OsgError> {
    let stapler = load_stapler(l, previous_stapler)?;
    let acceptor = Arc::new(tls_setup::build_acceptor_with_stapler(
        l,
        psk,
        stapler.as_ref().map(|s| &s.stapler),
    )?);
    let users = match &l.digest_users_file {
        None => None,
        Some(p) => {
            let bytes = read_file(p)?;
            if bytes.len() > users::MAX_FILE_LEN {
                return Err(OsgError::Users {
                    path: p.display().to_string(),
                    reason: "file too large".into(),
                });
            }
            let text = String::from_utf8(bytes).map_err(|_| OsgError::Users {
                path: p.display().to_string(),
                reason: "not UTF-8".into(),
            })?;
            let db = UsersDb::parse(&text, &users_realm(l, fqdn)).map_err(|e| OsgError::Users {
                path: p.display().to_string(),
                reason: e.to_string(),
            })?;
            Some(Arc::new(db))
        }
    };
    let ocsp = match (&l.tls.ocsp, &l.tls.client_ca_file) {
        (OcspSetting::Off, _) | (_, None) => None,
        (mode, Some(ca)) => {
            let mode = match mode {
                OcspSetting::Aia => OcspMode::Aia,
                OcspSetting::Responder(u) => OcspMode::Responder(u.clone()),
                OcspSetting::Off => OcspMode::Off,
            };
            let rc = RevocationConfig {
                ocsp: mode,
                hard_fail: l.tls.revocation_hard_fail,
                crl_files: l.tls.crl_files.clone(),
                ..RevocationConfig::default()
            };
            Some(Arc::new(OcspChecker::new(&rc, ca).map_err(|e| {
                OsgError::Tls(format!("listener {:?}: OCSP: {e}", l.name))
            })?))
        }
    };
    Ok(Loaded {
        acceptor,
        users,
        ocsp,
        stapler,
    })
}

/// Bound sockets handed to [`Osg::run`]: one per configured listener name, and the
/// admin listener when configured.
#[derive(Default)]
pub struct OsgListeners {
    /// Listener name → socket.
    pub listeners: HashMap<String, TcpListener>,
    /// The admin socket.
    pub admin: Option<TcpListener>,
}

impl OsgListeners {
    /// Binds every address of the configuration.
    pub async fn bind(cfg: &OsgConfig) -> Result<Self, OsgError> {
        let mut out = OsgListeners::default();
        for l in &cfg.listeners {
            let s = TcpListener::bind(l.listen)
                .await
                .map_err(|source| OsgError::Bind {
                    addr: l.listen.to_string(),
                    source,
                })?;
            out.listeners.insert(l.name.clone(), s);
        }
        if let Some(a) = &cfg.admin {
            out.admin =
                Some(
                    TcpListener::bind(a.listen)
                        .await
                        .map_err(|source| OsgError::Bind {
                            addr: a.listen.to_string(),
                            source,
                        })?,
                );
        }
        Ok(out)
    }
}

/// Re-reads certificates, keys, CRLs, OCSP settings and users files, and swaps them in
/// for new connections; established connections keep the material they started with.
/// OCSP staplers are rebuilt when the certificate or its CA file changed, and their
/// refresh task fetches a new staple at once. All-or-nothing: when any listener's
/// material fails to load, nothing changes. (The configuration itself, listeners,
/// routes and the assertion key are not reloaded.)
#[derive(Clone)]
pub struct ReloadHandle {
    listeners: Vec<Arc<ListenerState>>,
    keys: Arc<KeyProvider>,
}

impl ReloadHandle {
    /// Reloads (see the type documentation).
    pub fn reload(&self) -> Result<(), OsgError> {
        let loaded = self
            .listeners
            .iter()
            .map(|l| l.load())
            .collect::<Result<Vec<_>, _>>()?;
        for (l, new) in self.listeners.iter().zip(loaded) {
            l.install(new);
        }
        tracing::info!("gateway TLS material and users reloaded");
        Ok(())
    }

    /// Drops every cached NAF key (they are fetched again on next use).
    pub fn flush_key_cache(&self) {
        self.keys.clear();
    }
}

/// A configured gateway, ready to run.
pub struct Osg {
    cfg: OsgConfig,
    shared: Arc<Shared>,
    listeners: Vec<Arc<ListenerState>>,
}

impl std::fmt::Debug for Osg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Osg")
            .field("fqdn", &self.cfg.fqdn)
            .field("listeners", &self.cfg.listeners.len())
            .finish_non_exhaustive()
    }
}

impl Osg {
    /// Validates `cfg`, builds the Zn clients and loads TLS material, the assertion key
    /// and users files. Nothing is bound yet.
    pub fn new(cfg: OsgConfig) -> Result<Self, OsgError> {
        cfg.validate()?;
        let mut clients = Vec::with_capacity(cfg.kmc.connections);
        for _ in 0..cfg.kmc.connections {
            clients.push(
                seccf_kmc::zn_client::ZnClient::new(&cfg.kmc.url, &cfg.kmc.tls)
                    .map_err(|e| OsgError::Zn(e.to_string()))?,
            );
        }
        Self::with_key_source(cfg, Arc::new(ZnKeySource::new(clients)))
    }

    /// [`Osg::new`] with another key source (an in-process KMC, tests).
    pub fn with_key_source(cfg: OsgConfig, source: Arc<dyn KeySource>) -> Result<Self, OsgError> {
        cfg.validate()?;
        let keys = Arc::new(KeyProvider::new(
            source,
            cfg.key_cache.max_entries,
            cfg.key_cache.negative_ttl_secs,
            Box::new(unix_now),
        ));
        let issuer = cfg
            .assertion
            .issuer
            .clone()
            .unwrap_or_else(|| format!("https://{}", cfg.fqdn));
        let ttl = cfg.assertion.ttl_secs.unwrap_or(60);
        let signer = match &cfg.assertion.key_file {
            Some(p) => AssertionSigner::from_pem(&read_file(p)?, &issuer, ttl)
                .map_err(|e| OsgError::Assertion(format!("{}: {e}", p.display())))?,
            None => {
                tracing::warn!(
                    "osg.assertion.key_file not set: signing identity assertions with an ephemeral key"
                );
                AssertionSigner::generate(&issuer, ttl)
                    .map_err(|e| OsgError::Assertion(e.to_string()))?
            }
        };
        let audit_key = match &cfg.audit_key_file {
            Some(p) => {
                let text = String::from_utf8(read_file(p)?).unwrap_or_default();
                Secret::<32>::from_hex(text.trim()).ok_or_else(|| OsgError::Read {
                    path: p.display().to_string(),
                    reason: "expected 64 hex digits".into(),
                })?
            }
            None => Secret::random().map_err(|e| OsgError::Runtime(e.to_string()))?,
        };
        let metrics = Arc::new(Metrics::new());
        let audit = Arc::new(Audit::new(audit_key));
        let shared = Arc::new(Shared {
            fqdn: cfg.fqdn.to_ascii_lowercase(),
            keys: keys.clone(),
            signer,
            metrics: metrics.clone(),
            audit: audit.clone(),
            grace: Duration::from_secs(cfg.shutdown_grace_secs),
        });
        let mut listeners = Vec::with_capacity(cfg.listeners.len());
        for l in &cfg.listeners {
            let psk: Option<Arc<dyn PskKeyLookup>> = if l.accepts(AuthMethod::Psk) {
                Some(Arc::new(GbaPskLookup {
                    keys: keys.clone(),
                    fqdn: shared.fqdn.clone(),
                    org: l.ua_org,
                    listener: l.name.clone(),
                    metrics: metrics.clone(),
                    audit: audit.clone(),
                }))
            } else {
                None
            };
            let loaded = load_listener(l, &shared.fqdn, psk.clone(), None)?;
            let routes = match l.kind {
                ListenerKind::Https => {
                    Some(Arc::new(RouteTable::from_listener(l).map_err(|e| {
                        ConfigError::Invalid(format!("listener {:?}: {e}", l.name))
                    })?))
                }
                ListenerKind::Tcp => None,
            };
            listeners.push(Arc::new(ListenerState {
                cfg: l.clone(),
                fqdn: shared.fqdn.clone(),
                psk,
                acceptor: RwLock::new(loaded.acceptor),
                users: RwLock::new(loaded.users),
                ocsp: RwLock::new(loaded.ocsp),
                stapler: RwLock::new(loaded.stapler),
                stapler_changed: Notify::new(),
                routes,
            }));
        }
        Ok(Osg {
            cfg,
            shared,
            listeners,
        })
    }

    /// A handle that reloads TLS material and users files (e.g. on SIGHUP).
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            listeners: self.listeners.clone(),
            keys: self.shared.keys.clone(),
        }
    }

    /// The JWKS (`{"keys":[…]}`) that verifies identity assertions.
    pub fn jwks_json(&self) -> String {
        self.shared.signer.jwks_json()
    }

    /// The Prometheus text of the gateway's metrics.
    pub fn metrics_text(&self) -> String {
        render_metrics(&self.shared)
    }

    /// The configuration in force.
    pub fn config(&self) -> &OsgConfig {
        &self.cfg
    }

    /// Serves until `shutdown` turns true, then stops accepting, lets in-flight
    /// requests finish (at most `shutdown_grace_secs`) and returns.
    pub async fn run(
        self,
        mut listeners: OsgListeners,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), OsgError> {
        let flavor = tokio::runtime::Handle::try_current()
            .map(|h| h.runtime_flavor())
            .map_err(|e| OsgError::Runtime(e.to_string()))?;
        if flavor != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err(OsgError::Runtime(
                "the gateway needs tokio's multi-thread runtime (the PSK key lookup blocks in place)"
                    .into(),
            ));
        }
        let mut sockets = Vec::with_capacity(self.listeners.len());
        for state in &self.listeners {
            let sock = listeners
                .listeners
                .remove(&state.cfg.name)
                .ok_or_else(|| OsgError::MissingListener(state.cfg.name.clone()))?;
            sockets.push((state.clone(), sock));
        }
        let drain = Drain::new();
        let mut tasks = Vec::new();
        for (state, sock) in sockets {
            tracing::info!(
                listener = %state.cfg.name,
                addr = %sock.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                kind = ?state.cfg.kind,
                "OSG listening"
            );
            let server = match state.cfg.kind {
                ListenerKind::Https => {
                    let digest = if state.cfg.accepts(AuthMethod::Digest) {
                        let realm = state
                            .cfg
                            .digest_users_file
                            .as_ref()
                            .map(|_| users_realm(&state.cfg, &self.shared.fqdn));
                        Some(
                            digest_auth::DigestEngine::new(
                                &self.shared.fqdn,
                                realm,
                                state.cfg.nonce_lifetime_secs,
                            )
                            .map_err(|e| OsgError::Runtime(e.to_string()))?,
                        )
                    } else {
                        None
                    };
                    let routes = state.routes.clone().ok_or_else(|| {
                        OsgError::Config(ConfigError::Invalid(format!(
                            "listener {:?} has no routes",
                            state.cfg.name
                        )))
                    })?;
                    Server::Https(Arc::new(http_proxy::HttpsProxy::new(
                        state.clone(),
                        self.shared.clone(),
                        digest,
                        routes,
                    )))
                }
                ListenerKind::Tcp => {
                    let upstream = config::parse_host_port(state.cfg.upstream().unwrap_or(""))
                        .map_err(|e| OsgError::Config(ConfigError::Invalid(e)))?;
                    Server::Tcp(Arc::new(tunnel::TcpTunnel {
                        state: state.clone(),
                        shared: self.shared.clone(),
                        upstream,
                    }))
                }
            };
            tasks.push(tokio::spawn(accept_loop(
                sock,
                state,
                self.shared.clone(),
                server,
                shutdown.clone(),
                drain.token(),
            )));
        }
        let staplers: Vec<_> = self
            .listeners
            .iter()
            .filter(|s| s.stapler_slot().is_some())
            .map(|s| {
                tokio::spawn(staple_loop(
                    s.clone(),
                    self.shared.metrics.clone(),
                    shutdown.clone(),
                ))
            })
            .collect();
        let admin_task = match listeners.admin.take() {
            Some(sock) => {
                let shared = self.shared.clone();
                let jwks = self.jwks_json();
                let rx = shutdown.clone();
                Some(tokio::spawn(async move {
                    serve_admin(sock, shared, jwks, rx).await;
                }))
            }
            None => None,
        };
        let mut rx = shutdown.clone();
        let _ = rx.wait_for(|v| *v).await;
        for t in tasks {
            let _ = t.await;
        }
        for t in staplers {
            // They stop at the shutdown signal; abort covers one stuck in a refresh.
            t.abort();
            let _ = t.await;
        }
        tracing::info!("OSG stopped accepting; draining connections");
        if !drain.wait(self.shared.grace + Duration::from_secs(1)).await {
            tracing::warn!("some connections were still open at the end of the grace period");
        }
        if let Some(t) = admin_task {
            let _ = t.await;
        }
        tracing::info!("OSG stopped");
        Ok(())
    }
}

/// Keeps a listener's OCSP staple fresh: refreshes now, then every
/// `ocsp_stapling_refresh_secs` (after a failure within [`STAPLE_RETRY`]), and at once
/// when a reload installed another stapler. Stops at shutdown.
async fn staple_loop(
    state: Arc<ListenerState>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let period = Duration::from_secs(state.cfg.tls.ocsp_stapling_refresh_secs.max(1));
    let retry = period.min(STAPLE_RETRY);
    loop {
        let Some(slot) = state.stapler_slot() else {
            return;
        };
        let outcome = tokio::select! {
            o = slot.stapler.refresh() => o,
            _ = conn::wait_true(&mut shutdown) => return,
        };
        let (result, wait) = match &outcome {
            OcspOutcome::Good => ("good", period),
            OcspOutcome::Revoked { .. } => ("revoked", retry),
            OcspOutcome::Unknown => ("unknown", retry),
            OcspOutcome::Unavailable(_) => ("unavailable", retry),
        };
        metrics.staple_refresh(&state.cfg.name, result);
        if result != "good" {
            tracing::warn!(
                listener = %state.cfg.name,
                result,
                stapled = slot.stapler.current().is_some(),
                "OCSP staple refresh of the listener's certificate did not give a good answer"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.stapler_changed.notified() => {}
            _ = conn::wait_true(&mut shutdown) => return,
        }
    }
}

#[derive(Clone)]
enum Server {
    Https(Arc<http_proxy::HttpsProxy>),
    Tcp(Arc<tunnel::TcpTunnel>),
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<ListenerState>,
    shared: Arc<Shared>,
    server: Server,
    shutdown: watch::Receiver<bool>,
    token: Option<conn::DrainToken>,
) {
    let Some(token) = token else {
        return;
    };
    let permits = Arc::new(Semaphore::new(state.cfg.limits.max_connections.max(1)));
    let mut stop = shutdown.clone();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = conn::wait_true(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = %state.cfg.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            shared.metrics.connection(&state.cfg.name, "over_limit");
            drop(tcp);
            continue;
        };
        shared.metrics.connection(&state.cfg.name, "accepted");
        let _ = tcp.set_nodelay(true);
        let rx = shutdown.clone();
        let token = token.clone();
        match &server {
            Server::Https(s) => {
                let s = s.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    s.serve(tcp, peer, rx, token).await;
                });
            }
            Server::Tcp(s) => {
                let s = s.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    s.serve(tcp, peer, rx, token).await;
                });
            }
        }
    }
}

fn render_metrics(shared: &Shared) -> String {
    shared.metrics.key_cache(shared.keys.stats());
    shared.metrics.render()
}

async fn serve_admin(
    sock: TcpListener,
    shared: Arc<Shared>,
    jwks: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let jwks = Bytes::from(jwks);
    seccf_kmc::http::serve(
        sock,
        None,
        seccf_kmc::http::Limits::default(),
        move |req: seccf_kmc::http::FullRequest, _info| {
            let shared = shared.clone();
            let jwks = jwks.clone();
            async move {
                let (ctype, status, body): (&'static str, u16, Bytes) =
                    match (req.method().as_str(), req.uri().path()) {
                        ("GET", "/metrics") => (
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            200,
                            Bytes::from(render_metrics(&shared)),
                        ),
                        ("GET", "/healthz") => ("text/plain", 200, Bytes::from_static(b"ok\n")),
                        ("GET", "/.well-known/jwks.json") => {
                            ("application/jwk-set+json", 200, jwks)
                        }
                        _ => ("text/plain", 404, Bytes::from_static(b"not found\n")),
                    };
                let mut r = http::Response::new(Full::new(body));
                *r.status_mut() =
                    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NOT_FOUND);
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(ctype),
                );
                r
            }
        },
        async move {
            let _ = shutdown.wait_for(|v| *v).await;
        },
    )
    .await;
}
