//! The SEC_CF Key Management Centre (KMC): a 3GPP GBA Bootstrapping Server Function.
//!
//! - **Ub** ([`ub`]): terminals bootstrap with HTTP Digest AKA against the built-in AuC
//!   (Milenage) and receive a B-TID and key lifetime.
//! - **Zn** ([`zn`]): registered gateways (NAFs), authenticated by TLS client
//!   certificate, retrieve NAF-specific keys for a B-TID.
//! - **Admin** ([`admin`]): subscribers and the NAF registry; Prometheus metrics and a
//!   health check on the same listener.
//!
//! State lives behind [`seccf_store::Store`]; every listener is served by
//! [`http::serve`], which bounds connections, headers, bodies and slow clients. The
//! KMC does not speak Diameter (Zh/Zn) and has no external HSS: the AuC is built in.

pub mod admin;
pub mod config;
pub mod http;
pub mod obs;
pub mod ub;
pub mod zn;
pub mod zn_client;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use seccf_secret::Secret;
use seccf_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::KmcConfig;

use crate::admin::AdminService;
use crate::http::{ConnInfo, FullRequest, FullResponse};
use crate::obs::{Audit, Metrics};
use crate::ub::{UbRequest, UbService, UbSettings};
use crate::zn::ZnService;

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The three bound listeners of a KMC.
pub struct KmcListeners {
    /// Ub.
    pub ub: TcpListener,
    /// Zn.
    pub zn: TcpListener,
    /// Admin.
    pub admin: TcpListener,
}

impl KmcListeners {
    /// Binds the addresses of the configuration.
    pub async fn bind(cfg: &KmcConfig) -> std::io::Result<Self> {
        Ok(KmcListeners {
            ub: TcpListener::bind(cfg.ub.listen).await?,
            zn: TcpListener::bind(cfg.zn.listen).await?,
            admin: TcpListener::bind(cfg.admin.listen).await?,
        })
    }
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum KmcError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// TLS material could not be loaded.
    #[error("TLS set-up failed: {0}")]
    Tls(#[from] seccf_tls::TlsError),
}

/// A configured KMC, ready to serve.
pub struct Kmc<S> {
    cfg: KmcConfig,
    store: Arc<S>,
    ub: Arc<UbService<S>>,
    zn: Arc<ZnService<S>>,
    admin: Arc<AdminService<S>>,
    metrics: Arc<Metrics>,
}

impl<S: Store> Kmc<S> {
    /// Builds the services. `audit_key` keys the identity hashes of the audit trail.
    pub fn new(cfg: KmcConfig, store: S, audit_key: Secret<32>) -> Result<Self, KmcError> {
        cfg.validate()?;
        let store = Arc::new(store);
        let metrics = Arc::new(Metrics::new());
        let audit = Arc::new(Audit::new(audit_key));
        let settings = UbSettings {
            realm: cfg.realm().to_string(),
            bsf_domain: cfg.bsf_domain.clone(),
            key_lifetime_secs: cfg.key_lifetime_secs,
            challenge_lifetime_secs: cfg.challenge_lifetime_secs,
            algorithm: cfg.ub_algorithm,
        };
        let mut token = [0u8; 32];
        if let Ok(v) = hex::decode(&cfg.admin.token_sha256) {
            if v.len() == 32 {
                token.copy_from_slice(&v);
            }
        }
        Ok(Kmc {
            ub: Arc::new(UbService::new(
                store.clone(),
                settings,
                metrics.clone(),
                audit.clone(),
            )),
            zn: Arc::new(ZnService::new(
                store.clone(),
                metrics.clone(),
                audit.clone(),
            )),
            admin: Arc::new(AdminService::new(
                store.clone(),
                token,
                metrics.clone(),
                audit,
            )),
            metrics,
            store,
            cfg,
        })
    }

