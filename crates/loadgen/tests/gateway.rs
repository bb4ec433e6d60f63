//! The gateway scenarios end to end: the `seccf-load` binary against a real OSG
//! (`seccf_osg::Osg`, run in this test process with a fixed key source instead of a
//! KMC) and the binary's own `upstream`. Checks that every scenario completes without
//! errors against the real gateway, reports what it negotiated and the CPU of the
//! process named with `--cpu-pid`, and that a wrong key is refused before any load.
//!
//! Keys: one made-up bootstrapping context (random Ks and RAND, a test IMPI); the key
//! source and the key file both derive Ks_NAF with the TS 33.220 KDF
//! (`seccf_gba::naf::ks_naf`), so they agree exactly when the client and the gateway
//! pick the same NAF_Id (FQDN ‖ Ua id of the negotiated protocol).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use seccf_gba::naf::{ks_naf, NafId, UaSecurityProtocolId};
use seccf_load::keyfile::GbaKeys;
use seccf_osg::keys::{FetchFuture, KeySource, NafKeys};
use seccf_osg::{Osg, OsgConfig, OsgListeners};
use seccf_secret::Secret;
use tokio::net::TcpListener;
use tokio::sync::watch;

const BIN: &str = env!("CARGO_BIN_EXE_seccf-load");
const FQDN: &str = "localhost";
const IMPI: &str = "001010000000042@ims.mnc001.mcc001.3gppnetwork.org";
const BTID: &str = "AAECAwQFBgcICQoLDA0ODw==@bsf.load.test";

/// The bootstrapping context both sides derive from.
#[derive(Clone)]
struct Context {
    ks: Secret<32>,
    rand: [u8; 16],
}

impl Context {
    fn key(&self, ua: UaSecurityProtocolId) -> Secret<32> {
        let naf = NafId::new(FQDN, ua).expect("NAF_Id");
        ks_naf(&self.ks, &self.rand, IMPI, &naf).expect("KDF")
    }
}

/// Stands in for the KMC: any NAF_Id of the one B-TID gets its Ks_NAF.
struct FixedKeys(Context);

impl KeySource for FixedKeys {
    fn fetch<'a>(&'a self, btid: &'a str, naf: &'a NafId) -> FetchFuture<'a> {
        let ctx = self.0.clone();
        Box::pin(async move {
            if btid != BTID {
                return Err(seccf_osg::keys::KeyError::UnknownBtid);
            }
            Ok(NafKeys {
                me_key: ks_naf(&ctx.ks, &ctx.rand, IMPI, naf).expect("KDF"),
                expires_at: i64::MAX / 2,
                impi: IMPI.into(),
                ue_ids: vec![IMPI.into()],
                flags: vec![],
            })
        })
    }
}

