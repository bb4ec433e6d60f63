//! OCSP against the real `openssl ocsp` responder (spawned on 127.0.0.1 with a free port,
//! killed afterwards): Good, Revoked, Unknown, responder down, timeout, a replayed
//! response (nonce mismatch), a response signed by a stranger, the cache, and the chain
//! taken from a real mutual-TLS handshake. Needs `openssl`; skipped (saying so) when it
//! is missing, failed when CI is set.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::peer::{self, Killer};
use openssl::x509::X509;
use seccf_tls::client::{self, ClientTlsConfig};
use seccf_tls::pki::{self, CertifiedKey, RevocationPointers};
use seccf_tls::revocation::{
    self, OcspChecker, OcspMode, OcspOutcome, OcspStapler, RevocationConfig,
};
use seccf_tls::server::{self, ServerTlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A CA, a delegated responder, and leaves whose AIA points at `port`.
struct Ocsp {
    dir: tempfile::TempDir,
    port: u16,
    ca: CertifiedKey,
    good: CertifiedKey,
    revoked: CertifiedKey,
    /// Issued by the CA but absent from the responder's index.
    stranger: CertifiedKey,
    /// No AIA extension.
    plain: CertifiedKey,
    /// A server certificate with AIA, in the index as good (for stapling).
    aia_server: CertifiedKey,
}

impl Ocsp {
    fn new() -> Ocsp {
        let dir = tempfile::tempdir().unwrap();
        let port = peer::free_port();
        let url = format!("http://127.0.0.1:{port}/");
        let aia = RevocationPointers {
            ocsp_url: Some(&url),
            crl_url: None,
        };
        let ca = pki::generate_ca("seccf OCSP test CA", 2).unwrap();
        let responder = pki::issue_ocsp_responder_cert(&ca, "ocsp responder", 2).unwrap();
        let server = pki::issue_server_cert(&ca, "osg", &["localhost"], 2).unwrap();
        let good = pki::issue_client_cert_with(&ca, "good", 2, &aia).unwrap();
        let revoked = pki::issue_client_cert_with(&ca, "revoked", 2, &aia).unwrap();
        let stranger = pki::issue_client_cert_with(&ca, "stranger", 2, &aia).unwrap();
        let plain = pki::issue_client_cert(&ca, "plain", 2).unwrap();
        let aia_server = pki::issue_server_cert_with(&ca, "osg", &["localhost"], 2, &aia).unwrap();
        let o = Ocsp {
            dir,
            port,
            ca,
            good,
            revoked,
            stranger,
            plain,
            aia_server,
        };
        for (name, ck) in [
            ("ca", &o.ca),
            ("responder", &responder),
            ("server", &server),
            ("good", &o.good),
            ("revoked", &o.revoked),
            ("plain", &o.plain),
            ("aia_server", &o.aia_server),
        ] {
            pki::write_pem_pair(
                ck,
                &o.p(&format!("{name}.pem")),
                &o.p(&format!("{name}.key")),
            )
            .unwrap();
        }
        // OpenSSL CA database format (apps/ca.c): status, expiry, revocation
        // date[,reason], serial (BN_bn2hex), file, subject.
        let index = format!(
            "V\t491231235959Z\t\t{}\tunknown\t/CN=good\n\
             R\t491231235959Z\t250101000000Z,keyCompromise\t{}\tunknown\t/CN=revoked\n\
             V\t491231235959Z\t\t{}\tunknown\t/CN=plain\n\
             V\t491231235959Z\t\t{}\tunknown\t/CN=osg\n",
            o.good.serial_hex().unwrap(),
            o.revoked.serial_hex().unwrap(),
            o.plain.serial_hex().unwrap(),
            o.aia_server.serial_hex().unwrap(),
        );
        std::fs::write(o.p("index.txt"), index).unwrap();
        o
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Starts `openssl ocsp` as a responder (nextUpdate 5 minutes ahead) and waits until
    /// it says it listens. (Not by probing the port: OpenSSL 3.0.19's responder spins
    /// forever on a connection closed without a request, measured.)
    async fn responder(&self) -> Killer {
        let mut cmd = Command::new("openssl");
        cmd.args(["ocsp", "-index"])
            .arg(self.p("index.txt"))
            .args(["-port", &self.port.to_string(), "-rsigner"])
            .arg(self.p("responder.pem"))
            .arg("-rkey")
            .arg(self.p("responder.key"))
            .arg("-CA")
            .arg(self.p("ca.pem"))
            .args(["-nmin", "5"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut killer = Killer(cmd.spawn().unwrap());
        let stdout = killer.0.stdout.take().unwrap();
        let listening = tokio::task::spawn_blocking(move || {
            use std::io::BufRead as _;
            // "ACCEPT [::]:<port> PID=<pid>" is printed once the socket listens.
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|line| line.starts_with("ACCEPT"))
        });
        let ok = tokio::time::timeout(common::STEP, listening).await;
        assert!(
            matches!(ok, Ok(Ok(true))),
            "openssl ocsp did not start listening"
        );
        killer
    }

    fn checker(&self, ocsp: OcspMode, cache_secs: u64, timeout: Duration) -> OcspChecker {
        let cfg = RevocationConfig {
            ocsp,
            ocsp_cache_secs: cache_secs,
            ocsp_timeout: timeout,
            ..RevocationConfig::default()
        };
        OcspChecker::new(&cfg, &self.p("ca.pem")).unwrap()
    }

    fn chain(&self, leaf: &CertifiedKey) -> Vec<X509> {
        vec![
            X509::from_der(&leaf.cert_der).unwrap(),
            X509::from_der(&self.ca.cert_der).unwrap(),
        ]
    }
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn good_revoked_and_unknown_from_the_openssl_responder() {
    if !peer::openssl() {
        return;
    }
    let o = Ocsp::new();
    let _responder = o.responder().await;
    let checker = o.checker(OcspMode::Aia, 0, T);

    assert_eq!(checker.check(&o.chain(&o.good)).await, OcspOutcome::Good);

    let revoked = checker.check(&o.chain(&o.revoked)).await;
    match &revoked {
        OcspOutcome::Revoked { reason } => {
            assert!(reason.contains("keyCompromise"), "{reason}");
            assert!(reason.contains("2025"), "{reason}");
        }
        other => panic!("expected Revoked, got {other:?}"),
    }
    assert!(!revoked.allows(false) && !revoked.allows(true));

    let unknown = checker.check(&o.chain(&o.stranger)).await;
    assert_eq!(unknown, OcspOutcome::Unknown);
    assert!(unknown.allows(false) && !unknown.allows(true));

    // A certificate without AIA has nowhere to ask in Aia mode...
    let nowhere = checker.check(&o.chain(&o.plain)).await;
    assert!(
        matches!(&nowhere, OcspOutcome::Unavailable(m) if m.contains("no http:// OCSP")),
        "{nowhere:?}"
    );
    // ...and is answered by the configured responder in Responder mode.
    let fixed = o.checker(OcspMode::Responder(o.url()), 0, T);
    assert_eq!(fixed.check(&o.chain(&o.plain)).await, OcspOutcome::Good);

    // Without the issuer there is no CertID to ask about.
    let lone = checker.check(&o.chain(&o.good)[..1]).await;
    assert!(matches!(lone, OcspOutcome::Unavailable(_)));
}

#[tokio::test]
async fn responder_down_is_unavailable_and_only_soft_fail_allows_it() {
    if !peer::openssl() {
        return;
    }
    let o = Ocsp::new();
    // Nothing listens on o.port.
    let checker = o.checker(OcspMode::Aia, 0, T);
    let down = checker.check(&o.chain(&o.good)).await;
    assert!(
        matches!(&down, OcspOutcome::Unavailable(m) if m.contains("connect")),
        "{down:?}"
    );
    assert!(down.allows(false));
    assert!(!down.allows(true));

    // A responder that accepts but never answers: the timeout applies.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let checker = o.checker(OcspMode::Responder(url), 0, Duration::from_millis(300));
    let started = Instant::now();
    let slow = checker.check(&o.chain(&o.good)).await;
    assert!(
        matches!(&slow, OcspOutcome::Unavailable(m) if m.contains("did not answer")),
        "{slow:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    hold.abort();
}

#[tokio::test]
async fn answers_are_cached_until_next_update_and_not_when_disabled() {
    if !peer::openssl() {
        return;
    }
    let o = Ocsp::new();
    let cached = o.checker(OcspMode::Aia, 3600, T);
    let uncached = o.checker(OcspMode::Aia, 0, T);
    let mut responder = o.responder().await;
    assert_eq!(cached.check(&o.chain(&o.good)).await, OcspOutcome::Good);
    assert!(matches!(
        cached.check(&o.chain(&o.revoked)).await,
        OcspOutcome::Revoked { .. }
    ));
    assert_eq!(uncached.check(&o.chain(&o.good)).await, OcspOutcome::Good);
    responder.kill();
    // The responder is gone: only the cache can answer (nextUpdate is 5 minutes away).
    assert_eq!(cached.check(&o.chain(&o.good)).await, OcspOutcome::Good);
    assert!(matches!(
        cached.check(&o.chain(&o.revoked)).await,
        OcspOutcome::Revoked { .. }
    ));
    assert!(matches!(
        uncached.check(&o.chain(&o.good)).await,
        OcspOutcome::Unavailable(_)
    ));
    // Unknown answers are not cached.
    assert!(matches!(
        cached.check(&o.chain(&o.stranger)).await,
        OcspOutcome::Unavailable(_)
    ));
}

/// Serves `body` as the answer to every HTTP request (a replaying attacker).
async fn replay_server(body: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                // Read the request head and body (content-length) before answering.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_lowercase();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (url, task)
}

/// A genuine, fresh, correctly signed response captured from the responder for another
/// request is refused because its nonce is not ours; a response signed by a CA we do
/// not trust is refused for its signature.
#[tokio::test]
async fn replayed_or_foreign_responses_are_refused() {
    if !peer::openssl() {
        return;
    }
    let o = Ocsp::new();
    let responder = o.responder().await;
    // The openssl CLI as OCSP client: its own random nonce, response saved to a file.
    let mut cmd = Command::new("openssl");
    cmd.args(["ocsp", "-issuer"])
        .arg(o.p("ca.pem"))
        .arg("-cert")
        .arg(o.p("good.pem"))
        .args(["-url", &o.url(), "-CAfile"])
        .arg(o.p("ca.pem"))
        .arg("-respout")
        .arg(o.p("captured.der"));
    let (out, killed) =
        tokio::task::spawn_blocking(move || peer::run(cmd, b"", Duration::from_secs(20)))
            .await
            .unwrap();
    assert!(!killed, "openssl ocsp (client) hung: {}", peer::text(&out));
    assert!(out.status.success(), "{}", peer::text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": good"),
        "{}",
        peer::text(&out)
    );
    drop(responder);
    let captured = std::fs::read(o.p("captured.der")).unwrap();
    assert!(revocation::response_nonce(&captured).unwrap().is_some());

    let (url, task) = replay_server(captured).await;
    let checker = o.checker(OcspMode::Responder(url), 0, T);
    let replayed = checker.check(&o.chain(&o.good)).await;
    assert!(
        matches!(&replayed, OcspOutcome::Unavailable(m) if m.contains("nonce")),
        "{replayed:?}"
    );
    task.abort();

    // testdata/ocsp/resp-nonce.der: signed by the OpenSSL CLI's test CA, not ours.
    let foreign = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/ocsp/resp-nonce.der"
    ))
    .unwrap();
    let (url, task) = replay_server(foreign).await;
    let checker = o.checker(OcspMode::Responder(url), 0, T);
    let forged = checker.check(&o.chain(&o.good)).await;
    assert!(
        matches!(&forged, OcspOutcome::Unavailable(m) if m.contains("signature")),
        "{forged:?}"
    );
    task.abort();
}

/// The chain comes from a real mutual-TLS handshake (`peer_chain`), as the gateway will
/// do it: handshake, then OCSP, then decide.
#[tokio::test]
async fn chain_from_a_real_handshake_is_checked() {
    if !peer::openssl() {
        return;
    }
    let o = Ocsp::new();
    let _responder = o.responder().await;
    let acceptor = server::build_acceptor(&ServerTlsConfig {
        cert_file: o.p("server.pem"),
        key_file: o.p("server.key"),
        client_ca_file: Some(o.p("ca.pem")),
        require_client_cert: true,
    })
    .unwrap();
    let checker = o.checker(OcspMode::Aia, 0, T);
    for (leaf, expect_good) in [("good", true), ("revoked", false)] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connector = client::build_connector(&ClientTlsConfig {
            ca_file: o.p("ca.pem"),
            client_cert_file: Some(o.p(&format!("{leaf}.pem"))),
            client_key_file: Some(o.p(&format!("{leaf}.key"))),
        })
        .unwrap();
        let client_task = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let _tls = client::connect(&connector, "localhost", tcp).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = server::accept(&acceptor, tcp).await.unwrap();
        let chain = revocation::peer_chain(&tls);
        assert_eq!(chain.len(), 2, "leaf + CA");
        assert_eq!(
            chain[0].to_der().unwrap(),
            pki::load_pem_pair(&o.p(&format!("{leaf}.pem")), &o.p(&format!("{leaf}.key")))
                .unwrap()
                .cert_der
        );
        let outcome = checker.check(&chain).await;
        assert_eq!(
            outcome == OcspOutcome::Good,
            expect_good,
            "{leaf}: {outcome:?}"
        );
        assert_eq!(outcome.allows(false), expect_good);
        client_task.await.unwrap();
    }
}

#[test]
fn responder_url_is_checked_at_construction() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::generate_ca("CA", 1).unwrap();
    pki::write_pem_pair(&ca, &dir.path().join("ca.pem"), &dir.path().join("ca.key")).unwrap();
    let cfg = |ocsp| RevocationConfig {
        ocsp,
        ..RevocationConfig::default()
    };
    let ca_file = dir.path().join("ca.pem");
    assert!(OcspChecker::new(&cfg(OcspMode::Responder("https://x/".into())), &ca_file).is_err());
    assert!(OcspChecker::new(
        &cfg(OcspMode::Responder("http://x:99999/".into())),
        &ca_file
    )
    .is_err());
    assert!(OcspChecker::new(
        &cfg(OcspMode::Responder("http://x:8080/ocsp".into())),
        &ca_file
    )
    .is_ok());
    assert!(OcspChecker::new(&cfg(OcspMode::Aia), &dir.path().join("missing.pem")).is_err());
    let zero = RevocationConfig {
        ocsp_timeout: Duration::ZERO,
        ..cfg(OcspMode::Aia)
    };
    assert!(OcspChecker::new(&zero, &ca_file).is_err());
}

