//! `https-keepalive`: authenticated HTTPS requests per second over keep-alive
//! connections, through the OSG or through nginx, to the same upstream.
//!
//! One client for every target: hyper's HTTP/1.1 client over tokio-openssl, one
//! connection per worker opened before the clock starts, `GET /` back to back. Only
//! the authentication differs, as each gateway defines it:
//!
//! - `osg-psk`: PSK-TLS (the connection is authenticated once, by the handshake; the
//!   gateway asserts the identity on every request it forwards);
//! - `osg-digest`: certificate TLS plus GBA HTTP Digest on every request, as a real
//!   client does it: the first request of a connection gets the 401 challenge, then
//!   every request answers it with the next nonce count (nc = 1, 2, 3, … on one nonce
//!   and one cnonce), password base64(Ks_NAF) for the Ua id of the negotiated suite,
//!   and the `rspauth` of every `Authentication-Info` is verified (a stale nonce gets
//!   one retry with the fresh challenge);
//! - `nginx`: certificate TLS plus HTTP Basic on every request (`auth_basic`).
//!
//! Every response must be a 200 from the benchmark upstream (`seccf-load upstream`
//! marks its answers with `x-seccf-load-upstream: <body length>`) with exactly that
//! many body bytes; anything else counts as an error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, ensure, Context};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, HOST, USER_AGENT, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use openssl::ssl::SslConnector;
use seccf_digest::{AuthenticationInfo, Challenge, Credentials, Qop};
use seccf_gba::naf::UaSecurityProtocolId;
use seccf_load::keyfile::GbaKeys;
use seccf_secret::SecretBytes;
use zeroize::Zeroizing;

use crate::cpu::CpuProbe;
use crate::driver::{self, Limits, Report, Worker};
use crate::tlsclient::{connect_cert, connect_psk, TlsVer};
use crate::upstream::UPSTREAM_MARK;

/// User-Agent of every request; the `3gpp-gba` token tells the OSG's Digest listener
/// that this client speaks GBA Digest (TS 24.109 D.3).
pub const USER_AGENT_VALUE: &str = "seccf-load/0.1 3gpp-gba";
/// Largest response body read.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;
/// Largest Basic credentials file (`user:password`).
pub const MAX_BASIC_FILE: u64 = 1024;
/// Prefix of the GBA Digest realm (TS 24.109 §5.2).
const GBA_REALM_PREFIX: &str = "3GPP-bootstrapping@";

/// What serves the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpsTarget {
    /// The OSG's PSK-TLS HTTPS listener.
    OsgPsk,
    /// The OSG's certificate TLS + GBA Digest listener.
    OsgDigest,
    /// nginx with auth_basic and proxy_pass.
    Nginx,
}

impl HttpsTarget {
    fn label(self) -> &'static str {
        match self {
            HttpsTarget::OsgPsk => "osg-psk",
            HttpsTarget::OsgDigest => "osg-digest",
            HttpsTarget::Nginx => "nginx",
        }
    }
}

/// Settings of an `https-keepalive` run.
pub struct HttpsSettings {
    /// Gateway address.
    pub addr: SocketAddr,
    /// TLS host name (SNI and certificate name) and `Host` header name.
    pub host: String,
    /// TLS version.
    pub ver: TlsVer,
    /// Target.
    pub target: HttpsTarget,
    /// Overrides the gateway label in the report.
    pub label: Option<String>,
    /// CA of the server certificate (osg-digest, nginx).
    pub ca_file: Option<PathBuf>,
    /// `user:password` file (nginx).
    pub basic_file: Option<PathBuf>,
    /// Concurrent workers (one connection each).
    pub concurrency: usize,
    /// Run limits.
    pub limits: Limits,
}

/// How a connection is opened and how each request is authenticated.
enum Auth {
    Psk(SslConnector),
    Digest {
        connector: SslConnector,
        btid: String,
        /// base64(Ks_NAF) per negotiated suite.
        passwords: Vec<(u16, SecretBytes)>,
    },
    Basic {
        connector: SslConnector,
        header: HeaderValue,
    },
}

