//! Real TLS handshakes on 127.0.0.1 through the public API: mutual TLS, refusals, name
//! checks. No mocks: both ends are OpenSSL over tokio TCP sockets.

mod common;

use common::{serve_once, talk, TestPki};
use openssl::ssl::{SslConnector, SslVersion};
use seccf_tls::client::{self, ClientTlsConfig};
use seccf_tls::pki;
use seccf_tls::server::{self, ServerTlsConfig};
use seccf_tls::TlsError;

/// A connector limited to one protocol version, to exercise TLS 1.2 and 1.3 separately
/// (they fail client-certificate problems at different moments).
fn connector_at(cfg: &ClientTlsConfig, version: SslVersion) -> SslConnector {
    let mut b = client::connector_builder(cfg).ok().unwrap();
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    b.build()
}

const VERSIONS: [(SslVersion, &str); 2] = [
    (SslVersion::TLS1_2, "TLSv1.2"),
    (SslVersion::TLS1_3, "TLSv1.3"),
];

#[tokio::test]
async fn mutual_tls_server_sees_client_fingerprint() {
    let t = TestPki::new();
    for (version, name) in VERSIONS {
        let acceptor = server::build_acceptor(&t.server_cfg(true)).ok().unwrap();
        let (addr, srv) = serve_once(acceptor).await;
        let connector = connector_at(&t.client_cfg(Some("client")), version);
        let answer = talk(&connector, "localhost", addr).await.unwrap();
        let view = srv.await.unwrap().unwrap();

        let expected = t.client.sha256_fingerprint();
        assert_eq!(view.peer_fingerprint.as_deref(), Some(expected.as_str()));
        assert_eq!(answer, format!("fp={expected}"));
        // The file-based fingerprint (what a KMC operator registers) agrees.
        assert_eq!(
            pki::fingerprint_pem_file(&t.pem("client")).unwrap(),
            expected
        );
        assert_ne!(expected, t.server.sha256_fingerprint());
        assert_eq!(view.version, name);
        assert_eq!(view.sni.as_deref(), Some("localhost"));
    }
}

#[tokio::test]
async fn default_connector_negotiates_tls13_and_ip_hosts_send_no_sni() {
    let t = TestPki::new();
    let acceptor = server::build_acceptor(&t.server_cfg(true)).ok().unwrap();
    let (addr, srv) = serve_once(acceptor).await;
    let connector = client::build_connector(&t.client_cfg(Some("client")))
        .ok()
        .unwrap();
    // Verified against the IP SAN 127.0.0.1; SNI must not carry an address (RFC 6066).
    talk(&connector, "127.0.0.1", addr).await.unwrap();
    let view = srv.await.unwrap().unwrap();
    assert_eq!(view.version, "TLSv1.3");
    assert_eq!(view.sni, None);
    assert_eq!(view.peer_fingerprint, Some(t.client.sha256_fingerprint()));
}

#[tokio::test]
async fn client_without_certificate_is_refused_when_required() {
    let t = TestPki::new();
    for (version, _) in VERSIONS {
        let acceptor = server::build_acceptor(&t.server_cfg(true)).ok().unwrap();
        let (addr, srv) = serve_once(acceptor).await;
        let connector = connector_at(&t.client_cfg(None), version);
        let client_result = talk(&connector, "localhost", addr).await;
        let server_result = srv.await.unwrap();
        let err = server_result.err().unwrap();
        assert!(
            matches!(&err, TlsError::Handshake(m) if m.contains("did not return a certificate")),
            "{version:?}: {err}"
        );
        assert!(
            client_result.is_err(),
            "{version:?}: client got {client_result:?}"
        );
    }
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let t = TestPki::new();
    // Refused whether client certificates are required or optional: a certificate that
    // is sent is always verified.
    for require in [true, false] {
        for (version, _) in VERSIONS {
            let acceptor = server::build_acceptor(&t.server_cfg(require)).ok().unwrap();
            let (addr, srv) = serve_once(acceptor).await;
            let connector = connector_at(&t.client_cfg(Some("other_client")), version);
            let client_result = talk(&connector, "localhost", addr).await;
            let err = srv.await.unwrap().err().unwrap();
            assert!(
                matches!(&err, TlsError::Handshake(m) if m.contains("certificate verify failed")),
                "require={require} {version:?}: {err}"
            );
            assert!(client_result.is_err(), "client got {client_result:?}");
        }
    }
}

