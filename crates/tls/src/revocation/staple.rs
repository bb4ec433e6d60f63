//! OCSP stapling (RFC 6066 `status_request`) of a server's own certificate: a response
//! fetched ahead of time by [`OcspStapler::refresh`] (run it periodically), handed to
//! every client that asks for it during the handshake.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openssl::ssl::SslContextBuilder;
use openssl::x509::X509;

use super::{load_trust_cas, OcspChecker, OcspMode, OcspOutcome, RevocationConfig};
use crate::pki::parse_certificates;
use crate::{files, TlsError};

/// A staple is never served longer than this after it was fetched, even if its
/// nextUpdate is later, so a revocation reaches clients within a bounded time.
pub const MAX_STAPLE_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
struct Staple {
    der: Vec<u8>,
    expires: Instant,
}

/// Keeps a fresh OCSP response for the server's own certificate and staples it.
///
/// ```ignore
/// let stapler = Arc::new(OcspStapler::new(&cfg, ca_file, cert_file)?);
/// stapler.refresh().await;                        // before serving
/// stapler.install(&mut acceptor_builder)?;        // every handshake reads the latest
/// tokio::spawn(stapler.clone().run(Duration::from_secs(3600)));
/// ```
#[derive(Debug)]
pub struct OcspStapler {
    checker: OcspChecker,
    leaf: X509,
    issuer: X509,
    current: RwLock<Option<Staple>>,
}

impl OcspStapler {
    /// `cert_file` is the server's chain (leaf first); its issuer is taken from the chain
    /// or, failing that, from `trust_ca_file`, whose CAs must also sign the OCSP answers.
    /// `cfg.ocsp` must be [`OcspMode::Aia`] or [`OcspMode::Responder`].
    pub fn new(
        cfg: &RevocationConfig,
        trust_ca_file: &Path,
        cert_file: &Path,
    ) -> Result<Self, TlsError> {
        if cfg.ocsp == OcspMode::Off {
            return Err(TlsError::Config(
                "OCSP stapling needs an OCSP mode (Aia or Responder)".into(),
            ));
        }
        let what = format!("cert_file {}", cert_file.display());
        let chain = parse_certificates(&files::read_pem_file(cert_file, "cert_file")?, &what)?;
        let mut chain = chain.into_iter();
        let leaf = chain
            .next()
            .ok_or_else(|| TlsError::Config(format!("{what}: no certificate found")))?;
        let issued_by = |ca: &X509| {
            ca.subject_name()
                .try_cmp(leaf.issuer_name())
                .map(|o| o.is_eq())
                .unwrap_or(false)
                && ca
                    .public_key()
                    .and_then(|k| leaf.verify(&k))
                    .unwrap_or(false)
        };
        let issuer = chain
            .chain(load_trust_cas(trust_ca_file)?)
            .find(|c| issued_by(c))
            .ok_or_else(|| {
                TlsError::Config(format!(
                    "{what}: its issuer is neither in the chain nor in the trust file"
                ))
            })?;
        Ok(OcspStapler {
            checker: OcspChecker::new(cfg, trust_ca_file)?,
            leaf,
            issuer,
            current: RwLock::new(None),
        })
    }

    /// Fetches and checks a new response. A Good one replaces the staple (served until
    /// its nextUpdate, at most [`MAX_STAPLE_AGE`]); anything else keeps the previous
    /// staple until it expires, and a Revoked answer drops it at once.
    pub async fn refresh(&self) -> OcspOutcome {
        let answer = match self.checker.query(&self.leaf, &self.issuer).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "OCSP staple refresh failed; keeping the previous one");
                return OcspOutcome::Unavailable(e);
            }
        };
        match &answer.outcome {
            OcspOutcome::Good => {
                if let Some(age) = answer.reuse_for(MAX_STAPLE_AGE) {
                    if let Some(expires) = Instant::now().checked_add(age) {
                        *self.write() = Some(Staple {
                            der: answer.der.clone(),
                            expires,
                        });
                    }
                }
            }
            OcspOutcome::Revoked { reason } => {
                tracing::error!(reason, "the server's own certificate is revoked");
                *self.write() = None;
            }
            _ => {}
        }
        answer.outcome
    }

    /// Refreshes every `period`, forever (spawn it; abort the task to stop).
    pub async fn run(self: Arc<Self>, period: Duration) {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            self.refresh().await;
        }
    }

    /// The response that would be stapled now, if any (DER).
    pub fn current(&self) -> Option<Vec<u8>> {
        let now = Instant::now();
        self.read()
            .as_ref()
            .filter(|s| now < s.expires)
            .map(|s| s.der.clone())
    }

    /// Makes every handshake on contexts built from `builder` staple the current
    /// response when the client asks for one (nothing is sent when there is none).
    pub fn install(self: &Arc<Self>, builder: &mut SslContextBuilder) -> Result<(), TlsError> {
        let me = Arc::clone(self);
        builder
            .set_status_callback(move |ssl| match me.current() {
                Some(der) => ssl.set_ocsp_status(&der).map(|()| true),
                None => Ok(false),
            })
            .map_err(|e| TlsError::Config(format!("OCSP stapling: {e}")))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Staple>> {
        // The guarded value is replaced whole, so a poisoned lock holds a valid value.
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<Staple>> {
        self.current.write().unwrap_or_else(|p| p.into_inner())
    }
}
