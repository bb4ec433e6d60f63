//! A minimal, bounded HTTP/1.1 client (hyper 1) for the agent's exchanges with the
//! BSF. (Gateways are reached through [`crate::gateway`], which reuses the URL type,
//! the request builder and the bounded response reader of this module.)
//!
//! One request per connection (`Connection: close`): Ub is two or three requests per
//! bootstrap, so pooling would buy nothing and would keep sockets open. Every request
//! is bounded: [`REQUEST_TIMEOUT`] for the whole exchange (connect, TLS, send,
//! response), [`MAX_RESPONSE_HEAD`] for the response head and [`MAX_RESPONSE_BODY`]
//! for the body.
//!
//! `https://` URLs use the given OpenSSL connector (for example one trusting only the
//! operator's CA, from `seccf_tls::client::build_connector`), or the system trust
//! store when none is given. The server name is verified either way.

use std::net::Ipv6Addr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use tokio::net::TcpStream;

use crate::error::SecaError;

/// Largest response body read, in bytes.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// Largest response head (status line and headers) buffered, in bytes.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Time allowed for one whole request, from connecting to the end of the body.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest URL accepted by [`Url::parse`].
pub const MAX_URL_LEN: usize = 2048;
/// Longest host name (RFC 1035 text form).
pub const MAX_HOST_LEN: usize = 253;
/// The default `User-Agent`. The `3gpp-gba` product token tells a BSF that the client
/// runs GBA_ME (gba.md §3.1; GBA_U clients send `3gpp-gba-uicc`).
pub const USER_AGENT: &str = "seccf-seca/0.1 3gpp-gba";

/// URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`, default port 80.
    Http,
    /// `https://`, default port 443.
    Https,
}

impl Scheme {
    /// The scheme's default port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// An absolute `http`/`https` URL, as much of RFC 3986 as the agent needs: no user
/// info, a DNS name, IPv4 address or bracketed IPv6 literal, an optional port, and a
/// path with optional query (the fragment is dropped, as HTTP never sends it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Scheme.
    pub scheme: Scheme,
    /// Host, lower-cased, IPv6 without brackets.
    pub host: String,
    /// Port (the scheme default when the URL has none).
    pub port: u16,
    /// Request target: path and query, always starting with `/`.
    pub path: String,
}

fn bad_url(msg: &str) -> SecaError {
    SecaError::BadUrl(msg.to_owned())
}

impl Url {
    /// Parses an absolute URL. Bounded to [`MAX_URL_LEN`] bytes of printable ASCII.
    pub fn parse(text: &str) -> Result<Self, SecaError> {
        if text.len() > MAX_URL_LEN {
            return Err(bad_url("longer than 2048 bytes"));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad_url("contains spaces, control or non-ASCII characters"));
        }
        let (scheme_text, rest) = text
            .split_once("://")
            .ok_or_else(|| bad_url("expected http://host[:port][/path]"))?;
        let scheme = if scheme_text.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme_text.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(bad_url("scheme must be http or https"));
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        if authority.contains('@') {
            return Err(bad_url("user information in URLs is not supported"));
        }
        let (host, port_text) = if let Some(v6) = authority.strip_prefix('[') {
            let (inside, after) = v6
                .split_once(']')
                .ok_or_else(|| bad_url("unterminated IPv6 literal"))?;
            if inside.parse::<Ipv6Addr>().is_err() {
                return Err(bad_url("invalid IPv6 literal"));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad_url("junk after IPv6 literal"))?,
                ),
            };
            (inside.to_ascii_lowercase(), port)
        } else {
            let (h, p) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if h.is_empty() || h.len() > MAX_HOST_LEN {
                return Err(bad_url("host is empty or too long"));
            }
            if !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
            {
                return Err(bad_url("host has characters outside [A-Za-z0-9._-]"));
            }
            (h.to_ascii_lowercase(), p)
        };
        let port = match port_text {
            None => scheme.default_port(),
            Some(p) => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad_url("port must be 1 to 5 digits"));
                }
                match p.parse::<u16>() {
                    Ok(0) | Err(_) => return Err(bad_url("port out of range")),
                    Ok(n) => n,
                }
            }
        };
        let without_fragment = tail.split('#').next().unwrap_or("");
        let path = if without_fragment.is_empty() {
            "/".to_owned()
        } else if without_fragment.starts_with('?') {
            format!("/{without_fragment}")
        } else {
            without_fragment.to_owned()
        };
        Ok(Url {
            scheme,
            host,
            port,
            path,
        })
    }

    /// True when the host is an IPv6 literal.
    pub fn is_ipv6(&self) -> bool {
        self.host.contains(':')
    }

    /// The `Host` header value: host, bracketed for IPv6, with the port unless it is
    /// the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.is_ipv6() {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A complete response.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, at most [`MAX_RESPONSE_BODY`] bytes.
    pub body: Bytes,
}

