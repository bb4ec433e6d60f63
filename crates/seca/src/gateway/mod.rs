//! An HTTP(S) client for SEC_CF gateways (OSGs, or any GBA NAF) that authenticates
//! with the agent's GBA credentials (SEC-1, TS 33.222).
//!
//! [`GatewayClient::request`]:
//! 1. makes sure there is a valid bootstrapping context (bootstrapping over Ub when
//!    there is none and a Ub URL is known);
//! 2. opens **one** TLS connection that offers both ways to authenticate, so no
//!    handshake is wasted guessing ([`Prefer::Auto`]):
//!    * PSK-TLS (TS 33.222 §5.4): identity `3GPP-bootstrapping.<B-TID>`, key Ks_NAF
//!      (GBA_U: Ks_ext_NAF from the card) for NAF_Id = host ‖ the Ua id of the
//!      negotiated protocol ([`ua`] has the table) — TLS 1.2 PSK suites first, and the
//!      TLS 1.3 external PSK in the ClientHello;
//!    * certificate suites, when [`GatewayOptions::ca_file`] is set: the server must
//!      chain to that file (and nothing else) and carry the host's name or address;
//! 3. sends the request; if the server authenticated with a certificate and answers
//!    401 with `Digest realm="3GPP-bootstrapping@<host>"`, answers it (TS 24.109 §5.2,
//!    [`digest`]: username = B-TID, password = base64(Ks_NAF for host ‖
//!    01 00 01 yy zz with the negotiated suite)) on the same connection and checks the
//!    gateway's `rspauth` when one comes back;
//! 4. bootstraps again, once, when the gateway refuses the B-TID: a PSK handshake
//!    refused with alert 115 `unknown_psk_identity`, or any failed PSK handshake with a
//!    context that was not bootstrapped for this request (TLS 1.3 has no specific
//!    alert; the gateway may have forgotten or expired it); or a second 401 after
//!    Digest credentials. A 401 with `stale=true` is answered again with the same
//!    context: the credentials were right, only the nonce had expired.
//!
//! The connection is kept open for the next request to the same origin (a PSK
//! connection only while the context it was opened with is still the current one).
//! `User-Agent` carries the `3gpp-gba` token (TS 24.109 D.3), which tells the gateway
//! to challenge with the GBA realm.
//!
//! What it does not do: HTTP/2 (the gateway offers it; this client speaks HTTP/1.1),
//! redirects, cookies, pre-emptive Digest on later requests (each one is challenged
//! anew, costing a round trip on certificate connections; PSK connections need none),
//! `3GPP-bootstrapping-uicc` realms (Ks_int_NAF never leaves a GBA_U card), AKMA,
//! mutual certificate TLS, and the system trust store together with PSK: without a
//! CA file, [`Prefer::Auto`] offers PSK only (the PSK connector trusts named CA files
//! only), while [`Prefer::Digest`] falls back to the system store.

mod conn;
pub mod digest;
pub(crate) mod keys;
#[cfg(test)]
mod testdata;
pub(crate) mod tls;
pub mod ua;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use openssl::ssl::SslConnector;
use seccf_gba::naf::{NafId, UaSecurityProtocolId};
use seccf_tls::psk::PskTlsVersion;
use seccf_uicc::CardTransport;
use tokio::net::TcpStream;

use crate::agent::Agent;
use crate::error::SecaError;
use crate::gateway::conn::{Conn, ConnKind, Origin, SendError};
use crate::gateway::digest::{
    check_authentication_info, digest_password, select_gba_challenge, ChallengeError,
};
use crate::gateway::keys::{KeyKeeper, Keys};
use crate::gateway::tls::{
    cert_connector, psk_connector, should_rebootstrap, GbaPskKeys, HandshakeFailure, Negotiated,
    Versions,
};
use crate::gateway::ua::{digest_ua, psk_ua};
use crate::http::{build_request, HttpResponse, Scheme, Url, USER_AGENT};

pub use ua::UaOrg;

/// Default largest response body, in bytes.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 1024 * 1024;
/// Default time for TCP connect plus TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default time for one request/response exchange.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most HTTP exchanges one [`GatewayClient::request`] call makes (the request, its
/// Digest answer, a stale re-answer, the answer after a re-bootstrap, reconnects).
pub const MAX_EXCHANGES: usize = 6;