struct Shared {
    auth: Auth,
    addr: SocketAddr,
    host: String,
    host_header: HeaderValue,
    ver: TlsVer,
}

/// The Digest state of one connection: one nonce, one cnonce, increasing nc.
struct DigestSession {
    challenge: Challenge,
    password: SecretBytes,
    cnonce: String,
    nc: u32,
}

struct Conn {
    sender: SendRequest<Empty<Bytes>>,
    digest: Option<DigestSession>,
}

struct HttpsWorker {
    shared: Arc<Shared>,
    conn: Option<Conn>,
    opened: u64,
}

/// A response, fully read.
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

async fn send(
    sender: &mut SendRequest<Empty<Bytes>>,
    shared: &Shared,
    authorization: Option<HeaderValue>,
) -> anyhow::Result<Answer> {
    let mut b = Request::get("/")
        .header(HOST, shared.host_header.clone())
        .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    if let Some(a) = authorization {
        b = b.header(AUTHORIZATION, a);
    }
    let req = b.body(Empty::new()).context("building the request")?;
    sender.ready().await.context("connection not ready")?;
    let resp = sender
        .send_request(req)
        .await
        .context("sending the request")?;
    let (parts, body) = resp.into_parts();
    let body = http_body_util::Limited::new(body, MAX_RESPONSE_BODY)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the response body: {e}"))?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// The GBA challenge of a 401, if there is one.
fn gba_challenge(a: &Answer) -> anyhow::Result<Challenge> {
    ensure!(
        a.status == StatusCode::UNAUTHORIZED,
        "expected 401 with a Digest challenge, got {}",
        a.status
    );
    for v in a.headers.get_all(WWW_AUTHENTICATE) {
        let Ok(text) = v.to_str() else { continue };
        if let Ok(c) = Challenge::parse(text) {
            if c.realm.starts_with(GBA_REALM_PREFIX) {
                return Ok(c);
            }
        }
    }
    bail!("the 401 carries no GBA Digest challenge")
}

/// Checks a response is the upstream's 200 with its whole body.
fn check_upstream(a: &Answer) -> anyhow::Result<()> {
    ensure!(a.status == StatusCode::OK, "HTTP {}", a.status);
    let declared: usize = a
        .headers
        .get(UPSTREAM_MARK)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .context("the response did not come from the benchmark upstream")?;
    ensure!(
        a.body.len() == declared,
        "body of {} bytes, the upstream sent {declared}",
        a.body.len()
    );
    Ok(())
}

impl HttpsWorker {
    async fn connect(&mut self) -> anyhow::Result<()> {
        let sh = self.shared.clone();
        let (io, digest_password) = match &sh.auth {
            Auth::Psk(c) => (connect_psk(c, &sh.host, sh.addr, sh.ver).await?, None),
            Auth::Basic { connector, .. } => (
                connect_cert(connector, &sh.host, sh.addr, sh.ver).await?.0,
                None,
            ),
            Auth::Digest {
                connector,
                passwords,
                ..
            } => {
                let (s, suite) = connect_cert(connector, &sh.host, sh.addr, sh.ver).await?;
                let pw = passwords
                    .iter()
                    .find(|(s, _)| *s == suite)
                    .map(|(_, p)| p.clone())
                    .with_context(|| format!("no Digest key for suite {suite:#06x}"))?;
                (s, Some(pw))
            }
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // Ends when the worker drops the sender or the server closes.
            let _ = conn.await;
        });
        let digest = match digest_password {
            None => None,
            Some(password) => {
                // The first request of the connection fetches the challenge.
                let a = send(&mut sender, &sh, None).await?;
                Some(DigestSession {
                    challenge: gba_challenge(&a)?,
                    password,
                    cnonce: seccf_digest::new_cnonce().context("cnonce")?,
                    nc: 0,
                })
            }
        };
        self.conn = Some(Conn { sender, digest });
        self.opened += 1;
        Ok(())
    }

    async fn request(&mut self) -> anyhow::Result<()> {
        let sh = self.shared.clone();
        let conn = self.conn.as_mut().context("not connected")?;
        let Some(d) = conn.digest.as_mut() else {
            let authz = match &sh.auth {
                Auth::Basic { header, .. } => Some(header.clone()),
                _ => None,
            };
            let a = send(&mut conn.sender, &sh, authz).await?;
            return check_upstream(&a);
        };
        let btid = match &sh.auth {
            Auth::Digest { btid, .. } => btid.as_str(),
            _ => bail!("Digest session without Digest credentials"),
        };
        // At most two rounds: a stale nonce gets one retry with the fresh challenge.
        for round in 0..2 {
            d.nc = d.nc.checked_add(1).context("nonce count exhausted")?;
            let creds = seccf_digest::answer(
                &d.challenge,
                btid,
                d.password.expose(),
                "GET",
                "/",
                Some(Qop::Auth),
                d.nc,
                &d.cnonce,
                b"",
            )
            .context("computing the Digest response")?;
            let value =
                HeaderValue::from_str(&creds.to_header_value()).context("Authorization header")?;
            let a = send(&mut conn.sender, &sh, Some(value)).await?;
            if a.status == StatusCode::UNAUTHORIZED && round == 0 {
                let c = gba_challenge(&a)?;
                ensure!(c.stale, "Digest credentials refused (not a stale nonce)");
                d.challenge = c;
                d.nc = 0;
                continue;
            }
            check_upstream(&a)?;
            return verify_rspauth(&creds, &d.password, &a);
        }
        bail!("Digest credentials refused after a fresh challenge")
    }
}

