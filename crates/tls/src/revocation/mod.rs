//! Revocation checks of client certificates for mutual TLS: CRLs inside the handshake,
//! OCSP right after it.
//!
//! # CRLs
//!
//! [`apply_crls`] installs the trust CAs and the CRL files into a server's verify store
//! with `X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL`, so OpenSSL refuses a revoked
//! client certificate during the handshake (alert `certificate_revoked`). CRL_CHECK_ALL
//! means every certificate of the chain needs a current CRL from its issuer, including
//! the root (its own CRL covers it): give one CRL per CA of the trust file. An expired
//! CRL (past nextUpdate) fails every handshake, which is the safe reading of "status
//! unknown".
//!
//! ## Reloading
//!
//! OpenSSL contexts are immutable once built, so a new CRL means a new acceptor: build
//! one with [`build_acceptor_with_crls`] (or `server::acceptor_builder` + [`apply_crls`])
//! and swap it into the `Arc<SslAcceptor>` (an `ArcSwap`, or an `RwLock<Arc<..>>`) that
//! the accept loop reads for each new connection. Connections already established keep
//! the old context; new handshakes use the new one. If building fails (a truncated CRL
//! file, a CRL signed by an unknown CA) keep serving with the old acceptor and log it.
//!
//! # OCSP
//!
//! The verify callback is synchronous and cannot wait for a responder, so OCSP is checked
//! after the handshake: [`peer_chain`] gives the verified chain, [`OcspChecker::check`]
//! builds a request for the leaf and its issuer (with a nonce), POSTs it to the AIA URL or
//! the configured responder, verifies the signed answer against the trust store (the CA
//! itself or a delegated responder certificate with id-kp-OCSPSigning), checks the nonce
//! if the responder echoed one, checks thisUpdate/nextUpdate, and caches Good/Revoked
//! answers until nextUpdate (at most `ocsp_cache_secs`; bounded number of entries).
//! [`OcspOutcome::allows`] applies the soft-fail/hard-fail policy.
//!
//! [`OcspStapler`] does the reverse for the server's own certificate: it fetches and
//! checks a response ahead of time and staples it (RFC 6066 status_request) into every
//! handshake whose client asks for it.
//!
//! Not done here: CRL fetching from distribution points (CRL files are provisioned by
//! the operator), delta CRLs, checking stapled responses on the client side.

mod cache;
mod http;
mod nonce;
mod staple;
mod time;
mod url;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
    OcspRevokedStatus,
};
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslFiletype, SslRef};
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509Crl, X509};
use tokio_openssl::SslStream;

use crate::pki::parse_certificates;
use crate::server::{acceptor_builder, ServerTlsConfig};
use crate::{files, TlsError};

pub use http::MAX_OCSP_RESPONSE_BYTES;
pub use nonce::{nonce_extension_value, request_with_nonce, response_nonce, NONCE_LEN_RANGE};
pub use staple::{OcspStapler, MAX_STAPLE_AGE};
pub use url::{OcspUrl, MAX_URL_LEN};

/// Clock skew tolerated on thisUpdate/nextUpdate, in seconds.
pub const OCSP_CLOCK_SKEW_SECS: u32 = 300;
/// Oldest acceptable thisUpdate of a response that has no nextUpdate, in seconds.
/// Without nextUpdate a response never "expires"; this bounds how old a replayed one
/// may be when the responder does not echo our nonce.
pub const OCSP_MAX_AGE_WITHOUT_NEXT_UPDATE_SECS: u32 = 3600;
/// Random bytes in each request nonce (RFC 8954 recommends 32 at most; 16 is plenty).
const NONCE_LEN: usize = 16;

/// Where OCSP requests go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OcspMode {
    /// No OCSP: [`OcspChecker::check`] answers [`OcspOutcome::Good`] without a request
    /// (revocation is left to CRLs).
    #[default]
    Off,
    /// The responder named in the leaf's authorityInfoAccess extension.
    Aia,
    /// This responder URL (`http://` only), whatever the certificate says.
    Responder(String),
}

/// Revocation settings of a mutual-TLS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationConfig {
    /// CRL files (PEM), one or more per CA of the trust file. Empty: no CRL checking.
    pub crl_files: Vec<PathBuf>,
    /// OCSP after the handshake.
    pub ocsp: OcspMode,
    /// Refuse a client whose OCSP status cannot be established (responder down, unknown
    /// status). Default false (soft-fail): only a Revoked answer refuses.
    pub hard_fail: bool,
    /// Whole OCSP exchange (connect, send, read). Default 5 s.
    pub ocsp_timeout: Duration,
    /// Longest time an OCSP answer is reused, in seconds (it is never reused past its
    /// nextUpdate). 0 disables the cache. Default 3600.
    pub ocsp_cache_secs: u64,
}