/// Request headers the client manages itself and callers may not set.
const MANAGED_HEADERS: [&str; 8] = [
    "authorization",
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "upgrade",
    "keep-alive",
];

/// The User-Agent product token of GBA-capable clients (TS 24.109 D.3/E.3).
const GBA_UA_TOKEN: &str = "3gpp-gba";

/// Which authentication the client offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Prefer {
    /// PSK-TLS and (with a CA file) certificate TLS + Digest in one handshake; the
    /// gateway picks.
    #[default]
    Auto,
    /// PSK-TLS only; a server certificate is never accepted.
    Psk,
    /// Certificate TLS (CA file, else the system store) + Digest; no PSK offered.
    Digest,
}

impl FromStr for Prefer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Prefer::Auto),
            "psk" => Ok(Prefer::Psk),
            "digest" => Ok(Prefer::Digest),
            _ => Err("expected auto, psk or digest".into()),
        }
    }
}

/// Settings of a [`GatewayClient`].
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    /// CAs (PEM) a gateway certificate must chain to. Without it, [`Prefer::Auto`]
    /// offers PSK only and [`Prefer::Digest`] uses the system trust store.
    pub ca_file: Option<PathBuf>,
    /// 3GPP or OMA Ua security protocol ids (must match the gateway's setting).
    pub ua_org: UaOrg,
    /// What to offer.
    pub prefer: Prefer,
    /// Offer TLS 1.3 as well as TLS 1.2 (default true).
    pub enable_tls13: bool,
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// One request/response exchange.
    pub request_timeout: Duration,
    /// Largest response body read.
    pub max_response_body: usize,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            ca_file: None,
            ua_org: UaOrg::ThreeGpp,
            prefer: Prefer::Auto,
            enable_tls13: true,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
        }
    }
}

/// How the last request was authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayAuth {
    /// PSK-TLS.
    Psk {
        /// The PSK identity sent.
        identity: String,
        /// TLS version.
        version: PskTlsVersion,
        /// IANA id of the negotiated suite.
        cipher_suite: u16,
        /// The NAF_Id whose key was the PSK.
        naf_id: NafId,
    },
    /// HTTP Digest with the B-TID, inside certificate TLS or over plain HTTP.
    Digest {
        /// The B-TID sent as user name.
        btid: String,
        /// The TLS suite of the connection (`None` over plain HTTP).
        tls_cipher_suite: Option<u16>,
        /// The NAF_Id whose key gave the password.
        naf_id: NafId,
    },
    /// The gateway answered without authenticating the agent.
    None,
}

/// See the [module documentation](self).
pub struct GatewayClient<T: CardTransport> {
    keys: KeyKeeper<T>,
    opts: GatewayOptions,
    conn: Option<Conn>,
    psk_connector: Option<(String, String, SslConnector)>,
    cert_connector: Option<SslConnector>,
    last_auth: Option<GatewayAuth>,
}

impl<T: CardTransport> std::fmt::Debug for GatewayClient<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient")
            .field("opts", &self.opts)
            .field("last_auth", &self.last_auth)
            .finish_non_exhaustive()
    }
}

/// Per-call state of [`GatewayClient::request`].
struct Attempt {
    keys: Keys,
    rebootstrapped: bool,
    stale_answered: bool,
    sent_credentials: bool,
    exchanges: usize,
}

impl Attempt {
    fn count_exchange(&mut self) -> Result<(), SecaError> {
        self.exchanges += 1;
        if self.exchanges > MAX_EXCHANGES {
            return Err(SecaError::Http(format!(
                "gave up after {MAX_EXCHANGES} exchanges with the gateway"
            )));
        }
        Ok(())
    }
}

/// Why a connection could not be opened.
enum OpenError {
    Handshake {
        failure: HandshakeFailure,
        psk_offered: bool,
        certs_allowed: bool,
    },
    Other(SecaError),
}

/// What the Digest exchange on a connection ended with.
enum DigestOutcome {
    Done(HttpResponse, GatewayAuth),
    /// The connection closed before the answer to this 401 could be sent: answer it on
    /// a new connection.
    Reconnect(HttpResponse),
}

