//! The agent's clients against the real gateway: a real KMC (`seccf_kmc::Kmc`, Ub and
//! Zn over mutual TLS, SQLite) and a real OSG (`seccf_osg::Osg::new` with its Zn client
//! and key cache) on loopback ports, with an HTTP echo resource and a TCP echo
//! resource behind it.
//!
//! One environment, several flows: PSK-TLS (3GPP ids) on an `auth = ["psk"]` listener
//! with the identity the resource receives, certificate TLS + Digest on an
//! `auth = ["digest"]` listener, both offered on an `auth = ["psk", "digest"]` one, the
//! TCP tunnel, and a re-bootstrap when the gateway's KMC no longer knows the B-TID.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use seccf_gba::{GbaType, Secret, SqnWindow};
use seccf_kmc::{Kmc, KmcConfig, KmcListeners};
use seccf_osg::{Osg, OsgConfig, OsgListeners};
use seccf_seca::gateway::{GatewayAuth, GatewayClient, GatewayOptions, Prefer};
use seccf_seca::tunnel::{serve_tunnel, TunnelConfig};
use seccf_seca::Agent;
use seccf_secret::MasterKey;
use seccf_store::sqlite::SqliteStore;
use seccf_store::{Store, Subscriber, UserSecuritySettings};
use seccf_tls::pki;
use seccf_uicc::soft::{SoftUsim, SoftUsimConfig};
use seccf_uicc::Usim;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const BSF_DOMAIN: &str = "bsf.seca-osg.test";
/// The gateway's FQDN: it must resolve, as the agent connects to the host it derives
/// keys for.
const FQDN: &str = "localhost";
const K: &str = "000102030405060708090a0b0c0d0e0f";
const OPC: &str = "101112131415161718191a1b1c1d1e1f";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Env {
    dir: tempfile::TempDir,
    store: SqliteStore,
    ub_url: String,
    addrs: HashMap<String, SocketAddr>,
    stops: Vec<watch::Sender<bool>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for s in &self.stops {
            let _ = s.send(true);
        }
    }
}

impl Env {
    fn url(&self, listener: &str, path: &str) -> String {
        format!("https://{FQDN}:{}{path}", self.addrs[listener].port())
    }

    fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    async fn agent(&self, n: u32) -> Agent<SoftUsim> {
        let impi = format!("0010100000{n:05}@ims.mnc001.mcc001.3gppnetwork.org");
        self.store
            .insert_subscriber(&Subscriber {
                impi: impi.clone(),
                k: Secret::from_hex(K).unwrap(),
                opc: Secret::from_hex(OPC).unwrap(),
                amf: [0x80, 0x00],
                sqn: 0,
                gba_type: GbaType::Me,
                key_lifetime_secs: None,
                uss: UserSecuritySettings::default(),
            })
            .await
            .unwrap();
        Agent::new(Usim::new(SoftUsim::from_config(SoftUsimConfig {
            impi,
            k: Secret::from_hex(K).unwrap(),
            opc: Secret::from_hex(OPC).unwrap(),
            amf: [0x80, 0x00],
            gba_u: false,
            sqn_window: None,
            delta: SqnWindow::DEFAULT_DELTA,
        })))
        .unwrap()
    }
}

fn write_pair(dir: &Path, name: &str, ck: &pki::CertifiedKey) {
    pki::write_pem_pair(
        ck,
        &dir.join(format!("{name}.pem")),
        &dir.join(format!("{name}.key")),
    )
    .unwrap();
}

