//! The HTTPS reverse proxy: HTTP/1.1 and HTTP/2 (ALPN) towards terminals, pooled
//! HTTP/1.1 keep-alive towards the resources, authentication per connection (PSK-TLS,
//! mutual TLS) or per request (Digest), routing ([`crate::routes`]), authorisation per
//! route, and SEC-3 identity forwarding.
//!
//! Per request: select the route (404 / 400 when none can be), decide how the request
//! is authenticated on that route (the connection's method if the route accepts it,
//! else Digest if the route accepts Digest, else 403) before reading the body, read the
//! body within the route's limit, authenticate, authorise against the route, forward
//! to the route's upstream within its timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use seccf_gba::naf::NafId;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::config::AuthMethod;
use crate::conn::{Activity, DrainToken, Tracked};
use crate::digest_auth::{Authenticated, Begin, DigestEngine, Outcome};
use crate::obs::Decision;
use crate::principal::{
    intended_identity, set_forwarded_headers, set_identity_headers, strip_client_identity_headers,
    strip_hop_by_hop, Principal,
};
use crate::routes::{Route, RouteTable};
use crate::session::{connection_auth, handshake, ConnAuth};
use crate::tls_setup::negotiated;
use crate::ua::digest_ua;
use crate::{unix_now, ListenerState, Shared};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Response body type of the proxy.
pub type RespBody = BoxBody<Bytes, BoxError>;

