//! Peers for the gateway-client tests, all on real sockets on the loopback:
//!
//! * [`Kmc`]: the real KMC Ub service (`seccf_kmc::ub::UbService` behind
//!   `seccf_kmc::http::serve`, SQLite in memory) that the agent bootstraps with;
//! * [`Naf`]: a small NAF built from `seccf_tls` (PSK acceptor with a key lookup, or a
//!   certificate acceptor) and hyper, which derives its keys from the KMC store's own
//!   record of the context — Ks, RAND and IMPI as the BSF saw them — with NAF_Ids
//!   written out here byte by byte, independently of the agent's code. It verifies
//!   Digest with `seccf_digest` and logs what it saw (PSK identities, suites, headers).
//!
//! Shared by several test binaries; each uses a part of it.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use seccf_digest::{Algorithm, Challenge, Credentials, Qop};
use seccf_gba::naf::{self, NafId, UaSecurityProtocolId};
use seccf_gba::{GbaType, Secret, SqnWindow};
use seccf_kmc::config::UbAlgorithm;
use seccf_kmc::http::{serve, ConnInfo, FullRequest, FullResponse, Limits};
use seccf_kmc::obs::{Audit, Metrics};
use seccf_kmc::ub::{UbRequest, UbService, UbSettings};
use seccf_secret::{MasterKey, SecretBytes};
use seccf_store::sqlite::SqliteStore;
use seccf_store::{Store, Subscriber, UserSecuritySettings};
use seccf_tls::psk::{
    build_psk_acceptor, psk_peer, PeerAuth, PskRequest, PskServerConfig, PskTlsVersion,
};
use seccf_uicc::soft::{SoftUsim, SoftUsimConfig};
use seccf_uicc::Usim;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
pub const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
pub const BSF_DOMAIN: &str = "bsf.mnc001.mcc001.pub.3gppnetwork.org";
/// The name the NAFs of these tests go by (resolves to the loopback).
pub const NAF_HOST: &str = "localhost";

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------
// KMC

pub struct Kmc {
    pub store: Arc<SqliteStore>,
    pub port: u16,
    stop: watch::Sender<bool>,
}

impl Drop for Kmc {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Kmc {
    pub async fn start() -> Kmc {
        let store = Arc::new(SqliteStore::open_in_memory(MasterKey::generate().unwrap()).unwrap());
        let settings = UbSettings {
            realm: BSF_DOMAIN.into(),
            bsf_domain: BSF_DOMAIN.into(),
            key_lifetime_secs: 3600,
            challenge_lifetime_secs: 60,
            algorithm: UbAlgorithm::AkaV1Md5,
        };
        let ub = Arc::new(UbService::new(
            store.clone(),
            settings,
            Arc::new(Metrics::new()),
            Arc::new(Audit::new(Secret::new([9; 32]))),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, rx) = watch::channel(false);
        let handler = move |req: FullRequest, _info: ConnInfo| {
            let ub = ub.clone();
            async move {
                let auth = req
                    .headers()
                    .get(http::header::AUTHORIZATION)
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
                        now(),
                    )
                    .await;
                let mut r: FullResponse = http::Response::new(Full::new(Bytes::from(resp.body)));
                *r.status_mut() = http::StatusCode::from_u16(resp.status).unwrap();
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(resp.content_type),
                );
                for (name, value) in resp.headers {
                    r.headers_mut()
                        .insert(name, http::HeaderValue::from_str(&value).unwrap());
                }
                r
            }
        };
        let mut rx2 = rx.clone();
        tokio::spawn(serve(
            listener,
            None,
            Limits::default(),
            handler,
            async move {
                let _ = rx2.wait_for(|v| *v).await;
            },
        ));
        drop(rx);
        Kmc { store, port, stop }
    }

    pub fn ub_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub async fn add_subscriber(&self, impi: &str, gba_type: GbaType) {
        self.store
            .insert_subscriber(&Subscriber {
                impi: impi.into(),
                k: Secret::from_hex(K).unwrap(),
                opc: Secret::from_hex(OPC).unwrap(),
                amf: [0x80, 0x00],
                sqn: 0,
                gba_type,
                key_lifetime_secs: None,
                uss: UserSecuritySettings::default(),
            })
            .await
            .unwrap();
    }

