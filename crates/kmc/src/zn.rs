//! Zn: key release to gateways (NAFs), modelled on TS 29.309 Nbsp_GBA
//! `POST /nbsp-gba/v1/bootstrapping-info-retrieval`.
//!
//! The caller is identified by the SHA-256 of its TLS client certificate (the listener
//! requires mutual TLS); it must be in the NAF registry, and the `nafFqdn` it asks for
//! must be one of the FQDNs registered for it (operator policy). Keys are derived on
//! demand from the stored Ks; nothing but the NAF-specific keys leaves the KMC.
//!
//! Errors are TS 29.571 ProblemDetails. The 29.309 draft defines no application error
//! causes, so seccf uses its own, named after the Diameter Zn result codes
//! (docs/kmc.md lists them).

use std::sync::Arc;

use seccf_gba::naf::{ks_int_naf, ks_naf, NafId, UaSecurityProtocolId};
use seccf_gba::GbaType;
use seccf_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::obs::{Audit, Metrics};
use crate::ub::rfc3339;

/// Path of the retrieval operation.
pub const BOOTSTRAPPING_INFO_PATH: &str = "/nbsp-gba/v1/bootstrapping-info-retrieval";

/// Request body (TS 29.309 BootstrappingInfoRequest).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootstrappingInfoRequest {
    /// B-TID.
    pub bt_id: String,
    /// NAF_Id.
    pub naf_id: NafIdJson,
    /// Whether the NAF can use Ks_int_NAF.
    #[serde(default)]
    pub gba_u_aware: bool,
    /// GAA service identifiers (accepted, used to filter nothing yet).
    #[serde(default)]
    pub gs_ids: Vec<u32>,
}

/// NafId as JSON.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NafIdJson {
    /// FQDN the client used.
    pub naf_fqdn: String,
    /// 10 hex digits.
    pub ua_sec_prot_id: String,
}

/// Response body (TS 29.309 BootstrappingInfoResponse).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BootstrappingInfoResponse<'a> {
    me_key_material: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uicc_key_material: Option<&'a str>,
    key_expiry_time: String,
    bootstrapping_info_creation_time: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    uss_list: Vec<UssListItem>,
    gba_type: &'static str,
    impi: &'a str,
}

#[derive(Debug, Serialize)]
struct UssListItem {
    uss: Uss,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Uss {
    gs_id: u32,
    gs_type: u32,
    ue_ids: Vec<UeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    naf_group: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flags: Vec<Flag>,
    key_choice: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UeId {
    ue_id: String,
}

#[derive(Debug, Serialize)]
struct Flag {
    flag: u32,
}

/// A Zn failure; each maps to a status and a ProblemDetails cause.
#[derive(Debug, thiserror::Error)]
pub enum ZnError {
    /// Not the operation's path (404).
    #[error("no such resource")]
    NotFound,
    /// Not POST (405).
    #[error("method not allowed; use POST")]
    MethodNotAllowed,
    /// Not JSON (415).
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// Body is not a valid request (400).
    #[error("{0}")]
    BadRequest(String),
    /// The client certificate is not registered (403).
    #[error("client certificate is not registered as a NAF")]
    UnknownNaf,
    /// The NAF asked for an FQDN it is not registered for (403).
    #[error("this NAF is not authorised for the requested NAF FQDN")]
    FqdnNotAuthorised,
    /// Unknown or expired B-TID (404).
    #[error("B-TID unknown or expired; the client must bootstrap again")]
    UnknownBtid,
    /// Internal failure (500).
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for ZnError {
    fn from(e: StoreError) -> Self {
        ZnError::Internal(e.to_string())
    }
}

impl ZnError {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ZnError::NotFound | ZnError::UnknownBtid => 404,
            ZnError::MethodNotAllowed => 405,
            ZnError::UnsupportedMediaType => 415,
            ZnError::BadRequest(_) => 400,
            ZnError::UnknownNaf | ZnError::FqdnNotAuthorised => 403,
            ZnError::Internal(_) => 500,
        }
    }
    /// ProblemDetails `cause`.
    pub fn cause(&self) -> &'static str {
        match self {
            ZnError::NotFound => "RESOURCE_URI_STRUCTURE_NOT_FOUND",
            ZnError::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ZnError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ZnError::BadRequest(_) => "INVALID_MSG_FORMAT",
            ZnError::UnknownNaf => "NAF_NOT_REGISTERED",
            ZnError::FqdnNotAuthorised => "NAF_NOT_AUTHORIZED",
            ZnError::UnknownBtid => "TRANSACTION_IDENTIFIER_INVALID",
            ZnError::Internal(_) => "SYSTEM_FAILURE",
        }
    }
    /// ProblemDetails JSON body.
    pub fn problem_json(&self) -> Vec<u8> {
        let title = match self.status() {
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            415 => "Unsupported Media Type",
            _ => "Internal Server Error",
        };
        serde_json::json!({
            "title": title,
            "status": self.status(),
            "detail": self.to_string(),
            "cause": self.cause(),
        })
        .to_string()
        .into_bytes()
    }
}