impl Default for RevocationConfig {
    fn default() -> Self {
        RevocationConfig {
            crl_files: Vec::new(),
            ocsp: OcspMode::Off,
            hard_fail: false,
            ocsp_timeout: Duration::from_secs(5),
            ocsp_cache_secs: 3600,
        }
    }
}

/// Replaces the verify store of `builder` with the CAs of `trust_ca_file` plus the CRLs
/// of `crl_files`, and turns on CRL checking for the whole chain when CRLs are given.
///
/// Each CRL file is read with the same size cap as other PEM files, and its first CRL
/// must be signed by one of the trust CAs (catching a CRL for the wrong CA at start-up
/// rather than as refused handshakes). A CRL past its nextUpdate is accepted here with
/// a warning, because OpenSSL will refuse every handshake it covers.
pub fn apply_crls(
    builder: &mut SslAcceptorBuilder,
    trust_ca_file: &Path,
    crl_files: &[PathBuf],
) -> Result<(), TlsError> {
    let store = verify_store(trust_ca_file, crl_files)?;
    builder
        .set_verify_cert_store(store)
        .map_err(|e| TlsError::Config(format!("client CA store: {e}")))
}

/// `server::acceptor_builder(cfg)` + [`apply_crls`] with `cfg.client_ca_file`: the
/// function to call again when a CRL file changes (see "Reloading" above).
pub fn build_acceptor_with_crls(
    cfg: &ServerTlsConfig,
    crl_files: &[PathBuf],
) -> Result<SslAcceptor, TlsError> {
    let ca = cfg.client_ca_file.as_deref().ok_or_else(|| {
        TlsError::Config("CRL checking needs client_ca_file (the CAs the CRLs belong to)".into())
    })?;
    let mut b = acceptor_builder(cfg)?;
    apply_crls(&mut b, ca, crl_files)?;
    Ok(b.build())
}

fn load_trust_cas(trust_ca_file: &Path) -> Result<Vec<X509>, TlsError> {
    let what = format!("trust_ca_file {}", trust_ca_file.display());
    parse_certificates(
        &files::read_pem_file(trust_ca_file, "trust_ca_file")?,
        &what,
    )
}

fn verify_store(trust_ca_file: &Path, crl_files: &[PathBuf]) -> Result<X509Store, TlsError> {
    let cas = load_trust_cas(trust_ca_file)?;
    let ossl = |what: &'static str| move |e| TlsError::Config(format!("{what}: {e}"));
    let mut store = X509StoreBuilder::new().map_err(ossl("verify store"))?;
    for ca in &cas {
        store.add_cert(ca.clone()).map_err(|e| {
            TlsError::Config(format!("trust_ca_file {}: {e}", trust_ca_file.display()))
        })?;
    }
    if crl_files.is_empty() {
        return Ok(store.build());
    }
    for path in crl_files {
        check_crl_file(path, &cas)?;
    }
    let lookup = store
        .add_lookup(X509Lookup::file())
        .map_err(ossl("CRL lookup"))?;
    for path in crl_files {
        let what = format!("crl_file {}", path.display());
        // load_crl_file panics on a non-UTF-8 path; check_crl_file has refused those.
        if path.to_str().is_none() {
            return Err(TlsError::Config(format!("{what}: path is not UTF-8")));
        }
        lookup
            .load_crl_file(path, SslFiletype::PEM)
            .map_err(|e| TlsError::Config(format!("{what}: {e}")))?;
    }
    store
        .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
        .map_err(ossl("CRL flags"))?;
    Ok(store.build())
}

