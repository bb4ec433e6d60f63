//! Test harness for end-to-end tests: a real KMC (SQLite store, generated PKI) on
//! loopback ports, software USIMs, and the agent and gateway-side clients.

use std::path::{Path, PathBuf};

use seccf_kmc::zn_client::ZnClient;
use seccf_kmc::{Kmc, KmcConfig, KmcListeners};
use seccf_secret::{random_array, MasterKey};
use seccf_store::sqlite::SqliteStore;
use seccf_store::Store;
use seccf_tls::pki::{self, CertifiedKey};
use sha2::Digest;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// B-TID domain of test KMCs.
pub const BSF_DOMAIN: &str = "bsf.e2e.test";
/// FQDN the test NAF is registered for.
pub const NAF_FQDN: &str = "naf.e2e.test";
/// Admin bearer token of test KMCs.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

/// A test subscriber.
#[derive(Clone, Debug)]
pub struct TestSub {
    /// IMPI.
    pub impi: String,
    /// K hex.
    pub k: String,
    /// OPc hex.
    pub opc: String,
    /// GBA_U card.
    pub gba_u: bool,
}

impl TestSub {
    /// Random credentials.
    pub fn random(tag: &str, gba_u: bool) -> Self {
        let n = u32::from_be_bytes(random_array().unwrap()) % 100_000_000;
        TestSub {
            impi: format!("00101{tag}{n:08}@ims.mnc001.mcc001.3gppnetwork.org"),
            k: hex::encode(random_array::<16>().unwrap()),
            opc: hex::encode(random_array::<16>().unwrap()),
            gba_u,
        }
    }

    /// Writes a software USIM file for it.
    pub fn write_usim(&self, dir: &Path) -> PathBuf {
        let p = dir.join(format!("usim-{}.toml", &self.impi[..16]));
        std::fs::write(
            &p,
            format!(
                "impi = \"{}\"\nk = \"{}\"\nopc = \"{}\"\namf = \"8000\"\ngba_u = {}\n",
                self.impi, self.k, self.opc, self.gba_u
            ),
        )
        .unwrap();
        p
    }
}

