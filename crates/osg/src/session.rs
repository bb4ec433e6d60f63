//! What HTTPS and TCP listeners share after accept: the bounded TLS handshake and the
//! connection-level authentication decision (PSK-TLS or client certificate).

use std::net::SocketAddr;
use std::time::Duration;

use openssl::ssl::SslAcceptor;
use seccf_gba::naf::NafId;
use seccf_tls::psk::PeerAuth;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::config::AuthMethod;
use crate::obs::Decision;
use crate::principal::{authorize, Principal};
use crate::tls_setup::{client_cert_identity, tls_version};
use crate::ua::{parse_psk_identity, psk_ua};
use crate::{unix_now, ListenerState, Shared};

/// The authentication a connection carries.
#[derive(Clone, Debug)]
pub enum ConnAuth {
    /// Authenticated and authorised at the TLS layer.
    Authenticated(Principal),
    /// Authenticated but refused (reason label).
    Denied(&'static str),
    /// No TLS-layer authentication (Digest may follow).
    None,
}

/// TLS handshake with the listener's timeout; counts the outcome.
pub(crate) async fn handshake(
    state: &ListenerState,
    shared: &Shared,
    acceptor: &SslAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<SslStream<TcpStream>> {
    let name = state.cfg.name.as_str();
    let limit = Duration::from_secs(state.cfg.limits.tls_handshake_timeout_secs);
    match tokio::time::timeout(limit, seccf_tls::server::accept(acceptor, tcp)).await {
        Ok(Ok(s)) => {
            shared.metrics.handshake(name, "ok");
            Some(s)
        }
        Ok(Err(e)) => {
            shared.metrics.handshake(name, "failed");
            tracing::info!(listener = name, %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            shared.metrics.handshake(name, "timeout");
            tracing::info!(listener = name, %peer, "TLS handshake timed out");
            None
        }
    }
}

fn record(
    shared: &Shared,
    listener: &str,
    method: AuthMethod,
    outcome: &str,
    identity: Option<&str>,
    peer: SocketAddr,
    reason: &str,
) {
    shared.metrics.auth(listener, method.label(), reason);
    shared.audit.decision(&Decision {
        listener,
        route: None,
        method: method.label(),
        outcome,
        identity,
        peer: Some(peer),
        reason,
    });
}

/// The connection-level decision after a successful handshake: who the PSK or the
/// client certificate says the peer is (OCSP checked for certificates when
/// configured), and whether the listener lets them in. On a listener with routes the
/// second part waits for each request's route (`allow`, `required_flags`), so only
/// authentication is decided here.
pub(crate) async fn connection_auth<S>(
    state: &ListenerState,
    shared: &Shared,
    stream: &SslStream<S>,
    peer: SocketAddr,
) -> ConnAuth {
    let name = state.cfg.name.as_str();
    let now = unix_now();
    let principal = if let PeerAuth::Psk {
        identity,
        version,
        cipher_suite,
    } = seccf_tls::psk::psk_peer(stream)
    {
        let Ok(btid) = parse_psk_identity(identity.as_bytes()) else {
            return ConnAuth::Denied("bad_identity");
        };
        let ua = psk_ua(state.cfg.ua_org, tls_version(version), cipher_suite);
        let Ok(naf) = NafId::new(&shared.fqdn, ua) else {
            return ConnAuth::Denied("bad_naf_id");
        };
        // Normally a cache hit: the PSK callback fetched this key moments ago.
        match shared.keys.get(btid, &naf).await {
            Ok(keys) => Principal::gba(AuthMethod::Psk, btid, &keys),
            Err(_) => {
                record(
                    shared,
                    name,
                    AuthMethod::Psk,
                    "deny",
                    Some(btid),
                    peer,
                    "key_vanished",
                );
                return ConnAuth::Denied("key_vanished");
            }
        }
    } else if state.cfg.accepts(AuthMethod::Mtls) {
        let Some(id) = client_cert_identity(stream.ssl()) else {
            return ConnAuth::None;
        };
        if let Some(checker) = state.ocsp() {
            let chain = seccf_tls::revocation::peer_chain(stream);
            let outcome = checker.check(&chain).await;
            if !outcome.allows(state.cfg.tls.revocation_hard_fail) {
                let reason = match outcome {
                    seccf_tls::revocation::OcspOutcome::Revoked { .. } => "revoked",
                    seccf_tls::revocation::OcspOutcome::Unknown => "ocsp_unknown",
                    _ => "ocsp_unavailable",
                };
                record(
                    shared,
                    name,
                    AuthMethod::Mtls,
                    "deny",
                    Some(&id),
                    peer,
                    reason,
                );
                return ConnAuth::Denied(reason);
            }
        }
        Principal::named(AuthMethod::Mtls, &id)
    } else {
        return ConnAuth::None;
    };
    let identity = principal
        .btid
        .clone()
        .unwrap_or_else(|| principal.identity.clone());
    let verdict = if state.cfg.has_routes() {
        Ok(())
    } else {
        authorize(&state.cfg, &principal, now)
    };
    match verdict {
        Ok(()) => {
            record(
                shared,
                name,
                principal.method,
                "allow",
                Some(&identity),
                peer,
                "ok",
            );
            ConnAuth::Authenticated(principal)
        }
        Err(d) => {
            record(
                shared,
                name,
                principal.method,
                "deny",
                Some(&identity),
                peer,
                d.label(),
            );
            ConnAuth::Denied(d.label())
        }
    }
}
