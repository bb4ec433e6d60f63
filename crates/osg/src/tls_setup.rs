//! TLS contexts of the listeners, the GBA PSK key lookup behind them, and what a
//! finished handshake tells about the peer.

use std::sync::Arc;

use openssl::ssl::{
    select_next_proto, AlpnError, SslAcceptor, SslAcceptorBuilder, SslRef, SslVersion,
};
use openssl::x509::X509VerifyResult;
use seccf_gba::naf::NafId;
use seccf_secret::SecretBytes;
use seccf_tls::psk::{PskKeyLookup, PskRequest, PskServerConfig, PskTlsVersion};
use seccf_tls::revocation::OcspStapler;
use seccf_tls::server::ServerTlsConfig;

use crate::config::{AuthMethod, ListenerConfig, ListenerKind};
use crate::keys::{KeyError, KeyProvider};
use crate::obs::{Audit, Decision, Metrics};
use crate::ua::{parse_psk_identity, psk_ua, TlsVersion, UaOrg, PSK_IDENTITY_HINT};
use crate::OsgError;

/// ALPN protocols of HTTPS listeners, server preference order.
const ALPN_HTTPS: &[u8] = b"\x02h2\x08http/1.1";

/// The PSK key lookup of one listener: identity → B-TID, negotiated version and suite
/// → NafId, then the key provider (cache or Zn, blocking the worker thread with
/// `block_in_place` on a miss).
pub struct GbaPskLookup {
    pub(crate) keys: Arc<KeyProvider>,
    pub(crate) fqdn: String,
    pub(crate) org: UaOrg,
    pub(crate) listener: String,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) audit: Arc<Audit>,
}

impl GbaPskLookup {
    fn deny(&self, identity: Option<&str>, reason: &str) {
        self.metrics
            .auth(&self.listener, AuthMethod::Psk.label(), reason);
        self.audit.decision(&Decision {
            listener: &self.listener,
            route: None,
            method: AuthMethod::Psk.label(),
            outcome: "deny",
            identity,
            peer: None,
            reason,
        });
    }
}

/// Our version type from the TLS crate's.
pub fn tls_version(v: PskTlsVersion) -> TlsVersion {
    match v {
        PskTlsVersion::Tls12 => TlsVersion::Tls12,
        PskTlsVersion::Tls13 => TlsVersion::Tls13,
    }
}

impl PskKeyLookup for GbaPskLookup {
    fn lookup(&self, req: &PskRequest<'_>) -> Option<SecretBytes> {
        let Ok(btid) = parse_psk_identity(req.identity) else {
            // Also TLS 1.3 tickets and other binary identities: not worth an audit line.
            self.metrics
                .auth(&self.listener, AuthMethod::Psk.label(), "bad_identity");
            return None;
        };
        let version = tls_version(req.version);
        if version == TlsVersion::Tls12 && req.cipher_suite == 0 {
            // The 3GPP/OMA TLS 1.2 ids contain the suite; without it no key can match.
            self.deny(Some(btid), "suite_unknown");
            return None;
        }
        let naf = NafId::new(&self.fqdn, psk_ua(self.org, version, req.cipher_suite)).ok()?;
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.deny(Some(btid), "no_runtime");
            return None;
        };
        match self.keys.get_blocking(&handle, btid, &naf) {
            Ok(k) => Some(SecretBytes::from(&k.me_key)),
            Err(e) => {
                let reason = match e {
                    KeyError::UnknownBtid => "unknown_btid",
                    KeyError::Refused(_) => "kmc_refused",
                    KeyError::Unavailable(_) => "kmc_unavailable",
                };
                self.deny(Some(btid), reason);
                None
            }
        }
    }
}

fn add_alpn(b: &mut SslAcceptorBuilder, kind: ListenerKind) {
    if kind == ListenerKind::Https {
        b.set_alpn_select_callback(|_, client| {
            select_next_proto(ALPN_HTTPS, client).ok_or(AlpnError::NOACK)
        });
    }
}