fn check_crl_file(path: &Path, cas: &[X509]) -> Result<(), TlsError> {
    let what = format!("crl_file {}", path.display());
    if path.to_str().is_none() {
        return Err(TlsError::Config(format!("{what}: path is not UTF-8")));
    }
    let pem = files::read_pem_file(path, "crl_file")?;
    let crl = X509Crl::from_pem(&pem)
        .map_err(|e| TlsError::Config(format!("{what}: no readable PEM CRL: {e}")))?;
    let signed_by_trusted = cas.iter().any(|ca| {
        ca.subject_name()
            .try_cmp(crl.issuer_name())
            .map(|o| o.is_eq())
            .unwrap_or(false)
            && ca
                .public_key()
                .and_then(|k| crl.verify(&k))
                .unwrap_or(false)
    });
    if !signed_by_trusted {
        return Err(TlsError::Config(format!(
            "{what}: not signed by any CA of the trust file"
        )));
    }
    if let Some(next) = crl.next_update() {
        let now = openssl::asn1::Asn1Time::days_from_now(0)
            .map_err(|e| TlsError::Config(format!("{what}: {e}")))?;
        if next < now {
            tracing::warn!(file = %path.display(), "CRL is past its nextUpdate: every client it covers will be refused");
        }
    }
    Ok(())
}

/// The peer's certificate chain, leaf first: the chain OpenSSL verified when there is
/// one (leaf, intermediates, trust anchor), otherwise the certificates as presented.
pub fn peer_chain<S>(stream: &SslStream<S>) -> Vec<X509> {
    chain_of(stream.ssl())
}

fn chain_of(ssl: &SslRef) -> Vec<X509> {
    if let Some(chain) = ssl.verified_chain() {
        if !chain.is_empty() {
            return chain.iter().map(|c| c.to_owned()).collect();
        }
    }
    let mut out: Vec<X509> = ssl.peer_certificate().into_iter().collect();
    if let Some(presented) = ssl.peer_cert_chain() {
        for cert in presented {
            // A client's presented chain excludes its leaf on the server side, includes
            // it on the client side: skip it if it is already there.
            let dup = out
                .first()
                .and_then(|leaf| Some(leaf.to_der().ok()? == cert.to_der().ok()?))
                .unwrap_or(false);
            if !dup {
                out.push(cert.to_owned());
            }
        }
    }
    out
}

/// The answer of an OCSP check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OcspOutcome {
    /// The responder vouches for the certificate.
    Good,
    /// The certificate is revoked.
    Revoked {
        /// The CRLReason (RFC 5280 5.3.1) and revocation time, as text.
        reason: String,
    },
    /// The responder does not know the certificate.
    Unknown,
    /// No usable answer: responder down, timeout, HTTP error, bad or unverifiable
    /// response, nonce mismatch, stale response, no OCSP URL.
    Unavailable(String),
}

impl OcspOutcome {
    /// Whether the client may proceed. Soft-fail (`hard_fail = false`): everything but
    /// Revoked; hard-fail: only Good.
    pub fn allows(&self, hard_fail: bool) -> bool {
        match self {
            OcspOutcome::Good => true,
            OcspOutcome::Revoked { .. } => false,
            OcspOutcome::Unknown | OcspOutcome::Unavailable(_) => !hard_fail,
        }
    }
}

/// Checks client certificates with OCSP; share one per server (it holds the cache).
pub struct OcspChecker {
    mode: OcspMode,
    responder: Option<OcspUrl>,
    timeout: Duration,
    cache_secs: u64,
    store: X509Store,
    cache: Mutex<cache::Cache>,
}

impl std::fmt::Debug for OcspChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspChecker")
            .field("mode", &self.mode)
            .field("timeout", &self.timeout)
            .field("cache_secs", &self.cache_secs)
            .finish_non_exhaustive()
    }
}

impl OcspChecker {
    /// A checker that trusts the CAs of `trust_ca_file` to sign OCSP answers (directly or
    /// through a delegated responder certificate they issued).
    pub fn new(cfg: &RevocationConfig, trust_ca_file: &Path) -> Result<Self, TlsError> {
        let responder = match &cfg.ocsp {
            OcspMode::Responder(url) => Some(
                OcspUrl::parse(url)
                    .map_err(|e| TlsError::Config(format!("OCSP responder {url:?}: {e}")))?,
            ),
            _ => None,
        };
        if cfg.ocsp_timeout.is_zero() {
            return Err(TlsError::Config("ocsp_timeout must not be zero".into()));
        }
        let mut store = X509StoreBuilder::new()
            .map_err(|e| TlsError::Config(format!("OCSP trust store: {e}")))?;
        for ca in load_trust_cas(trust_ca_file)? {
            store
                .add_cert(ca)
                .map_err(|e| TlsError::Config(format!("OCSP trust store: {e}")))?;
        }
        Ok(OcspChecker {
            mode: cfg.ocsp.clone(),
            responder,
            timeout: cfg.ocsp_timeout,
            cache_secs: cfg.ocsp_cache_secs,
            store: store.build(),
            cache: Mutex::new(cache::Cache::new(cache::MAX_CACHE_ENTRIES)),
        })
    }

