//! Certificate TLS on the client side: a connector that trusts one configured CA file
//! (not the system store), checks the server's name or IP address, and can present a
//! client certificate for mutual TLS (an OSG talking to the KMC on Zn).

use std::path::PathBuf;
use std::pin::Pin;

use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::error::handshake_error;
use crate::pki::{ensure_key_matches, parse_certificates, parse_private_key};
use crate::server::MAX_VERIFY_DEPTH;
use crate::{files, TlsError};

/// TLS 1.2 suites offered: the Mozilla "intermediate" list (forward secret, AEAD only).
/// TLS 1.3 suites stay at OpenSSL's defaults, which are the same three AEADs.
const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

/// Longest host name accepted by [`connect`] (RFC 1035 text form).
pub const MAX_HOST_LEN: usize = 253;

/// Certificate TLS client settings (TOML-friendly, unknown fields rejected).
///
/// ```toml
/// ca_file = "/etc/seccf/kmc-ca.pem"        # the only CAs trusted for the server
/// client_cert_file = "/etc/seccf/osg.pem"  # optional, with client_key_file
/// client_key_file = "/etc/seccf/osg.key"
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// CA certificates (PEM) the server certificate must chain to. The system trust
    /// store is not used: Zn peers are private infrastructure.
    pub ca_file: PathBuf,
    /// Client certificate chain (PEM, leaf first) to present; needs `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// Private key of the client certificate, unencrypted PEM; needs `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

/// Verifies the server against ca_file (hostname/IP checked), presents the client cert if given.
pub fn build_connector(cfg: &ClientTlsConfig) -> Result<SslConnector, TlsError> {
    Ok(connector_builder(cfg)?.build())
}

/// The builder behind [`build_connector`], for callers that add settings (ALPN, a
/// narrower protocol range) before building. Every security setting is already applied.
pub fn connector_builder(cfg: &ClientTlsConfig) -> Result<SslConnectorBuilder, TlsError> {
    let ossl = |what: &'static str| move |e| TlsError::Config(format!("{what}: {e}"));

    let ca_what = format!("ca_file {}", cfg.ca_file.display());
    let cas = parse_certificates(&files::read_pem_file(&cfg.ca_file, "ca_file")?, &ca_what)?;

    // SslConnector::builder turns on peer verification (and hostname checks through
    // `configure`) and loads the system trust store, which is replaced below.
    let mut b =
        SslConnector::builder(SslMethod::tls_client()).map_err(ossl("OpenSSL client context"))?;
    let mut store = X509StoreBuilder::new().map_err(ossl("CA store"))?;
    for ca in cas {
        store
            .add_cert(ca)
            .map_err(|e| TlsError::Config(format!("{ca_what}: {e}")))?;
    }
    b.set_cert_store(store.build());
    b.set_verify_depth(MAX_VERIFY_DEPTH);
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(ossl("minimum TLS version"))?;
    b.set_cipher_list(TLS12_CIPHERS)
        .map_err(ossl("cipher list"))?;

    match (&cfg.client_cert_file, &cfg.client_key_file) {
        (None, None) => {}
        (Some(cert_path), Some(key_path)) => {
            let cert_what = format!("client_cert_file {}", cert_path.display());
            let key_what = format!("client_key_file {}", key_path.display());
            let chain = parse_certificates(
                &files::read_pem_file(cert_path, "client_cert_file")?,
                &cert_what,
            )?;
            let key_pem = files::read_secret_pem_file(key_path, "client_key_file")?;
            let key = parse_private_key(key_pem.expose(), &key_what)?;
            let mut chain = chain.into_iter();
            let leaf = chain
                .next()
                .ok_or_else(|| TlsError::Config(format!("{cert_what}: no certificate found")))?;
            ensure_key_matches(&leaf, &key, &key_what)?;
            b.set_certificate(&leaf)
                .map_err(|e| TlsError::Config(format!("{cert_what}: {e}")))?;
            for extra in chain {
                b.add_extra_chain_cert(extra).map_err(|e| {
                    TlsError::Config(format!("{cert_what}: intermediate certificate: {e}"))
                })?;
            }
            b.set_private_key(&key)
                .map_err(|e| TlsError::Config(format!("{key_what}: {e}")))?;
            b.check_private_key().map_err(|e| {
                TlsError::Config(format!("{key_what}: does not match {cert_what}: {e}"))
            })?;
        }
        _ => {
            return Err(TlsError::Config(
                "client_cert_file and client_key_file must be given together".into(),
            ))
        }
    }
    Ok(b)
}

