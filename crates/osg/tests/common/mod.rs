//! Test harness: a real KMC (SQLite store, generated PKI) and a real OSG on loopback
//! ports, a recording HTTP echo upstream, a TCP upstream that decodes the PROXY v2
//! header, software-USIM agents, and TLS clients (certificate and PSK).
//!
//! The KMC start-up follows the idea of tests/e2e (not a dependency on that crate, which
//! may itself come to depend on this one).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use openssl::ssl::{SslConnector, SslVersion};
use seccf_gba::naf::{NafId, UaSecurityProtocolId};
use seccf_kmc::{Kmc, KmcConfig, KmcListeners};
use seccf_osg::{Osg, OsgConfig, OsgListeners};
use seccf_secret::{random_array, MasterKey, Secret, SecretBytes};
use seccf_store::sqlite::SqliteStore;
use seccf_store::Store;
use seccf_tls::pki::{self, CertifiedKey};
use seccf_tls::psk::{PskClientConfig, PskTlsVersion};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_openssl::SslStream;

pub const BSF_DOMAIN: &str = "bsf.osg.test";
pub const NAF_FQDN: &str = "naf.osg.test";

/// A subscriber with a software USIM.
#[derive(Clone, Debug)]
pub struct Sub {
    pub impi: String,
    pub k: String,
    pub opc: String,
}

impl Sub {
    pub fn random() -> Self {
        let n = u32::from_be_bytes(random_array().unwrap()) % 100_000_000;
        Sub {
            impi: format!("00101{n:010}@ims.mnc001.mcc001.3gppnetwork.org"),
            k: hex::encode(random_array::<16>().unwrap()),
            opc: hex::encode(random_array::<16>().unwrap()),
        }
    }
}

/// A bootstrapped terminal: B-TID and everything needed to derive NAF keys (GBA_ME).
#[derive(Clone)]
pub struct Terminal {
    pub btid: String,
    pub impi: String,
    pub rand: [u8; 16],
    pub ks: Secret<32>,
}

impl Terminal {
    /// Ks_NAF for this gateway and `ua`.
    pub fn naf_key(&self, ua: UaSecurityProtocolId) -> Secret<32> {
        let naf = NafId::new(NAF_FQDN, ua).unwrap();
        seccf_gba::naf::ks_naf(&self.ks, &self.rand, &self.impi, &naf).unwrap()
    }

    /// base64(Ks_NAF), the Digest password.
    pub fn digest_password(&self, ua: UaSecurityProtocolId) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(self.naf_key(ua).expose())
            .into_bytes()
    }
}

/// Options of a test environment.
#[derive(Clone)]
pub struct Options {
    pub nonce_lifetime_secs: u64,
    pub tls_handshake_timeout_secs: u64,
    pub required_flags: Vec<u32>,
    pub mtls_allow: Vec<String>,
    pub crl: bool,
    pub shutdown_grace_secs: u64,
    /// `ocsp` of the mtls listener ("off", "aia" or a URL) and hard-fail.
    pub ocsp: (String, bool),
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    /// More `[[osg.listener]]` tables appended to the configuration. Placeholders:
    /// `{dir}` (the temporary directory), `{srv_cert}`/`{srv_key}` (the gateway's
    /// certificate), `{ca}` (the test CA file), `{up1}`/`{up2}` (the two echo upstreams).
    pub extra_listeners: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nonce_lifetime_secs: 300,
            tls_handshake_timeout_secs: 3,
            required_flags: vec![],
            mtls_allow: vec!["client-1".into()],
            crl: false,
            shutdown_grace_secs: 5,
            ocsp: ("off".into(), false),
            idle_timeout_secs: 10,
            max_connections: 64,
            extra_listeners: String::new(),
        }
    }
}

/// Everything running for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub ca: CertifiedKey,
    pub ca_file: PathBuf,
    pub store: SqliteStore,
    pub ub_url: String,
    pub addrs: HashMap<String, SocketAddr>,
    pub admin: SocketAddr,
    pub upstream_seen: Arc<tokio::sync::Mutex<Vec<serde_json::Value>>>,
    /// What the second echo upstream (`{up2}`) saw.
    pub upstream2_seen: Arc<tokio::sync::Mutex<Vec<serde_json::Value>>>,
    /// The echo upstreams' addresses (`{up1}`, `{up2}`).
    pub upstreams: [SocketAddr; 2],
    pub tcp_seen: mpsc::UnboundedReceiver<seccf_osg::proxy_v2::ProxyHeader>,
    pub reload: seccf_osg::ReloadHandle,
    pub jwks: String,
    pub user_pw: String,
    kmc_stop: watch::Sender<bool>,
    pub osg_stop: watch::Sender<bool>,
    pub osg_task: Option<tokio::task::JoinHandle<Result<(), seccf_osg::OsgError>>>,
}

