//! OCSP stapling of the gateway's own certificate, checked with real peers:
//! `openssl ocsp` as the responder and `openssl s_client -status` as the client.
//! Stapled "good" answers from the AIA responder and from a configured one, no staple
//! (and a working handshake) with the responder down or stapling off, reload keeping
//! or rebuilding the stapler, and the refresh tasks stopping at shutdown.
//!
//! Needs `openssl` (Debian package openssl); skipped when missing unless CI is set.
//! No KMC is involved: Digest listeners answer 401 without asking it.

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use seccf_osg::{Osg, OsgConfig, OsgListeners};
use seccf_tls::pki::{self, CertifiedKey, RevocationPointers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const FQDN: &str = "naf.osg.test";

fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "openssl not installed");
        eprintln!("SKIPPED: openssl not installed");
    }
    ok
}

/// Kills the child it holds on drop (only processes this test started).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `openssl ocsp` on `port` answering from `index`, signing with a delegated responder
/// certificate; returns once it printed its ACCEPT line. (Probing the port instead
/// would wedge OpenSSL 3.0's single-threaded responder on the empty connection.)
async fn responder(dir: &Path, port: u16) -> Child {
    let mut child = Child(
        Command::new("openssl")
            .args(["ocsp", "-index"])
            .arg(dir.join("index.txt"))
            .args(["-port", &port.to_string(), "-rsigner"])
            .arg(dir.join("responder.pem"))
            .arg("-rkey")
            .arg(dir.join("responder.key"))
            .arg("-CA")
            .arg(dir.join("ca.pem"))
            .args(["-nmin", "5"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let accepted = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.starts_with("ACCEPT"))
    });
    let ok = tokio::time::timeout(Duration::from_secs(10), accepted).await;
    assert!(matches!(ok, Ok(Ok(true))), "openssl ocsp did not start");
    child
}

/// `openssl s_client -status` (optionally TLS 1.2 only) sending one HTTP request;
/// stdout + stderr, killed after 20 s.
async fn s_client(addr: std::net::SocketAddr, ca: PathBuf, tls12: bool) -> String {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_client", "-connect", &addr.to_string()])
            .args(["-servername", FQDN, "-status", "-ign_eof", "-CAfile"])
            .arg(&ca);
        if tls12 {
            cmd.arg("-tls1_2");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"GET / HTTP/1.1\r\nHost: naf.osg.test\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let o = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let e = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
        drop(stdin);
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.join().unwrap()),
            String::from_utf8_lossy(&e.join().unwrap())
        )
    })
    .await
    .unwrap()
}