fn full(b: impl Into<Bytes>) -> RespBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn text(status: StatusCode, msg: &str) -> Response<RespBody> {
    let mut r = Response::new(full(format!("{msg}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// One HTTPS listener.
pub(crate) struct HttpsProxy {
    pub(crate) state: Arc<ListenerState>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) digest: Option<DigestEngine>,
    pub(crate) routes: Arc<RouteTable>,
    pub(crate) client: Client<HttpConnector, Full<Bytes>>,
}

/// How a request will be authenticated on its route.
enum Plan {
    /// By the connection (PSK-TLS or client certificate).
    Connection(Principal),
    /// By HTTP Digest on this request.
    Digest,
}

/// A response and what it means for the metrics (`route_requests_total{result}`).
type Served<'r> = (Response<RespBody>, &'r str, &'static str);

/// What a connection knows about itself.
struct ConnCtx {
    peer: SocketAddr,
    auth: ConnAuth,
    suite: u16,
    activity: Arc<Activity>,
    /// The last assertion issued on this connection: (subject and audience key, token,
    /// iat).
    assertion: std::sync::Mutex<Option<(String, Arc<str>, i64)>>,
}

impl ConnCtx {
    /// An assertion for `p`, reused on this connection while it is younger than half
    /// its lifetime. ECDSA signing per request would cost more than the rest of the
    /// proxying; a resource therefore sees one token (one `jti`) for the requests of one
    /// connection within that window, never across connections or subjects.
    fn assertion(&self, shared: &Shared, p: &Principal, aud: &str, now: i64) -> Option<Arc<str>> {
        // The audience is part of the key: routes of one connection may have
        // different upstreams, and a token names its audience.
        let key = format!(
            "{}\n{}\n{}\n{}",
            p.method.label(),
            p.identity,
            p.btid.as_deref().unwrap_or(""),
            aud
        );
        let half_ttl = shared.signer.ttl_secs() / 2;
        if let Ok(cache) = self.assertion.lock() {
            if let Some((k, jwt, iat)) = cache.as_ref() {
                if *k == key && now >= *iat && now - *iat < half_ttl {
                    return Some(jwt.clone());
                }
            }
        }
        let jwt: Arc<str> = shared
            .signer
            .issue(&p.identity, aud, p.method.label(), p.btid.as_deref(), now)
            .map_err(|e| tracing::warn!(error = %e, "assertion signing failed"))
            .ok()?
            .into();
        if let Ok(mut cache) = self.assertion.lock() {
            *cache = Some((key, jwt.clone(), now));
        }
        Some(jwt)
    }
}

impl HttpsProxy {
    pub(crate) fn new(
        state: Arc<ListenerState>,
        shared: Arc<Shared>,
        digest: Option<DigestEngine>,
        routes: Arc<RouteTable>,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        // One pooled client serves every route (it pools per upstream authority); each
        // request is further bounded by its route's own timeout.
        http.set_connect_timeout(Some(routes.max_upstream_timeout()));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(http);
        HttpsProxy {
            state,
            shared,
            digest,
            routes,
            client,
        }
    }

    fn name(&self) -> &str {
        &self.state.cfg.name
    }

    /// Serves one accepted TCP connection to its end.
    pub(crate) async fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
        _token: DrainToken,
    ) {
        let _open = self.shared.metrics.open_guard(self.name());
        let limits = self.state.cfg.limits.clone();
        let acceptor = self.state.acceptor();
        let Some(stream) = handshake(&self.state, &self.shared, &acceptor, tcp, peer).await else {
            return;
        };
        let (_, suite, _) = negotiated(stream.ssl());
        let auth = connection_auth(&self.state, &self.shared, &stream, peer).await;
        if let ConnAuth::None = auth {
            if !self.state.cfg.accepts(AuthMethod::Digest) {
                // A certificate handshake on a PSK-only or mTLS-only listener (TLS 1.3
                // fallback): nothing can authenticate this connection.
                self.shared
                    .metrics
                    .auth(self.name(), "none", "no_credentials");
                return;
            }
        }
        let activity = Activity::new();
        let ctx = Arc::new(ConnCtx {
            peer,
            auth,
            suite,
            activity: activity.clone(),
            assertion: std::sync::Mutex::new(None),
        });
        let io = TokioIo::new(Tracked::new(stream, activity.clone()));
        let this = self.clone();
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            let this = this.clone();
            let ctx = ctx.clone();
            async move { Ok::<_, Infallible>(this.handle(&ctx, req).await) }
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
            .max_buf_size(limits.max_header_bytes.max(8192))
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(128)
            .keep_alive_interval(Some(Duration::from_secs(limits.idle_timeout_secs)));
        let conn = builder.serve_connection(io, svc);
        tokio::pin!(conn);
        let idle_limit = Duration::from_secs(limits.idle_timeout_secs);
        let idle = activity.idle(idle_limit);
        tokio::pin!(idle);
        let grace = self.shared.grace;
        let mut closing: Option<tokio::time::Instant> = None;
        loop {
            let deadline = closing
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(listener = self.name(), %peer, error = %e, "connection ended with error");
                    }
                    break;
                }
                _ = &mut idle, if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + grace);
                }
                _ = crate::conn::wait_true(&mut shutdown), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now() + grace);
                }
                _ = tokio::time::sleep_until(deadline), if closing.is_some() => break,
            }
        }
    }

    async fn handle(&self, ctx: &ConnCtx, req: Request<Incoming>) -> Response<RespBody> {
        let _inflight = ctx.activity.request();
        let (resp, route, result) = self.route_and_serve(ctx, req).await;
        self.shared
            .metrics
            .route_request(self.name(), route, result);
        resp
    }

    async fn route_and_serve(&self, ctx: &ConnCtx, req: Request<Incoming>) -> Served<'_> {
        let (parts, body) = req.into_parts();
        let authority = if self.routes.is_explicit() {
            match routing_authority(&parts) {
                Ok(a) => a,
                Err(()) => {
                    return (
                        text(
                            StatusCode::BAD_REQUEST,
                            "Host does not match the request authority",
                        ),
                        "-",
                        "bad_host",
                    )
                }
            }
        } else {
            None
        };
        let route = match self.routes.select(authority, parts.uri.path()) {
            Ok(Some(r)) => r,
            Ok(None) => return (text(StatusCode::NOT_FOUND, "no route"), "-", "no_route"),
            Err(e) => {
                return (
                    text(StatusCode::BAD_REQUEST, &format!("bad request path: {e}")),
                    "-",
                    "bad_path",
                )
            }
        };
        let rn = route.name.as_str();
        // Decided before the body is read: a refused request costs nothing more.
        let plan = match &ctx.auth {
            ConnAuth::Denied(reason) => {
                return (
                    text(StatusCode::FORBIDDEN, &format!("forbidden: {reason}")),
                    rn,
                    "connection_denied",
                );
            }
            ConnAuth::Authenticated(p) if route.accepts(p.method) => Plan::Connection(p.clone()),
            _ if route.accepts(AuthMethod::Digest) && self.digest.is_some() => Plan::Digest,
            ConnAuth::Authenticated(p) => {
                let resp = self.deny(ctx, route, p, p.method.label(), "method_not_accepted");
                return (resp, rn, "method_not_accepted");
            }
            ConnAuth::None => {
                self.shared
                    .metrics
                    .auth(self.name(), "none", "method_not_accepted");
                self.shared.audit.decision(&Decision {
                    listener: self.name(),
                    route: Some(rn),
                    method: "none",
                    outcome: "deny",
                    identity: None,
                    peer: Some(ctx.peer),
                    reason: "method_not_accepted",
                });
                return (
                    text(
                        StatusCode::FORBIDDEN,
                        "forbidden: authentication method not accepted here",
                    ),
                    rn,
                    "method_not_accepted",
                );
            }
        };
        let limits = &self.state.cfg.limits;
        if let Some(len) = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > route.max_body_bytes as u64 {
                return (
                    text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
                    rn,
                    "body_too_large",
                );
            }
        }
        let collected = tokio::time::timeout(
            Duration::from_secs(limits.body_read_timeout_secs),
            Limited::new(body, route.max_body_bytes).collect(),
        )
        .await;
        let body = match collected {
            Err(_) => {
                return (
                    text(
                        StatusCode::REQUEST_TIMEOUT,
                        "request body not received in time",
                    ),
                    rn,
                    "body_timeout",
                )
            }
            Ok(Err(e)) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return (
                        text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
                        rn,
                        "body_too_large",
                    );
                }
                return (
                    text(StatusCode::BAD_REQUEST, "bad request body"),
                    rn,
                    "bad_body",
                );
            }
            Ok(Ok(c)) => c.to_bytes(),
        };
        let now = unix_now();
        let (principal, digest_auth) = match plan {
            Plan::Connection(p) => (p, None),
            Plan::Digest => match self
                .digest_authenticate(ctx, route, &parts, &body, now)
                .await
            {
                Ok(a) => (a.principal.clone(), Some(a)),
                Err((resp, result)) => return (resp, rn, result),
            },
        };
        let method = principal.method.label();
        // X-3GPP-Intended-Identity (TS 24.109 clause 7): honour it if the party owns it.
        let principal = match intended_identity(&parts.headers) {
            Ok(None) => principal,
            Ok(Some(want)) => match principal.clone().with_intended(&want) {
                Ok(p) => p,
                Err(d) => {
                    return (
                        self.deny(ctx, route, &principal, method, d.label()),
                        rn,
                        d.label(),
                    )
                }
            },
            Err(()) => {
                return (
                    text(
                        StatusCode::BAD_REQUEST,
                        "malformed X-3GPP-Intended-Identity",
                    ),
                    rn,
                    "bad_intended_identity",
                )
            }
        };
        // Checked per request: a PSK connection may outlive its GBA key, and each
        // request may go to another route.
        if let Err(d) = route.authorize(&principal, now) {
            return (
                self.deny(ctx, route, &principal, method, d.label()),
                rn,
                d.label(),
            );
        }
        if digest_auth.is_some() {
            self.allow(ctx, route, &principal, method);
        }
        let (resp, result) = self
            .forward(
                ctx,
                route,
                Request::from_parts(parts, body),
                &principal,
                digest_auth.as_deref(),
                now,
            )
            .await;
        (resp, rn, result)
    }

    fn allow(&self, ctx: &ConnCtx, route: &Route, p: &Principal, method: &str) {
        self.shared.metrics.auth(self.name(), method, "ok");
        self.shared.audit.decision(&Decision {
            listener: self.name(),
            route: Some(route.name.as_str()),
            method,
            outcome: "allow",
            identity: Some(p.btid.as_deref().unwrap_or(&p.identity)),
            peer: Some(ctx.peer),
            reason: "ok",
        });
    }

    fn deny(
        &self,
        ctx: &ConnCtx,
        route: &Route,
        p: &Principal,
        method: &str,
        reason: &str,
    ) -> Response<RespBody> {
        self.shared.metrics.auth(self.name(), method, reason);
        self.shared.audit.decision(&Decision {
            listener: self.name(),
            route: Some(route.name.as_str()),
            method,
            outcome: "deny",
            identity: Some(p.btid.as_deref().unwrap_or(&p.identity)),
            peer: Some(ctx.peer),
            reason,
        });
        text(StatusCode::FORBIDDEN, &format!("forbidden: {reason}"))
    }

    /// Digest authentication of one request; `Err` carries the response (401 with
    /// challenges, 403, 503, 400) and its metrics result.
    async fn digest_authenticate(
        &self,
        ctx: &ConnCtx,
        route: &Route,
        parts: &http::request::Parts,
        body: &Bytes,
        now: i64,
    ) -> Result<Box<Authenticated>, (Response<RespBody>, &'static str)> {
        let Some(engine) = &self.digest else {
            return Err((
                text(StatusCode::FORBIDDEN, "no authentication method available"),
                "method_not_accepted",
            ));
        };
        let now_u = u64::try_from(now).unwrap_or(0);
        let authz = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let outcome = match engine.begin(authz, target, now_u) {
            Begin::Done(o) => o,
            Begin::NeedGbaKey(pending) => {
                let naf = NafId::new(
                    &self.shared.fqdn,
                    digest_ua(self.state.cfg.ua_org, ctx.suite),
                );
                match naf {
                    Ok(naf) => {
                        let keys = self.shared.keys.get(pending.btid(), &naf).await;
                        engine.finish_gba(pending, keys, parts.method.as_str(), body, now_u)
                    }
                    Err(_) => Outcome::Unavailable,
                }
            }
            Begin::User(pending) => {
                let users = self.state.users();
                engine.finish_user(
                    pending,
                    users.as_deref(),
                    parts.method.as_str(),
                    body,
                    now_u,
                )
            }
        };
        let method = AuthMethod::Digest.label();
        let audit = |outcome: &str, identity: Option<&str>, reason: &str| {
            self.shared.metrics.auth(self.name(), method, reason);
            self.shared.audit.decision(&Decision {
                listener: self.name(),
                route: Some(route.name.as_str()),
                method,
                outcome,
                identity,
                peer: Some(ctx.peer),
                reason,
            });
        };
        match outcome {
            Outcome::Authenticated(a) => Ok(a),
            Outcome::Unauthorized {
                stale,
                realm,
                reason,
                identity,
            } => {
                // A request without credentials is the normal first round, not a
                // decision worth an audit line.
                if reason != "no_credentials" {
                    audit("deny", identity.as_deref(), reason);
                }
                let ua = parts
                    .headers
                    .get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok());
                let stale_realm = if stale { realm.as_deref() } else { None };
                let mut r = text(StatusCode::UNAUTHORIZED, "authentication required");
                for c in engine.challenges(now_u, ua, stale_realm) {
                    if let Ok(v) = HeaderValue::from_str(&c) {
                        r.headers_mut().append(WWW_AUTHENTICATE, v);
                    }
                }
                Err((r, "unauthenticated"))
            }
            Outcome::Forbidden { reason, identity } => {
                audit("deny", identity.as_deref(), reason);
                Err((text(StatusCode::FORBIDDEN, "forbidden"), reason))
            }
            Outcome::Unavailable => {
                audit("deny", None, "kmc_unavailable");
                Err((
                    text(StatusCode::SERVICE_UNAVAILABLE, "key service unavailable"),
                    "kmc_unavailable",
                ))
            }
            Outcome::BadRequest(msg) => {
                audit("deny", None, "bad_request");
                Err((text(StatusCode::BAD_REQUEST, msg), "bad_request"))
            }
        }
    }

    async fn forward(
        &self,
        ctx: &ConnCtx,
        route: &Route,
        req: Request<Bytes>,
        principal: &Principal,
        digest: Option<&Authenticated>,
        now: i64,
    ) -> (Response<RespBody>, &'static str) {
        let (mut parts, body) = req.into_parts();
        let host = parts.headers.get(HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        strip_client_identity_headers(&mut parts.headers);
        // The body is already complete: the upstream must not be asked to send 100.
        parts.headers.remove(http::header::EXPECT);
        let host_text = host.as_ref().and_then(|h| h.to_str().ok());
        if route.forward_identity {
            let assertion = ctx.assertion(&self.shared, principal, &route.upstream, now);
            set_identity_headers(
                &mut parts.headers,
                principal,
                assertion.as_deref(),
                ctx.peer,
                host_text,
            );
        } else {
            set_forwarded_headers(&mut parts.headers, ctx.peer, host_text);
        }
        if let Some(h) = host {
            parts.headers.insert(HOST, h);
        }
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        parts.uri = match format!("http://{}{}", route.upstream, pq).parse() {
            Ok(u) => u,
            Err(_) => {
                return (
                    text(StatusCode::BAD_REQUEST, "bad request target"),
                    "bad_target",
                )
            }
        };
        parts.version = Version::HTTP_11;
        let req = Request::from_parts(parts, Full::new(body));
        let start = Instant::now();
        let resp = tokio::time::timeout(route.upstream_timeout, self.client.request(req)).await;
        let resp = match resp {
            Err(_) => {
                self.shared.metrics.upstream_error(self.name(), "timeout");
                return (
                    text(StatusCode::GATEWAY_TIMEOUT, "upstream timed out"),
                    "upstream_timeout",
                );
            }
            Ok(Err(e)) => {
                let (kind, result) = if e.is_connect() {
                    ("connect", "upstream_connect")
                } else {
                    ("protocol", "upstream_protocol")
                };
                self.shared.metrics.upstream_error(self.name(), kind);
                tracing::info!(listener = self.name(), route = %route.name, error = %e, "upstream request failed");
                return (
                    text(StatusCode::BAD_GATEWAY, "upstream unavailable"),
                    result,
                );
            }
            Ok(Ok(r)) => r,
        };
        let secs = start.elapsed().as_secs_f64();
        self.shared.metrics.upstream_latency(self.name(), secs);
        self.shared
            .metrics
            .route_latency(self.name(), &route.name, secs);
        let (mut rparts, rbody) = resp.into_parts();
        strip_hop_by_hop(&mut rparts.headers);
        let Some(digest) = digest else {
            return (
                Response::from_parts(rparts, rbody.map_err(BoxError::from).boxed()),
                "forwarded",
            );
        };
        if digest.needs_response_body() {
            // rspauth with auth-int covers the body: buffer it (bounded) first.
            let collected = tokio::time::timeout(
                route.upstream_timeout,
                Limited::new(rbody, route.max_body_bytes).collect(),
            )
            .await;
            let Ok(Ok(c)) = collected else {
                self.shared
                    .metrics
                    .upstream_error(self.name(), "response_body");
                return (
                    text(
                        StatusCode::BAD_GATEWAY,
                        "upstream response too large or too slow",
                    ),
                    "upstream_response_body",
                );
            };
            let bytes = c.to_bytes();
            if let Some(v) = digest
                .authentication_info(&bytes)
                .and_then(|v| HeaderValue::from_str(&v).ok())
            {
                rparts.headers.insert("authentication-info", v);
            }
            rparts.headers.remove(CONTENT_LENGTH);
            return (Response::from_parts(rparts, full(bytes)), "forwarded");
        }
        if let Some(v) = digest
            .authentication_info(b"")
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            rparts.headers.insert("authentication-info", v);
        }
        (
            Response::from_parts(rparts, rbody.map_err(BoxError::from).boxed()),
            "forwarded",
        )
    }
}

/// The authority a request is routed by: the request target's (HTTP/2 `:authority`,
/// HTTP/1.1 absolute-form), else the `Host` header. `Err` when both are present and
/// differ, or `Host` is repeated: routing by one and forwarding the other would let a
/// client reach one route's upstream under another route's rules.
fn routing_authority(parts: &http::request::Parts) -> Result<Option<&str>, ()> {
    let mut hosts = parts.headers.get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(());
    }
    let host = match host {
        Some(h) => Some(h.to_str().map_err(|_| ())?),
        None => None,
    };
    match (parts.uri.authority().map(|a| a.as_str()), host) {
        (Some(a), Some(h)) if !a.eq_ignore_ascii_case(h) => Err(()),
        (Some(a), _) => Ok(Some(a)),
        (None, h) => Ok(h),
    }
}