#[tokio::test]
async fn off_mode_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::generate_ca("CA", 1).unwrap();
    pki::write_pem_pair(&ca, &dir.path().join("ca.pem"), &dir.path().join("ca.key")).unwrap();
    let checker =
        OcspChecker::new(&RevocationConfig::default(), &dir.path().join("ca.pem")).unwrap();
    // Not even a chain is needed: Off answers Good without looking.
    assert_eq!(checker.check(&[]).await, OcspOutcome::Good);
}

/// The server staples its own certificate's status: nothing before the first refresh,
/// the responder's "good" answer after it (as `openssl s_client -status` reports).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_staples_its_own_status() {
    if !peer::openssl() {
        return;
    }
    let o = Ocsp::new();
    let mut responder = o.responder().await;
    let cfg = RevocationConfig {
        ocsp: OcspMode::Aia,
        ..RevocationConfig::default()
    };
    let stapler = Arc::new(OcspStapler::new(&cfg, &o.p("ca.pem"), &o.p("aia_server.pem")).unwrap());
    assert_eq!(stapler.current(), None);
    let mut b = server::acceptor_builder(&ServerTlsConfig {
        cert_file: o.p("aia_server.pem"),
        key_file: o.p("aia_server.key"),
        client_ca_file: None,
        require_client_cert: false,
    })
    .unwrap();
    stapler.install(&mut b).unwrap();
    let acceptor = b.build();

    let s_client = |acceptor: openssl::ssl::SslAcceptor, ca: PathBuf| async move {
        let (addr, srv) = common::psk::serve(acceptor, 1).await;
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-status",
            "-ign_eof",
            "-CAfile",
        ])
        .arg(ca);
        let (out, _) =
            tokio::task::spawn_blocking(move || peer::run(cmd, b"ping\n", Duration::from_secs(20)))
                .await
                .unwrap();
        srv.await.unwrap().pop().unwrap().unwrap();
        peer::text(&out)
    };

    let before = s_client(acceptor.clone(), o.p("ca.pem")).await;
    assert!(
        before.contains("OCSP response: no response sent"),
        "{before}"
    );

    assert_eq!(stapler.refresh().await, OcspOutcome::Good);
    let staple = stapler.current().unwrap();
    // What is stapled is a response OpenSSL can parse, and it covers our certificate.
    assert!(openssl::ocsp::OcspResponse::from_der(&staple).is_ok());
    let after = s_client(acceptor.clone(), o.p("ca.pem")).await;
    assert!(
        after.contains("OCSP Response Status: successful"),
        "{after}"
    );
    assert!(after.contains("Cert Status: good"), "{after}");
    assert!(
        after.contains(&format!(
            "Serial Number: {}",
            o.aia_server.serial_hex().unwrap()
        )),
        "{after}"
    );

    // Responder gone: a failed refresh keeps serving the still-valid staple.
    responder.kill();
    assert!(matches!(
        stapler.refresh().await,
        OcspOutcome::Unavailable(_)
    ));
    assert_eq!(stapler.current(), Some(staple));
    // Stapling needs an OCSP mode.
    assert!(OcspStapler::new(
        &RevocationConfig::default(),
        &o.p("ca.pem"),
        &o.p("aia_server.pem")
    )
    .is_err());
}
