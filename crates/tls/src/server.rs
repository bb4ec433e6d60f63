//! Certificate TLS on the server side: building an acceptor from configuration, the
//! async handshake, and the identity (certificate fingerprint) of a verified client.
//!
//! Used by the KMC's Zn interface, where a NAF authenticates with a client certificate
//! and is known by that certificate's SHA-256 fingerprint.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use openssl::ssl::{
    SslAcceptor, SslAcceptorBuilder, SslContextBuilder, SslMethod, SslVerifyMode, SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509VerifyResult;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::error::handshake_error;
use crate::pki::{ensure_key_matches, fingerprint_der, parse_certificates, parse_private_key};
use crate::{files, TlsError};

/// Session-ID context. OpenSSL refuses to resume a session on a server that verifies
/// client certificates unless one is set, and sessions must not be resumable across
/// unrelated servers that happen to share a cache.
const SESSION_ID_CONTEXT: &[u8] = b"seccf-tls/server";

/// Longest client chain accepted: leaf + intermediates + root. The dev PKI has no
/// intermediates; deployments rarely have more than two.
pub const MAX_VERIFY_DEPTH: u32 = 4;

/// Certificate TLS server settings (TOML-friendly: derive serde Deserialize with deny_unknown_fields).
///
/// ```toml
/// cert_file = "/etc/seccf/kmc.pem"        # leaf first, then any intermediates
/// key_file = "/etc/seccf/kmc.key"         # unencrypted PEM
/// client_ca_file = "/etc/seccf/naf-ca.pem" # optional: the only CAs trusted for clients
/// require_client_cert = true              # default false
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// Server certificate chain, PEM: the leaf first, then intermediates.
    pub cert_file: PathBuf,
    /// Private key of the leaf, unencrypted PEM.
    pub key_file: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to. When set, a client
    /// that presents a certificate is verified against these CAs and nothing else.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Refuse clients that present no certificate (mutual TLS). Needs `client_ca_file`.
    #[serde(default)]
    pub require_client_cert: bool,
}

/// TLS 1.2+ (no 1.0/1.1), Mozilla-intermediate-like cipher list, client certificate
/// verification against client_ca_file when set (required if require_client_cert).
pub fn build_acceptor(cfg: &ServerTlsConfig) -> Result<SslAcceptor, TlsError> {
    Ok(acceptor_builder(cfg)?.build())
}

/// The builder behind [`build_acceptor`], for callers that add settings (ALPN, session
/// cache size) before building. Every security setting is already applied.
pub fn acceptor_builder(cfg: &ServerTlsConfig) -> Result<SslAcceptorBuilder, TlsError> {
    if cfg.require_client_cert && cfg.client_ca_file.is_none() {
        return Err(TlsError::Config(
            "require_client_cert = true needs client_ca_file (the CAs that client certificates must chain to)"
                .into(),
        ));
    }

    let ossl = |what: &'static str| move |e| TlsError::Config(format!("{what}: {e}"));
    // Mozilla "intermediate" v5: ECDHE/DHE AEAD suites for TLS 1.2, the three standard
    // TLS 1.3 suites, TLS 1.0/1.1 disabled.
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(ossl("OpenSSL server context"))?;
    // Belt and braces next to the NO_TLSV1* options the Mozilla profile sets: a floor
    // that later option changes cannot lower by accident.
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(ossl("minimum TLS version"))?;
    install_certificate(
        &mut b,
        &cfg.cert_file,
        &cfg.key_file,
        ("cert_file", "key_file"),
    )?;
    b.set_session_id_context(SESSION_ID_CONTEXT)
        .map_err(ossl("session id context"))?;

    match &cfg.client_ca_file {
        None => b.set_verify(SslVerifyMode::NONE),
        Some(path) => {
            let what = format!("client_ca_file {}", path.display());
            let cas = parse_certificates(&files::read_pem_file(path, "client_ca_file")?, &what)?;
            // A dedicated verify store: client certificates chain to these CAs only,
            // never to the system trust store or to CAs that serve other purposes.
            let mut store = X509StoreBuilder::new().map_err(ossl("client CA store"))?;
            for ca in &cas {
                store
                    .add_cert(ca.clone())
                    .map_err(|e| TlsError::Config(format!("{what}: {e}")))?;
                // Advertised in CertificateRequest so a client with several
                // certificates (s_client, curl, browsers) picks the right one.
                b.add_client_ca(ca)
                    .map_err(|e| TlsError::Config(format!("{what}: {e}")))?;
            }
            b.set_verify_cert_store(store.build())
                .map_err(ossl("client CA store"))?;
            b.set_verify_depth(MAX_VERIFY_DEPTH);
            let mode = if cfg.require_client_cert {
                SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
            } else {
                SslVerifyMode::PEER
            };
            b.set_verify(mode);
        }
    }
    Ok(b)
}