    /// Forgets every context (as a KMC does once they expire): garbage collection
    /// with a clock two hours ahead.
    pub async fn forget_contexts(&self) {
        self.store.gc(now() + 7200).await.unwrap();
    }

    /// B-TIDs the KMC has issued and still holds for `impi`, newest last (the
    /// store has no listing, so the test asks about the ones it knows).
    pub async fn knows(&self, btid: &str) -> bool {
        self.store.get_context(btid, now()).await.unwrap().is_some()
    }
}

/// The NAF key the KMC would release for `btid` and `naf` (the Zn key material:
/// Ks_NAF, or Ks_ext_NAF for GBA_U, both "gba-me").
pub async fn kmc_key(store: &SqliteStore, btid: &str, naf: &NafId) -> Option<Secret<32>> {
    let c = store.get_context(btid, now()).await.ok()??;
    naf::ks_naf(&c.ks, &c.rand, &c.impi, naf).ok()
}

pub fn soft_card(impi: &str, gba_u: bool) -> Usim<SoftUsim> {
    Usim::new(SoftUsim::from_config(SoftUsimConfig {
        impi: impi.into(),
        k: Secret::from_hex(K).unwrap(),
        opc: Secret::from_hex(OPC).unwrap(),
        amf: [0x80, 0x00],
        gba_u,
        sqn_window: None,
        delta: SqnWindow::DEFAULT_DELTA,
    }))
}

pub fn impi(n: u32) -> String {
    format!("0010100000{n:05}@ims.mnc001.mcc001.3gppnetwork.org")
}

// ---------------------------------------------------------------------------------
// PKI

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A CA that signed nothing here (a client trusting only it must refuse the NAF).
    pub other_ca: PathBuf,
}

pub fn pki() -> Pki {
    use seccf_tls::pki;
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::generate_ca("seca gateway test CA", 1).unwrap();
    let leaf = pki::issue_server_cert(&ca, "naf", &[NAF_HOST, "127.0.0.1"], 1).unwrap();
    let other = pki::generate_ca("unrelated CA", 1).unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ca.pem"), &ca.cert_pem).unwrap();
    std::fs::write(p("other-ca.pem"), &other.cert_pem).unwrap();
    pki::write_pem_pair(&leaf, &p("naf.pem"), &p("naf.key")).unwrap();
    Pki {
        ca: p("ca.pem"),
        cert: p("naf.pem"),
        key: p("naf.key"),
        other_ca: p("other-ca.pem"),
        dir,
    }
}

// ---------------------------------------------------------------------------------
// NAF

/// Which organisation's Ua ids the NAF uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Org {
    ThreeGpp,
    Oma,
}

/// The NAF_Id rules, written out from TS 33.220 Annex H / OMNA (and seccf's OMA TLS 1.3
/// convention), independently of the agent's `ua` module.
pub fn psk_naf_id(org: Org, version: PskTlsVersion, suite: u16) -> NafId {
    let [hi, lo] = suite.to_be_bytes();
    let ua = match (org, version) {
        (Org::ThreeGpp, PskTlsVersion::Tls12) => [0x01, 0x00, 0x01, hi, lo],
        (Org::Oma, PskTlsVersion::Tls12) => [0x03, 0x00, 0x01, hi, lo],
        (Org::ThreeGpp, PskTlsVersion::Tls13) => [0x01, 0x00, 0x00, 0x00, 0x07],
        (Org::Oma, PskTlsVersion::Tls13) => [0x03, 0x00, 0x01, 0x13, 0x01],
    };
    NafId::new(NAF_HOST, UaSecurityProtocolId(ua)).unwrap()
}

pub fn digest_naf_id(org: Org, tls_suite: Option<u16>) -> NafId {
    let ua = match (org, tls_suite) {
        (_, None) => [0x01, 0x00, 0x00, 0x00, 0x02],
        (Org::ThreeGpp, Some(s)) => {
            let [hi, lo] = s.to_be_bytes();
            [0x01, 0x00, 0x01, hi, lo]
        }
        (Org::Oma, Some(s)) => {
            let [hi, lo] = s.to_be_bytes();
            [0x03, 0x00, 0x01, hi, lo]
        }
    };
    NafId::new(NAF_HOST, UaSecurityProtocolId(ua)).unwrap()
}

