//! Ub: GBA bootstrapping over HTTP Digest AKA (TS 24.109 clause 4, RFC 3310).
//!
//! The exchange, as the KMC runs it:
//! 1. `GET /` with `Authorization: Digest username="<IMPI>", nonce="", response=""`
//!    → the KMC takes the next SQN atomically, makes an authentication vector, stores
//!    it as a single-use pending challenge and answers `401` with
//!    `nonce = base64(RAND ‖ AUTN)`, `algorithm=AKAv1-MD5`, `qop="auth-int"`.
//! 2. The client answers with the digest computed over the raw RES. The KMC consumes
//!    the challenge (so a replay finds nothing), verifies the digest in constant time,
//!    derives Ks = CK ‖ IK, stores the bootstrapping context durably and only then
//!    answers `200` with `rspauth` and the `application/vnd.3gpp.bsf+xml` body.
//! 3. A client whose USIM reports a synchronisation failure sends `auts`; the KMC
//!    verifies MAC-S, moves the subscriber's SQN past SQN_MS and challenges again.
//!
//! This module takes a parsed request and the current time and returns a response; the
//! HTTP edge (`crate::http`) does the IO.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use seccf_digest::{Algorithm, AuthenticationInfo, Challenge, Credentials, DigestInput, Qop};
use seccf_gba::{aka, btid, kdf, sqn, GbaType, Milenage};
use seccf_secret::{random_array, SecretBytes};
use seccf_store::{BootstrapContext, PendingChallenge, Store, StoreError};

use crate::config::UbAlgorithm;
use crate::obs::{Audit, Metrics};

/// The BootstrappingInfo content type (TS 24.109 Annex C).
pub const BSF_XML_CONTENT_TYPE: &str = "application/vnd.3gpp.bsf+xml";

/// Settings the Ub service runs with.
#[derive(Clone, Debug)]
pub struct UbSettings {
    /// Digest realm.
    pub realm: String,
    /// B-TID domain.
    pub bsf_domain: String,
    /// Default Ks lifetime.
    pub key_lifetime_secs: u64,
    /// Pending challenge lifetime.
    pub challenge_lifetime_secs: u64,
    /// Challenge algorithm.
    pub algorithm: UbAlgorithm,
}

/// A Ub request as the edge hands it over.
#[derive(Debug)]
pub struct UbRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Request path.
    pub path: &'a str,
    /// `Authorization` header value, if any.
    pub authorization: Option<&'a str>,
    /// Request body (empty for GET).
    pub body: &'a [u8],
}