impl HttpResponse {
    /// The first value of header `name` that is valid visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(name)
            .iter()
            .find_map(|v| v.to_str().ok())
    }

    /// Every value of header `name` that is valid visible ASCII, in order.
    pub fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .get_all(name)
            .into_iter()
            .filter_map(|v| v.to_str().ok())
    }
}

/// Sends one request to `url` and reads the whole response.
///
/// `headers` are added as given (names case-insensitive); `Host`, `User-Agent`
/// ([`USER_AGENT`]), `Accept: */*` and `Connection: close` are set unless `headers`
/// carries them. `tls` is the connector for `https://` (the system trust store when
/// `None`); it is ignored for `http://`.
pub async fn request(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    tls: Option<&SslConnector>,
) -> Result<HttpResponse, SecaError> {
    let url = Url::parse(url)?;
    request_url(&url, method, headers, body, tls).await
}

/// [`request`] with an already parsed URL.
pub async fn request_url(
    url: &Url,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    tls: Option<&SslConnector>,
) -> Result<HttpResponse, SecaError> {
    let req = build_request(url, method, headers, body, false)?;
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange(url, req, tls)).await {
        Ok(result) => result,
        Err(_) => Err(SecaError::Http(format!(
            "no complete response from {} within {} s",
            url.host_header(),
            REQUEST_TIMEOUT.as_secs()
        ))),
    }
}

/// The request for `url`, with the default headers added where `headers` has none:
/// `Host`, `User-Agent`, `Accept` and, unless `keep_alive`, `Connection: close`.
pub(crate) fn build_request(
    url: &Url,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
) -> Result<Request<Full<Bytes>>, SecaError> {
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| SecaError::Http("invalid request method".into()))?;
    let mut req = Request::builder()
        .method(method)
        .uri(url.path.as_str())
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| SecaError::BadUrl(format!("request target: {e}")))?;
    let map = req.headers_mut();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SecaError::Http("invalid request header name".into()))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| SecaError::Http(format!("invalid value for request header {name}")))?;
        map.append(name, value);
    }
    let mut defaults = vec![
        (http::header::HOST, url.host_header()),
        (http::header::USER_AGENT, USER_AGENT.to_owned()),
        (http::header::ACCEPT, "*/*".to_owned()),
    ];
    if !keep_alive {
        defaults.push((http::header::CONNECTION, "close".to_owned()));
    }
    for (name, value) in defaults {
        if !map.contains_key(&name) {
            let value = HeaderValue::from_str(&value)
                .map_err(|_| SecaError::BadUrl("host not usable in a Host header".into()))?;
            map.insert(name, value);
        }
    }
    Ok(req)
}

/// A certificate TLS connector that trusts the system store (TLS 1.2 minimum).
pub(crate) fn system_connector() -> Result<SslConnector, SecaError> {
    let tls = |e: openssl::error::ErrorStack| SecaError::Tls(format!("client context: {e}"));
    // The builder loads the system trust store and turns on peer verification;
    // `seccf_tls::client::connect` adds the host name check.
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(tls)?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(tls)?;
    Ok(b.build())
}

async fn exchange(
    url: &Url,
    req: Request<Full<Bytes>>,
    tls: Option<&SslConnector>,
) -> Result<HttpResponse, SecaError> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| SecaError::Http(format!("connect to {}: {e}", url.host_header())))?;
    // Small requests: do not let Nagle delay them.
    let _ = tcp.set_nodelay(true);
    match url.scheme {
        Scheme::Http => send_on(TokioIo::new(tcp), req).await,
        Scheme::Https => {
            let owned;
            let connector = match tls {
                Some(c) => c,
                None => {
                    owned = system_connector()?;
                    &owned
                }
            };
            let stream = seccf_tls::client::connect(connector, &url.host, tcp)
                .await
                .map_err(|e| SecaError::Tls(e.to_string()))?;
            send_on(TokioIo::new(stream), req).await
        }
    }
}

async fn send_on<I>(io: I, req: Request<Full<Bytes>>) -> Result<HttpResponse, SecaError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_RESPONSE_HEAD.max(8192))
        .handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|e| SecaError::Http(format!("HTTP/1.1 handshake: {e}")))?;

    let work = async move {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| SecaError::Http(format!("sending request: {e}")))?;
        read_response(resp, MAX_RESPONSE_BODY).await
    };

    // Drive the connection and the request together, without spawning a task that
    // could outlive the caller's timeout.
    let mut conn = std::pin::pin!(conn);
    let mut work = std::pin::pin!(work);
    let mut conn_done = false;
    loop {
        tokio::select! {
            biased;
            result = &mut work => return result,
            ended = &mut conn, if !conn_done => {
                conn_done = true;
                if let Err(e) = ended {
                    return Err(SecaError::Http(format!("connection: {e}")));
                }
                // A clean end: the response (if any) is already queued for `work`.
            }
        }
    }
}