#[derive(Clone, Debug)]
pub struct DigestCfg {
    pub qop: Vec<Qop>,
    /// Answer the first correct credentials with 401 stale=true.
    pub stale_first: bool,
    /// Send a wrong rspauth.
    pub corrupt_rspauth: bool,
    /// Challenge with this realm instead of 3GPP-bootstrapping@localhost.
    pub realm: Option<String>,
    /// Send `Connection: close` with every 401.
    pub close_after_401: bool,
}

impl Default for DigestCfg {
    fn default() -> Self {
        DigestCfg {
            qop: vec![Qop::Auth, Qop::AuthInt],
            stale_first: false,
            corrupt_rspauth: false,
            realm: None,
            close_after_401: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct NafCfg {
    pub org: Org,
    /// Accept PSK-TLS.
    pub psk: bool,
    /// Serve a certificate (certificate TLS + Digest); with `psk`, both on one port.
    pub cert: Option<(PathBuf, PathBuf)>,
    pub tls13: bool,
    /// TLS at all (false: plain HTTP with Digest).
    pub tls: bool,
    /// Echo bytes instead of HTTP.
    pub echo: bool,
    pub digest: DigestCfg,
    pub hint: Option<String>,
}

impl NafCfg {
    pub fn psk(tls13: bool) -> NafCfg {
        NafCfg {
            org: Org::ThreeGpp,
            psk: true,
            cert: None,
            tls13,
            tls: true,
            echo: false,
            digest: DigestCfg::default(),
            hint: Some("3GPP-bootstrapping".into()),
        }
    }

    pub fn cert(pki: &Pki, tls13: bool) -> NafCfg {
        NafCfg {
            psk: false,
            cert: Some((pki.cert.clone(), pki.key.clone())),
            ..NafCfg::psk(tls13)
        }
    }
}

/// One accepted connection, as the NAF saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnSeen {
    /// `Some((identity, version))` for PSK connections.
    pub psk: Option<(String, PskTlsVersion)>,
    pub suite: u16,
}

/// One HTTP request, as the NAF saw it.
#[derive(Clone, Debug)]
pub struct RequestSeen {
    pub user_agent: Option<String>,
    pub authorization: Option<Credentials>,
    pub status: u16,
}

#[derive(Default, Debug)]
pub struct Log {
    /// Every identity the PSK callback was asked about.
    pub lookups: Vec<(String, PskTlsVersion, u16)>,
    pub conns: Vec<ConnSeen>,
    pub requests: Vec<RequestSeen>,
}

pub struct Naf {
    pub addr: SocketAddr,
    pub tls: bool,
    pub log: Arc<Mutex<Log>>,
    /// B-TIDs this NAF treats as unknown (as if Zn had said so); "*" = all.
    pub reject: Arc<Mutex<HashSet<String>>>,
    stop: watch::Sender<bool>,
}

impl Drop for Naf {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Naf {
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{NAF_HOST}:{}{path}", self.addr.port())
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }

    pub fn reject(&self, btid: &str) {
        self.reject.lock().unwrap().insert(btid.to_owned());
    }
}

struct Shared {
    cfg: NafCfg,
    store: Arc<SqliteStore>,
    log: Arc<Mutex<Log>>,
    reject: Arc<Mutex<HashSet<String>>>,
    issued: Mutex<HashSet<String>>,
    stale_sent: Mutex<bool>,
}

impl Naf {
    /// Starts a NAF; needs a multi-thread runtime when `cfg.psk` (the PSK lookup
    /// reads the KMC store with `block_in_place`).
    pub async fn start(cfg: NafCfg, store: Arc<SqliteStore>) -> Naf {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let reject = Arc::new(Mutex::new(HashSet::new()));
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            store: store.clone(),
            log: log.clone(),
            reject: reject.clone(),
            issued: Mutex::new(HashSet::new()),
            stale_sent: Mutex::new(false),
        });
        let acceptor = if cfg.tls {
            Some(Arc::new(acceptor(&shared)))
        } else {
            None
        };
        let (stop, mut rx) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    _ = rx.wait_for(|v| *v) => return,
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => return },
                };
                let shared = shared.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            let Ok(stream) = seccf_tls::server::accept(&acceptor, tcp).await else {
                                return;
                            };
                            let suite = stream
                                .ssl()
                                .current_cipher()
                                .map(|c| u16::from_be_bytes(c.protocol_id()))
                                .unwrap();
                            let psk = match psk_peer(&stream) {
                                PeerAuth::Psk {
                                    identity, version, ..
                                } => Some((identity, version)),
                                PeerAuth::None => None,
                            };
                            shared.log.lock().unwrap().conns.push(ConnSeen {
                                psk: psk.clone(),
                                suite,
                            });
                            serve_conn(shared, stream, psk, Some(suite)).await;
                        }
                        None => serve_conn(shared, tcp, None, None).await,
                    }
                });
            }
        });
        Naf {
            addr,
            tls: cfg.tls,
            log,
            reject,
            stop,
        }
    }
}

