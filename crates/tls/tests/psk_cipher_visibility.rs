//! Our PSK client against our PSK server over real sockets, measuring what each key
//! callback can see (the GBA key depends on the negotiated suite in TLS 1.2) and what
//! `psk_peer` reports afterwards. The module docs of `seccf_tls::psk` state the results;
//! these tests keep them true.

mod common;

use std::sync::Arc;

use common::psk::{key, serve, wrong_key, ClientKeys, Shown, Table, ID};
use common::{read_line, STEP};
use seccf_tls::psk::{
    self, PeerAuth, PskClientConfig, PskServerConfig, PskTlsVersion, GBA_IDENTITY_HINT,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn server_cfg() -> PskServerConfig {
    PskServerConfig {
        identity_hint: Some(GBA_IDENTITY_HINT.to_owned()),
        ..PskServerConfig::default()
    }
}

/// Connects with `cfg`/`keys`, says hello, returns (client's PeerAuth, answer).
async fn talk(
    addr: std::net::SocketAddr,
    cfg: &PskClientConfig,
    keys: Arc<ClientKeys>,
) -> Result<(PeerAuth, String), String> {
    let connector = psk::build_psk_connector(cfg, keys).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut tls = tokio::time::timeout(STEP, psk::psk_connect(&connector, "naf.example.org", tcp))
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| e.to_string())?;
    let auth = psk::psk_peer(&tls);
    tls.write_all(b"hello\n").await.map_err(|e| e.to_string())?;
    let answer = read_line(&mut tls).await.map_err(|e| e.to_string())?;
    Ok((auth, answer))
}

/// TLS 1.2, one suite at a time: the server callback and the client callback both see
/// the negotiated suite's IANA id, and the client sees the hint.
#[tokio::test]
async fn tls12_suite_is_visible_to_both_callbacks() {
    // IANA ids: RFC 5487 (0x00A8, 0x00A9, 0x00AE, 0x00AA), RFC 4279 (0x008C),
    // RFC 5489 (0xC037), RFC 7905 (0xCCAC).
    let suites = [
        ("PSK-AES128-GCM-SHA256", 0x00a8),
        ("PSK-AES256-GCM-SHA384", 0x00a9),
        ("PSK-AES128-CBC-SHA256", 0x00ae),
        ("PSK-AES128-CBC-SHA", 0x008c),
        ("ECDHE-PSK-AES128-CBC-SHA256", 0xc037),
        ("ECDHE-PSK-CHACHA20-POLY1305", 0xccac),
        ("DHE-PSK-AES128-GCM-SHA256", 0x00aa),
    ];
    for (name, id) in suites {
        let table = Table::with_test_key();
        let acceptor = psk::build_psk_acceptor(&server_cfg(), table.clone()).unwrap();
        let (addr, srv) = serve(acceptor, 1).await;
        let keys = ClientKeys::new(ID, key());
        let cfg = PskClientConfig {
            tls12_ciphers: name.to_owned(),
            enable_tls13: false,
            ..PskClientConfig::default()
        };
        let (client_auth, answer) = talk(addr, &cfg, keys.clone()).await.unwrap();
        let served = srv.await.unwrap().pop().unwrap().unwrap();

        assert_eq!(answer, "echo:hello", "{name}");
        assert_eq!(served.cipher, name);
        let seen = table.seen();
        assert_eq!(seen.len(), 1, "{name}: {seen:?}");
        assert_eq!(seen[0].identity, ID);
        assert_eq!(seen[0].version, PskTlsVersion::Tls12);
        assert_eq!(seen[0].cipher_suite, id, "{name}: server callback suite");
        assert_eq!(
            keys.shown(),
            [Shown {
                hint: Some(GBA_IDENTITY_HINT.to_owned()),
                version: PskTlsVersion::Tls12,
                cipher_suite: id,
            }],
            "{name}: client callback"
        );
        let expected = PeerAuth::Psk {
            identity: ID.to_owned(),
            version: PskTlsVersion::Tls12,
            cipher_suite: id,
        };
        assert_eq!(served.auth, expected, "{name}: server psk_peer");
        assert_eq!(client_auth, expected, "{name}: client psk_peer");
    }
}