/// Connects TLS over `tcp`, with SNI = host when host is a DNS name, and hostname/IP verification.
///
/// `host` is the name the server certificate must carry: a DNS name, or an IP address
/// (IPv6 with or without brackets) matched against IP SANs. No timeout is applied; wrap
/// the call in `tokio::time::timeout`.
pub async fn connect(
    connector: &SslConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<SslStream<TcpStream>, TlsError> {
    let host = normalize_host(host)?;
    let ssl = connector
        .configure()
        .and_then(|c| c.into_ssl(host))
        .map_err(|e| TlsError::Config(format!("TLS session for host {host:?}: {e}")))?;
    let mut stream = SslStream::new(ssl, tcp)
        .map_err(|e| TlsError::Handshake(format!("creating TLS stream: {e}")))?;
    match Pin::new(&mut stream).connect().await {
        Ok(()) => Ok(stream),
        Err(e) => {
            let err = handshake_error(&e, stream.ssl());
            tracing::debug!(host, error = %err, "TLS client handshake failed");
            Err(err)
        }
    }
}

/// Strips the brackets of an IPv6 literal ("[::1]" as written in URLs) so OpenSSL
/// sees an address it can match against IP SANs, and refuses hosts that cannot be a
/// name or address at all.
pub(crate) fn normalize_host(host: &str) -> Result<&str, TlsError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.is_empty()
        || bare.len() > MAX_HOST_LEN
        || bare
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == 0)
    {
        return Err(TlsError::Config(format!("invalid TLS host name {host:?}")));
    }
    Ok(bare)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki;

    /// Randomized: the host check never panics and only accepts what it promises.
    #[test]
    fn host_normalization_never_panics() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"[]:.-a0 \0\n\x7f\xc3\xbc";
        for _ in 0..5000 {
            let len = (next() % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(h) = normalize_host(&text) {
                assert!(!h.is_empty() && h.len() <= MAX_HOST_LEN);
                assert!(!h.bytes().any(|b| b.is_ascii_control() || b == b' '));
            }
        }
    }

    #[test]
    fn host_normalization() {
        assert_eq!(normalize_host("[::1]").unwrap(), "::1");
        assert_eq!(
            normalize_host("kmc.example.org").unwrap(),
            "kmc.example.org"
        );
        assert_eq!(normalize_host("127.0.0.1").unwrap(), "127.0.0.1");
        for bad in ["", "[]", "a b", "a\0b", "a\nb"] {
            assert!(normalize_host(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_host(&"a".repeat(MAX_HOST_LEN + 1)).is_err());
    }

    #[test]
    fn cert_and_key_go_together() {
        let dir = tempfile::tempdir().unwrap();
        let ca = pki::generate_ca("CA", 1).unwrap();
        let cli = pki::issue_client_cert(&ca, "cli", 1).unwrap();
        let p = |n: &str| dir.path().join(n);
        pki::write_pem_pair(&ca, &p("ca.pem"), &p("ca.key")).unwrap();
        pki::write_pem_pair(&cli, &p("cli.pem"), &p("cli.key")).unwrap();
        let mut cfg = ClientTlsConfig {
            ca_file: p("ca.pem"),
            client_cert_file: Some(p("cli.pem")),
            client_key_file: None,
        };
        assert!(matches!(build_connector(&cfg), Err(TlsError::Config(_))));
        cfg.client_key_file = Some(p("ca.key"));
        let msg = build_connector(&cfg).err().unwrap().to_string();
        assert!(msg.contains("does not belong"), "{msg}");
        cfg.client_key_file = Some(p("cli.key"));
        let mut b = connector_builder(&cfg).ok().unwrap();
        assert_eq!(b.min_proto_version(), Some(SslVersion::TLS1_2));
        cfg.client_cert_file = None;
        cfg.client_key_file = None;
        assert!(build_connector(&cfg).is_ok());
        cfg.ca_file = p("nope.pem");
        let msg = build_connector(&cfg).err().unwrap().to_string();
        assert!(msg.contains("ca_file") && msg.contains("nope.pem"), "{msg}");
    }
}