    /// The OCSP status of `chain[0]`, issued by `chain[1]` (as [`peer_chain`] returns).
    pub async fn check(&self, chain: &[X509]) -> OcspOutcome {
        if self.mode == OcspMode::Off {
            return OcspOutcome::Good;
        }
        let (Some(leaf), Some(issuer)) = (chain.first(), chain.get(1)) else {
            return OcspOutcome::Unavailable("no issuer certificate in the chain".into());
        };
        let key = match cache_key(leaf, issuer) {
            Ok(k) => k,
            Err(e) => return OcspOutcome::Unavailable(e),
        };
        if let Some(hit) = self.lock_cache().get(&key, Instant::now()) {
            return hit;
        }
        let cap = Duration::from_secs(self.cache_secs);
        let (outcome, lifetime) = match self.query(leaf, issuer).await {
            Ok(answer) => (answer.outcome.clone(), answer.reuse_for(cap)),
            Err(e) => (OcspOutcome::Unavailable(e), None),
        };
        if let (Some(lifetime), OcspOutcome::Good | OcspOutcome::Revoked { .. }) =
            (lifetime, &outcome)
        {
            let now = Instant::now();
            if let Some(expires) = now.checked_add(lifetime) {
                self.lock_cache().put(key, outcome.clone(), expires, now);
            }
        }
        tracing::debug!(?outcome, "OCSP check");
        outcome
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, cache::Cache> {
        // A panic while holding the lock cannot leave the map inconsistent (every
        // operation is a single HashMap call sequence), so a poisoned lock is reused.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn url_for(&self, leaf: &X509) -> Result<OcspUrl, String> {
        if let Some(url) = &self.responder {
            return Ok(url.clone());
        }
        // X509_get1_ocsp returns NULL (an "error" in the binding) when the certificate
        // has no AIA extension or no OCSP entry in it: both mean "nowhere to ask".
        leaf.ocsp_responders()
            .ok()
            .and_then(|urls| urls.iter().find_map(|u| OcspUrl::parse(u).ok()))
            .ok_or_else(|| "the certificate names no http:// OCSP responder".to_owned())
    }

    /// One OCSP exchange, fully checked.
    async fn query(&self, leaf: &X509, issuer: &X509) -> Result<Answer, String> {
        let url = self.url_for(leaf)?;
        let id = || {
            OcspCertId::from_cert(MessageDigest::sha1(), leaf, issuer)
                .map_err(|e| format!("building the certificate id: {e}"))
        };
        let mut req = OcspRequest::new().map_err(|e| format!("OCSP request: {e}"))?;
        req.add_id(id()?)
            .map_err(|e| format!("OCSP request: {e}"))?;
        let plain = req.to_der().map_err(|e| format!("OCSP request: {e}"))?;
        let nonce: [u8; NONCE_LEN] =
            seccf_secret::random_array().map_err(|e| format!("OCSP nonce: {e}"))?;
        let body = request_with_nonce(&plain, &nonce).map_err(|e| e.to_string())?;

        let der = tokio::time::timeout(self.timeout, http::post(&url, body))
            .await
            .map_err(|_| format!("{url} did not answer within {:?}", self.timeout))??;

        let resp =
            OcspResponse::from_der(&der).map_err(|e| format!("{url}: malformed response: {e}"))?;
        if resp.status() != OcspResponseStatus::SUCCESSFUL {
            return Err(format!(
                "{url}: responder status {}",
                response_status_name(resp.status())
            ));
        }
        let basic = resp
            .basic()
            .map_err(|e| format!("{url}: not a basic response: {e}"))?;
        let mut extra = Stack::new().map_err(|e| format!("OCSP: {e}"))?;
        extra
            .push(issuer.clone())
            .map_err(|e| format!("OCSP: {e}"))?;
        basic
            .verify(&extra, &self.store, OcspFlag::empty())
            .map_err(|e| format!("{url}: response signature not trusted: {e}"))?;
        match response_nonce(&der).map_err(|e| format!("{url}: {e}"))? {
            None => {}
            Some(echo) if echo == nonce_extension_value(&nonce) => {}
            Some(_) => return Err(format!("{url}: response nonce does not match the request")),
        }
        let wanted = id()?;
        let status = basic
            .find_status(&wanted)
            .ok_or_else(|| format!("{url}: response does not cover the certificate"))?;
        let next_update = status.next_update();
        let max_age = next_update
            .is_none()
            .then_some(OCSP_MAX_AGE_WITHOUT_NEXT_UPDATE_SECS);
        status
            .check_validity(OCSP_CLOCK_SKEW_SECS, max_age)
            .map_err(|e| format!("{url}: response outside its validity period: {e}"))?;

        let outcome = if status.status == OcspCertStatus::GOOD {
            OcspOutcome::Good
        } else if status.status == OcspCertStatus::REVOKED {
            let when = status
                .revocation_time
                .map(|t| format!(", revoked at {t}"))
                .unwrap_or_default();
            OcspOutcome::Revoked {
                reason: format!("{}{when}", reason_name(status.reason)),
            }
        } else {
            OcspOutcome::Unknown
        };
        // How long until nextUpdate; None when there is no nextUpdate, Some(None) when
        // its text could not be read (then nothing is reused).
        let until_next_update = next_update.map(|t| {
            time::parse_openssl_time(&t.to_string()).and_then(|at| {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
                let secs = u64::try_from(at).ok()?.checked_sub(now)?;
                Some(Duration::from_secs(secs))
            })
        });
        Ok(Answer {
            outcome,
            until_next_update,
            der,
        })
    }
}

/// A checked OCSP answer.
struct Answer {
    outcome: OcspOutcome,
    /// Time left until nextUpdate: `None` when the response has no nextUpdate,
    /// `Some(None)` when it could not be read.
    until_next_update: Option<Option<Duration>>,
    /// The response as received (what a server staples).
    der: Vec<u8>,
}

impl Answer {
    /// How long the answer may be reused, capped at `cap`; None: not at all.
    fn reuse_for(&self, cap: Duration) -> Option<Duration> {
        match self.until_next_update {
            None => Some(cap),
            Some(left) => left.map(|l| l.min(cap)),
        }
    }
}

fn cache_key(leaf: &X509, issuer: &X509) -> Result<[u8; 32], String> {
    let mut h = openssl::sha::Sha256::new();
    for cert in [leaf, issuer] {
        let der = cert
            .to_der()
            .map_err(|e| format!("encoding certificate: {e}"))?;
        h.update(&(der.len() as u64).to_be_bytes());
        h.update(&der);
    }
    Ok(h.finish())
}

fn response_status_name(s: OcspResponseStatus) -> &'static str {
    match s {
        OcspResponseStatus::MALFORMED_REQUEST => "malformedRequest",
        OcspResponseStatus::INTERNAL_ERROR => "internalError",
        OcspResponseStatus::TRY_LATER => "tryLater",
        OcspResponseStatus::SIG_REQUIRED => "sigRequired",
        OcspResponseStatus::UNAUTHORIZED => "unauthorized",
        OcspResponseStatus::SUCCESSFUL => "successful",
        _ => "unknown status",
    }
}