/// Reads a whole response, refusing bodies (declared or actual) above `max_body`.
pub(crate) async fn read_response(
    resp: http::Response<hyper::body::Incoming>,
    max_body: usize,
) -> Result<HttpResponse, SecaError> {
    let (parts, body) = resp.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(too_large(max_body));
    }
    let collected = Limited::new(body, max_body).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            too_large(max_body)
        } else {
            SecaError::Http(format!("reading response body: {e}"))
        }
    })?;
    Ok(HttpResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: collected.to_bytes(),
    })
}

fn too_large(max_body: usize) -> SecaError {
    SecaError::Http(format!("response body larger than {max_body} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        match Url::parse(s) {
            Ok(u) => u,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn parses_the_forms_the_agent_uses() {
        let u = url("http://bsf.mnc001.mcc001.pub.3gppnetwork.org");
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.path.as_str()),
            (
                Scheme::Http,
                "bsf.mnc001.mcc001.pub.3gppnetwork.org",
                80,
                "/"
            )
        );
        assert_eq!(u.host_header(), "bsf.mnc001.mcc001.pub.3gppnetwork.org");
        let u = url("HTTPS://KMC.Example:8443/ub?x=1#frag");
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.path.as_str()),
            (Scheme::Https, "kmc.example", 8443, "/ub?x=1")
        );
        assert_eq!(u.host_header(), "kmc.example:8443");
        let u = url("http://127.0.0.1:8080");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/")
        );
        let u = url("http://[::1]:9000/x");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 9000, "/x")
        );
        assert!(u.is_ipv6());
        assert_eq!(u.host_header(), "[::1]:9000");
        assert_eq!(url("https://[fe80::1]").host_header(), "[fe80::1]");
        assert_eq!(url("http://h?q").path, "/?q");
        assert_eq!(url("http://h:443").host_header(), "h:443");
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        for bad in [
            "",
            "bsf.example",
            "ftp://bsf.example/",
            "http://",
            "http:///path",
            "http://user:pw@bsf.example/",
            "http://bsf.example:0/",
            "http://bsf.example:65536/",
            "http://bsf.example:/",
            "http://bsf.example:80:81/",
            "http://bsf.example:8a/",
            "http://bs f.example/",
            "http://bsf.example/pa th",
            "http://bsf\u{e9}.example/",
            "http://[::1/",
            "http://[::g]/",
            "http://[::1]x/",
            "http://b\x00sf/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("http://h/{}", "a".repeat(MAX_URL_LEN));
        assert!(Url::parse(&long).is_err());
        let long_host = format!("http://{}/", "a".repeat(MAX_HOST_LEN + 1));
        assert!(Url::parse(&long_host).is_err());
    }

    #[test]
    fn request_defaults_and_overrides() {
        let u = url("http://bsf.example:8080/");
        let req = build_request(&u, "GET", &[("Authorization", "Digest x")], b"", false).unwrap();
        let h = req.headers();
        assert_eq!(h["host"], "bsf.example:8080");
        assert_eq!(h["user-agent"], USER_AGENT);
        assert_eq!(h["authorization"], "Digest x");
        assert_eq!(h["connection"], "close");
        let req = build_request(&u, "GET", &[("user-agent", "other/1")], b"", false).unwrap();
        assert_eq!(req.headers().get_all("user-agent").iter().count(), 1);
        assert_eq!(req.headers()["user-agent"], "other/1");
        assert!(build_request(&u, "GET", &[("bad name", "v")], b"", false).is_err());
        assert!(build_request(&u, "GET", &[("x", "a\nb")], b"", false).is_err());
        assert!(build_request(&u, "G ET", &[], b"", false).is_err());
    }

    /// Randomized: the URL parser never panics, and what it accepts meets its promises.
    #[test]
    fn url_parser_never_panics() {
        let mut state: u64 = 0x0123_4567_89ab_cdef;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [
            "http://bsf.example:8080/ub?x=1",
            "https://[::1]:443/",
            "http://127.0.0.1",
        ];
        let alphabet = b"htps:/[]@?#.-_0123456789abcdef%: \x00\xc3";
        for i in 0..5000 {
            let mut bytes = if i % 2 == 0 {
                seeds[(next() % 3) as usize].as_bytes().to_vec()
            } else {
                (0..(next() % 64))
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            };
            for _ in 0..(next() % 4) {
                if bytes.is_empty() {
                    break;
                }
                let pos = (next() % bytes.len() as u64) as usize;
                let b = alphabet[(next() % alphabet.len() as u64) as usize];
                if next() % 2 == 0 {
                    bytes[pos] = b;
                } else {
                    bytes.insert(pos, b);
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(u) = Url::parse(&text) {
                assert!(u.port != 0);
                assert!(u.path.starts_with('/'));
                assert!(!u.host.is_empty() && u.host.len() <= MAX_HOST_LEN);
                assert!(HeaderValue::from_str(&u.host_header()).is_ok());
            }
        }
    }
}