impl<T: CardTransport + 'static> GatewayClient<T> {
    /// A client using `agent`'s credentials. With `ub_url` it bootstraps there when
    /// needed; without, it only uses a context the agent already has (memory or state
    /// directory) and fails with [`SecaError::NotBootstrapped`] otherwise.
    pub fn new(agent: Agent<T>, ub_url: Option<String>, options: GatewayOptions) -> Self {
        GatewayClient {
            keys: KeyKeeper::new(agent, ub_url),
            opts: options,
            conn: None,
            psk_connector: None,
            cert_connector: None,
            last_auth: None,
        }
    }

    /// The settings.
    pub fn options(&self) -> &GatewayOptions {
        &self.opts
    }

    /// How the last successful request was authenticated.
    pub fn last_auth(&self) -> Option<&GatewayAuth> {
        self.last_auth.as_ref()
    }

    /// The agent (for example to bootstrap or forget explicitly). Closes the kept
    /// connection, as the context it was opened with may change.
    pub fn agent_mut(&mut self) -> &mut Agent<T> {
        self.close();
        self.keys.agent_mut()
    }

    /// Gives the agent back.
    pub fn into_agent(self) -> Agent<T> {
        self.keys.into_agent()
    }

    /// Closes the kept-alive connection, if any.
    pub fn close(&mut self) {
        self.conn = None;
    }

    /// `GET url`.
    pub async fn get(&mut self, url: &str) -> Result<HttpResponse, SecaError> {
        self.request("GET", url, &[], b"").await
    }

    /// Sends one request to `url` (`https://`, or `http://` for Digest over plain HTTP)
    /// and returns the final response, authenticating as the module documentation
    /// describes. `headers` may not set `Authorization`, `Host`, `Connection` or the
    /// framing headers; a `User-Agent` without the `3gpp-gba` token gets it appended.
    /// A 401 that carries no GBA challenge is returned as it is.
    pub async fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, SecaError> {
        let url = Url::parse(url)?;
        let headers = request_headers(headers)?;
        let fqdn = NafId::new(&url.host, UaSecurityProtocolId::HTTP_DIGEST)
            .map_err(|e| SecaError::BadUrl(format!("the host cannot name a NAF: {e}")))?
            .fqdn;
        if url.scheme == Scheme::Http && self.opts.prefer == Prefer::Psk {
            return Err(SecaError::BadUrl("PSK-TLS needs an https:// URL".into()));
        }
        self.last_auth = None;
        let mut at = Attempt {
            keys: self.keys.ensure().await?,
            rebootstrapped: false,
            stale_answered: false,
            sent_credentials: false,
            exchanges: 0,
        };
        let idempotent = matches!(method, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE");
        let mut retried_reused = false;
        // A 401 whose challenge is still to be answered when its connection closed.
        let mut pending: Option<HttpResponse> = None;
        loop {
            let (mut conn, reused) = self.connection(&url, &fqdn, &mut at).await?;
            let resp = match pending.take() {
                // Answer on the new connection (the nonce is not tied to one); a PSK
                // connection needs no answer, so it gets the plain request again.
                Some(challenge) if !matches!(conn.kind, ConnKind::Psk { .. }) => challenge,
                _ => {
                    at.count_exchange()?;
                    let req =
                        build_request(&url, method, &header_refs(&headers, None), body, true)?;
                    match conn
                        .send(req, self.opts.max_response_body, self.opts.request_timeout)
                        .await
                    {
                        Ok(r) => r,
                        // A kept-alive connection the gateway had closed: start over on
                        // a new one (always safe when nothing was sent; otherwise only
                        // once and only for idempotent methods).
                        Err(SendError::NotSent(_)) if reused => continue,
                        Err(SendError::Failed(_)) if reused && idempotent && !retried_reused => {
                            retried_reused = true;
                            continue;
                        }
                        Err(e) => return Err(e.into_error()),
                    }
                }
            };
            if resp.status != 401 || matches!(conn.kind, ConnKind::Psk { .. }) {
                self.last_auth = Some(self.conn_auth(&conn.kind, &fqdn));
                self.keep(conn);
                return Ok(resp);
            }
            match self
                .digest(
                    &mut conn, &url, &fqdn, method, &headers, body, resp, &mut at,
                )
                .await?
            {
                DigestOutcome::Done(resp, auth) => {
                    self.last_auth = Some(auth);
                    self.keep(conn);
                    return Ok(resp);
                }
                DigestOutcome::Reconnect(challenge) => pending = Some(challenge),
            }
        }
    }

    fn keep(&mut self, conn: Conn) {
        if conn.is_open() {
            self.conn = Some(conn);
        }
    }

    fn conn_auth(&self, kind: &ConnKind, fqdn: &str) -> GatewayAuth {
        match kind {
            ConnKind::Psk {
                identity,
                version,
                cipher_suite,
                ..
            } => {
                let naf_id = psk_ua(self.opts.ua_org, *version, *cipher_suite)
                    .and_then(|ua| NafId::new(fqdn, ua).ok());
                match naf_id {
                    Some(naf_id) => GatewayAuth::Psk {
                        identity: identity.clone(),
                        version: *version,
                        cipher_suite: *cipher_suite,
                        naf_id,
                    },
                    None => GatewayAuth::None,
                }
            }
            ConnKind::Plain | ConnKind::Certificate { .. } => GatewayAuth::None,
        }
    }

    /// A connection for `url`: the kept one if it still fits, else a new one (with
    /// one re-bootstrap when the gateway refuses the PSK).
    async fn connection(
        &mut self,
        url: &Url,
        fqdn: &str,
        at: &mut Attempt,
    ) -> Result<(Conn, bool), SecaError> {
        if let Some(c) = self.conn.take() {
            let same_context = match &c.kind {
                ConnKind::Psk { btid, .. } => btid == at.keys.deriver.btid(),
                ConnKind::Plain | ConnKind::Certificate { .. } => true,
            };
            if c.origin == Origin::of(url) && c.is_open() && same_context {
                return Ok((c, true));
            }
        }
        loop {
            match self.open(url, fqdn, &at.keys).await {
                Ok(c) => return Ok((c, false)),
                Err(OpenError::Handshake {
                    failure,
                    psk_offered,
                    certs_allowed,
                }) => {
                    if psk_offered
                        && !at.rebootstrapped
                        && self.keys.can_bootstrap()
                        && should_rebootstrap(&failure, at.keys.fresh, certs_allowed)
                    {
                        tracing::info!(host = %url.host, error = %failure, "PSK-TLS refused");
                        let old = at.keys.deriver.btid().to_owned();
                        at.keys = self.keys.rebootstrap(&old).await?;
                        at.rebootstrapped = true;
                        continue;
                    }
                    return Err(if psk_offered {
                        SecaError::Tls(format!(
                            "PSK-TLS with {} (B-TID {}, Ua ids {}): {failure}",
                            url.host_header(),
                            at.keys.deriver.btid(),
                            self.opts.ua_org
                        ))
                    } else {
                        failure.into_error()
                    });
                }
                Err(OpenError::Other(e)) => return Err(e),
            }
        }
    }

    async fn open(&mut self, url: &Url, fqdn: &str, keys: &Keys) -> Result<Conn, OpenError> {
        let timeout = self.opts.connect_timeout;
        let origin = Origin::of(url);
        let tcp =
            match tokio::time::timeout(timeout, TcpStream::connect((url.host.as_str(), url.port)))
                .await
            {
                Ok(Ok(tcp)) => tcp,
                Ok(Err(e)) => {
                    return Err(OpenError::Other(SecaError::Http(format!(
                        "connect to {}: {e}",
                        url.host_header()
                    ))))
                }
                Err(_) => {
                    return Err(OpenError::Other(SecaError::Http(format!(
                        "connect to {}: no answer within {} s",
                        url.host_header(),
                        timeout.as_secs()
                    ))))
                }
            };
        // Small requests: do not let Nagle delay them.
        let _ = tcp.set_nodelay(true);
        if url.scheme == Scheme::Http {
            return Conn::start(tcp, origin, ConnKind::Plain)
                .await
                .map_err(OpenError::Other);
        }
        let (connector, psk_offered, certs_allowed) =
            self.connector(fqdn, keys).map_err(OpenError::Other)?;
        let (stream, negotiated) =
            match tokio::time::timeout(timeout, tls::handshake(&connector, &url.host, tcp)).await {
                Ok(Ok(done)) => done,
                Ok(Err(failure)) => {
                    return Err(OpenError::Handshake {
                        failure,
                        psk_offered,
                        certs_allowed,
                    })
                }
                Err(_) => {
                    return Err(OpenError::Other(SecaError::Tls(format!(
                        "handshake with {} not finished within {} s",
                        url.host_header(),
                        timeout.as_secs()
                    ))))
                }
            };
        let kind = match negotiated {
            Negotiated::Psk {
                identity,
                version,
                cipher_suite,
            } => ConnKind::Psk {
                identity,
                btid: keys.deriver.btid().to_owned(),
                version,
                cipher_suite,
            },
            Negotiated::Certificate { cipher_suite } => ConnKind::Certificate { cipher_suite },
        };
        tracing::debug!(host = %url.host, ?kind, "connected to the gateway");
        Conn::start(stream, origin, kind)
            .await
            .map_err(OpenError::Other)
    }

    /// The connector for the configured preference: (connector, PSK offered,
    /// certificates acceptable). PSK connectors are per context and host, as the key
    /// callback carries both; they are kept for the next connection.
    fn connector(
        &mut self,
        fqdn: &str,
        keys: &Keys,
    ) -> Result<(SslConnector, bool, bool), SecaError> {
        let versions = Versions {
            tls13: self.opts.enable_tls13,
        };
        if self.opts.prefer == Prefer::Digest {
            if let Some(c) = &self.cert_connector {
                return Ok((c.clone(), false, true));
            }
            let c = cert_connector(self.opts.ca_file.as_deref(), versions)?;
            self.cert_connector = Some(c.clone());
            return Ok((c, false, true));
        }
        let ca = match self.opts.prefer {
            Prefer::Psk => None,
            Prefer::Auto | Prefer::Digest => self.opts.ca_file.as_deref(),
        };
        let btid = keys.deriver.btid();
        if let Some((b, f, c)) = &self.psk_connector {
            if b == btid && f == fqdn {
                return Ok((c.clone(), true, ca.is_some()));
            }
        }
        let c = psk_connector(
            GbaPskKeys::new(keys.deriver.clone(), fqdn, self.opts.ua_org),
            ca,
            versions,
        )?;
        self.psk_connector = Some((btid.to_owned(), fqdn.to_owned(), c.clone()));
        Ok((c, true, ca.is_some()))
    }

    /// Answers GBA Digest challenges on `conn`, starting from the 401 `first`.
    #[allow(clippy::too_many_arguments)] // one request's worth of context
    async fn digest(
        &mut self,
        conn: &mut Conn,
        url: &Url,
        fqdn: &str,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
        first: HttpResponse,
        at: &mut Attempt,
    ) -> Result<DigestOutcome, SecaError> {
        let mut current = first;
        loop {
            let challenge =
                match select_gba_challenge(current.header_values("www-authenticate"), &url.host) {
                    Ok(c) => c,
                    // Nothing the agent can answer, and it has not tried: the caller gets
                    // the 401 as it is.
                    Err(ChallengeError::NoDigest | ChallengeError::NoGbaRealm)
                        if !at.sent_credentials =>
                    {
                        return Ok(DigestOutcome::Done(current, GatewayAuth::None));
                    }
                    Err(e) => return Err(SecaError::Rejected(e.to_string())),
                };
            let naf_id = NafId::new(fqdn, digest_ua(self.opts.ua_org, conn.kind.tls_suite()))
                .map_err(|e| SecaError::Kdf(e.to_string()))?;
            let password = digest_password(&at.keys.deriver.derive(&naf_id)?);
            let btid = at.keys.deriver.btid().to_owned();
            let cnonce = seccf_digest::new_cnonce().map_err(|_| SecaError::Random)?;
            let creds = digest::answer(
                &challenge, &btid, &password, method, &url.path, body, &cnonce,
            )?;
            let authorization = creds.to_header_value();
            at.count_exchange()?;
            let req = build_request(
                url,
                method,
                &header_refs(headers, Some(&authorization)),
                body,
                true,
            )?;
            let resp = match conn
                .send(req, self.opts.max_response_body, self.opts.request_timeout)
                .await
            {
                Ok(r) => r,
                Err(SendError::NotSent(_)) => return Ok(DigestOutcome::Reconnect(current)),
                Err(e) => return Err(e.into_error()),
            };
            at.sent_credentials = true;
            if resp.status != 401 {
                check_authentication_info(
                    resp.header("authentication-info"),
                    &creds,
                    &password,
                    &resp.body,
                )?;
                let auth = GatewayAuth::Digest {
                    btid,
                    tls_cipher_suite: conn.kind.tls_suite(),
                    naf_id,
                };
                return Ok(DigestOutcome::Done(resp, auth));
            }
            // Refused. A fresh challenge with stale=true: the digest was right, the
            // nonce had expired; anything else: the B-TID is unknown or expired.
            let stale = select_gba_challenge(resp.header_values("www-authenticate"), &url.host)
                .map_err(|e| {
                    SecaError::Rejected(format!("401 to Digest credentials for B-TID {btid}: {e}"))
                })?
                .stale;
            if stale && !at.stale_answered {
                at.stale_answered = true;
            } else if !at.rebootstrapped && self.keys.can_bootstrap() {
                at.keys = self.keys.rebootstrap(&btid).await?;
                at.rebootstrapped = true;
            } else {
                return Err(SecaError::Rejected(format!(
                    "401 to Digest credentials for B-TID {btid}{}",
                    if at.rebootstrapped {
                        " (after a fresh bootstrap)"
                    } else {
                        ""
                    }
                )));
            }
            current = resp;
        }
    }
}

