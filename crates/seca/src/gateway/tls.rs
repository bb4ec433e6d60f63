//! TLS towards gateways: the PSK key callback with GBA keys, connectors, and a
//! handshake whose failures say whether the gateway refused the PSK.
//!
//! One connection offers PSK and, when a CA file is configured, certificate
//! authentication together (no second attempt): TLS 1.2 PSK suites first, then
//! ECDHE certificate suites, and in TLS 1.3 the external PSK in the ClientHello,
//! which a server that does not take it answers with a certificate handshake.
//! `seccf_tls::psk` documents what OpenSSL lets the callback see; the key is derived
//! inside the callback for exactly the NAF_Id the negotiation implies.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use openssl::x509::X509VerifyResult;
use seccf_gba::naf::NafId;
use seccf_secret::SecretBytes;
use seccf_tls::psk::{
    build_psk_connector, peer_auth, PeerAuth, PskClientConfig, PskClientKeys, PskTlsVersion,
    DEFAULT_TLS12_PSK_CIPHERS,
};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::agent::NafKeyDeriver;
use crate::error::SecaError;
use crate::gateway::ua::{hint_acceptable, psk_identity, psk_ua, UaOrg};

/// TLS alert 115, `unknown_psk_identity` (RFC 4279 §2): a TLS 1.2 server that does not
/// know the B-TID says so with it.
pub const ALERT_UNKNOWN_PSK_IDENTITY: u8 = 115;

/// OpenSSL reports a received alert as reason code 1000 + alert
/// (`SSL_AD_REASON_OFFSET` in ssl.h).
const ALERT_REASON_OFFSET: i32 = 1000;

/// TLS 1.2 certificate suites offered next to the PSK ones (forward secret AEADs).
const TLS12_CERT_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// The PSK client callback: identity `3GPP-bootstrapping.<B-TID>`, key for
/// NAF_Id = FQDN ‖ the Ua id of what is being negotiated.
pub(crate) struct GbaPskKeys {
    deriver: Arc<NafKeyDeriver>,
    fqdn: String,
    org: UaOrg,
    identity: String,
}

impl GbaPskKeys {
    pub(crate) fn new(deriver: Arc<NafKeyDeriver>, fqdn: &str, org: UaOrg) -> Self {
        let identity = psk_identity(deriver.btid());
        GbaPskKeys {
            deriver,
            fqdn: fqdn.to_owned(),
            org,
            identity,
        }
    }
}

impl PskClientKeys for GbaPskKeys {
    fn keys(
        &self,
        hint: Option<&[u8]>,
        version: PskTlsVersion,
        cipher_suite: u16,
    ) -> Option<(String, SecretBytes)> {
        if !hint_acceptable(hint) {
            tracing::debug!(
                "gateway's PSK identity hint is not 3GPP-bootstrapping; no PSK offered"
            );
            return None;
        }
        let ua = psk_ua(self.org, version, cipher_suite)?;
        let naf = NafId::new(&self.fqdn, ua).ok()?;
        match self.deriver.derive(&naf) {
            Ok(key) => Some((self.identity.clone(), SecretBytes::from(&key))),
            Err(e) => {
                tracing::warn!(naf = %naf, error = %e, "no NAF key for PSK-TLS; no PSK offered");
                None
            }
        }
    }
}

/// Which TLS versions to offer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Versions {
    pub(crate) tls13: bool,
}

/// A connector offering the GBA PSK and, with `ca_file`, certificate authentication
/// of the server against that CA file (nothing else trusted).
pub(crate) fn psk_connector(
    keys: GbaPskKeys,
    ca_file: Option<&Path>,
    versions: Versions,
) -> Result<SslConnector, SecaError> {
    let tls12_ciphers = match ca_file {
        Some(_) => format!("{DEFAULT_TLS12_PSK_CIPHERS}:{TLS12_CERT_CIPHERS}"),
        None => DEFAULT_TLS12_PSK_CIPHERS.to_owned(),
    };
    let cfg = PskClientConfig {
        tls12_ciphers,
        enable_tls13: versions.tls13,
        server_ca_file: ca_file.map(Path::to_path_buf),
        ..PskClientConfig::default()
    };
    build_psk_connector(&cfg, Arc::new(keys)).map_err(|e| SecaError::Tls(e.to_string()))
}