/// Parses and checks a request body (pure; the fuzz target `kmc_zn_request` drives it).
pub fn parse_request(body: &[u8]) -> Result<(BootstrappingInfoRequest, NafId), ZnError> {
    let req: BootstrappingInfoRequest = serde_json::from_slice(body)
        .map_err(|e| ZnError::BadRequest(format!("invalid BootstrappingInfoRequest: {e}")))?;
    if req.bt_id.is_empty() || req.bt_id.len() > 256 {
        return Err(ZnError::BadRequest(
            "btId must be 1..=256 characters".into(),
        ));
    }
    let ua = UaSecurityProtocolId::from_hex(&req.naf_id.ua_sec_prot_id)
        .map_err(|e| ZnError::BadRequest(format!("nafId.uaSecProtId: {e}")))?;
    let naf_id = NafId::new(&req.naf_id.naf_fqdn, ua)
        .map_err(|e| ZnError::BadRequest(format!("nafId.nafFqdn: {e}")))?;
    Ok((req, naf_id))
}

/// The Zn service.
pub struct ZnService<S> {
    store: Arc<S>,
    metrics: Arc<Metrics>,
    audit: Arc<Audit>,
}

impl<S: Store> ZnService<S> {
    /// Builds the service.
    pub fn new(store: Arc<S>, metrics: Arc<Metrics>, audit: Arc<Audit>) -> Self {
        ZnService {
            store,
            metrics,
            audit,
        }
    }

    /// Handles one request; returns (status, content type, body).
    pub async fn handle(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        client_cert_sha256: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> (u16, &'static str, Vec<u8>) {
        match self
            .retrieve(method, path, content_type, client_cert_sha256, body, now)
            .await
        {
            Ok(json) => {
                self.metrics.zn("released");
                (200, "application/json", json)
            }
            Err(e) => {
                self.metrics.zn(e.cause());
                if let ZnError::Internal(ref m) = e {
                    tracing::error!(error = %m, "Zn internal failure");
                }
                (e.status(), "application/problem+json", e.problem_json())
            }
        }
    }

    async fn retrieve(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        client_cert_sha256: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, ZnError> {
        if path != BOOTSTRAPPING_INFO_PATH {
            return Err(ZnError::NotFound);
        }
        if method != "POST" {
            return Err(ZnError::MethodNotAllowed);
        }
        let is_json = content_type
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ZnError::UnsupportedMediaType);
        }
        let fp = client_cert_sha256.ok_or(ZnError::UnknownNaf)?;
        let naf = self
            .store
            .naf_by_cert(fp)
            .await?
            .ok_or(ZnError::UnknownNaf)?;
        let (req, naf_id) = parse_request(body)?;
        let ua = naf_id.ua;
        if !naf.allows_fqdn(&naf_id.fqdn) {
            self.audit_refusal(&naf.name, &req.bt_id, "fqdn_not_authorised");
            return Err(ZnError::FqdnNotAuthorised);
        }
        let Some(ctx) = self.store.get_context(&req.bt_id, now).await? else {
            self.audit_refusal(&naf.name, &req.bt_id, "unknown_btid");
            return Err(ZnError::UnknownBtid);
        };
        let me_key = ks_naf(&ctx.ks, &ctx.rand, &ctx.impi, &naf_id)
            .map_err(|e| ZnError::Internal(format!("kdf: {e}")))?;
        let me_hex = me_key.reveal_hex();
        let uicc_hex: Option<Zeroizing<String>> =
            if ctx.gba_type == GbaType::U && req.gba_u_aware && naf.gba_u_aware {
                let k = ks_int_naf(&ctx.ks, &ctx.rand, &ctx.impi, &naf_id)
                    .map_err(|e| ZnError::Internal(format!("kdf: {e}")))?;
                Some(k.reveal_hex())
            } else {
                None
            };
        let sub = self.store.get_subscriber(&ctx.impi).await?;
        let uss_list = sub
            .map(|s| {
                let ue_ids: Vec<UeId> = if s.uss.public_ids.is_empty() {
                    vec![UeId {
                        ue_id: ctx.impi.clone(),
                    }]
                } else {
                    s.uss
                        .public_ids
                        .iter()
                        .map(|p| UeId { ue_id: p.clone() })
                        .collect()
                };
                let flags = s
                    .uss
                    .flags
                    .iter()
                    .filter_map(|f| f.parse::<u32>().ok())
                    .map(|flag| Flag { flag })
                    .collect();
                vec![UssListItem {
                    uss: Uss {
                        gs_id: 0,
                        gs_type: 0,
                        ue_ids,
                        naf_group: s.uss.naf_groups.first().cloned(),
                        flags,
                        // What this answer actually carries.
                        key_choice: if uicc_hex.is_some() {
                            "ME_UICC_BASED_KEYS"
                        } else {
                            "ME_BASED_KEY"
                        },
                    },
                }]
            })
            .unwrap_or_default();
        let resp = BootstrappingInfoResponse {
            me_key_material: me_hex.as_str(),
            uicc_key_material: uicc_hex.as_ref().map(|s| s.as_str()),
            key_expiry_time: rfc3339(ctx.expires_at)
                .ok_or_else(|| ZnError::Internal("expiry time".into()))?,
            bootstrapping_info_creation_time: rfc3339(ctx.created_at)
                .ok_or_else(|| ZnError::Internal("creation time".into()))?,
            uss_list,
            gba_type: "3G_GBA",
            impi: &ctx.impi,
        };
        let json = serde_json::to_vec(&resp).map_err(|e| ZnError::Internal(e.to_string()))?;
        tracing::info!(
            target: "seccf::audit",
            event = "zn.key_release",
            naf = %naf.name,
            naf_fqdn = %naf_id.fqdn,
            ua = %ua.to_hex(),
            btid = %self.audit.hash(&req.bt_id),
            impi = %self.audit.hash(&ctx.impi),
            uicc_key = uicc_hex.is_some(),
            "NAF key released"
        );
        Ok(json)
    }