/// The caller's headers, checked, with the `3gpp-gba` token in `User-Agent`.
fn request_headers(headers: &[(&str, &str)]) -> Result<Vec<(String, String)>, SecaError> {
    let mut out = Vec::with_capacity(headers.len() + 1);
    let mut has_ua = false;
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if MANAGED_HEADERS.contains(&lower.as_str()) {
            return Err(SecaError::Http(format!(
                "request header {lower} is managed by the gateway client"
            )));
        }
        if lower == "user-agent" {
            has_ua = true;
            let has_token = value
                .split(|c: char| c.is_ascii_whitespace() || c == ',' || c == ';')
                .any(|t| t.eq_ignore_ascii_case(GBA_UA_TOKEN));
            let value = if has_token {
                (*value).to_owned()
            } else {
                format!("{value} {GBA_UA_TOKEN}")
            };
            out.push((lower, value));
        } else {
            out.push((lower, (*value).to_owned()));
        }
    }
    if !has_ua {
        out.push(("user-agent".to_owned(), USER_AGENT.to_owned()));
    }
    Ok(out)
}

fn header_refs<'a>(
    headers: &'a [(String, String)],
    authorization: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if let Some(a) = authorization {
        out.push(("authorization", a));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccf_gba::{GbaType, Secret};
    use seccf_uicc::soft::{SoftUsim, SoftUsimConfig};
    use seccf_uicc::Usim;

    use crate::context::BootstrapContext;
    use crate::gateway::testdata::vector;

    #[test]
    fn caller_headers() {
        let h = request_headers(&[("X-Trace", "1")]).unwrap();
        assert_eq!(
            h,
            vec![
                ("x-trace".to_owned(), "1".to_owned()),
                ("user-agent".to_owned(), USER_AGENT.to_owned())
            ]
        );
        assert!(USER_AGENT.split(' ').any(|t| t == GBA_UA_TOKEN));
        let h = request_headers(&[("User-Agent", "app/2")]).unwrap();
        assert_eq!(
            h,
            vec![("user-agent".to_owned(), "app/2 3gpp-gba".to_owned())]
        );
        let h = request_headers(&[("user-agent", "app/2; 3GPP-GBA")]).unwrap();
        assert_eq!(h[0].1, "app/2; 3GPP-GBA");
        // `3gpp-gba-tmpi` is another token.
        let h = request_headers(&[("user-agent", "x 3gpp-gba-tmpi")]).unwrap();
        assert_eq!(h[0].1, "x 3gpp-gba-tmpi 3gpp-gba");
        for managed in [
            "Authorization",
            "HOST",
            "connection",
            "Content-Length",
            "Transfer-Encoding",
        ] {
            assert!(request_headers(&[(managed, "x")]).is_err(), "{managed}");
        }
        let refs = header_refs(&h, Some("Digest x"));
        assert_eq!(refs.last(), Some(&("authorization", "Digest x")));
    }

    /// The futures can be spawned (a compile-time check).
    #[allow(dead_code)]
    fn futures_are_send(c: &mut GatewayClient<SoftUsim>) {
        fn send<F: Send>(_: &F) {}
        let f = c.request("GET", "https://h/", &[], b"");
        send(&f);
    }

    #[test]
    fn prefer_names() {
        assert_eq!("AUTO".parse::<Prefer>(), Ok(Prefer::Auto));
        assert_eq!("psk".parse::<Prefer>(), Ok(Prefer::Psk));
        assert_eq!("digest".parse::<Prefer>(), Ok(Prefer::Digest));
        assert!("tls".parse::<Prefer>().is_err());
    }

    /// The NAF_Id rules of [`ua`] applied through a real agent's key deriver give the
    /// keys of gba.md §10 (testdata/ua_vectors.txt).
    #[test]
    fn deriver_and_ua_rules_give_the_reference_keys() {
        let c = vector("context");
        let card = SoftUsim::from_config(SoftUsimConfig {
            impi: c.get("impi").to_owned(),
            k: Secret::from_hex("465b5ce8b199b49faa5f0a2ee238a6bc").unwrap(),
            opc: Secret::from_hex("cd63cb71954a9f4e48a5994e37a02baf").unwrap(),
            amf: [0x80, 0x00],
            gba_u: false,
            sqn_window: None,
            delta: seccf_gba::SqnWindow::DEFAULT_DELTA,
        });
        let agent = Agent::new(Usim::new(card)).unwrap();
        let rand: [u8; 16] = hex::decode(c.get("rand")).unwrap().try_into().unwrap();
        let ctx = BootstrapContext {
            btid: c.get("btid").to_owned(),
            impi: c.get("impi").to_owned(),
            rand,
            expires_at: i64::MAX,
            gba_type: GbaType::Me,
            ks: Some(Secret::from_hex(c.get("ks")).unwrap()),
        };
        let d = agent.naf_key_deriver(&ctx).unwrap();
        let fqdn = c.get("fqdn");
        let check = |name: &str, ua: UaSecurityProtocolId| {
            let v = vector(name);
            assert_eq!(ua.to_hex(), v.get("ua"), "[{name}] Ua id");
            let key = d.derive(&NafId::new(fqdn, ua).unwrap()).unwrap();
            assert_eq!(key.reveal_hex().as_str(), v.get("ks_naf"), "[{name}] key");
            key
        };
        let suite = |name: &str| u16::from_str_radix(vector(name).get("suite"), 16).unwrap();

        let key = check(
            "digest_over_tls_0x008c",
            digest_ua(UaOrg::ThreeGpp, Some(suite("digest_over_tls_0x008c"))),
        );
        assert_eq!(
            digest_password(&key).expose(),
            vector("digest_over_tls_0x008c").get("password").as_bytes()
        );
        check(
            "psk_tls12_0x008c",
            psk_ua(
                UaOrg::ThreeGpp,
                PskTlsVersion::Tls12,
                suite("psk_tls12_0x008c"),
            )
            .unwrap(),
        );
        check(
            "psk_tls13",
            psk_ua(UaOrg::ThreeGpp, PskTlsVersion::Tls13, 0).unwrap(),
        );
        let key = check("digest_over_http", digest_ua(UaOrg::ThreeGpp, None));
        assert_eq!(
            digest_password(&key).expose(),
            vector("digest_over_http").get("password").as_bytes()
        );

        // The deriver refuses a context of another subscriber.
        let other = BootstrapContext {
            impi: "001010000000099@ims.mnc001.mcc001.3gppnetwork.org".into(),
            ..ctx
        };
        assert!(matches!(
            agent.naf_key_deriver(&other),
            Err(SecaError::NotBootstrapped)
        ));
    }
}