/// The response to send.
#[derive(Debug, PartialEq, Eq)]
pub struct UbResponse {
    /// HTTP status code.
    pub status: u16,
    /// Extra headers (name, value).
    pub headers: Vec<(&'static str, String)>,
    /// Content type of `body`.
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl UbResponse {
    fn text(status: u16, msg: &str) -> Self {
        UbResponse {
            status,
            headers: Vec::new(),
            content_type: "text/plain; charset=utf-8",
            body: format!("{msg}\n").into_bytes(),
        }
    }
}

/// Why a Ub request failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum UbError {
    /// Malformed request (400).
    #[error("{0}")]
    BadRequest(String),
    /// Unknown subscriber (403).
    #[error("unknown subscriber")]
    UnknownSubscriber,
    /// Authentication failed (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// Wrong path (404).
    #[error("not found")]
    NotFound,
    /// Wrong method (405).
    #[error("method not allowed; Ub uses GET")]
    MethodNotAllowed,
    /// Store failure (500, details logged not sent).
    #[error("internal error")]
    Store(#[from] StoreError),
    /// Crypto input out of range (500).
    #[error("internal error")]
    Internal(&'static str),
}

impl UbError {
    fn status(&self) -> u16 {
        match self {
            UbError::BadRequest(_) => 400,
            UbError::UnknownSubscriber | UbError::Forbidden(_) => 403,
            UbError::NotFound => 404,
            UbError::MethodNotAllowed => 405,
            UbError::Store(_) | UbError::Internal(_) => 500,
        }
    }
    fn outcome(&self) -> &'static str {
        match self {
            UbError::BadRequest(_) => "bad_request",
            UbError::UnknownSubscriber => "unknown_subscriber",
            UbError::Forbidden(_) => "auth_failed",
            UbError::NotFound | UbError::MethodNotAllowed => "bad_request",
            UbError::Store(_) | UbError::Internal(_) => "error",
        }
    }
}

/// The Ub service.
pub struct UbService<S> {
    store: Arc<S>,
    settings: UbSettings,
    metrics: Arc<Metrics>,
    audit: Arc<Audit>,
}

impl<S: Store> UbService<S> {
    /// Builds the service over a store.
    pub fn new(
        store: Arc<S>,
        settings: UbSettings,
        metrics: Arc<Metrics>,
        audit: Arc<Audit>,
    ) -> Self {
        UbService {
            store,
            settings,
            metrics,
            audit,
        }
    }

    /// Handles one request at time `now` (unix seconds).
    pub async fn handle(&self, req: UbRequest<'_>, now: i64) -> UbResponse {
        match self.handle_inner(req, now).await {
            Ok((outcome, resp)) => {
                self.metrics.ub(outcome);
                resp
            }
            Err(e) => {
                self.metrics.ub(e.outcome());
                if let UbError::Store(ref se) = e {
                    tracing::error!(error = %se, "Ub store failure");
                }
                UbResponse::text(e.status(), &e.to_string())
            }
        }
    }

    async fn handle_inner(
        &self,
        req: UbRequest<'_>,
        now: i64,
    ) -> Result<(&'static str, UbResponse), UbError> {
        if req.path != "/" {
            return Err(UbError::NotFound);
        }
        if req.method != "GET" {
            return Err(UbError::MethodNotAllowed);
        }
        let header = req.authorization.ok_or_else(|| {
            UbError::BadRequest(
                "missing Authorization: Digest username=\"<IMPI>\" (TS 24.109 initial request)"
                    .into(),
            )
        })?;
        let creds = Credentials::parse(header)
            .map_err(|e| UbError::BadRequest(format!("malformed Authorization header: {e}")))?;
        seccf_gba::impi::validate_impi(&creds.username)
            .map_err(|e| UbError::BadRequest(format!("username is not a valid IMPI: {e}")))?;

        if creds.nonce.is_empty() {
            let resp = self.challenge(&creds.username, now).await?;
            return Ok(("challenge", resp));
        }

        let pending = self.store.take_challenge(&creds.nonce, now).await?;
        let Some(pending) = pending else {
            // Unknown, expired or already answered: a replay lands here. Hand out a fresh
            // challenge for a known subscriber so an honest client can start over.
            self.audit_fail(&creds.username, "stale_or_replayed_nonce");
            let mut resp = self.challenge(&creds.username, now).await?;
            resp.body =
                b"nonce unknown, expired or already used; answer the new challenge\n".to_vec();
            return Ok(("stale_nonce", resp));
        };
        if !seccf_secret::ct_eq(pending.impi.as_bytes(), creds.username.as_bytes()) {
            self.audit_fail(&creds.username, "username_mismatch");
            return Err(UbError::Forbidden(
                "username does not match the challenged IMPI",
            ));
        }
        if creds.realm != pending.realm {
            return Err(UbError::Forbidden("realm does not match the challenge"));
        }
        if creds.opaque.as_deref() != Some(pending.opaque.as_str()) {
            return Err(UbError::Forbidden("opaque does not match the challenge"));
        }
        let algorithm = match self.settings.algorithm {
            UbAlgorithm::AkaV1Md5 => Algorithm::AkaV1Md5,
            UbAlgorithm::AkaV2Md5 => Algorithm::AkaV2Md5,
        };
        if creds.algorithm.is_some_and(|a| a != algorithm) {
            return Err(UbError::BadRequest(format!(
                "algorithm must be {}",
                algorithm.token()
            )));
        }

        if let Some(auts_b64) = creds.auts.as_deref() {
            let resp = self.resync(&creds, &pending, auts_b64, now).await?;
            return Ok(("resync", resp));
        }

        if creds.qop != Some(Qop::AuthInt) {
            return Err(UbError::BadRequest("qop must be auth-int".into()));
        }
        let password = match algorithm {
            Algorithm::AkaV2Md5 => seccf_digest::akav2_password(
                pending.xres.expose(),
                pending.ik.expose(),
                pending.ck.expose(),
            ),
            _ => SecretBytes::new(pending.xres.expose().to_vec()),
        };
        if seccf_digest::verify(&creds, password.expose(), req.method, req.body).is_err() {
            self.audit_fail(&pending.impi, "wrong_res");
            return Err(UbError::Forbidden(
                "authentication failed: digest response does not match (wrong RES)",
            ));
        }

        let sub = self
            .store
            .get_subscriber(&pending.impi)
            .await?
            .ok_or(UbError::UnknownSubscriber)?;
        let lifetime = sub
            .key_lifetime_secs
            .unwrap_or(self.settings.key_lifetime_secs)
            .min(i64::MAX as u64 / 4) as i64;
        let ks = kdf::ks(&pending.ck, &pending.ik);
        let btid = btid::make_btid(&pending.rand, &self.settings.bsf_domain);
        let ctx = BootstrapContext {
            btid: btid.clone(),
            impi: pending.impi.clone(),
            rand: pending.rand,
            ks,
            gba_type: pending.gba_type,
            created_at: now,
            expires_at: now.saturating_add(lifetime),
        };
        // Durable before acknowledged: a 200 means the B-TID resolves after any crash.
        self.store.put_context(&ctx).await?;

        let lifetime_text = rfc3339(ctx.expires_at).ok_or(UbError::Internal("lifetime"))?;
        let body = bootstrapping_info_xml(&btid, &lifetime_text, now);
        let nc_text = creds.nc_text.clone().unwrap_or_default();
        let cnonce = creds.cnonce.clone().unwrap_or_default();
        let rspauth = seccf_digest::rspauth(&DigestInput {
            algorithm,
            username: &creds.username,
            realm: &creds.realm,
            password: password.expose(),
            method: "",
            uri: &creds.uri,
            nonce: &creds.nonce,
            qop: Some(Qop::AuthInt),
            nc_text: &nc_text,
            cnonce: &cnonce,
            body: body.as_bytes(),
        })
        .map_err(|_| UbError::Internal("rspauth"))?;
        let info = AuthenticationInfo {
            qop: Some(Qop::AuthInt),
            rspauth: Some(rspauth),
            cnonce: Some(cnonce),
            nc_text: Some(nc_text),
            nextnonce: None,
        };
        tracing::info!(
            target: "seccf::audit",
            event = "ub.bootstrap",
            impi = %self.audit.hash(&ctx.impi),
            btid = %self.audit.hash(&btid),
            gba_type = %ctx.gba_type,
            expires_at = ctx.expires_at,
            "bootstrapping context created"
        );
        Ok((
            "bootstrapped",
            UbResponse {
                status: 200,
                headers: vec![
                    ("authentication-info", info.to_header_value()),
                    ("expires", http_date(ctx.expires_at)),
                ],
                content_type: BSF_XML_CONTENT_TYPE,
                body: body.into_bytes(),
            },
        ))
    }

    /// Makes a new authentication vector for `impi` and answers 401 with it.
    async fn challenge(&self, impi: &str, now: i64) -> Result<UbResponse, UbError> {
        let sub = self.store.get_subscriber(impi).await?.ok_or_else(|| {
            self.audit_fail(impi, "unknown_subscriber");
            UbError::UnknownSubscriber
        })?;
        let sqn_value = self
            .store
            .next_sqn(impi)
            .await?
            .ok_or(UbError::UnknownSubscriber)?;
        if sqn_value > sqn::SQN_MAX {
            return Err(UbError::Internal("sqn exhausted"));
        }
        let rand: [u8; 16] = random_array().map_err(|_| UbError::Internal("random"))?;
        let milenage = Milenage::new(sub.k.clone(), sub.opc.clone());
        let av = aka::generate_av(&milenage, rand, sqn_value, sub.amf);
        let autn = match sub.gba_type {
            GbaType::Me => av.autn,
            GbaType::U => aka::autn_star(&av.autn, &av.ik),
        };
        let mut nonce_raw = [0u8; 32];
        nonce_raw[..16].copy_from_slice(&rand);
        nonce_raw[16..].copy_from_slice(&autn);
        let nonce = B64.encode(nonce_raw);
        let opaque_raw: [u8; 16] = random_array().map_err(|_| UbError::Internal("random"))?;
        let opaque = B64.encode(opaque_raw);
        let pending = PendingChallenge {
            nonce: nonce.clone(),
            impi: impi.to_string(),
            rand,
            xres: av.xres,
            ck: av.ck,
            ik: av.ik,
            opaque: opaque.clone(),
            realm: self.settings.realm.clone(),
            gba_type: sub.gba_type,
            expires_at: now.saturating_add(self.settings.challenge_lifetime_secs as i64),
        };
        self.store.put_challenge(&pending).await?;
        let challenge = Challenge {
            realm: self.settings.realm.clone(),
            nonce,
            opaque: Some(opaque),
            algorithm: match self.settings.algorithm {
                UbAlgorithm::AkaV1Md5 => Algorithm::AkaV1Md5,
                UbAlgorithm::AkaV2Md5 => Algorithm::AkaV2Md5,
            },
            qop: vec![Qop::AuthInt],
            stale: false,
            domain: None,
            userhash: false,
        };
        Ok(UbResponse {
            status: 401,
            headers: vec![("www-authenticate", challenge.to_header_value())],
            content_type: "text/plain; charset=utf-8",
            body: b"authentication required\n".to_vec(),
        })
    }

    async fn resync(
        &self,
        creds: &Credentials,
        pending: &PendingChallenge,
        auts_b64: &str,
        now: i64,
    ) -> Result<UbResponse, UbError> {
        let raw = B64
            .decode(auts_b64.as_bytes())
            .map_err(|_| UbError::BadRequest("auts is not valid base64".into()))?;
        let auts: [u8; 14] = raw
            .as_slice()
            .try_into()
            .map_err(|_| UbError::BadRequest("auts must decode to 14 octets".into()))?;
        // RFC 3310: the resync request's digest is computed with an empty password.
        if seccf_digest::verify(creds, b"", "GET", b"").is_err() {
            return Err(UbError::Forbidden(
                "digest of the resynchronisation request does not verify",
            ));
        }
        let sub = self
            .store
            .get_subscriber(&pending.impi)
            .await?
            .ok_or(UbError::UnknownSubscriber)?;
        let milenage = Milenage::new(sub.k.clone(), sub.opc.clone());
        let Some(sqn_ms) = aka::verify_auts(&milenage, &pending.rand, &auts) else {
            self.audit_fail(&pending.impi, "auts_mac_failure");
            return Err(UbError::Forbidden(
                "AUTS verification failed (MAC-S mismatch)",
            ));
        };
        self.store
            .set_sqn(&pending.impi, sqn::he_counter_after_resync(sqn_ms))
            .await?;
        tracing::info!(
            target: "seccf::audit",
            event = "ub.resync",
            impi = %self.audit.hash(&pending.impi),
            "SQN resynchronised from AUTS"
        );
        self.challenge(&pending.impi, now).await
    }

    fn audit_fail(&self, impi: &str, reason: &'static str) {
        tracing::info!(
            target: "seccf::audit",
            event = "ub.failure",
            impi = %self.audit.hash(impi),
            reason,
            "bootstrapping refused"
        );
    }
}

/// RFC 3339 UTC text (`2025-01-01T12:00:00Z`) of a unix time.
pub fn rfc3339(unix: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

fn http_date(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    httpdate::fmt_http_date(t)
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The 200 OK body (TS 24.109 Annex C), with the KMC's current time in `<Extension>`
/// so clients with a skewed clock can still judge the lifetime.
pub fn bootstrapping_info_xml(btid: &str, lifetime: &str, now: i64) -> String {
    let current = rfc3339(now).unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BootstrappingInfo xmlns=\"uri:3gpp-gba\">\n  <btid>{}</btid>\n  <lifetime>{}</lifetime>\n  <Extension>\n    <currenttime>{}</currenttime>\n  </Extension>\n</BootstrappingInfo>\n",
        xml_escape(btid),
        xml_escape(lifetime),
        xml_escape(&current)
    )
}