/// A running KMC and everything needed to talk to it.
pub struct TestKmc {
    /// Working directory (store, PKI, USIM files).
    pub dir: tempfile::TempDir,
    /// Ub base URL.
    pub ub_url: String,
    /// Zn address (host:port).
    pub zn_addr: String,
    /// Admin base URL.
    pub admin_url: String,
    /// Ub socket address.
    pub ub_addr: std::net::SocketAddr,
    /// The test CA.
    pub ca: CertifiedKey,
    /// CA file.
    pub ca_file: PathBuf,
    /// Registered NAF client cert/key files.
    pub naf_cert: PathBuf,
    /// Key of the registered NAF.
    pub naf_key: PathBuf,
    /// Store handle (a second connection to the same file).
    pub store: SqliteStore,
    /// Store file.
    pub store_path: PathBuf,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TestKmc {
    /// Starts a KMC with a fresh store. `limits_toml` is inserted into each listener table.
    pub async fn start() -> Self {
        Self::start_with("header_read_timeout_secs = 2\nbody_read_timeout_secs = 2\ntls_handshake_timeout_secs = 2\n").await
    }

    /// Starts a KMC with the given listener limits.
    pub async fn start_with(limits_toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = pki::generate_ca("e2e CA", 30).unwrap();
        let ca_file = d.join("ca.pem");
        pki::write_pem_pair(&ca, &ca_file, &d.join("ca.key")).unwrap();
        let server = pki::issue_server_cert(&ca, "kmc", &["localhost", "127.0.0.1"], 30).unwrap();
        pki::write_pem_pair(&server, &d.join("kmc.pem"), &d.join("kmc.key")).unwrap();
        let naf = pki::issue_client_cert(&ca, "naf", 30).unwrap();
        let naf_cert = d.join("naf.pem");
        let naf_key = d.join("naf.key");
        pki::write_pem_pair(&naf, &naf_cert, &naf_key).unwrap();

        let mk = MasterKey::generate().unwrap();
        let store_path = d.join("kmc.sqlite");
        let store = SqliteStore::open(&store_path, mk.clone()).unwrap();
        store
            .put_naf(&seccf_store::NafRecord {
                name: "e2e-naf".into(),
                fqdns: vec![NAF_FQDN.into()],
                cert_sha256: naf.sha256_fingerprint(),
                gba_u_aware: true,
            })
            .await
            .unwrap();

        let ub_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let zn_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ub_addr = ub_l.local_addr().unwrap();
        let zn_addr = zn_l.local_addr().unwrap();
        let admin_addr = admin_l.local_addr().unwrap();
        let token_hash = hex::encode(sha2::Sha256::digest(ADMIN_TOKEN.as_bytes()));
        let cfg_text = format!(
            r#"
bsf_domain = "{BSF_DOMAIN}"
key_lifetime_secs = 600
challenge_lifetime_secs = 30
[ub]
listen = "{ub_addr}"
[ub.limits]
{limits_toml}
[zn]
listen = "{zn_addr}"
[zn.tls]
cert_file = "{d}/kmc.pem"
key_file = "{d}/kmc.key"
client_ca_file = "{d}/ca.pem"
require_client_cert = true
[zn.limits]
{limits_toml}
[admin]
listen = "{admin_addr}"
token_sha256 = "{token_hash}"
"#,
            d = d.display()
        );
        let cfg: KmcConfig = toml::from_str(&cfg_text).unwrap();
        let kmc_store = SqliteStore::open(&store_path, mk.clone()).unwrap();
        let kmc = Kmc::new(cfg, kmc_store, mk.derive_subkey("audit")).unwrap();
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            kmc.run(
                KmcListeners {
                    ub: ub_l,
                    zn: zn_l,
                    admin: admin_l,
                },
                rx,
            )
            .await
            .unwrap();
        });
        TestKmc {
            ub_url: format!("http://{ub_addr}/"),
            zn_addr: zn_addr.to_string(),
            admin_url: format!("http://{admin_addr}"),
            ub_addr,
            ca,
            ca_file,
            naf_cert,
            naf_key,
            store,
            store_path,
            dir,
            shutdown: tx,
            task,
        }
    }

    /// Adds a subscriber to the store.
    pub async fn add(&self, sub: &TestSub) {
        let spec = seccf_kmc::admin::SubscriberSpec {
            impi: sub.impi.clone(),
            k: sub.k.clone().into(),
            opc: Some(sub.opc.clone().into()),
            gba_type: Some(if sub.gba_u { "GBA_U" } else { "GBA_ME" }.into()),
            ..Default::default()
        };
        self.store
            .insert_subscriber(&spec.to_subscriber().unwrap())
            .await
            .unwrap();
    }

    /// A Zn client with the registered NAF certificate.
    pub fn zn(&self) -> ZnClient {
        self.zn_with(Some((self.naf_cert.clone(), self.naf_key.clone())))
    }

    /// A Zn client with the given client certificate (or none).
    pub fn zn_with(&self, cert: Option<(PathBuf, PathBuf)>) -> ZnClient {
        let tls = seccf_tls::client::ClientTlsConfig {
            ca_file: self.ca_file.clone(),
            client_cert_file: cert.as_ref().map(|c| c.0.clone()),
            client_key_file: cert.map(|c| c.1),
        };
        ZnClient::new(&self.zn_addr, &tls).unwrap()
    }

    /// An agent over a soft USIM for `sub` (state in the test dir).
    pub fn agent(&self, sub: &TestSub) -> seccf_seca::Agent<seccf_uicc::soft::SoftUsim> {
        let usim_file = sub.write_usim(self.dir.path());
        let mut state = usim_file.clone().into_os_string();
        state.push(".state");
        let card = seccf_uicc::soft::SoftUsim::open(&usim_file, Some(Path::new(&state))).unwrap();
        seccf_seca::Agent::new(seccf_uicc::Usim::new(card)).unwrap()
    }

    /// Prometheus text of the admin listener.
    pub async fn metrics(&self) -> String {
        let addr = self
            .admin_url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let r = http_request(addr, "GET", "/metrics", &[], b"").await;
        String::from_utf8_lossy(&r.body).into_owned()
    }

    /// Sum of the samples of a metric line prefix.
    pub async fn metric(&self, prefix: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Stops the KMC, waits for it, and hands back the working directory (deleted when
    /// the returned value is dropped).
    pub async fn stop(self) -> tempfile::TempDir {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        drop(self.store);
        self.dir
    }
}

/// Sends raw bytes on a new TCP connection and returns whatever comes back before the
/// server closes or `wait` passes.
pub async fn raw_exchange(
    addr: std::net::SocketAddr,
    bytes: &[u8],
    wait: std::time::Duration,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// Status code of the first response in `text` (0 when none).
pub fn status_of(text: &str) -> u16 {
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// First header value with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), written by hand so
/// tests control every byte.
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let text = raw_exchange_bytes(addr, &bytes, std::time::Duration::from_secs(10)).await;
    parse_response(&text)
}

async fn raw_exchange_bytes(
    addr: std::net::SocketAddr,
    bytes: &[u8],
    wait: std::time::Duration,
) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut buf)).await;
    buf
}

/// Parses a complete HTTP/1.1 response (Content-Length or close-delimited body).
pub fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw.get(split + 4..).unwrap_or_default().to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}