/// Loads a certificate chain (leaf first) and its private key into `b`, checking that
/// they belong together. `names` are the settings named in error messages (for example
/// `("cert_file", "key_file")`).
pub(crate) fn install_certificate(
    b: &mut SslContextBuilder,
    cert_file: &Path,
    key_file: &Path,
    names: (&str, &str),
) -> Result<(), TlsError> {
    let (cert_name, key_name) = names;
    let cert_what = format!("{cert_name} {}", cert_file.display());
    let key_what = format!("{key_name} {}", key_file.display());
    let chain = parse_certificates(&files::read_pem_file(cert_file, cert_name)?, &cert_what)?;
    let key_pem = files::read_secret_pem_file(key_file, key_name)?;
    let key = parse_private_key(key_pem.expose(), &key_what)?;

    let mut chain = chain.into_iter();
    let leaf = chain
        .next()
        .ok_or_else(|| TlsError::Config(format!("{cert_what}: no certificate found")))?;
    ensure_key_matches(&leaf, &key, &key_what)?;
    b.set_certificate(&leaf)
        .map_err(|e| TlsError::Config(format!("{cert_what}: {e}")))?;
    for extra in chain {
        b.add_extra_chain_cert(extra)
            .map_err(|e| TlsError::Config(format!("{cert_what}: intermediate certificate: {e}")))?;
    }
    b.set_private_key(&key)
        .map_err(|e| TlsError::Config(format!("{key_what}: {e}")))?;
    b.check_private_key()
        .map_err(|e| TlsError::Config(format!("{key_what}: does not match {cert_what}: {e}")))
}

/// Handshake on an accepted TCP stream.
///
/// There is no timeout here: wrap the call in `tokio::time::timeout` so that a client
/// that stops mid-handshake does not hold the task forever.
pub async fn accept(
    acceptor: &SslAcceptor,
    tcp: TcpStream,
) -> Result<SslStream<TcpStream>, TlsError> {
    let ssl = openssl::ssl::Ssl::new(acceptor.context())
        .map_err(|e| TlsError::Handshake(format!("creating TLS session: {e}")))?;
    let mut stream = SslStream::new(ssl, tcp)
        .map_err(|e| TlsError::Handshake(format!("creating TLS stream: {e}")))?;
    match Pin::new(&mut stream).accept().await {
        Ok(()) => Ok(stream),
        Err(e) => {
            let err = handshake_error(&e, stream.ssl());
            tracing::debug!(error = %err, "TLS server handshake failed");
            Err(err)
        }
    }
}

