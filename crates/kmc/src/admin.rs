//! Administration: subscribers (the built-in AuC) and the NAF registry.
//!
//! The same specs are used by the REST API (`/admin/v1/...`, bearer token) and by the
//! `seccf admin` CLI, which opens the store directly. Secrets arrive as hex and are
//! moved into zeroizing types at once; responses never contain them.

use std::sync::Arc;

use seccf_gba::{milenage, GbaType};
use seccf_secret::Secret;
use seccf_store::{NafRecord, Store, StoreError, Subscriber, UserSecuritySettings};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::obs::{Audit, Metrics};

/// Default initial SQN counter of a new subscriber (see [`SubscriberSpec::sqn`]).
pub const DEFAULT_INITIAL_SQN: u64 = 32;

/// A subscriber to create (JSON body of `POST /admin/v1/subscribers`, or CLI flags).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SubscriberSpec {
    /// IMPI.
    pub impi: String,
    /// K, 32 hex digits.
    pub k: Zeroizing<String>,
    /// OPc, 32 hex digits (give this or `op`).
    #[serde(default)]
    pub opc: Option<Zeroizing<String>>,
    /// OP, 32 hex digits; OPc is derived and only OPc is stored.
    #[serde(default)]
    pub op: Option<Zeroizing<String>>,
    /// AMF, 4 hex digits (default 8000).
    #[serde(default)]
    pub amf: Option<String>,
    /// Initial SQN counter: the first vector uses counter + 1. The default, 32, makes
    /// the first SQN carry SEQ = 1 (TS 33.102 Annex C: SQN = SEQ ‖ 5-bit IND), which a
    /// fresh card accepts.
    #[serde(default)]
    pub sqn: Option<u64>,
    /// `GBA_ME` (default) or `GBA_U`.
    #[serde(default)]
    pub gba_type: Option<String>,
    /// Ks lifetime override.
    #[serde(default)]
    pub key_lifetime_secs: Option<u64>,
    /// User security settings.
    #[serde(default)]
    pub uss: Option<UserSecuritySettings>,
}

impl std::fmt::Debug for SubscriberSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriberSpec")
            .field("impi", &self.impi)
            .field("k", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// A NAF to register.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NafSpec {
    /// Unique name.
    pub name: String,
    /// FQDNs the NAF may request keys for (`*.domain` = one label).
    pub fqdns: Vec<String>,
    /// SHA-256 of its client certificate (hex), or give `cert_pem`.
    #[serde(default)]
    pub cert_sha256: Option<String>,
    /// Its client certificate in PEM.
    #[serde(default)]
    pub cert_pem: Option<String>,
    /// Whether it may receive Ks_int_NAF.
    #[serde(default)]
    pub gba_u_aware: bool,
}

/// Admin failures.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Invalid input (400).
    #[error("{0}")]
    Invalid(String),
    /// Store failure (409 for conflicts, 404 for missing, else 500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdminError {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            AdminError::Invalid(_) => 400,
            AdminError::Store(StoreError::AlreadyExists(_)) => 409,
            AdminError::Store(StoreError::NotFound(_)) => 404,
            AdminError::Store(StoreError::Invalid(_)) => 400,
            AdminError::Store(_) => 500,
        }
    }
}

fn parse_key16(name: &str, hex_text: &str) -> Result<Secret<16>, AdminError> {
    Secret::<16>::from_hex(hex_text)
        .ok_or_else(|| AdminError::Invalid(format!("{name} must be 32 hex digits")))
}