fn write_pair(dir: &Path, name: &str, ck: &CertifiedKey) -> (PathBuf, PathBuf) {
    let c = dir.join(format!("{name}.pem"));
    let k = dir.join(format!("{name}.key"));
    pki::write_pem_pair(ck, &c, &k).unwrap();
    (c, k)
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(Options::default()).await
    }

    pub async fn start_with(opt: Options) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let ca = pki::generate_ca("osg test CA", 30).unwrap();
        let ca_file = d.join("ca.pem");
        pki::write_pem_pair(&ca, &ca_file, &d.join("ca.key")).unwrap();
        let kmc_srv = pki::issue_server_cert(&ca, "kmc", &["localhost", "127.0.0.1"], 30).unwrap();
        write_pair(&d, "kmc", &kmc_srv);
        let naf = pki::issue_client_cert(&ca, "osg-zn", 30).unwrap();
        let (naf_cert, naf_key) = write_pair(&d, "osg-zn", &naf);
        let osg_srv =
            pki::issue_server_cert(&ca, NAF_FQDN, &[NAF_FQDN, "localhost", "127.0.0.1"], 30)
                .unwrap();
        let (srv_cert, srv_key) = write_pair(&d, "osg", &osg_srv);
        for cn in ["client-1", "client-2", "client-revoked"] {
            let c = pki::issue_client_cert(&ca, cn, 30).unwrap();
            write_pair(&d, cn, &c);
        }
        let crl_file = d.join("crl.pem");
        std::fs::write(&crl_file, pki::generate_crl(&ca, &[], 1, 30).unwrap()).unwrap();

        // KMC.
        let mk = MasterKey::generate().unwrap();
        let store_path = d.join("kmc.sqlite");
        let store = SqliteStore::open(&store_path, mk.clone()).unwrap();
        store
            .put_naf(&seccf_store::NafRecord {
                name: "osg".into(),
                fqdns: vec![NAF_FQDN.into()],
                cert_sha256: naf.sha256_fingerprint(),
                gba_u_aware: false,
            })
            .await
            .unwrap();
        let ub_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let zn_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let kadmin_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ub_addr = ub_l.local_addr().unwrap();
        let zn_addr = zn_l.local_addr().unwrap();
        let kadmin_addr = kadmin_l.local_addr().unwrap();
        let token_hash = hex::encode(sha2::Sha256::digest(b"t"));
        let kmc_cfg = format!(
            r#"
bsf_domain = "{BSF_DOMAIN}"
key_lifetime_secs = 600
challenge_lifetime_secs = 30
[ub]
listen = "{ub_addr}"
[zn]
listen = "{zn_addr}"
[zn.tls]
cert_file = "{d}/kmc.pem"
key_file = "{d}/kmc.key"
client_ca_file = "{d}/ca.pem"
require_client_cert = true
[admin]
listen = "{kadmin_addr}"
token_sha256 = "{token_hash}"
"#,
            d = d.display()
        );
        let kmc_cfg: KmcConfig = toml::from_str(&kmc_cfg).unwrap();
        let kmc = Kmc::new(
            kmc_cfg,
            SqliteStore::open(&store_path, mk.clone()).unwrap(),
            mk.derive_subkey("audit"),
        )
        .unwrap();
        let (kmc_stop, krx) = watch::channel(false);
        tokio::spawn(async move {
            kmc.run(
                KmcListeners {
                    ub: ub_l,
                    zn: zn_l,
                    admin: kadmin_l,
                },
                krx,
            )
            .await
            .unwrap();
        });

        // Upstreams.
        let (http_addr, upstream_seen) = start_echo_upstream("1").await;
        let (http2_addr, upstream2_seen) = start_echo_upstream("2").await;
        let (tcp_addr, tcp_seen) = start_tcp_upstream().await;

        // Plain Digest users.
        let user_pw = "correct horse".to_string();
        let ha1 =
            seccf_osg::users::sha256_ha1("bob", &format!("seccf@{NAF_FQDN}"), user_pw.as_bytes());
        let users_file = d.join("users.txt");
        std::fs::write(
            &users_file,
            format!(
                "# test users\nbob:seccf@{NAF_FQDN}:{}\n",
                hex::encode(ha1.expose())
            ),
        )
        .unwrap();

        let mut crl_line = if opt.crl {
            format!(", crl_files = [\"{}\"]", crl_file.display())
        } else {
            String::new()
        };
        crl_line.push_str(&format!(
            ", ocsp = \"{}\", revocation_hard_fail = {}",
            opt.ocsp.0, opt.ocsp.1
        ));
        let limits = format!(
            "limits = {{ tls_handshake_timeout_secs = {}, header_read_timeout_secs = 3, idle_timeout_secs = {}, upstream_timeout_secs = 5, max_connections = {} }}",
            opt.tls_handshake_timeout_secs, opt.idle_timeout_secs, opt.max_connections
        );
        let osg_cfg = format!(
            r#"
[osg]
fqdn = "{NAF_FQDN}"
shutdown_grace_secs = {grace}
[osg.kmc]
url = "https://{zn_addr}"
tls = {{ ca_file = "{d}/ca.pem", client_cert_file = "{naf_cert}", client_key_file = "{naf_key}" }}
connections = 2
[osg.admin]
listen = "127.0.0.1:0"
[[osg.listener]]
name = "psk"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk"]
upstream = "http://{http_addr}"
required_flags = {flags:?}
{limits}
[[osg.listener]]
name = "digest"
listen = "127.0.0.1:0"
kind = "https"
auth = ["digest"]
tls = {{ cert_file = "{srv_cert}", key_file = "{srv_key}" }}
digest_users_file = "{users}"
nonce_lifetime_secs = {nonce}
upstream = "http://{http_addr}"
required_flags = {flags:?}
{limits}
[[osg.listener]]
name = "gba-digest"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk", "digest"]
tls = {{ cert_file = "{srv_cert}", key_file = "{srv_key}" }}
upstream = "http://{http_addr}"
{limits}
[[osg.listener]]
name = "mtls"
listen = "127.0.0.1:0"
kind = "https"
auth = ["mtls"]
tls = {{ cert_file = "{srv_cert}", key_file = "{srv_key}", client_ca_file = "{d}/ca.pem"{crl_line} }}
upstream = "http://{http_addr}"
allow = {allow:?}
{limits}
[[osg.listener]]
name = "psk-oma"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk"]
ua_org = "oma"
upstream = "http://{http_addr}"
{limits}
[[osg.listener]]
name = "tunnel"
listen = "127.0.0.1:0"
kind = "tcp"
auth = ["psk"]
upstream = "{tcp_addr}"
proxy_protocol = true
{limits}
"#,
            d = d.display(),
            naf_cert = naf_cert.display(),
            naf_key = naf_key.display(),
            srv_cert = srv_cert.display(),
            srv_key = srv_key.display(),
            users = users_file.display(),
            nonce = opt.nonce_lifetime_secs,
            flags = opt.required_flags,
            allow = opt.mtls_allow,
            grace = opt.shutdown_grace_secs,
        );
        let extra = opt
            .extra_listeners
            .replace("{dir}", &d.display().to_string())
            .replace("{srv_cert}", &srv_cert.display().to_string())
            .replace("{srv_key}", &srv_key.display().to_string())
            .replace("{ca}", &ca_file.display().to_string())
            .replace("{up1}", &http_addr.to_string())
            .replace("{up2}", &http2_addr.to_string());
        let osg_cfg = format!("{osg_cfg}\n{extra}");
        std::fs::write(d.join("osg.toml"), &osg_cfg).unwrap();
        let cfg = OsgConfig::from_file(&d.join("osg.toml")).unwrap();
        let mut listeners = OsgListeners::default();
        let mut addrs = HashMap::new();
        for l in &cfg.listeners {
            let s = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.insert(l.name.clone(), s.local_addr().unwrap());
            listeners.listeners.insert(l.name.clone(), s);
        }
        let admin_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = admin_l.local_addr().unwrap();
        listeners.admin = Some(admin_l);
        let osg = Osg::new(cfg).unwrap();
        let reload = osg.reload_handle();
        let jwks = osg.jwks_json();
        let (osg_stop, orx) = watch::channel(false);
        let osg_task = tokio::spawn(osg.run(listeners, orx));
        Env {
            dir,
            ca,
            ca_file,
            store,
            ub_url: format!("http://{ub_addr}/"),
            addrs,
            admin,
            upstream_seen,
            upstream2_seen,
            upstreams: [http_addr, http2_addr],
            tcp_seen,
            reload,
            jwks,
            user_pw,
            kmc_stop,
            osg_stop,
            osg_task: Some(osg_task),
        }
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        self.addrs[name]
    }

    /// `host:port` of echo upstream 1 or 2 (the `aud` of assertions sent to it).
    pub fn upstream_authority(&self, n: usize) -> String {
        self.upstreams[n - 1].to_string()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds a GBA_ME subscriber (with optional USS) and bootstraps a terminal for it.
    pub async fn terminal_with(&self, uss: Option<seccf_store::UserSecuritySettings>) -> Terminal {
        let sub = Sub::random();
        let spec = seccf_kmc::admin::SubscriberSpec {
            impi: sub.impi.clone(),
            k: sub.k.clone().into(),
            opc: Some(sub.opc.clone().into()),
            gba_type: Some("GBA_ME".into()),
            uss,
            ..Default::default()
        };
        self.store
            .insert_subscriber(&spec.to_subscriber().unwrap())
            .await
            .unwrap();
        let usim = self
            .dir
            .path()
            .join(format!("usim-{}.toml", &sub.impi[..15]));
        std::fs::write(
            &usim,
            format!(
                "impi = \"{}\"\nk = \"{}\"\nopc = \"{}\"\namf = \"8000\"\ngba_u = false\n",
                sub.impi, sub.k, sub.opc
            ),
        )
        .unwrap();
        let card = seccf_uicc::soft::SoftUsim::open(&usim, None).unwrap();
        let mut agent = seccf_seca::Agent::new(seccf_uicc::Usim::new(card)).unwrap();
        let ctx = agent.bootstrap(&self.ub_url).await.unwrap();
        Terminal {
            btid: ctx.btid.clone(),
            impi: ctx.impi.clone(),
            rand: ctx.rand,
            ks: ctx.ks.clone().expect("GBA_ME keeps Ks"),
        }
    }

    pub async fn terminal(&self) -> Terminal {
        self.terminal_with(None).await
    }

    /// Certificate-TLS connector trusting the test CA, optionally with a client cert,
    /// optionally capped at TLS 1.2.
    pub fn connector(&self, client: Option<&str>, tls12_only: bool) -> SslConnector {
        let cfg = seccf_tls::client::ClientTlsConfig {
            ca_file: self.ca_file.clone(),
            client_cert_file: client.map(|c| self.path(&format!("{c}.pem"))),
            client_key_file: client.map(|c| self.path(&format!("{c}.key"))),
        };
        let mut b = seccf_tls::client::connector_builder(&cfg).unwrap();
        if tls12_only {
            b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        }
        b.build()
    }

    /// A PSK connector for `t` (keys derived like the agent would, from the suite).
    pub fn psk_connector(
        &self,
        t: &Terminal,
        max: Option<PskTlsVersion>,
        tls12_ciphers: Option<&str>,
        tamper: bool,
    ) -> SslConnector {
        self.psk_connector_org(t, max, tls12_ciphers, tamper, false)
    }

    /// [`Env::psk_connector`] with the OMA Ua ids when `oma`.
    pub fn psk_connector_org(
        &self,
        t: &Terminal,
        max: Option<PskTlsVersion>,
        tls12_ciphers: Option<&str>,
        tamper: bool,
        oma: bool,
    ) -> SslConnector {
        let t = t.clone();
        let keys = move |_hint: Option<&[u8]>, v: PskTlsVersion, suite: u16| {
            let ua = match (v, oma) {
                (PskTlsVersion::Tls12, false) => UaSecurityProtocolId::tls_3gpp(suite),
                (PskTlsVersion::Tls13, false) => UaSecurityProtocolId::TLS13_SHARED_KEY,
                (PskTlsVersion::Tls12, true) => UaSecurityProtocolId::tls_oma(suite),
                (PskTlsVersion::Tls13, true) => UaSecurityProtocolId::tls_oma(0x1301),
            };
            let mut k = *t.naf_key(ua).expose();
            if tamper {
                k[0] ^= 1;
            }
            Some((
                format!("3GPP-bootstrapping.{}", t.btid),
                SecretBytes::new(k.to_vec()),
            ))
        };
        let mut cfg = PskClientConfig {
            max_version: max,
            ..PskClientConfig::default()
        };
        if let Some(c) = tls12_ciphers {
            cfg.tls12_ciphers = c.to_string();
        }
        seccf_tls::psk::build_psk_connector(&cfg, Arc::new(keys)).unwrap()
    }

    /// Upstream requests recorded so far.
    pub async fn last_upstream(&self) -> serde_json::Value {
        self.upstream_seen
            .lock()
            .await
            .last()
            .cloned()
            .expect("upstream saw a request")
    }

    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.admin).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        (status, body)
    }

    pub async fn metric(&self, prefix: &str) -> f64 {
        let (_, body) = self.admin_get("/metrics").await;
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn stop(mut self) {
        let _ = self.osg_stop.send(true);
        if let Some(t) = self.osg_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
        let _ = self.kmc_stop.send(true);
    }
}