/// SHA-256 (lowercase hex) of the verified peer certificate, if the client sent one.
///
/// Returns `None` when no certificate was sent or when it did not verify (the latter
/// can only happen with a context that does not fail the handshake on a bad
/// certificate, which [`build_acceptor`] never builds; checked anyway so that this
/// function alone is enough to trust the answer).
pub fn peer_cert_sha256<S>(stream: &SslStream<S>) -> Option<String> {
    let ssl = stream.ssl();
    if ssl.verify_result() != X509VerifyResult::OK {
        return None;
    }
    let cert = ssl.peer_certificate()?;
    let der = cert.to_der().ok()?;
    Some(fingerprint_der(&der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Files {
            let dir = tempfile::tempdir().unwrap();
            let ca = pki::generate_ca("CA", 1).unwrap();
            let srv = pki::issue_server_cert(&ca, "srv", &["localhost"], 1).unwrap();
            pki::write_pem_pair(&ca, &dir.path().join("ca.pem"), &dir.path().join("ca.key"))
                .unwrap();
            pki::write_pem_pair(
                &srv,
                &dir.path().join("srv.pem"),
                &dir.path().join("srv.key"),
            )
            .unwrap();
            Files { dir }
        }
        fn p(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }
        fn cfg(&self) -> ServerTlsConfig {
            ServerTlsConfig {
                cert_file: self.p("srv.pem"),
                key_file: self.p("srv.key"),
                client_ca_file: Some(self.p("ca.pem")),
                require_client_cert: true,
            }
        }
    }

    #[test]
    fn builds_with_tls12_floor_and_mtls() {
        let f = Files::new();
        let mut b = acceptor_builder(&f.cfg()).unwrap();
        assert_eq!(b.min_proto_version(), Some(SslVersion::TLS1_2));
        let mode =
            |cfg: &ServerTlsConfig| build_acceptor(cfg).ok().unwrap().context().verify_mode();
        assert_eq!(
            mode(&f.cfg()),
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
        );
        let mut optional = f.cfg();
        optional.require_client_cert = false;
        assert_eq!(mode(&optional), SslVerifyMode::PEER);
        optional.client_ca_file = None;
        assert_eq!(mode(&optional), SslVerifyMode::NONE);
    }

    #[test]
    fn require_without_ca_is_a_config_error() {
        let f = Files::new();
        let mut cfg = f.cfg();
        cfg.client_ca_file = None;
        let err = build_acceptor(&cfg).err().unwrap();
        assert!(
            matches!(err, TlsError::Config(ref m) if m.contains("client_ca_file")),
            "{err}"
        );
    }

    #[test]
    fn config_errors_name_the_file() {
        let f = Files::new();
        let mut cfg = f.cfg();
        cfg.cert_file = f.p("missing.pem");
        let msg = build_acceptor(&cfg).err().unwrap().to_string();
        assert!(
            msg.contains("cert_file") && msg.contains("missing.pem"),
            "{msg}"
        );

        // Key of another certificate.
        let mut cfg = f.cfg();
        cfg.key_file = f.p("ca.key");
        let msg = build_acceptor(&cfg).err().unwrap().to_string();
        assert!(
            msg.contains("key_file") && msg.contains("does not belong"),
            "{msg}"
        );

        // A key where certificates are expected.
        let mut cfg = f.cfg();
        cfg.client_ca_file = Some(f.p("srv.key"));
        let msg = build_acceptor(&cfg).err().unwrap().to_string();
        assert!(msg.contains("client_ca_file"), "{msg}");

        // Empty CA file.
        std::fs::write(f.p("empty.pem"), b"").unwrap();
        let mut cfg = f.cfg();
        cfg.client_ca_file = Some(f.p("empty.pem"));
        let msg = build_acceptor(&cfg).err().unwrap().to_string();
        assert!(msg.contains("no certificate"), "{msg}");
    }

    #[test]
    fn key_error_does_not_echo_key_bytes() {
        let f = Files::new();
        // Corrupt the key body: the error must not quote what it failed to parse.
        let key = std::fs::read_to_string(f.p("srv.key")).unwrap();
        let body = key.lines().nth(1).unwrap().to_owned();
        let corrupted = key.replacen(&body[..8], "!!!!!!!!", 1);
        std::fs::write(f.p("bad.key"), corrupted).unwrap();
        let mut cfg = f.cfg();
        cfg.key_file = f.p("bad.key");
        let msg = build_acceptor(&cfg).err().unwrap().to_string();
        assert!(msg.contains("key_file"), "{msg}");
        assert!(!msg.contains(&body[8..]), "{msg}");
    }
}