impl SubscriberSpec {
    /// Validates and converts into a store record.
    pub fn to_subscriber(&self) -> Result<Subscriber, AdminError> {
        seccf_gba::impi::validate_impi(&self.impi)
            .map_err(|e| AdminError::Invalid(format!("impi: {e}")))?;
        let k = parse_key16("k", &self.k)?;
        let opc = match (&self.opc, &self.op) {
            (Some(opc), None) => parse_key16("opc", opc.as_str())?,
            (None, Some(op)) => milenage::derive_opc(&k, &parse_key16("op", op.as_str())?),
            _ => return Err(AdminError::Invalid("give exactly one of opc or op".into())),
        };
        let amf_text = self.amf.as_deref().unwrap_or("8000");
        let amf: [u8; 2] = hex::decode(amf_text)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| AdminError::Invalid("amf must be 4 hex digits".into()))?;
        let gba_type: GbaType = self
            .gba_type
            .as_deref()
            .unwrap_or("GBA_ME")
            .parse()
            .map_err(|_| AdminError::Invalid("gba_type must be GBA_ME or GBA_U".into()))?;
        let sqn = self.sqn.unwrap_or(DEFAULT_INITIAL_SQN);
        if sqn > seccf_gba::sqn::SQN_MAX {
            return Err(AdminError::Invalid("sqn must fit in 48 bits".into()));
        }
        if let Some(l) = self.key_lifetime_secs {
            if !(60..=30 * 24 * 3600).contains(&l) {
                return Err(AdminError::Invalid(
                    "key_lifetime_secs must be between 60 and 2592000".into(),
                ));
            }
        }
        Ok(Subscriber {
            impi: self.impi.clone(),
            k,
            opc,
            amf,
            sqn,
            gba_type,
            key_lifetime_secs: self.key_lifetime_secs,
            uss: self.uss.clone().unwrap_or_default(),
        })
    }
}

impl NafSpec {
    /// Validates and converts into a registry record.
    pub fn to_record(&self) -> Result<NafRecord, AdminError> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(AdminError::Invalid(
                "name must be 1..=64 characters of [A-Za-z0-9-_.]".into(),
            ));
        }
        if self.fqdns.is_empty() {
            return Err(AdminError::Invalid("fqdns must not be empty".into()));
        }
        let mut fqdns = Vec::new();
        for f in &self.fqdns {
            let bare = f.strip_prefix("*.").unwrap_or(f);
            seccf_gba::naf::NafId::new(bare, seccf_gba::naf::UaSecurityProtocolId::HTTP_DIGEST)
                .map_err(|e| AdminError::Invalid(format!("fqdn {f:?}: {e}")))?;
            fqdns.push(f.to_ascii_lowercase());
        }
        let cert_sha256 = match (&self.cert_sha256, &self.cert_pem) {
            (Some(h), None) => {
                let h = h.trim().to_ascii_lowercase().replace(':', "");
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(AdminError::Invalid(
                        "cert_sha256 must be 64 hex digits".into(),
                    ));
                }
                h
            }
            (None, Some(pem)) => {
                let cert = openssl::x509::X509::from_pem(pem.as_bytes())
                    .map_err(|_| AdminError::Invalid("cert_pem is not a PEM certificate".into()))?;
                let der = cert
                    .to_der()
                    .map_err(|_| AdminError::Invalid("cert_pem cannot be encoded".into()))?;
                seccf_tls::pki::fingerprint_der(&der)
            }
            _ => {
                return Err(AdminError::Invalid(
                    "give exactly one of cert_sha256 or cert_pem".into(),
                ))
            }
        };
        Ok(NafRecord {
            name: self.name.clone(),
            fqdns,
            cert_sha256,
            gba_u_aware: self.gba_u_aware,
        })
    }
}

/// The REST admin API.
pub struct AdminService<S> {
    store: Arc<S>,
    token_sha256: [u8; 32],
    metrics: Arc<Metrics>,
    audit: Arc<Audit>,
}