impl Shared {
    fn rejects(&self, btid: &str) -> bool {
        let r = self.reject.lock().unwrap();
        r.contains(btid) || r.contains("*")
    }
}

fn acceptor(shared: &Arc<Shared>) -> openssl::ssl::SslAcceptor {
    let cfg = &shared.cfg;
    if !cfg.psk {
        let (cert, key) = cfg.cert.clone().expect("a NAF needs PSK or a certificate");
        let mut b = seccf_tls::server::acceptor_builder(&seccf_tls::server::ServerTlsConfig {
            cert_file: cert,
            key_file: key,
            client_ca_file: None,
            require_client_cert: false,
        })
        .unwrap();
        if !cfg.tls13 {
            b.set_max_proto_version(Some(openssl::ssl::SslVersion::TLS1_2))
                .unwrap();
        }
        return b.build();
    }
    let server_cfg = PskServerConfig {
        identity_hint: cfg.hint.clone(),
        enable_tls13: cfg.tls13,
        certificate: cfg.cert.clone(),
        ..PskServerConfig::default()
    };
    let s = shared.clone();
    let lookup = move |req: &PskRequest<'_>| -> Option<SecretBytes> {
        let identity = std::str::from_utf8(req.identity).ok()?.to_owned();
        s.log
            .lock()
            .unwrap()
            .lookups
            .push((identity.clone(), req.version, req.cipher_suite));
        // Strict on purpose: the agent must send the prefixed form.
        let btid = identity.strip_prefix("3GPP-bootstrapping.")?;
        if s.rejects(btid) {
            return None;
        }
        let naf = psk_naf_id(s.cfg.org, req.version, req.cipher_suite);
        let store = s.store.clone();
        let key = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(kmc_key(&store, btid, &naf))
        })?;
        Some(SecretBytes::from(&key))
    };
    build_psk_acceptor(&server_cfg, Arc::new(lookup)).unwrap()
}

async fn serve_conn<S>(
    shared: Arc<Shared>,
    io: S,
    psk: Option<(String, PskTlsVersion)>,
    suite: Option<u16>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if shared.cfg.echo {
        echo(io).await;
        return;
    }
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let shared = shared.clone();
        let psk = psk.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let resp = respond(&shared, &parts, &body, psk.as_ref(), suite).await;
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// Echoes until end of input, then closes its sending side (after the echo).
async fn echo<S>(io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut r, mut w) = tokio::io::split(io);
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = w.shutdown().await;
}

fn challenge_headers(shared: &Shared, stale: bool) -> Vec<String> {
    let realm = shared
        .cfg
        .digest
        .realm
        .clone()
        .unwrap_or_else(|| format!("3GPP-bootstrapping@{NAF_HOST}"));
    let nonce = hex::encode(seccf_secret::random_array::<16>().unwrap());
    shared.issued.lock().unwrap().insert(nonce.clone());
    let mut c = Challenge::new(&realm, &nonce, Algorithm::Md5);
    c.qop = shared.cfg.digest.qop.clone();
    c.opaque = Some("op4que".into());
    c.stale = stale;
    // A non-GBA challenge first, as a gateway with plain users sends it.
    let users = Challenge::new("users@localhost", "n0nce", Algorithm::Sha256);
    vec![
        "Basic realm=\"legacy\"".to_owned(),
        users.to_header_value(),
        c.to_header_value(),
    ]
}