/// Mutual authentication: the gateway proves it knew the same Ks_NAF.
fn verify_rspauth(creds: &Credentials, password: &SecretBytes, a: &Answer) -> anyhow::Result<()> {
    let text = a
        .headers
        .get("authentication-info")
        .and_then(|v| v.to_str().ok())
        .context("no Authentication-Info")?;
    let info = AuthenticationInfo::parse(text).context("malformed Authentication-Info")?;
    seccf_digest::verify_rspauth(creds, password.expose(), b"", &info)
        .context("the gateway's rspauth does not verify")?;
    Ok(())
}

impl Worker for HttpsWorker {
    async fn op(&mut self) -> anyhow::Result<()> {
        let usable = match &self.conn {
            Some(c) => !c.sender.is_closed(),
            None => false,
        };
        if !usable {
            self.conn = None;
            self.connect().await?;
        }
        let r = self.request().await;
        if r.is_err() {
            // Start the next operation on a fresh connection.
            self.conn = None;
        }
        r
    }
}

fn read_basic(path: &std::path::Path) -> anyhow::Result<HeaderValue> {
    use std::io::Read;
    let mut text = Zeroizing::new(String::new());
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .take(MAX_BASIC_FILE + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    let line = text.trim_end_matches(['\r', '\n']);
    ensure!(
        text.len() as u64 <= MAX_BASIC_FILE && line.contains(':') && !line.contains('\n'),
        "{}: expected one line user:password",
        path.display()
    );
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(line));
    let mut v = HeaderValue::from_str(&format!("Basic {}", encoded.as_str()))
        .context("Basic credentials are not a valid header")?;
    v.set_sensitive(true);
    Ok(v)
}