/// TLS 1.3: the server callback sees the suite OpenSSL already chose; the client
/// callback runs while the ClientHello is built, so it sees no suite and no hint.
#[tokio::test]
async fn tls13_server_sees_suite_client_does_not() {
    for (name, id) in [
        ("TLS_AES_128_GCM_SHA256", 0x1301),
        ("TLS_CHACHA20_POLY1305_SHA256", 0x1303),
    ] {
        let table = Table::with_test_key();
        let acceptor = psk::build_psk_acceptor(&server_cfg(), table.clone()).unwrap();
        let (addr, srv) = serve(acceptor, 1).await;
        let keys = ClientKeys::new(ID, key());
        let cfg = PskClientConfig {
            tls13_ciphersuites: name.to_owned(),
            ..PskClientConfig::default()
        };
        let (client_auth, answer) = talk(addr, &cfg, keys.clone()).await.unwrap();
        let served = srv.await.unwrap().pop().unwrap().unwrap();
        assert_eq!(answer, "echo:hello");
        assert_eq!(served.version, "TLSv1.3");
        assert_eq!(served.cipher, name);
        let seen = table.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            (seen[0].version, seen[0].cipher_suite),
            (PskTlsVersion::Tls13, id)
        );
        assert_eq!(
            keys.shown(),
            [Shown {
                hint: None,
                version: PskTlsVersion::Tls13,
                cipher_suite: 0,
            }]
        );
        let expected = PeerAuth::Psk {
            identity: ID.to_owned(),
            version: PskTlsVersion::Tls13,
            cipher_suite: id,
        };
        assert_eq!(served.auth, expected);
        assert_eq!(client_auth, expected);
    }
}

/// A client that allows TLS 1.3 meeting a TLS 1.2-only server is asked twice: for the
/// ClientHello (1.3, no suite) and for ClientKeyExchange (1.2, suite, hint). psk_peer
/// reports the second.
#[tokio::test]
async fn tls13_capable_client_on_tls12_server_is_asked_twice() {
    let table = Table::with_test_key();
    let cfg = PskServerConfig {
        enable_tls13: false,
        tls12_ciphers: "PSK-AES128-GCM-SHA256".into(),
        ..server_cfg()
    };
    let acceptor = psk::build_psk_acceptor(&cfg, table.clone()).unwrap();
    let (addr, srv) = serve(acceptor, 1).await;
    let keys = ClientKeys::new(ID, key());
    let (client_auth, _) = talk(addr, &PskClientConfig::default(), keys.clone())
        .await
        .unwrap();
    let served = srv.await.unwrap().pop().unwrap().unwrap();
    assert_eq!(
        keys.shown(),
        [
            Shown {
                hint: None,
                version: PskTlsVersion::Tls13,
                cipher_suite: 0
            },
            Shown {
                hint: Some(GBA_IDENTITY_HINT.to_owned()),
                version: PskTlsVersion::Tls12,
                cipher_suite: 0x00a8
            },
        ]
    );
    let expected = PeerAuth::Psk {
        identity: ID.to_owned(),
        version: PskTlsVersion::Tls12,
        cipher_suite: 0x00a8,
    };
    assert_eq!(client_auth, expected);
    assert_eq!(served.auth, expected);
}

#[tokio::test]
async fn wrong_key_and_unknown_identity_fail_on_both_versions() {
    for enable_tls13 in [false, true] {
        let cfg = PskClientConfig {
            enable_tls13,
            ..PskClientConfig::default()
        };
        // Wrong key.
        let table = Table::with_test_key();
        let acceptor = psk::build_psk_acceptor(&server_cfg(), table.clone()).unwrap();
        let (addr, srv) = serve(acceptor, 1).await;
        let client = talk(addr, &cfg, ClientKeys::new(ID, wrong_key())).await;
        let server = srv.await.unwrap().pop().unwrap();
        assert!(client.is_err(), "tls13={enable_tls13}: {client:?}");
        assert!(server.is_err(), "tls13={enable_tls13}: {server:?}");
        assert!(!table.seen().is_empty(), "lookup was not even asked");

        // Unknown identity.
        let table = Table::with_test_key();
        let acceptor = psk::build_psk_acceptor(&server_cfg(), table.clone()).unwrap();
        let (addr, srv) = serve(acceptor, 1).await;
        let client = talk(addr, &cfg, ClientKeys::new("nobody@bsf.example.org", key())).await;
        let server = srv.await.unwrap().pop().unwrap();
        assert!(client.is_err(), "tls13={enable_tls13}: {client:?}");
        let err = server.unwrap_err();
        if !enable_tls13 {
            // TLS 1.2: OpenSSL answers an unknown identity with unknown_psk_identity.
            assert!(err.contains("psk identity not found"), "{err}");
        }
        assert_eq!(table.seen()[0].identity, "nobody@bsf.example.org");
    }
}