/// TLS to a listener with SNI/verification for the gateway FQDN.
pub async fn tls_connect(
    addr: SocketAddr,
    c: &SslConnector,
) -> Result<SslStream<TcpStream>, seccf_tls::TlsError> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    seccf_tls::client::connect(c, NAF_FQDN, tcp).await
}

/// PSK-TLS to a listener.
pub async fn psk_connect(
    addr: SocketAddr,
    c: &SslConnector,
) -> Result<SslStream<TcpStream>, seccf_tls::TlsError> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        seccf_tls::psk::psk_connect(c, NAF_FQDN, tcp),
    )
    .await
    .expect("PSK handshake finished")
}

/// IANA id of the negotiated suite.
pub fn suite_of<S>(s: &SslStream<S>) -> u16 {
    u16::from_be_bytes(s.ssl().current_cipher().unwrap().protocol_id())
}

/// An HTTP/1.1 client connection.
pub async fn h1(stream: SslStream<TcpStream>) -> SendRequest<Full<Bytes>> {
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// A response, fully read.
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, n: &str) -> Option<&str> {
        self.headers.get(n).and_then(|v| v.to_str().ok())
    }
    pub fn all(&self, n: &str) -> Vec<String> {
        self.headers
            .get_all(n)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub async fn send(
    s: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut b = http::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        b = b.header("host", NAF_FQDN);
    }
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let req = b.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    s.ready().await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), s.send_request(req))
        .await
        .expect("response in time")
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body,
    }
}