/// HTTP resource that answers with the request headers it received, one per line.
async fn http_echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let mut text = format!("{} {}\n", req.method(), req.uri());
                    for (n, v) in req.headers() {
                        text.push_str(&format!("{n}: {}\n", v.to_str().unwrap_or("?")));
                    }
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(
                        text,
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// TCP resource that echoes until end of input, then closes.
async fn tcp_echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

async fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = pki::generate_ca("seca-osg test CA", 2).unwrap();
    pki::write_pem_pair(&ca, &d.join("ca.pem"), &d.join("ca.key")).unwrap();
    write_pair(
        d,
        "kmc",
        &pki::issue_server_cert(&ca, "kmc", &["127.0.0.1"], 2).unwrap(),
    );
    let zn_client = pki::issue_client_cert(&ca, "osg-zn", 2).unwrap();
    write_pair(d, "osg-zn", &zn_client);
    write_pair(
        d,
        "osg",
        &pki::issue_server_cert(&ca, FQDN, &[FQDN, "127.0.0.1"], 2).unwrap(),
    );

    // KMC: its own store handle and ours on the same SQLite file.
    let mk = MasterKey::generate().unwrap();
    let db = d.join("kmc.sqlite");
    let store = SqliteStore::open(&db, mk.clone()).unwrap();
    store
        .put_naf(&seccf_store::NafRecord {
            name: "osg".into(),
            fqdns: vec![FQDN.into()],
            cert_sha256: zn_client.sha256_fingerprint(),
            gba_u_aware: false,
        })
        .await
        .unwrap();
    let ub = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let zn = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ub_addr, zn_addr, admin_addr) = (
        ub.local_addr().unwrap(),
        zn.local_addr().unwrap(),
        admin.local_addr().unwrap(),
    );
    let kmc_cfg: KmcConfig = toml::from_str(&format!(
        r#"
bsf_domain = "{BSF_DOMAIN}"
key_lifetime_secs = 600
[ub]
listen = "{ub_addr}"
[zn]
listen = "{zn_addr}"
tls = {{ cert_file = "{d}/kmc.pem", key_file = "{d}/kmc.key", client_ca_file = "{d}/ca.pem", require_client_cert = true }}
[admin]
listen = "{admin_addr}"
token_sha256 = "{token}"
"#,
        d = d.display(),
        token = hex::encode(openssl::sha::sha256(b"unused")),
    ))
    .unwrap();
    let kmc = Kmc::new(
        kmc_cfg,
        SqliteStore::open(&db, mk.clone()).unwrap(),
        mk.derive_subkey("audit"),
    )
    .unwrap();
    let (kmc_stop, krx) = watch::channel(false);
    tokio::spawn(async move {
        kmc.run(KmcListeners { ub, zn, admin }, krx).await.unwrap();
    });

    // OSG.
    let http_up = http_echo().await;
    let tcp_up = tcp_echo().await;
    let cert = format!(
        "cert_file = \"{d}/osg.pem\", key_file = \"{d}/osg.key\"",
        d = d.display()
    );
    let osg_cfg = OsgConfig::from_toml_str(&format!(
        r#"
[osg]
fqdn = "{FQDN}"
shutdown_grace_secs = 1
[osg.kmc]
url = "https://{zn_addr}"
tls = {{ ca_file = "{d}/ca.pem", client_cert_file = "{d}/osg-zn.pem", client_key_file = "{d}/osg-zn.key" }}
connections = 1
[[osg.listener]]
name = "psk"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk"]
upstream = "http://{http_up}"
[[osg.listener]]
name = "digest"
listen = "127.0.0.1:0"
kind = "https"
auth = ["digest"]
tls = {{ {cert} }}
upstream = "http://{http_up}"
[[osg.listener]]
name = "both"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk", "digest"]
tls = {{ {cert} }}
upstream = "http://{http_up}"
[[osg.listener]]
name = "tunnel"
listen = "127.0.0.1:0"
kind = "tcp"
auth = ["psk"]
upstream = "{tcp_up}"
"#,
        d = d.display(),
    ))
    .unwrap();
    let mut listeners = OsgListeners::default();
    let mut addrs = HashMap::new();
    for l in &osg_cfg.listeners {
        let s = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.insert(l.name.clone(), s.local_addr().unwrap());
        listeners.listeners.insert(l.name.clone(), s);
    }
    let osg = Osg::new(osg_cfg).unwrap();
    let (osg_stop, orx) = watch::channel(false);
    tokio::spawn(async move {
        osg.run(listeners, orx).await.unwrap();
    });
    Env {
        dir,
        store,
        ub_url: format!("http://{ub_addr}/"),
        addrs,
        stops: vec![kmc_stop, osg_stop],
    }
}