#[tokio::test]
async fn optional_client_certificate() {
    let t = TestPki::new();
    // Without a certificate: accepted, no identity.
    let acceptor = server::build_acceptor(&t.server_cfg(false)).ok().unwrap();
    let (addr, srv) = serve_once(acceptor).await;
    let connector = client::build_connector(&t.client_cfg(None)).ok().unwrap();
    assert_eq!(
        talk(&connector, "localhost", addr).await.unwrap(),
        "fp=none"
    );
    assert_eq!(srv.await.unwrap().unwrap().peer_fingerprint, None);
    // With one: accepted and identified.
    let acceptor = server::build_acceptor(&t.server_cfg(false)).ok().unwrap();
    let (addr, srv) = serve_once(acceptor).await;
    let connector = client::build_connector(&t.client_cfg(Some("client")))
        .ok()
        .unwrap();
    talk(&connector, "localhost", addr).await.unwrap();
    assert_eq!(
        srv.await.unwrap().unwrap().peer_fingerprint,
        Some(t.client.sha256_fingerprint())
    );
}

#[tokio::test]
async fn server_without_client_ca_does_not_ask_for_certificates() {
    let t = TestPki::new();
    let cfg = ServerTlsConfig {
        client_ca_file: None,
        ..t.server_cfg(false)
    };
    let acceptor = server::build_acceptor(&cfg).ok().unwrap();
    let (addr, srv) = serve_once(acceptor).await;
    // The client has a certificate, but it is never requested, so no identity.
    let connector = client::build_connector(&t.client_cfg(Some("client")))
        .ok()
        .unwrap();
    assert_eq!(
        talk(&connector, "localhost", addr).await.unwrap(),
        "fp=none"
    );
    assert_eq!(srv.await.unwrap().unwrap().peer_fingerprint, None);
}

#[tokio::test]
async fn server_certificate_for_another_host_is_refused() {
    let t = TestPki::new();
    let cfg = ServerTlsConfig {
        cert_file: t.pem("wrong_name_server"),
        key_file: t.key("wrong_name_server"),
        ..t.server_cfg(true)
    };
    for (host, reason) in [
        ("localhost", "hostname mismatch"),
        ("127.0.0.1", "IP address mismatch"),
    ] {
        let acceptor = server::build_acceptor(&cfg).ok().unwrap();
        let (addr, srv) = serve_once(acceptor).await;
        let connector = client::build_connector(&t.client_cfg(Some("client")))
            .ok()
            .unwrap();
        let err = talk(&connector, host, addr).await.err().unwrap();
        assert!(
            matches!(&err, TlsError::Handshake(m) if m.contains(reason)),
            "{host}: {err}"
        );
        assert!(srv.await.unwrap().is_err());
    }
    // Control: the same certificate is fine for the name it carries.
    let acceptor = server::build_acceptor(&cfg).ok().unwrap();
    let (addr, srv) = serve_once(acceptor).await;
    let connector = client::build_connector(&t.client_cfg(Some("client")))
        .ok()
        .unwrap();
    talk(&connector, "other.example", addr).await.unwrap();
    srv.await.unwrap().unwrap();
}

#[tokio::test]
async fn server_from_an_untrusted_ca_is_refused() {
    let t = TestPki::new();
    let acceptor = server::build_acceptor(&t.server_cfg(false)).ok().unwrap();
    let (addr, srv) = serve_once(acceptor).await;
    let cfg = ClientTlsConfig {
        ca_file: t.pem("other_ca"),
        ..t.client_cfg(None)
    };
    let connector = client::build_connector(&cfg).ok().unwrap();
    let err = talk(&connector, "localhost", addr).await.err().unwrap();
    assert!(
        matches!(&err, TlsError::Handshake(m) if m.contains("certificate verify failed")),
        "{err}"
    );
    assert!(srv.await.unwrap().is_err());
}

/// Certificates and keys made by the OpenSSL command line (RSA, PKCS#1 key) work as
/// server material; the fingerprint matches what OpenSSL printed for the same file.
#[tokio::test]
async fn openssl_cli_made_rsa_server_material() {
    let td = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let t = TestPki::new();
    let cfg = ServerTlsConfig {
        cert_file: td.join("openssl-cli-server.pem"),
        key_file: td.join("openssl-cli-server.key"),
        client_ca_file: Some(t.pem("ca")),
        require_client_cert: true,
    };
    let acceptor = server::build_acceptor(&cfg).ok().unwrap();
    let (addr, srv) = serve_once(acceptor).await;
    let ccfg = ClientTlsConfig {
        ca_file: td.join("openssl-cli-ca.pem"),
        ..t.client_cfg(Some("client"))
    };
    let connector = connector_at(&ccfg, SslVersion::TLS1_2);
    talk(&connector, "localhost", addr).await.unwrap();
    let view = srv.await.unwrap().unwrap();
    assert_eq!(view.peer_fingerprint, Some(t.client.sha256_fingerprint()));
}
