//! Interoperability with the OpenSSL command line (`openssl` binary, an independent
//! peer): it must accept the generated chain, agree on fingerprints and extensions, and
//! complete a mutual-TLS handshake with our acceptor. Each test skips, saying so, when
//! the binary is missing.

mod common;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::TestPki;
use seccf_tls::server;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

fn openssl_available() -> bool {
    match Command::new("openssl").arg("version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("SKIPPED: the `openssl` command-line tool is not installed (apt-get install openssl)");
            false
        }
    }
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn openssl_verify_accepts_generated_chain() {
    if !openssl_available() {
        return;
    }
    let t = TestPki::new();
    let ca = t.pem("ca");
    let other = t.pem("other_ca");
    for (leaf, purpose) in [
        ("server", "sslserver"),
        ("client", "sslclient"),
        ("ca", "any"),
    ] {
        let out = openssl(&[
            "verify",
            "-CAfile",
            s(&ca),
            "-purpose",
            purpose,
            s(&t.pem(leaf)),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.trim_end().ends_with(": OK"),
            "{leaf}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Negative controls: the same command refuses a wrong purpose or a wrong CA, so
    // the positive results above mean something.
    let wrong_purpose = openssl(&[
        "verify",
        "-CAfile",
        s(&ca),
        "-purpose",
        "sslclient",
        s(&t.pem("server")),
    ]);
    assert!(!wrong_purpose.status.success());
    let wrong_purpose = openssl(&[
        "verify",
        "-CAfile",
        s(&ca),
        "-purpose",
        "sslserver",
        s(&t.pem("client")),
    ]);
    assert!(!wrong_purpose.status.success());
    let wrong_ca = openssl(&["verify", "-CAfile", s(&other), s(&t.pem("server"))]);
    assert!(!wrong_ca.status.success());
}

#[test]
fn openssl_agrees_on_fingerprint_and_extensions() {
    if !openssl_available() {
        return;
    }
    let t = TestPki::new();
    for (name, ck) in [("ca", &t.ca), ("server", &t.server), ("client", &t.client)] {
        let out = openssl(&[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            s(&t.pem(name)),
        ]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let (_, hex) = text.trim().split_once('=').unwrap();
        assert_eq!(
            hex.replace(':', "").to_lowercase(),
            ck.sha256_fingerprint(),
            "{name}"
        );
    }
    let ext = |name: &str| {
        let out = openssl(&[
            "x509",
            "-noout",
            "-ext",
            "basicConstraints,keyUsage,extendedKeyUsage,subjectAltName",
            "-text",
            "-in",
            s(&t.pem(name)),
        ]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let server = ext("server");
    for needle in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "TLS Web Server Authentication",
        "CA:FALSE",
        "Digital Signature",
        "ecdsa-with-SHA256",
        "prime256v1",
    ] {
        assert!(
            server.contains(needle),
            "server cert lacks {needle}:\n{server}"
        );
    }
    let client = ext("client");
    assert!(client.contains("TLS Web Client Authentication"), "{client}");
    assert!(
        !client.contains("TLS Web Server Authentication"),
        "{client}"
    );
    let ca = ext("ca");
    assert!(
        ca.contains("CA:TRUE, pathlen:0") && ca.contains("Certificate Sign"),
        "{ca}"
    );
}

/// Runs a command with `input` on stdin, killing it after `limit`.
fn run_with_timeout(mut cmd: Command, input: &[u8], limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// One s_client run against a fresh acceptor; returns (s_client output, server's view
/// of the client fingerprint or the server error text).
async fn s_client_once(
    t: &TestPki,
    extra: &[&str],
    with_client_cert: bool,
) -> (Output, Result<String, String>) {
    let acceptor = server::build_acceptor(&t.server_cfg(true)).ok().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = tokio::time::timeout(common::STEP, server::accept(&acceptor, tcp))
            .await
            .map_err(|_| "timeout".to_owned())?
            .map_err(|e| e.to_string())?;
        let fp = server::peer_cert_sha256(&tls).unwrap_or_else(|| "none".into());
        let line = common::read_line(&mut tls)
            .await
            .map_err(|e| e.to_string())?;
        let reply = format!("pong {line} fp={fp}\n");
        tls.write_all(reply.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let _ = tls.shutdown().await;
        Ok::<String, String>(fp)
    });

    let connect = format!("127.0.0.1:{port}");
    let ca = t.pem("ca");
    let cert = t.pem("client");
    let key = t.key("client");
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &connect, "-servername", "localhost"])
        .args(["-verify_hostname", "localhost", "-verify_return_error"])
        .args(["-CAfile", s(&ca)])
        // Keep the connection after stdin ends, until the server closes it, so the
        // reply is read.
        .arg("-ign_eof")
        .args(extra);
    if with_client_cert {
        cmd.args(["-cert", s(&cert), "-key", s(&key)]);
    }
    let output = tokio::task::spawn_blocking(move || {
        run_with_timeout(cmd, b"ping\n", Duration::from_secs(20))
    })
    .await
    .unwrap();
    let server_view = srv.await.unwrap();
    (output, server_view)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_mutual_tls() {
    if !openssl_available() {
        return;
    }
    let t = TestPki::new();
    let fp = t.client.sha256_fingerprint();
    for (flag, proto) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let (out, view) = s_client_once(&t, &[flag], true).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            view.as_deref(),
            Ok(fp.as_str()),
            "{flag}: {stdout}\n{stderr}"
        );
        assert!(
            stdout.contains(&format!("pong ping fp={fp}")),
            "{flag}: {stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("Verify return code: 0 (ok)"),
            "{flag}: {stdout}"
        );
        assert!(stdout.contains(proto), "{flag}: {stdout}");
        assert!(out.status.success(), "{flag}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_without_certificate_or_old_protocol_is_refused() {
    if !openssl_available() {
        return;
    }
    let t = TestPki::new();
    let (out, view) = s_client_once(&t, &[], false).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = view.unwrap_err();
    assert!(err.contains("did not return a certificate"), "{err}");
    assert!(!stdout.contains("pong"), "{stdout}");

    // TLS 1.1, even with the client's own security level lowered to allow it.
    let (out, view) = s_client_once(&t, &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"], true).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(view.is_err(), "server accepted TLS 1.1: {view:?}");
    assert!(!stdout.contains("pong"), "{stdout}");
    assert!(!out.status.success());
}
