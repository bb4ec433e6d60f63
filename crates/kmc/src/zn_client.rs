//! The gateway side of Zn: fetch NAF keys for a B-TID from the KMC over mutual TLS.
//!
//! One client keeps one HTTP/1.1 keep-alive connection and reconnects when it breaks.
//! Gateways put a cache in front of it; this type does no caching.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use openssl::ssl::SslConnector;
use seccf_gba::naf::NafId;
use seccf_secret::Secret;
use serde::Deserialize;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::zn::BOOTSTRAPPING_INFO_PATH;

const MAX_RESPONSE: usize = 64 * 1024;

/// Keys and facts the KMC returned.
#[derive(Debug)]
pub struct ZnKeys {
    /// Ks_NAF (GBA_ME) or Ks_ext_NAF (GBA_U).
    pub me_key: Secret<32>,
    /// Ks_int_NAF, when GBA_U was used and the NAF is GBA_U aware.
    pub uicc_key: Option<Secret<32>>,
    /// Key expiry (RFC 3339).
    pub key_expiry_time: String,
    /// Key expiry as unix seconds.
    pub key_expiry_unix: i64,
    /// Bootstrapping time (RFC 3339).
    pub bootstrapping_info_creation_time: String,
    /// IMPI.
    pub impi: String,
    /// UE identities from the user security settings.
    pub ue_ids: Vec<String>,
    /// USS flags.
    pub flags: Vec<u32>,
}

/// Zn client failures.
#[derive(Debug, thiserror::Error)]
pub enum ZnClientError {
    /// Network or TLS failure.
    #[error("Zn transport failure: {0}")]
    Transport(String),
    /// The KMC refused (status and ProblemDetails cause).
    #[error("KMC refused the Zn request: HTTP {status} {cause}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// ProblemDetails cause.
        cause: String,
    },
    /// The response was not a valid BootstrappingInfoResponse.
    #[error("invalid Zn response: {0}")]
    BadResponse(String),
}