/// A certificate-only connector: the server must chain to `ca_file`, or to the system
/// trust store without one.
pub(crate) fn cert_connector(
    ca_file: Option<&Path>,
    versions: Versions,
) -> Result<SslConnector, SecaError> {
    let tls = |e: openssl::error::ErrorStack| SecaError::Tls(format!("client context: {e}"));
    let mut b = match ca_file {
        Some(ca) => seccf_tls::client::connector_builder(&seccf_tls::client::ClientTlsConfig {
            ca_file: ca.to_path_buf(),
            client_cert_file: None,
            client_key_file: None,
        })
        .map_err(|e| SecaError::Tls(e.to_string()))?,
        None => {
            let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(tls)?;
            b.set_min_proto_version(Some(SslVersion::TLS1_2))
                .map_err(tls)?;
            b
        }
    };
    if !versions.tls13 {
        b.set_max_proto_version(Some(SslVersion::TLS1_2))
            .map_err(tls)?;
    }
    Ok(b.build())
}

/// What a finished handshake negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Negotiated {
    /// Our PSK authenticated the connection.
    Psk {
        identity: String,
        version: PskTlsVersion,
        cipher_suite: u16,
    },
    /// The server authenticated with a certificate that verified.
    Certificate { cipher_suite: u16 },
}

/// A failed handshake, classified for the re-bootstrap decision.
#[derive(Clone, Debug)]
pub(crate) struct HandshakeFailure {
    /// OpenSSL's reason (no key material: OpenSSL's error queue holds codes).
    pub(crate) reason: String,
    /// The alert the server sent, if it sent one.
    pub(crate) alert: Option<u8>,
    /// The server's certificate did not verify.
    pub(crate) cert_rejected: bool,
}

impl HandshakeFailure {
    pub(crate) fn into_error(self) -> SecaError {
        SecaError::Tls(self.to_string())
    }
}

impl std::fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.alert {
            Some(a) => write!(
                f,
                "handshake failed (alert {a} from the server): {}",
                self.reason
            ),
            None => write!(f, "handshake failed: {}", self.reason),
        }
    }
}

/// The alert a server sent, from OpenSSL's error queue.
fn received_alert(e: &openssl::ssl::Error) -> Option<u8> {
    e.ssl_error()?.errors().iter().find_map(|err| {
        let code = err.reason_code().checked_sub(ALERT_REASON_OFFSET)?;
        u8::try_from(code).ok()
    })
}