/// An admin response: (status, content type, body).
pub type AdminResponse = (u16, &'static str, Vec<u8>);

fn json(status: u16, v: serde_json::Value) -> AdminResponse {
    (status, "application/json", v.to_string().into_bytes())
}

fn error(status: u16, msg: &str) -> AdminResponse {
    json(status, serde_json::json!({ "error": msg }))
}

impl<S: Store> AdminService<S> {
    /// `token_sha256` is the SHA-256 of the bearer token.
    pub fn new(
        store: Arc<S>,
        token_sha256: [u8; 32],
        metrics: Arc<Metrics>,
        audit: Arc<Audit>,
    ) -> Self {
        AdminService {
            store,
            token_sha256,
            metrics,
            audit,
        }
    }

    fn authorised(&self, authorization: Option<&str>) -> bool {
        let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        let digest = Sha256::digest(token.trim().as_bytes());
        seccf_secret::ct_eq(&digest, &self.token_sha256)
    }

    /// Handles `/admin/v1/...`.
    pub async fn handle(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> AdminResponse {
        if !self.authorised(authorization) {
            self.metrics.admin("unauthorised");
            return error(401, "missing or wrong bearer token");
        }
        let segments: Vec<&str> = path
            .trim_start_matches("/admin/v1/")
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let result = match (method, segments.as_slice()) {
            ("GET", ["subscribers"]) => self.store.list_subscribers().await.map(|l| {
                json(200, serde_json::to_value(l).unwrap_or_default())
            }).map_err(AdminError::from),
            ("POST", ["subscribers"]) => self.add_subscriber(body).await,
            ("GET", ["subscribers", impi]) => self.show_subscriber(impi).await,
            ("DELETE", ["subscribers", impi]) => self
                .store
                .delete_subscriber(impi)
                .await
                .map_err(AdminError::from)
                .map(|found| {
                    if found {
                        tracing::info!(target: "seccf::audit", event = "admin.subscriber_deleted", impi = %self.audit.hash(impi), "subscriber deleted");
                        (204, "application/json", Vec::new())
                    } else {
                        error(404, "no such subscriber")
                    }
                }),
            ("GET", ["nafs"]) => self.store.list_nafs().await.map(|l| {
                json(200, serde_json::to_value(l).unwrap_or_default())
            }).map_err(AdminError::from),
            ("POST", ["nafs"]) => self.add_naf(body).await,
            ("DELETE", ["nafs", name]) => self
                .store
                .delete_naf(name)
                .await
                .map_err(AdminError::from)
                .map(|found| {
                    if found {
                        tracing::info!(target: "seccf::audit", event = "admin.naf_deleted", naf = %name, "NAF deleted");
                        (204, "application/json", Vec::new())
                    } else {
                        error(404, "no such NAF")
                    }
                }),
            _ => Ok(error(404, "no such admin resource")),
        };
        let resp = result.unwrap_or_else(|e| {
            if e.status() == 500 {
                tracing::error!(error = %e, "admin store failure");
                error(500, "internal error")
            } else {
                error(e.status(), &e.to_string())
            }
        });
        self.metrics
            .admin(if resp.0 < 400 { "ok" } else { "error" });
        resp
    }

    async fn add_subscriber(&self, body: &[u8]) -> Result<AdminResponse, AdminError> {
        let spec: SubscriberSpec = serde_json::from_slice(body)
            .map_err(|e| AdminError::Invalid(format!("invalid subscriber JSON: {e}")))?;
        let sub = spec.to_subscriber()?;
        self.store.insert_subscriber(&sub).await?;
        tracing::info!(target: "seccf::audit", event = "admin.subscriber_added", impi = %self.audit.hash(&sub.impi), gba_type = %sub.gba_type, "subscriber added");
        Ok(json(
            201,
            serde_json::json!({ "impi": sub.impi, "gba_type": sub.gba_type.as_str() }),
        ))
    }

    async fn show_subscriber(&self, impi: &str) -> Result<AdminResponse, AdminError> {
        let all = self.store.list_subscribers().await?;
        Ok(match all.into_iter().find(|s| s.impi == impi) {
            Some(s) => json(200, serde_json::to_value(s).unwrap_or_default()),
            None => error(404, "no such subscriber"),
        })
    }

    async fn add_naf(&self, body: &[u8]) -> Result<AdminResponse, AdminError> {
        let spec: NafSpec = serde_json::from_slice(body)
            .map_err(|e| AdminError::Invalid(format!("invalid NAF JSON: {e}")))?;
        let rec = spec.to_record()?;
        self.store.put_naf(&rec).await?;
        tracing::info!(target: "seccf::audit", event = "admin.naf_added", naf = %rec.name, fqdns = ?rec.fqdns, "NAF registered");
        Ok(json(201, serde_json::to_value(&rec).unwrap_or_default()))
    }
}