fn tls_err(listener: &str) -> impl Fn(seccf_tls::TlsError) -> OsgError + '_ {
    move |e| OsgError::Tls(format!("listener {listener:?}: {e}"))
}

/// Builds the acceptor of a listener from its configuration (files are read now).
pub fn build_acceptor(
    l: &ListenerConfig,
    psk: Option<Arc<dyn PskKeyLookup>>,
) -> Result<SslAcceptor, OsgError> {
    build_acceptor_with_stapler(l, psk, None)
}

/// [`build_acceptor`] that also staples `stapler`'s current OCSP response for the
/// listener's certificate into handshakes whose client asks for one.
pub fn build_acceptor_with_stapler(
    l: &ListenerConfig,
    psk: Option<Arc<dyn PskKeyLookup>>,
    stapler: Option<&Arc<OcspStapler>>,
) -> Result<SslAcceptor, OsgError> {
    let err = tls_err(&l.name);
    let cert_pair = match (&l.tls.cert_file, &l.tls.key_file) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    let mut b = if l.accepts(AuthMethod::Psk) {
        let lookup = psk.ok_or_else(|| OsgError::Tls("PSK listener without key lookup".into()))?;
        let cfg = PskServerConfig {
            identity_hint: Some(PSK_IDENTITY_HINT.to_string()),
            enable_tls13: l.tls.psk_tls13,
            allow_psk_ke_without_dhe: l.tls.psk_ke_without_dhe,
            // The certificate serves Digest clients on the same port.
            certificate: if l.accepts(AuthMethod::Digest) {
                cert_pair
            } else {
                None
            },
            ..PskServerConfig::default()
        };
        seccf_tls::psk::psk_acceptor_builder(&cfg, lookup).map_err(&err)?
    } else {
        let (cert_file, key_file) = cert_pair
            .ok_or_else(|| OsgError::Tls(format!("listener {:?}: no certificate", l.name)))?;
        let cfg = ServerTlsConfig {
            cert_file,
            key_file,
            client_ca_file: l.tls.client_ca_file.clone(),
            // With Digest as a fallback, a client without a certificate may continue.
            require_client_cert: l.accepts(AuthMethod::Mtls) && !l.accepts(AuthMethod::Digest),
        };
        let mut b = seccf_tls::server::acceptor_builder(&cfg).map_err(&err)?;
        if l.accepts(AuthMethod::Mtls) && !l.tls.crl_files.is_empty() {
            let ca = l
                .tls
                .client_ca_file
                .as_deref()
                .ok_or_else(|| OsgError::Tls(format!("listener {:?}: no client CA", l.name)))?;
            seccf_tls::revocation::apply_crls(&mut b, ca, &l.tls.crl_files).map_err(&err)?;
        }
        b
    };
    if let Some(stapler) = stapler {
        stapler.install(&mut b).map_err(&err)?;
    }
    add_alpn(&mut b, l.kind);
    Ok(b.build())
}

/// Version and IANA suite id of a finished handshake.
pub fn negotiated(ssl: &SslRef) -> (TlsVersion, u16, &'static str) {
    let version = if ssl.version2() == Some(SslVersion::TLS1_3) {
        TlsVersion::Tls13
    } else {
        TlsVersion::Tls12
    };
    let (suite, name) = ssl
        .current_cipher()
        .map(|c| (u16::from_be_bytes(c.protocol_id()), c.name()))
        .unwrap_or((0, ""));
    (version, suite, name)
}

/// The identity of a verified client certificate: the subject CN, else the first
/// DNS, e-mail or URI subject alternative name. `None` when no certificate verified.
pub fn client_cert_identity(ssl: &SslRef) -> Option<String> {
    if ssl.verify_result() != X509VerifyResult::OK {
        return None;
    }
    let cert = ssl.peer_certificate()?;
    let cn = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok());
    if let Some(cn) = cn.filter(|c| !c.is_empty()) {
        return Some(cn);
    }
    cert.subject_alt_names()?.iter().find_map(|n| {
        n.dnsname()
            .or_else(|| n.email())
            .or_else(|| n.uri())
            .map(str::to_string)
    })
}