/// Kills a child process when the test ends, pass or fail.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `seccf-load upstream` on free ports; returns it and (http, tcp) addresses.
fn start_upstream() -> (Kill, String, String) {
    let mut child = Command::new(BIN)
        .args([
            "upstream",
            "--http-listen",
            "127.0.0.1:0",
            "--tcp-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("upstream starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut addr = |scheme: &str| {
        let line = lines.next().expect("a line").expect("text");
        let start = line.find(scheme).expect("address") + scheme.len();
        line[start..]
            .split_whitespace()
            .next()
            .expect("addr")
            .to_string()
    };
    let http = addr("http://");
    let tcp = addr("tcp://");
    (Kill(child), http, tcp)
}

struct Gateway {
    psk: SocketAddr,
    digest: SocketAddr,
    tunnel: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_osg(dir: &Path, ctx: Context, http: &str, tcp: &str) -> (Gateway, PathBuf) {
    use seccf_tls::pki;
    let ca = pki::generate_ca("load test CA", 2).expect("CA");
    let server = pki::issue_server_cert(&ca, "load test gateway", &[FQDN, "127.0.0.1"], 2)
        .expect("server cert");
    let (ca_pem, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let (cert, key) = (dir.join("osg.pem"), dir.join("osg.key"));
    pki::write_pem_pair(&ca, &ca_pem, &ca_key).expect("write CA");
    pki::write_pem_pair(&server, &cert, &key).expect("write cert");
    let text = format!(
        r#"
[osg]
fqdn = "{FQDN}"
shutdown_grace_secs = 1
[osg.kmc]
url = "https://127.0.0.1:9"
tls = {{ ca_file = "{ca}" }}

[[osg.listener]]
name = "psk-https"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk"]
upstream = "http://{http}"

[[osg.listener]]
name = "digest-https"
listen = "127.0.0.1:0"
kind = "https"
auth = ["digest"]
tls = {{ cert_file = "{cert}", key_file = "{key}" }}
upstream = "http://{http}"

[[osg.listener]]
name = "tcp-tunnel"
listen = "127.0.0.1:0"
kind = "tcp"
auth = ["psk"]
upstream = "{tcp}"
proxy_protocol = true
"#,
        ca = ca_pem.display(),
        cert = cert.display(),
        key = key.display(),
    );
    let cfg = OsgConfig::from_toml_str(&text).expect("config");
    let osg = Osg::with_key_source(cfg, Arc::new(FixedKeys(ctx))).expect("OSG");
    let mut listeners = OsgListeners::default();
    let mut addr = std::collections::HashMap::new();
    for name in ["psk-https", "digest-https", "tcp-tunnel"] {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        addr.insert(name, l.local_addr().expect("addr"));
        listeners.listeners.insert(name.into(), l);
    }
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        osg.run(listeners, rx).await.expect("OSG runs");
    });
    (
        Gateway {
            psk: addr["psk-https"],
            digest: addr["digest-https"],
            tunnel: addr["tcp-tunnel"],
            stop,
            task,
        },
        ca_pem,
    )
}

fn write_keys(dir: &Path, name: &str, ctx: &Context) -> PathBuf {
    let keys = [
        UaSecurityProtocolId::tls_3gpp(0x00a8),
        UaSecurityProtocolId::TLS13_SHARED_KEY,
        UaSecurityProtocolId::tls_3gpp(0x1301),
        UaSecurityProtocolId::tls_3gpp(0xc02b),
    ]
    .into_iter()
    .map(|ua| (ua, ctx.key(ua)))
    .collect();
    let file = GbaKeys::new(BTID, FQDN, i64::MAX / 2, keys).expect("key set");
    let path = dir.join(name);
    std::fs::write(&path, file.to_json().expect("encodes").as_bytes()).expect("write");
    path
}

/// Runs the binary off the runtime's threads (the OSG under test shares them).
async fn load(args: Vec<String>) -> (bool, serde_json::Value, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(BIN).args(&args).output().expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let json = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
        (
            out.status.success(),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("joins")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_scenario_runs_against_the_real_osg() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = Context {
        ks: Secret::random().expect("random Ks"),
        rand: seccf_secret::random_array().expect("random RAND"),
    };
    let (_upstream, http, tcp) = start_upstream();
    let (gw, ca) = start_osg(dir.path(), ctx.clone(), &http, &tcp).await;
    let keys = write_keys(dir.path(), "keys.json", &ctx);
    let keys = keys.to_str().expect("utf-8 path");
    let ca = ca.to_str().expect("utf-8 path");
    let me = format!("gateway={}", std::process::id());
    let (psk, digest, tunnel) = (
        gw.psk.to_string(),
        gw.digest.to_string(),
        gw.tunnel.to_string(),
    );
    let common = [
        "--keys",
        keys,
        "--seconds",
        "20",
        "--max-ops",
        "200",
        "--concurrency",
        "4",
        "--cpu-pid",
        &me,
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "tls-handshake",
                "--target",
                "osg",
                "--addr",
                &tunnel,
                "--tls",
                "1.2",
            ],
            "TLSv1.2 PSK-AES128-GCM-SHA256",
        ),
        (
            vec![
                "tls-handshake",
                "--target",
                "osg",
                "--addr",
                &tunnel,
                "--tls",
                "1.3",
            ],
            "TLSv1.3 TLS_AES_128_GCM_SHA256 (PSK with X25519)",
        ),
        (
            vec![
                "tls-bulk",
                "--target",
                "osg",
                "--addr",
                &tunnel,
                "--chunk-bytes",
                "100000",
            ],
            "TLSv1.3 TLS_AES_128_GCM_SHA256 (PSK with X25519)",
        ),
        (
            vec!["https-keepalive", "--target", "osg-psk", "--addr", &psk],
            "TLSv1.3 TLS_AES_128_GCM_SHA256 (PSK with X25519)",
        ),
        (
            vec![
                "https-keepalive",
                "--target",
                "osg-digest",
                "--addr",
                &digest,
                "--ca-file",
                ca,
            ],
            "TLSv1.3 TLS_AES_128_GCM_SHA256",
        ),
        (
            vec![
                "https-keepalive",
                "--target",
                "osg-digest",
                "--addr",
                &digest,
                "--ca-file",
                ca,
                "--tls",
                "1.2",
            ],
            "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
    ];
    for (case, tls) in cases {
        let mut a = args(&case);
        a.extend(args(&common));
        let (ok, r, err) = load(a).await;
        assert!(ok, "{case:?}: {err}");
        assert_eq!(r["errors"], 0, "{case:?}: {r}");
        assert_eq!(r["ops"], 200, "{case:?}: {r}");
        assert_eq!(r["tls"], tls, "{case:?}: {r}");
        assert_eq!(r["cpu"]["processes"][0]["label"], "gateway", "{r}");
        if case[0] == "tls-bulk" {
            assert_eq!(r["bytes_per_op"], 100_000, "{r}");
            assert!(r["mb_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
        }
        if case[0] == "https-keepalive" {
            // Every request rode on the warm-up connections.
            assert_eq!(r["new_connections"], 0, "{case:?}: {r}");
        }
    }

    // A key file with another context's keys: the warm-up fails, nothing is measured.
    let other = Context {
        ks: Secret::random().expect("random Ks"),
        rand: ctx.rand,
    };
    let wrong = write_keys(dir.path(), "wrong.json", &other);
    let wrong = wrong.to_str().expect("utf-8 path");
    for case in [
        vec!["tls-handshake", "--target", "osg", "--addr", &tunnel],
        vec!["https-keepalive", "--target", "osg-psk", "--addr", &psk],
        vec![
            "https-keepalive",
            "--target",
            "osg-digest",
            "--addr",
            &digest,
            "--ca-file",
            ca,
        ],
    ] {
        let mut a = args(&case);
        a.extend(args(&[
            "--keys",
            wrong,
            "--seconds",
            "5",
            "--max-ops",
            "10",
        ]));
        let (ok, r, err) = load(a).await;
        assert!(!ok, "{case:?} succeeded with wrong keys: {r}");
        assert!(err.contains("warm-up"), "{case:?}: {err}");
    }

    let _ = gw.stop.send(true);
    let _ = gw.task.await;
}