/// RFC 5280 5.3.1 CRLReason names.
fn reason_name(r: OcspRevokedStatus) -> &'static str {
    match r {
        OcspRevokedStatus::NO_STATUS => "no reason given",
        OcspRevokedStatus::UNSPECIFIED => "unspecified",
        OcspRevokedStatus::KEY_COMPROMISE => "keyCompromise",
        OcspRevokedStatus::CA_COMPROMISE => "cACompromise",
        OcspRevokedStatus::AFFILIATION_CHANGED => "affiliationChanged",
        OcspRevokedStatus::STATUS_SUPERSEDED => "superseded",
        OcspRevokedStatus::STATUS_CESSATION_OF_OPERATION => "cessationOfOperation",
        OcspRevokedStatus::STATUS_CERTIFICATE_HOLD => "certificateHold",
        OcspRevokedStatus::REMOVE_FROM_CRL => "removeFromCRL",
        _ => "other reason",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        let revoked = OcspOutcome::Revoked { reason: "x".into() };
        let down = OcspOutcome::Unavailable("down".into());
        for hard in [false, true] {
            assert!(OcspOutcome::Good.allows(hard));
            assert!(!revoked.allows(hard));
        }
        assert!(down.allows(false) && !down.allows(true));
        assert!(OcspOutcome::Unknown.allows(false) && !OcspOutcome::Unknown.allows(true));
    }
}