    fn audit_refusal(&self, naf: &str, btid: &str, reason: &'static str) {
        tracing::info!(
            target: "seccf::audit",
            event = "zn.refused",
            naf = %naf,
            btid = %self.audit.hash(btid),
            reason,
            "NAF key request refused"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccf_store::NafRecord;

    #[test]
    fn request_parsing() {
        let ok = br#"{"btId":"AAAAAAAAAAAAAAAAAAAAAA==@bsf.test","nafId":{"nafFqdn":"naf.test","uaSecProtId":"0100000002"},"gbaUAware":true}"#;
        let (req, naf) = parse_request(ok).unwrap();
        assert!(req.gba_u_aware);
        assert_eq!(naf.ua, UaSecurityProtocolId::HTTP_DIGEST);
        for bad in [
            &b"{}"[..],
            br#"{"btId":"","nafId":{"nafFqdn":"naf.test","uaSecProtId":"0100000002"}}"#,
            br#"{"btId":"x","nafId":{"nafFqdn":"naf.test","uaSecProtId":"01000000"}}"#,
            br#"{"btId":"x","nafId":{"nafFqdn":"bad fqdn","uaSecProtId":"0100000002"}}"#,
            b"not json",
        ] {
            assert!(matches!(parse_request(bad), Err(ZnError::BadRequest(_))));
        }
        // Never panics on mutations.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..3000 {
            let mut v = ok.to_vec();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % v.len();
                v[i] = (x >> 32) as u8;
            }
            let _ = parse_request(&v);
        }
    }

    #[test]
    fn fqdn_patterns() {
        let naf = NafRecord {
            name: "n".into(),
            fqdns: vec!["naf.example.com".into(), "*.svc.example.com".into()],
            cert_sha256: "00".into(),
            gba_u_aware: false,
        };
        assert!(naf.allows_fqdn("naf.example.com"));
        assert!(naf.allows_fqdn("NAF.example.com"));
        assert!(naf.allows_fqdn("a.svc.example.com"));
        assert!(!naf.allows_fqdn("a.b.svc.example.com"));
        assert!(!naf.allows_fqdn("svc.example.com"));
        assert!(!naf.allows_fqdn("evilsvc.example.com"));
        assert!(!naf.allows_fqdn("other.example.com"));
    }
}