/// The documented way to do network I/O in a lookup: block_in_place + block_on, on the
/// multi-thread runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_may_await_through_block_in_place() {
    let lookup = |req: &psk::PskRequest<'_>| {
        let ok = req.identity == ID.as_bytes();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            })
        });
        ok.then(key)
    };
    let acceptor = psk::build_psk_acceptor(&server_cfg(), Arc::new(lookup)).unwrap();
    let (addr, srv) = serve(acceptor, 1).await;
    let (auth, answer) = talk(
        addr,
        &PskClientConfig::default(),
        ClientKeys::new(ID, key()),
    )
    .await
    .unwrap();
    assert_eq!(answer, "echo:hello");
    assert!(matches!(auth, PeerAuth::Psk { .. }));
    srv.await.unwrap().pop().unwrap().unwrap();
}

/// A lookup that panics (here: block_in_place on a current-thread runtime, the mistake
/// the docs warn about) fails the handshake instead of aborting the process.
#[tokio::test(flavor = "current_thread")]
async fn panicking_lookup_refuses_the_handshake() {
    let lookup = |_: &psk::PskRequest<'_>| {
        tokio::task::block_in_place(|| ());
        Some(key())
    };
    let acceptor = psk::build_psk_acceptor(&server_cfg(), Arc::new(lookup)).unwrap();
    let (addr, srv) = serve(acceptor, 1).await;
    let client = talk(
        addr,
        &PskClientConfig::default(),
        ClientKeys::new(ID, key()),
    )
    .await;
    assert!(client.is_err(), "{client:?}");
    assert!(srv.await.unwrap().pop().unwrap().is_err());
}

/// A client without server_ca_file refuses a server that does not know its PSK and
/// offers a certificate instead (TLS 1.3 falls back to certificates); with the CA file
/// it accepts the certificate and psk_peer says no PSK was used.
#[tokio::test]
async fn client_tells_certificate_fallback_from_psk() {
    let t = common::TestPki::new();
    let cfg = PskServerConfig {
        certificate: Some((t.pem("server"), t.key("server"))),
        ..server_cfg()
    };
    // The server knows no identity at all.
    let empty = Arc::new(Table::default());
    let acceptor = psk::build_psk_acceptor(&cfg, empty.clone()).unwrap();
    let (addr, srv) = serve(acceptor, 2).await;

    let strict = PskClientConfig::default();
    let err = talk(addr, &strict, ClientKeys::new(ID, key()))
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");

    let with_ca = PskClientConfig {
        server_ca_file: Some(t.pem("ca")),
        ..PskClientConfig::default()
    };
    let connector = psk::build_psk_connector(&with_ca, ClientKeys::new(ID, key())).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    // "localhost" is in the server certificate's SANs.
    let mut tls = psk::psk_connect(&connector, "localhost", tcp)
        .await
        .unwrap();
    assert_eq!(psk::psk_peer(&tls), PeerAuth::None);
    assert!(tls.ssl().peer_certificate().is_some());
    tls.write_all(b"hi\n").await.unwrap();
    assert_eq!(read_line(&mut tls).await.unwrap(), "echo:hi");

    let served = srv.await.unwrap();
    assert!(served[0].is_err());
    let second = served[1].as_ref().unwrap();
    assert_eq!(second.auth, PeerAuth::None);
    assert_eq!(second.version, "TLSv1.3");
    assert_eq!(
        empty.seen().len(),
        2,
        "both clients offered their PSK first"
    );
}