/// TLS client handshake on `tcp` for `host` (SNI for DNS names; certificate name or
/// address check). Succeeds only when our PSK or a verified certificate
/// authenticated the server. No timeout here: the caller bounds it.
pub(crate) async fn handshake(
    connector: &SslConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<(SslStream<TcpStream>, Negotiated), HandshakeFailure> {
    let fail = |reason: String| HandshakeFailure {
        reason,
        alert: None,
        cert_rejected: false,
    };
    let ssl = connector
        .configure()
        .and_then(|c| c.into_ssl(host))
        .map_err(|e| fail(format!("TLS session for host {host:?}: {e}")))?;
    let mut stream =
        SslStream::new(ssl, tcp).map_err(|e| fail(format!("creating TLS stream: {e}")))?;
    if let Err(e) = Pin::new(&mut stream).connect().await {
        let verify = stream.ssl().verify_result();
        let cert_rejected = verify != X509VerifyResult::OK;
        let reason = if cert_rejected {
            format!("{e} (server certificate: {})", verify.error_string())
        } else {
            e.to_string()
        };
        return Err(HandshakeFailure {
            reason,
            alert: received_alert(&e),
            cert_rejected,
        });
    }
    let ssl = stream.ssl();
    let cipher_suite = ssl
        .current_cipher()
        .map(|c| u16::from_be_bytes(c.protocol_id()))
        .unwrap_or(0);
    let negotiated = match peer_auth(ssl) {
        PeerAuth::Psk {
            identity,
            version,
            cipher_suite,
        } => Negotiated::Psk {
            identity,
            version,
            cipher_suite,
        },
        PeerAuth::None => {
            let cert_ok =
                ssl.peer_certificate().is_some() && ssl.verify_result() == X509VerifyResult::OK;
            if !cert_ok {
                return Err(fail(
                    "the server authenticated neither with our PSK nor with a verified certificate"
                        .into(),
                ));
            }
            Negotiated::Certificate { cipher_suite }
        }
    };
    Ok((stream, negotiated))
}

/// Whether a failed PSK handshake should be answered by a fresh bootstrap (once):
/// the gateway said it does not know the B-TID (alert 115), or the context was not
/// bootstrapped for this attempt, so the gateway may have forgotten or expired it
/// (TLS 1.3 has no specific alert). A certificate that failed to verify is a
/// certificate problem, not a B-TID one, when certificates were acceptable at all;
/// with PSK only, a server certificate means the server passed over our PSK.
pub(crate) fn should_rebootstrap(
    f: &HandshakeFailure,
    fresh_context: bool,
    certs_allowed: bool,
) -> bool {
    if f.cert_rejected && certs_allowed {
        return false;
    }
    f.alert == Some(ALERT_UNKNOWN_PSK_IDENTITY) || !fresh_context
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(alert: Option<u8>, cert_rejected: bool) -> HandshakeFailure {
        HandshakeFailure {
            reason: "x".into(),
            alert,
            cert_rejected,
        }
    }

    #[test]
    fn rebootstrap_rules() {
        // Unknown identity: always worth one fresh bootstrap.
        assert!(should_rebootstrap(&failure(Some(115), false), true, true));
        assert!(should_rebootstrap(&failure(Some(115), false), false, false));
        // Any other handshake failure: only with an old context.
        assert!(should_rebootstrap(&failure(Some(40), false), false, true));
        assert!(!should_rebootstrap(&failure(Some(40), false), true, true));
        assert!(should_rebootstrap(&failure(None, false), false, false));
        // A bad certificate is not a B-TID problem when certificates were wanted...
        assert!(!should_rebootstrap(&failure(Some(115), true), false, true));
        // ...but with PSK only it means the server passed over our PSK.
        assert!(should_rebootstrap(&failure(None, true), false, false));
    }

    /// A real TLS 1.2 handshake against a PSK server that knows no identity: the
    /// failure carries alert 115 (this is what the re-bootstrap rule keys on), and
    /// TLS 1.3 gives a handshake failure without it.
    #[tokio::test]
    async fn unknown_identity_alert_is_reported() {
        use seccf_tls::psk::{build_psk_acceptor, PskRequest, PskServerConfig};
        for (tls13, expected) in [(false, Some(ALERT_UNKNOWN_PSK_IDENTITY)), (true, Some(40))] {
            let server_cfg = PskServerConfig {
                identity_hint: Some("3GPP-bootstrapping".into()),
                enable_tls13: tls13,
                ..PskServerConfig::default()
            };
            let lookup = |_: &PskRequest<'_>| -> Option<SecretBytes> { None };
            let acceptor = build_psk_acceptor(&server_cfg, Arc::new(lookup)).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                let _ = seccf_tls::server::accept(&acceptor, tcp).await;
            });
            let keys = |_: Option<&[u8]>, _: PskTlsVersion, _: u16| {
                Some((
                    "3GPP-bootstrapping.x@y".to_owned(),
                    SecretBytes::new(vec![1; 32]),
                ))
            };
            let connector =
                build_psk_connector(&PskClientConfig::default(), Arc::new(keys)).unwrap();
            let tcp = TcpStream::connect(addr).await.unwrap();
            let err = match handshake(&connector, "localhost", tcp).await {
                Ok(_) => panic!("handshake with an unknown identity succeeded"),
                Err(e) => e,
            };
            assert_eq!(err.alert, expected, "tls13={tls13}: {err}");
            assert!(!err.cert_rejected);
            server.await.unwrap();
        }
    }
}