    /// Serves all listeners until `shutdown` turns true, then drains gracefully.
    pub async fn run(
        self,
        listeners: KmcListeners,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), KmcError> {
        let ub_tls = match &self.cfg.ub.tls {
            Some(t) => Some(Arc::new(seccf_tls::server::build_acceptor(t)?)),
            None => None,
        };
        let zn_tls = Arc::new(seccf_tls::server::build_acceptor(&self.cfg.zn.tls)?);
        let admin_tls = match &self.cfg.admin.tls {
            Some(t) => Some(Arc::new(seccf_tls::server::build_acceptor(t)?)),
            None => None,
        };
        tracing::info!(
            ub = %listeners.ub.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            zn = %listeners.zn.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            admin = %listeners.admin.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "KMC listening"
        );

        let ub = self.ub.clone();
        let ub_task = http::serve(
            listeners.ub,
            ub_tls,
            self.cfg.ub.limits.clone(),
            move |req: FullRequest, _info: ConnInfo| {
                let ub = ub.clone();
                async move {
                    let auth = req
                        .headers()
                        .get(::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let resp = ub
                        .handle(
                            UbRequest {
                                method: req.method().as_str(),
                                path: req.uri().path(),
                                authorization: auth.as_deref(),
                                body: req.body(),
                            },
                            unix_now(),
                        )
                        .await;
                    let mut r = build(resp.status, resp.content_type, resp.body);
                    for (name, value) in resp.headers {
                        if let Ok(v) = ::http::HeaderValue::from_str(&value) {
                            r.headers_mut().insert(name, v);
                        }
                    }
                    r.headers_mut().insert(
                        ::http::header::SERVER,
                        ::http::HeaderValue::from_static("seccf-kmc"),
                    );
                    r
                }
            },
            wait(shutdown.clone()),
        );

        let zn = self.zn.clone();
        let zn_task = http::serve(
            listeners.zn,
            Some(zn_tls),
            self.cfg.zn.limits.clone(),
            move |req: FullRequest, info: ConnInfo| {
                let zn = zn.clone();
                async move {
                    let ct = req
                        .headers()
                        .get(::http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let (status, ctype, body) = zn
                        .handle(
                            req.method().as_str(),
                            req.uri().path(),
                            ct.as_deref(),
                            info.client_cert_sha256.as_deref(),
                            req.body(),
                            unix_now(),
                        )
                        .await;
                    build(status, ctype, body)
                }
            },
            wait(shutdown.clone()),
        );

        let admin = self.admin.clone();
        let metrics = self.metrics.clone();
        let store = self.store.clone();
        let admin_task = http::serve(
            listeners.admin,
            admin_tls,
            self.cfg.admin.limits.clone(),
            move |req: FullRequest, _info: ConnInfo| {
                let admin = admin.clone();
                let metrics = metrics.clone();
                let store = store.clone();
                async move {
                    let path = req.uri().path().to_string();
                    match (req.method().as_str(), path.as_str()) {
                        ("GET", "/metrics") => build(
                            200,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            metrics.render().into_bytes(),
                        ),
                        ("GET", "/healthz") => match store.ping().await {
                            Ok(()) => build(200, "text/plain", b"ok\n".to_vec()),
                            Err(_) => build(503, "text/plain", b"store unavailable\n".to_vec()),
                        },
                        (m, p) if p.starts_with("/admin/v1/") => {
                            let auth = req
                                .headers()
                                .get(::http::header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            let (status, ctype, body) =
                                admin.handle(m, p, auth.as_deref(), req.body()).await;
                            build(status, ctype, body)
                        }
                        _ => build(404, "text/plain", b"not found\n".to_vec()),
                    }
                }
            },
            wait(shutdown.clone()),
        );

        let gc_store = self.store.clone();
        let gc_interval = Duration::from_secs(self.cfg.gc_interval_secs.max(1));
        let mut gc_shutdown = shutdown.clone();
        let gc_task = async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(gc_interval) => {}
                    _ = gc_shutdown.wait_for(|v| *v) => break,
                }
                match gc_store.gc(unix_now()).await {
                    Ok(stats) if stats.contexts + stats.challenges > 0 => {
                        tracing::info!(
                            contexts = stats.contexts,
                            challenges = stats.challenges,
                            "expired state removed"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
                }
            }
        };

        tokio::join!(ub_task, zn_task, admin_task, gc_task);
        tracing::info!("KMC stopped");
        Ok(())
    }
}

async fn wait(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

fn build(status: u16, content_type: &'static str, body: Vec<u8>) -> FullResponse {
    let mut r = ::http::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        ::http::StatusCode::from_u16(status).unwrap_or(::http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        ::http::header::CONTENT_TYPE,
        ::http::HeaderValue::from_static(content_type),
    );
    r
}