async fn metrics(admin: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(admin).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

fn refreshes(metrics: &str, listener: &str, result: &str) -> u64 {
    let key = format!(
        "seccf_osg_ocsp_staple_refreshes_total{{listener=\"{listener}\",result=\"{result}\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until the refresh counter of `listener`/`result` reaches `n`.
async fn wait_refreshes(admin: std::net::SocketAddr, listener: &str, result: &str, n: u64) {
    let start = Instant::now();
    loop {
        let m = metrics(admin).await;
        if refreshes(&m, listener, result) >= n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no {n} {result} refreshes for {listener}:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write(dir: &Path, name: &str, ck: &CertifiedKey) {
    pki::write_pem_pair(
        ck,
        &dir.join(format!("{name}.pem")),
        &dir.join(format!("{name}.key")),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_sees_the_stapled_status() {
    if !have_openssl() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let port = free_port();
    let down = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let aia = RevocationPointers {
        ocsp_url: Some(&url),
        crl_url: None,
    };
    let sans = [FQDN, "localhost", "127.0.0.1"];
    let ca = pki::generate_ca("osg stapling test CA", 2).unwrap();
    let responder_cert = pki::issue_ocsp_responder_cert(&ca, "ocsp responder", 2).unwrap();
    // "aia": names the responder itself; "b" and "c": plain, for the configured URL.
    let with_aia = pki::issue_server_cert_with(&ca, FQDN, &sans, 2, &aia).unwrap();
    let b = pki::issue_server_cert(&ca, FQDN, &sans, 2).unwrap();
    let c = pki::issue_server_cert(&ca, FQDN, &sans, 2).unwrap();
    pki::write_pem_pair(&ca, &d.join("ca.pem"), &d.join("ca.key")).unwrap();
    write(d, "responder", &responder_cert);
    write(d, "aia", &with_aia);
    write(d, "url", &b);
    write(d, "c", &c);
    write(d, "plain", &b);
    // OpenSSL CA database: status, expiry, revocation date, serial, file, subject
    // (subjects must be unique in it; the responder looks certificates up by serial).
    let index: String = [&with_aia, &b, &c]
        .iter()
        .enumerate()
        .map(|(i, ck)| {
            format!(
                "V\t491231235959Z\t\t{}\tunknown\t/CN=server-{i}\n",
                ck.serial_hex().unwrap()
            )
        })
        .collect();
    std::fs::write(d.join("index.txt"), index).unwrap();
    let _responder = responder(d, port).await;

    let listener = |name: &str, cert: &str, stapling: &str| {
        format!(
            "[[osg.listener]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nkind = \"https\"\nauth = [\"digest\"]\n\
             upstream = \"http://127.0.0.1:1\"\n\
             tls = {{ cert_file = \"{d}/{cert}.pem\", key_file = \"{d}/{cert}.key\"{stapling} }}\n",
            d = d.display()
        )
    };
    let ca_file = format!(", ocsp_stapling_ca_file = \"{}/ca.pem\"", d.display());
    let text = format!(
        "[osg]\nfqdn = \"{FQDN}\"\nshutdown_grace_secs = 1\n[osg.kmc]\nurl = \"https://127.0.0.1:1\"\n\
         tls = {{ ca_file = \"{d}/ca.pem\" }}\n[osg.admin]\nlisten = \"127.0.0.1:0\"\n{}{}{}{}",
        listener("aia", "aia", &format!(", ocsp_stapling = \"aia\"{ca_file}")),
        listener("url", "url", &format!(", ocsp_stapling = \"{url}\"{ca_file}")),
        listener(
            "down",
            "plain",
            &format!(
                ", ocsp_stapling = \"http://127.0.0.1:{down}/\"{ca_file}, ocsp_stapling_refresh_secs = 1"
            )
        ),
        listener("off", "plain", ""),
        d = d.display()
    );
    let cfg = OsgConfig::from_toml_str(&text).unwrap();
    let mut socks = OsgListeners::default();
    let mut addrs = std::collections::HashMap::new();
    for l in &cfg.listeners {
        let s = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.insert(l.name.clone(), s.local_addr().unwrap());
        socks.listeners.insert(l.name.clone(), s);
    }
    let admin_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = admin_l.local_addr().unwrap();
    socks.admin = Some(admin_l);
    let osg = Osg::new(cfg).unwrap();
    let reload = osg.reload_handle();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(osg.run(socks, rx));
    let ca_pem = d.join("ca.pem");

    // The refresh tasks start with the gateway.
    wait_refreshes(admin, "aia", "good", 1).await;
    wait_refreshes(admin, "url", "good", 1).await;
    wait_refreshes(admin, "down", "unavailable", 2).await;

    for tls12 in [false, true] {
        let out = s_client(addrs["aia"], ca_pem.clone(), tls12).await;
        assert!(out.contains("OCSP Response Status: successful"), "{out}");
        assert!(out.contains("Cert Status: good"), "{out}");
        assert!(
            out.contains(&format!(
                "Serial Number: {}",
                with_aia.serial_hex().unwrap()
            )),
            "{out}"
        );
        assert!(out.contains("HTTP/1.1 401"), "{out}");
    }
    let out = s_client(addrs["url"], ca_pem.clone(), false).await;
    assert!(out.contains("Cert Status: good"), "{out}");
    assert!(
        out.contains(&format!("Serial Number: {}", b.serial_hex().unwrap())),
        "{out}"
    );
    // Responder down, and stapling off: no staple, the handshake and request still work.
    for name in ["down", "off"] {
        let out = s_client(addrs[name], ca_pem.clone(), false).await;
        assert!(
            out.contains("OCSP response: no response sent"),
            "{name}: {out}"
        );
        assert!(!out.contains("Cert Status"), "{name}: {out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{name}: {out}");
        assert!(out.contains("HTTP/1.1 401"), "{name}: {out}");
    }
    let m = metrics(admin).await;
    assert_eq!(refreshes(&m, "off", "good"), 0);
    assert_eq!(refreshes(&m, "down", "good"), 0);

    // Reload with the same files keeps the stapler and its staple (no gap), and
    // refreshes it…
    assert_eq!(refreshes(&m, "url", "good"), 1);
    reload.reload().unwrap();
    let out = s_client(addrs["url"], ca_pem.clone(), false).await;
    assert!(out.contains("Cert Status: good"), "{out}");
    wait_refreshes(admin, "url", "good", 2).await;
    // …and a new certificate gets a new stapler, refreshed at once.
    write(d, "url", &c);
    reload.reload().unwrap();
    wait_refreshes(admin, "url", "good", 3).await;
    let out = s_client(addrs["url"], ca_pem.clone(), false).await;
    assert!(out.contains("Cert Status: good"), "{out}");
    assert!(
        out.contains(&format!("Serial Number: {}", c.serial_hex().unwrap())),
        "stapled for the reloaded certificate: {out}"
    );

    // Shutdown stops the refresh tasks with everything else.
    let _ = stop.send(true);
    let res = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the gateway stops")
        .unwrap();
    assert!(res.is_ok(), "{res:?}");
}

#[test]
fn stapling_files_are_checked_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let ca = pki::generate_ca("CA", 1).unwrap();
    let other = pki::generate_ca("other CA", 1).unwrap();
    let srv = pki::issue_server_cert(&ca, FQDN, &[FQDN], 1).unwrap();
    pki::write_pem_pair(&ca, &d.join("ca.pem"), &d.join("ca.key")).unwrap();
    pki::write_pem_pair(&other, &d.join("other.pem"), &d.join("other.key")).unwrap();
    write(d, "srv", &srv);
    let text = |ca_file: &str| {
        format!(
            "[osg]\nfqdn = \"{FQDN}\"\n[osg.kmc]\nurl = \"https://127.0.0.1:1\"\ntls = {{ ca_file = \"{d}/ca.pem\" }}\n\
             [[osg.listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\nkind = \"https\"\nauth = [\"digest\"]\n\
             upstream = \"http://127.0.0.1:1\"\n\
             tls = {{ cert_file = \"{d}/srv.pem\", key_file = \"{d}/srv.key\", ocsp_stapling = \"aia\", ocsp_stapling_ca_file = \"{d}/{ca_file}\" }}\n",
            d = d.display()
        )
    };
    assert!(Osg::new(OsgConfig::from_toml_str(&text("ca.pem")).unwrap()).is_ok());
    // The issuer of the certificate is in neither the chain nor the CA file.
    let e = Osg::new(OsgConfig::from_toml_str(&text("other.pem")).unwrap()).unwrap_err();
    assert!(e.to_string().contains("OCSP stapling"), "{e}");
    let e = Osg::new(OsgConfig::from_toml_str(&text("missing.pem")).unwrap()).unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
}