fn text(r: &seccf_seca::http::HttpResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_clients_against_the_real_osg() {
    let env = start().await;

    // PSK-TLS: the resource receives the identity the KMC released for the B-TID.
    let agent = env.agent(1).await;
    let impi = agent.impi().to_owned();
    let mut psk = GatewayClient::new(agent, Some(env.ub_url.clone()), GatewayOptions::default());
    let resp = psk.get(&env.url("psk", "/hello?a=b")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", text(&resp));
    let body = text(&resp);
    assert!(body.starts_with("GET /hello?a=b\n"), "{body}");
    let asserted = body
        .lines()
        .find_map(|l| l.strip_prefix("x-3gpp-asserted-identity: "))
        .unwrap_or_else(|| panic!("no asserted identity in {body}"));
    assert!(asserted.contains(&impi), "{asserted}");
    assert!(matches!(psk.last_auth(), Some(GatewayAuth::Psk { .. })));
    // Keep-alive on the PSK connection.
    assert_eq!(
        psk.get(&env.url("psk", "/again")).await.unwrap().status,
        200
    );

    // Certificate TLS + GBA Digest.
    let mut digest = GatewayClient::new(
        env.agent(2).await,
        Some(env.ub_url.clone()),
        GatewayOptions {
            ca_file: Some(env.ca()),
            prefer: Prefer::Digest,
            ..GatewayOptions::default()
        },
    );
    let resp = digest.get(&env.url("digest", "/d")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", text(&resp));
    assert!(
        text(&resp).contains("x-3gpp-asserted-identity: "),
        "{}",
        text(&resp)
    );
    assert!(
        !text(&resp)
            .to_ascii_lowercase()
            .contains("\nauthorization:"),
        "the gateway does not forward the credentials"
    );
    assert!(matches!(
        digest.last_auth(),
        Some(GatewayAuth::Digest {
            tls_cipher_suite: Some(_),
            ..
        })
    ));

    // Both offered on one port: Auto with a CA takes the PSK.
    let mut auto = GatewayClient::new(
        env.agent(3).await,
        Some(env.ub_url.clone()),
        GatewayOptions {
            ca_file: Some(env.ca()),
            ..GatewayOptions::default()
        },
    );
    assert_eq!(auto.get(&env.url("both", "/b")).await.unwrap().status, 200);
    assert!(matches!(auto.last_auth(), Some(GatewayAuth::Psk { .. })));

    // A context the KMC no longer has (the gateway has never cached it): the gateway
    // refuses the B-TID and the agent bootstraps once more.
    let mut stale = env.agent(4).await;
    let old = stale.bootstrap(&env.ub_url).await.unwrap();
    env.store.gc(now() + 3600).await.unwrap();
    let mut client = GatewayClient::new(stale, Some(env.ub_url.clone()), GatewayOptions::default());
    let resp = client.get(&env.url("psk", "/")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", text(&resp));
    match client.last_auth() {
        Some(GatewayAuth::Psk { identity, .. }) => {
            assert!(identity.starts_with("3GPP-bootstrapping."));
            assert_ne!(identity, &format!("3GPP-bootstrapping.{}", old.btid));
        }
        other => panic!("{other:?}"),
    }

    // The TCP tunnel.
    let local = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local_addr = local.local_addr().unwrap();
    let mut cfg = TunnelConfig::new(&env.addrs["tunnel"].to_string(), FQDN);
    cfg.ub_url = Some(env.ub_url.clone());
    let (stop, rx) = watch::channel(false);
    let tunnel = tokio::spawn(serve_tunnel(local, cfg, env.agent(5).await, async move {
        let mut rx = rx;
        let _ = rx.wait_for(|v| *v).await;
    }));
    let mut s = TcpStream::connect(local_addr).await.unwrap();
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    let (mut r, mut w) = s.split();
    let mut back = Vec::new();
    let write = async {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let read = async { r.read_to_end(&mut back).await.unwrap() };
    tokio::time::timeout(Duration::from_secs(20), async { tokio::join!(write, read) })
        .await
        .expect("echo through the gateway");
    assert!(
        back == data,
        "echoed {} of {} bytes",
        back.len(),
        data.len()
    );
    stop.send(true).unwrap();
    tunnel.await.unwrap().unwrap();
}
