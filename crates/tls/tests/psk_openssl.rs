//! PSK-TLS against the OpenSSL command line (an independent peer): `openssl s_client`
//! against our server, our client against `openssl s_server`. Needs `openssl`; skipped
//! (saying so) when it is missing, failed when CI is set.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::peer;
use common::psk::{key, serve, ClientKeys, Served, Table, ID, KEY_HEX, WRONG_KEY_HEX};
use seccf_tls::psk::{
    self, PeerAuth, PskClientConfig, PskServerConfig, PskTlsVersion, GBA_IDENTITY_HINT,
};
use tokio::io::AsyncWriteExt;

fn gba_cfg() -> PskServerConfig {
    PskServerConfig {
        identity_hint: Some(GBA_IDENTITY_HINT.to_owned()),
        ..PskServerConfig::default()
    }
}

/// Runs one `s_client` with `args` against a fresh server built from `cfg`; returns the
/// s_client output text and what the server saw.
async fn s_client(
    cfg: &PskServerConfig,
    table: Arc<Table>,
    args: &[&str],
) -> (String, Result<Served, String>) {
    let acceptor = psk::build_psk_acceptor(cfg, table).unwrap();
    let (addr, srv) = serve(acceptor, 1).await;
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string(), "-ign_eof"])
        .args(args);
    let (out, _killed) =
        tokio::task::spawn_blocking(move || peer::run(cmd, b"ping\n", Duration::from_secs(20)))
            .await
            .unwrap();
    let served = srv.await.unwrap().pop().unwrap();
    (peer::text(&out), served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_client_tls12_psk_with_gba_hint() {
    if !peer::openssl() {
        return;
    }
    let table = Table::with_test_key();
    let (out, served) = s_client(
        &gba_cfg(),
        table.clone(),
        &[
            "-tls1_2",
            "-cipher",
            "PSK-AES128-GCM-SHA256",
            "-psk_identity",
            ID,
            "-psk",
            KEY_HEX,
        ],
    )
    .await;
    let served = served.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(out.contains("echo:ping"), "{out}");
    assert!(
        out.contains("PSK identity hint: 3GPP-bootstrapping"),
        "{out}"
    );
    assert!(out.contains("PSK-AES128-GCM-SHA256"), "{out}");
    assert_eq!(served.line, "ping");
    assert_eq!(
        served.auth,
        PeerAuth::Psk {
            identity: ID.to_owned(),
            version: PskTlsVersion::Tls12,
            cipher_suite: 0x00a8,
        }
    );
    assert_eq!(table.seen()[0].cipher_suite, 0x00a8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_client_tls13_external_psk() {
    if !peer::openssl() {
        return;
    }
    let table = Table::with_test_key();
    let (out, served) = s_client(
        &gba_cfg(),
        table.clone(),
        &[
            "-tls1_3",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256",
            "-psk_identity",
            ID,
            "-psk",
            KEY_HEX,
        ],
    )
    .await;
    let served = served.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(out.contains("echo:ping"), "{out}");
    assert!(out.contains("TLSv1.3"), "{out}");
    // No certificate changed hands: the PSK authenticated the server.
    assert!(out.contains("no peer certificate available"), "{out}");
    assert_eq!(
        served.auth,
        PeerAuth::Psk {
            identity: ID.to_owned(),
            version: PskTlsVersion::Tls13,
            cipher_suite: 0x1301,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_client_wrong_key_and_unknown_identity_fail() {
    if !peer::openssl() {
        return;
    }
    // Wrong key, TLS 1.2: the Finished MACs disagree.
    let (out, served) = s_client(
        &gba_cfg(),
        Table::with_test_key(),
        &[
            "-tls1_2",
            "-cipher",
            "PSK-AES128-GCM-SHA256",
            "-psk_identity",
            ID,
            "-psk",
            WRONG_KEY_HEX,
        ],
    )
    .await;
    assert!(served.is_err(), "{served:?}\n{out}");
    assert!(!out.contains("echo:ping"), "{out}");

    // Wrong key, TLS 1.3: the binder does not verify.
    let (out, served) = s_client(
        &gba_cfg(),
        Table::with_test_key(),
        &[
            "-tls1_3",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256",
            "-psk_identity",
            ID,
            "-psk",
            WRONG_KEY_HEX,
        ],
    )
    .await;
    assert!(served.is_err(), "{served:?}\n{out}");
    assert!(!out.contains("echo:ping"), "{out}");

    // Unknown identity, TLS 1.2: alert 115 unknown_psk_identity (RFC 4279 2).
    let (out, served) = s_client(
        &gba_cfg(),
        Table::with_test_key(),
        &[
            "-tls1_2",
            "-cipher",
            "PSK-AES128-GCM-SHA256",
            "-psk_identity",
            "nobody",
            "-psk",
            KEY_HEX,
        ],
    )
    .await;
    assert!(served.is_err(), "{served:?}\n{out}");
    assert!(out.contains("alert number 115"), "{out}");
    assert!(!out.contains("echo:ping"), "{out}");
}

/// TLS 1.3 on a context that also has a certificate: a client whose PSK the server does
/// not accept completes a certificate handshake, and psk_peer must not call that a PSK
/// connection. Two ways to get there: an unknown identity, and a known identity offered
/// only with a SHA-384 suite (OpenSSL discards the PSK after the lookup said yes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_fallback_to_certificate_is_not_psk() {
    if !peer::openssl() {
        return;
    }
    let t = common::TestPki::new();
    let cfg = PskServerConfig {
        certificate: Some((t.pem("server"), t.key("server"))),
        tls13_ciphersuites: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384".into(),
        ..gba_cfg()
    };
    let args = |id: &'static str, suite: &'static str| {
        vec![
            "-tls1_3",
            "-ciphersuites",
            suite,
            "-psk_identity",
            id,
            "-psk",
            KEY_HEX,
        ]
    };

    // Control: the right PSK on this very context is a PSK connection.
    let (out, served) = s_client(
        &cfg,
        Table::with_test_key(),
        &args(ID, "TLS_AES_128_GCM_SHA256"),
    )
    .await;
    let served = served.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(matches!(served.auth, PeerAuth::Psk { .. }), "{served:?}");

    let (out, served) = s_client(
        &cfg,
        Table::with_test_key(),
        &args("nobody", "TLS_AES_128_GCM_SHA256"),
    )
    .await;
    let served = served.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(
        out.contains("echo:ping"),
        "handshake should complete with the certificate: {out}"
    );
    assert!(out.contains("CN = kmc"), "{out}");
    assert_eq!(served.auth, PeerAuth::None);

    let table = Table::with_test_key();
    let (out, served) = s_client(&cfg, table.clone(), &args(ID, "TLS_AES_256_GCM_SHA384")).await;
    let served = served.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(out.contains("echo:ping"), "{out}");
    assert_eq!(served.cipher, "TLS_AES_256_GCM_SHA384");
    // The lookup did say yes...
    assert_eq!(table.seen().len(), 1);
    assert_eq!(table.seen()[0].identity, ID);
    // ...but the connection was authenticated by the certificate.
    assert_eq!(served.auth, PeerAuth::None);
}

/// Our client against `openssl s_server` in PSK-only mode, both versions: the hint
/// arrives in TLS 1.2 and data flows both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_s_server() {
    if !peer::openssl() {
        return;
    }
    for enable_tls13 in [false, true] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_server",
            "-accept",
            &port.to_string(),
            "-nocert",
            "-naccept",
            "1",
        ])
        .args([
            "-psk_identity",
            ID,
            "-psk",
            KEY_HEX,
            "-psk_hint",
            GBA_IDENTITY_HINT,
        ])
        .args([
            "-cipher",
            "PSK-AES128-GCM-SHA256",
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256",
        ]);
        // s_server ends the connection when its stdin ends: keep a pipe open.
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut server = peer::Killer(cmd.spawn().unwrap());
        let tcp = peer::connect_retry(port).await;
        let keys = ClientKeys::new(ID, key());
        let cfg = PskClientConfig {
            enable_tls13,
            ..PskClientConfig::default()
        };
        let connector = psk::build_psk_connector(&cfg, keys.clone()).unwrap();
        let mut tls =
            tokio::time::timeout(common::STEP, psk::psk_connect(&connector, "localhost", tcp))
                .await
                .unwrap()
                .unwrap();
        let auth = psk::psk_peer(&tls);
        // s_server prints what it receives on stdout.
        tls.write_all(b"hello from seccf\n").await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tls.shutdown().await;
        server.kill();
        let mut printed = String::new();
        std::io::Read::read_to_string(&mut server.0.stdout.take().unwrap(), &mut printed).unwrap();
        assert!(printed.contains("hello from seccf"), "{printed}");
        let (version, suite) = if enable_tls13 {
            (PskTlsVersion::Tls13, 0x1301)
        } else {
            (PskTlsVersion::Tls12, 0x00a8)
        };
        assert_eq!(
            auth,
            PeerAuth::Psk {
                identity: ID.to_owned(),
                version,
                cipher_suite: suite,
            }
        );
        let shown = keys.shown();
        let last = shown.last().unwrap();
        if enable_tls13 {
            assert_eq!(last.hint, None);
        } else {
            assert_eq!(last.hint.as_deref(), Some(GBA_IDENTITY_HINT));
            assert_eq!(last.cipher_suite, 0x00a8);
        }
    }
}

/// No session resumption on the PSK server: in TLS 1.2 it hands out neither a session
/// ID nor a ticket, so there is nothing a client could resume (a resumed session would
/// skip the key lookup and could outlive the key's lifetime). With OpenSSL's defaults
/// (`openssl s_server`) the same s_client gets a ticket ("TLS session ticket lifetime
/// hint"), which is what this test would then see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_sessions_are_not_resumable() {
    if !peer::openssl() {
        return;
    }
    let table = Table::with_test_key();
    let (out, served) = s_client(
        &gba_cfg(),
        table.clone(),
        &[
            "-tls1_2",
            "-cipher",
            "PSK-AES128-GCM-SHA256",
            "-psk_identity",
            ID,
            "-psk",
            KEY_HEX,
        ],
    )
    .await;
    served.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(out.contains("New, TLSv1.2"), "{out}");
    let session_id = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Session-ID:"))
        .map(str::trim);
    assert_eq!(session_id, Some(""), "{out}");
    assert!(!out.contains("TLS session ticket"), "{out}");
}