fn response(status: u16, body: String) -> http::Response<Full<Bytes>> {
    let mut r = http::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
    r
}

fn unauthorized(shared: &Shared, stale: bool) -> http::Response<Full<Bytes>> {
    let mut r = response(401, "unauthorized".into());
    for v in challenge_headers(shared, stale) {
        r.headers_mut()
            .append("www-authenticate", http::HeaderValue::from_str(&v).unwrap());
    }
    if shared.cfg.digest.close_after_401 {
        r.headers_mut()
            .insert("connection", http::HeaderValue::from_static("close"));
    }
    r
}

async fn respond(
    shared: &Shared,
    parts: &http::request::Parts,
    body: &[u8],
    psk: Option<&(String, PskTlsVersion)>,
    suite: Option<u16>,
) -> http::Response<Full<Bytes>> {
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let creds = header("authorization").and_then(|v| Credentials::parse(&v).ok());
    let resp = respond_inner(shared, parts, body, psk, suite, creds.as_ref()).await;
    shared.log.lock().unwrap().requests.push(RequestSeen {
        user_agent: header("user-agent"),
        authorization: creds,
        status: resp.status().as_u16(),
    });
    resp
}

async fn respond_inner(
    shared: &Shared,
    parts: &http::request::Parts,
    body: &[u8],
    psk: Option<&(String, PskTlsVersion)>,
    suite: Option<u16>,
    creds: Option<&Credentials>,
) -> http::Response<Full<Bytes>> {
    if let Some((identity, version)) = psk {
        return response(
            200,
            format!(
                "psk identity={identity} version={version} suite={:04x} path={}",
                suite.unwrap_or(0),
                parts.uri
            ),
        );
    }
    let Some(creds) = creds else {
        return unauthorized(shared, false);
    };
    let gba_realm = shared
        .cfg
        .digest
        .realm
        .clone()
        .unwrap_or_else(|| format!("3GPP-bootstrapping@{NAF_HOST}"));
    if creds.realm != gba_realm
        || !shared.issued.lock().unwrap().contains(&creds.nonce)
        || creds.opaque.as_deref() != Some("op4que")
        || creds.uri != parts.uri.to_string()
    {
        return response(400, "bad credentials".into());
    }
    let btid = creds.username.clone();
    if shared.rejects(&btid) {
        return unauthorized(shared, false);
    }
    let naf = digest_naf_id(shared.cfg.org, suite);
    let Some(key) = kmc_key(&shared.store, &btid, &naf).await else {
        return unauthorized(shared, false);
    };
    let password = base64::engine::general_purpose::STANDARD.encode(key.expose());
    if seccf_digest::verify(creds, password.as_bytes(), parts.method.as_str(), body).is_err() {
        return unauthorized(shared, false);
    }
    if shared.cfg.digest.stale_first {
        let mut sent = shared.stale_sent.lock().unwrap();
        if !*sent {
            *sent = true;
            drop(sent);
            return unauthorized(shared, true);
        }
    }
    let text = format!(
        "digest btid={btid} suite={} qop={}",
        suite
            .map(|s| format!("{s:04x}"))
            .unwrap_or_else(|| "none".into()),
        creds.qop.map(|q| q.token()).unwrap_or("none")
    );
    let mut info =
        seccf_digest::authentication_info(creds, password.as_bytes(), text.as_bytes(), None)
            .unwrap();
    if shared.cfg.digest.corrupt_rspauth {
        info.rspauth = Some("0".repeat(32));
    }
    let mut r = response(200, text);
    r.headers_mut().insert(
        "authentication-info",
        http::HeaderValue::from_str(&info.to_header_value()).unwrap(),
    );
    r
}

/// A GBA_ME or GBA_U agent for a fresh subscriber of `kmc`.
pub async fn agent(kmc: &Kmc, n: u32, gba_u: bool) -> seccf_seca::Agent<SoftUsim> {
    let impi = impi(n);
    kmc.add_subscriber(&impi, if gba_u { GbaType::U } else { GbaType::Me })
        .await;
    seccf_seca::Agent::new(soft_card(&impi, gba_u)).unwrap()
}