/// The GBA challenge among the `WWW-Authenticate` values.
pub fn gba_challenge(r: &Resp) -> seccf_digest::Challenge {
    r.all("www-authenticate")
        .iter()
        .map(|v| seccf_digest::Challenge::parse(v).unwrap())
        .find(|c| c.realm.starts_with("3GPP-bootstrapping@"))
        .expect("a GBA challenge")
}

/// Echo upstream: records each request as JSON {upstream: tag, method, uri, headers{},
/// body}, answers with the same JSON. A path ending in `/slow` waits 1.5 s first.
async fn start_echo_upstream(
    tag: &'static str,
) -> (SocketAddr, Arc<tokio::sync::Mutex<Vec<serde_json::Value>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                break;
            };
            let seen = seen2.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let slow = req.uri().path().ends_with("/slow");
                            let mut headers = serde_json::Map::new();
                            for (n, v) in req.headers() {
                                let v = v.to_str().unwrap_or("").to_string();
                                headers
                                    .entry(n.as_str().to_string())
                                    .and_modify(|e| {
                                        if let serde_json::Value::String(s) = e {
                                            s.push_str(", ");
                                            s.push_str(&v);
                                        }
                                    })
                                    .or_insert(serde_json::Value::String(v));
                            }
                            let method = req.method().to_string();
                            let uri = req.uri().to_string();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let j = serde_json::json!({
                                "upstream": tag,
                                "method": method, "uri": uri, "headers": headers,
                                "body": String::from_utf8_lossy(&body),
                            });
                            seen.lock().await.push(j.clone());
                            if slow {
                                tokio::time::sleep(Duration::from_millis(1500)).await;
                            }
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::from(j.to_string()),
                            )))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// TCP upstream: reads a PROXY v2 header, reports it, then echoes.
async fn start_tcp_upstream() -> (
    SocketAddr,
    mpsc::UnboundedReceiver<seccf_osg::proxy_v2::ProxyHeader>,
) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = l.accept().await else {
                break;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                let (header, used) = loop {
                    match seccf_osg::proxy_v2::decode(&buf) {
                        Ok(Some(h)) => break h,
                        Ok(None) => {}
                        Err(_) => return,
                    }
                    let n = tcp.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                };
                let _ = tx.send(header);
                let rest = buf[used..].to_vec();
                if !rest.is_empty() {
                    let _ = tcp.write_all(&rest).await;
                }
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, rx)
}