impl ZnClientError {
    /// True when the B-TID is unknown or expired (the terminal must bootstrap again).
    pub fn is_unknown_btid(&self) -> bool {
        matches!(self, ZnClientError::Refused { cause, .. } if cause == "TRANSACTION_IDENTIFIER_INVALID")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResponse {
    me_key_material: Zeroizing<String>,
    #[serde(default)]
    uicc_key_material: Option<Zeroizing<String>>,
    #[serde(default)]
    key_expiry_time: Option<String>,
    #[serde(default)]
    bootstrapping_info_creation_time: Option<String>,
    #[serde(default)]
    impi: Option<String>,
    #[serde(default)]
    uss_list: Vec<RawUssItem>,
}

#[derive(Deserialize)]
struct RawUssItem {
    uss: RawUss,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUss {
    #[serde(default)]
    ue_ids: Vec<RawUeId>,
    #[serde(default)]
    flags: Vec<RawFlag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUeId {
    ue_id: String,
}

#[derive(Deserialize)]
struct RawFlag {
    flag: u32,
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    cause: Option<String>,
}

/// A Zn client bound to one KMC.
pub struct ZnClient {
    host: String,
    port: u16,
    connector: SslConnector,
    conn: Mutex<Option<SendRequest<Full<Bytes>>>>,
    timeout: Duration,
}

impl ZnClient {
    /// `base` is `host:port` (or `https://host:port`); TLS uses `tls` (CA + client cert).
    pub fn new(
        base: &str,
        tls: &seccf_tls::client::ClientTlsConfig,
    ) -> Result<Self, ZnClientError> {
        let hostport = base.trim_start_matches("https://").trim_end_matches('/');
        let (host, port) = hostport
            .rsplit_once(':')
            .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h.to_string(), p)))
            .ok_or_else(|| ZnClientError::Transport(format!("bad Zn address {base:?}")))?;
        let connector = seccf_tls::client::build_connector(tls)
            .map_err(|e| ZnClientError::Transport(e.to_string()))?;
        Ok(ZnClient {
            host,
            port,
            connector,
            conn: Mutex::new(None),
            timeout: Duration::from_secs(10),
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ZnClientError> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| ZnClientError::Transport(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = seccf_tls::client::connect(&self.connector, &self.host, tcp)
            .await
            .map_err(|e| ZnClientError::Transport(e.to_string()))?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ZnClientError::Transport(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(send)
    }

    /// Retrieves the NAF keys for `btid` and `naf_id`.
    pub async fn bootstrapping_info(
        &self,
        btid: &str,
        naf_id: &NafId,
        gba_u_aware: bool,
    ) -> Result<ZnKeys, ZnClientError> {
        tokio::time::timeout(
            self.timeout,
            self.bootstrapping_info_inner(btid, naf_id, gba_u_aware),
        )
        .await
        .map_err(|_| ZnClientError::Transport("Zn request timed out".into()))?
    }

    async fn bootstrapping_info_inner(
        &self,
        btid: &str,
        naf_id: &NafId,
        gba_u_aware: bool,
    ) -> Result<ZnKeys, ZnClientError> {
        let body = serde_json::json!({
            "btId": btid,
            "nafId": { "nafFqdn": naf_id.fqdn, "uaSecProtId": naf_id.ua.to_hex() },
            "gbaUAware": gba_u_aware,
        })
        .to_string();
        let mut guard = self.conn.lock().await;
        // One retry on a fresh connection: the KMC may have closed an idle keep-alive one.
        for attempt in 0..2 {
            let mut send = match guard.take() {
                Some(s) if !s.is_closed() => s,
                _ => self.connect().await?,
            };
            if send.ready().await.is_err() {
                continue;
            }
            let req = http::Request::post(BOOTSTRAPPING_INFO_PATH)
                .header(http::header::HOST, format!("{}:{}", self.host, self.port))
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(
                    http::header::ACCEPT,
                    "application/json, application/problem+json",
                )
                .body(Full::new(Bytes::from(body.clone())))
                .map_err(|e| ZnClientError::Transport(e.to_string()))?;
            let resp = match send.send_request(req).await {
                Ok(r) => r,
                Err(e) if attempt == 0 => {
                    tracing::debug!(error = %e, "Zn connection broken; reconnecting");
                    continue;
                }
                Err(e) => return Err(ZnClientError::Transport(e.to_string())),
            };
            let status = resp.status().as_u16();
            let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| ZnClientError::Transport(e.to_string()))?
                .to_bytes();
            *guard = Some(send);
            return parse_response(status, &bytes);
        }
        Err(ZnClientError::Transport("could not reach the KMC".into()))
    }
}

fn parse_response(status: u16, bytes: &[u8]) -> Result<ZnKeys, ZnClientError> {
    if status != 200 {
        let cause = serde_json::from_slice::<Problem>(bytes)
            .ok()
            .and_then(|p| p.cause)
            .unwrap_or_default();
        return Err(ZnClientError::Refused { status, cause });
    }
    let raw: RawResponse =
        serde_json::from_slice(bytes).map_err(|e| ZnClientError::BadResponse(e.to_string()))?;
    let me_key = Secret::<32>::from_hex(&raw.me_key_material)
        .ok_or_else(|| ZnClientError::BadResponse("meKeyMaterial is not 64 hex digits".into()))?;
    let uicc_key = match raw.uicc_key_material.as_ref() {
        Some(h) => Some(Secret::<32>::from_hex(h).ok_or_else(|| {
            ZnClientError::BadResponse("uiccKeyMaterial is not 64 hex digits".into())
        })?),
        None => None,
    };
    let key_expiry_time = raw
        .key_expiry_time
        .ok_or_else(|| ZnClientError::BadResponse("keyExpiryTime missing".into()))?;
    let key_expiry_unix = time::OffsetDateTime::parse(
        &key_expiry_time,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| ZnClientError::BadResponse("keyExpiryTime is not RFC 3339".into()))?
    .unix_timestamp();
    let mut ue_ids = Vec::new();
    let mut flags = Vec::new();
    for item in raw.uss_list {
        ue_ids.extend(item.uss.ue_ids.into_iter().map(|u| u.ue_id));
        flags.extend(item.uss.flags.into_iter().map(|f| f.flag));
    }
    Ok(ZnKeys {
        me_key,
        uicc_key,
        key_expiry_time,
        key_expiry_unix,
        bootstrapping_info_creation_time: raw.bootstrapping_info_creation_time.unwrap_or_default(),
        impi: raw.impi.unwrap_or_default(),
        ue_ids,
        flags,
    })
}