/// Runs the scenario.
pub async fn run(
    keys: &GbaKeys,
    s: HttpsSettings,
    probe: &CpuProbe,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Report> {
    let ca = || {
        s.ca_file
            .as_deref()
            .context("--ca-file is required for certificate TLS targets")
    };
    let auth = match s.target {
        HttpsTarget::OsgPsk => Auth::Psk(crate::tlsclient::psk_connector(keys, s.ver)?),
        HttpsTarget::OsgDigest => {
            let suite = s.ver.cert_suite();
            let key = keys
                .key(&UaSecurityProtocolId::tls_3gpp(suite))
                .with_context(|| format!("the key file has no key for suite {suite:#06x}"))?;
            // TS 24.109 §5.2: the Digest password is the base64 text of Ks_NAF.
            let password = SecretBytes::new(
                base64::engine::general_purpose::STANDARD
                    .encode(key.expose())
                    .into_bytes(),
            );
            Auth::Digest {
                connector: crate::tlsclient::cert_connector(ca()?, s.ver)?,
                btid: keys.btid().to_string(),
                passwords: vec![(suite, password)],
            }
        }
        HttpsTarget::Nginx => {
            let path = s
                .basic_file
                .as_deref()
                .context("--basic-auth-file is required for nginx")?;
            Auth::Basic {
                connector: crate::tlsclient::cert_connector(ca()?, s.ver)?,
                header: read_basic(path)?,
            }
        }
    };
    let psk = matches!(auth, Auth::Psk(_));
    let host_header =
        HeaderValue::from_str(&format!("{}:{}", s.host, s.addr.port())).context("Host header")?;
    let shared = Arc::new(Shared {
        auth,
        addr: s.addr,
        host: s.host.clone(),
        host_header,
        ver: s.ver,
    });

    // A gateway that forwards without authenticating would make every number here
    // meaningless: the certificate targets must refuse a request without credentials.
    if let Auth::Basic { connector, .. } = &shared.auth {
        let (io, _) = connect_cert(connector, &shared.host, shared.addr, shared.ver).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(conn);
        let a = send(&mut sender, &shared, None).await?;
        ensure!(
            a.status == StatusCode::UNAUTHORIZED,
            "a request without credentials got {} instead of 401",
            a.status
        );
    }

    let mut workers: Vec<HttpsWorker> = (0..s.concurrency)
        .map(|_| HttpsWorker {
            shared: shared.clone(),
            conn: None,
            opened: 0,
        })
        .collect();
    for (i, w) in workers.iter_mut().enumerate() {
        w.op()
            .await
            .with_context(|| format!("warm-up request of worker {i} failed"))?;
    }
    let warm: u64 = workers.iter().map(|w| w.opened).sum();
    let label = s.label.clone().unwrap_or_else(|| s.target.label().into());
    eprintln!(
        "https-keepalive: {} workers (one keep-alive connection each), {} s, {} via {} ({})",
        s.concurrency,
        s.limits.duration.as_secs(),
        s.addr,
        label,
        s.ver.describe(psk)
    );
    // The workers come back through the driver only as an outcome, so count the
    // connections they open with a wrapper that reports on drop.
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted: Vec<Counted> = workers
        .into_iter()
        .map(|w| Counted {
            inner: w,
            total: counter.clone(),
        })
        .collect();
    let (outcome, cpu) = crate::cpu::measure(probe, driver::run(counted, s.limits, stop)).await;
    let opened = counter.load(std::sync::atomic::Ordering::Relaxed);
    let what = match s.target {
        HttpsTarget::OsgPsk => "PSK-TLS, identity asserted per request",
        HttpsTarget::OsgDigest => "TLS + GBA Digest per request (nc++ on one nonce)",
        HttpsTarget::Nginx => "TLS + HTTP Basic per request",
    };
    let mut r = Report::new(
        "https-keepalive",
        format!(
            "GET / over keep-alive HTTPS, {what} ({label} at {})",
            s.addr
        ),
        s.concurrency,
        s.limits.duration.as_secs_f64(),
        &outcome,
    );
    r.gateway = Some(label);
    r.tls = Some(s.ver.describe(psk).to_string());
    r.new_connections = Some(opened.saturating_sub(warm));
    r.cpu = cpu;
    Ok(r)
}

/// Adds a worker's opened-connection count to a shared total when it is dropped
/// (the driver drops each worker when its loop ends).
struct Counted {
    inner: HttpsWorker,
    total: Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.total
            .fetch_add(self.inner.opened, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Worker for Counted {
    async fn op(&mut self) -> anyhow::Result<()> {
        self.inner.op().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &'static [u8]) -> Answer {
        let mut h = http::HeaderMap::new();
        for (k, v) in headers {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        Answer {
            status: StatusCode::from_u16(status).expect("status"),
            headers: h,
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn only_complete_upstream_answers_count() {
        assert!(check_upstream(&answer(200, &[(UPSTREAM_MARK, "3")], b"abc")).is_ok());
        assert!(check_upstream(&answer(200, &[(UPSTREAM_MARK, "4")], b"abc")).is_err());
        assert!(check_upstream(&answer(200, &[], b"abc")).is_err());
        assert!(check_upstream(&answer(502, &[(UPSTREAM_MARK, "3")], b"abc")).is_err());
    }

    #[test]
    fn the_gba_challenge_is_picked_among_several() {
        let a = answer(
            401,
            &[
                (
                    "www-authenticate",
                    r#"Digest realm="seccf@localhost", nonce="n1", algorithm=SHA-256, qop="auth""#,
                ),
                (
                    "www-authenticate",
                    r#"Digest realm="3GPP-bootstrapping@localhost", nonce="n2", algorithm=MD5, qop="auth,auth-int", opaque="o""#,
                ),
            ],
            b"",
        );
        let c = gba_challenge(&a).expect("GBA challenge present");
        assert_eq!(c.nonce, "n2");
        assert_eq!(c.opaque.as_deref(), Some("o"));
        assert!(gba_challenge(&answer(200, &[], b"")).is_err());
        assert!(
            gba_challenge(&answer(401, &[("www-authenticate", "Basic realm=x")], b"")).is_err()
        );
    }

    /// The client's Digest answer and the server's rspauth check agree, and a wrong
    /// password makes the rspauth check fail (RFC 2617 §3.2.3 computation, through
    /// seccf-digest on both sides).
    #[test]
    fn rspauth_is_verified() {
        let mut c = Challenge::new(
            "3GPP-bootstrapping@localhost",
            "abc",
            seccf_digest::Algorithm::Md5,
        );
        c.qop = vec![Qop::Auth];
        let pw = SecretBytes::new(b"cGFzc3dvcmQ=".to_vec());
        let creds = seccf_digest::answer(
            &c,
            "btid@bsf",
            pw.expose(),
            "GET",
            "/",
            Some(Qop::Auth),
            1,
            "cn",
            b"",
        )
        .expect("answer");
        let info = seccf_digest::authentication_info(&creds, pw.expose(), b"", None).expect("info");
        let ok = answer(
            200,
            &[("authentication-info", &info.to_header_value())],
            b"",
        );
        assert!(verify_rspauth(&creds, &pw, &ok).is_ok());
        let other = SecretBytes::new(b"b3RoZXI=".to_vec());
        assert!(verify_rspauth(&creds, &other, &ok).is_err());
        assert!(verify_rspauth(&creds, &pw, &answer(200, &[], b"")).is_err());
    }

    #[test]
    fn basic_file_becomes_a_sensitive_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("basic");
        std::fs::write(&p, "bench:s3cret\n").expect("write");
        let v = read_basic(&p).expect("valid file");
        // RFC 7617 §2: base64("bench:s3cret").
        assert_eq!(v.to_str().ok(), Some("Basic YmVuY2g6czNjcmV0"));
        assert!(v.is_sensitive());
        std::fs::write(&p, "no colon\n").expect("write");
        assert!(read_basic(&p).is_err());
        std::fs::write(&p, "a:b\nc:d\n").expect("write");
        assert!(read_basic(&p).is_err());
    }
}
