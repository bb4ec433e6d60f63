//! The HTTP/1.1 edge shared by the KMC's listeners: connection limits, TLS handshake
//! timeouts, bounded headers and bodies, slow-client timeouts and graceful shutdown.
//!
//! Handlers receive a fully read, size-checked request; they never see a socket.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use openssl::ssl::SslAcceptor;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits applied to every connection of a listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request head (request line + headers) in bytes; at least 8192.
    pub max_header_bytes: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Time allowed for a client to send the complete request head.
    pub header_read_timeout_secs: u64,
    /// Time allowed for the body to arrive once the head is in.
    pub body_read_timeout_secs: u64,
    /// Time allowed for a TLS handshake.
    pub tls_handshake_timeout_secs: u64,
    /// Connections served at once; further ones are closed at accept.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 16 * 1024,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 10,
            tls_handshake_timeout_secs: 10,
            max_connections: 1024,
        }
    }
}

/// What the edge knows about the connection a request came on.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Remote address.
    pub peer: SocketAddr,
    /// SHA-256 (lowercase hex) of the verified client certificate, on mutual-TLS listeners.
    pub client_cert_sha256: Option<String>,
}

/// A request whose body has been read completely.
pub type FullRequest = Request<Bytes>;
/// The response type handlers return.
pub type FullResponse = Response<Full<Bytes>>;

/// Builds a plain-text response (used by the edge for its own errors and by handlers).
pub fn text_response(status: StatusCode, msg: &str) -> FullResponse {
    let mut r = Response::new(Full::new(Bytes::from(format!("{msg}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Builds a JSON response.
pub fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> FullResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

/// Serves HTTP/1.1 on `listener` (with TLS when `tls` is given) until `shutdown`
/// resolves; then stops accepting and waits for in-flight connections to finish their
/// current request (keep-alive connections are closed after it).
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<Arc<SslAcceptor>>,
    limits: Limits,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(FullRequest, ConnInfo) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = FullResponse> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing new connection");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let limits = limits.clone();
        let handler = handler.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
                .max_buf_size(limits.max_header_bytes.max(8192))
                .keep_alive(true);
            match tls {
                None => {
                    let info = ConnInfo {
                        peer,
                        client_cert_sha256: None,
                    };
                    let svc = make_service(handler, info, limits.clone());
                    let conn = builder.serve_connection(TokioIo::new(tcp), svc);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with error");
                    }
                }
                Some(acceptor) => {
                    let hs = tokio::time::timeout(
                        Duration::from_secs(limits.tls_handshake_timeout_secs),
                        seccf_tls::server::accept(&acceptor, tcp),
                    )
                    .await;
                    let stream = match hs {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let info = ConnInfo {
                        peer,
                        client_cert_sha256: seccf_tls::server::peer_cert_sha256(&stream),
                    };
                    let svc = make_service(handler, info, limits.clone());
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with error");
                    }
                }
            }
        });
    }
    drop(listener);
    // Bounded wait: a client that never finishes must not hold shutdown forever.
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
}

fn make_service<H, F>(
    handler: H,
    info: ConnInfo,
    limits: Arc<Limits>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = FullResponse,
    Error = Infallible,
    Future = impl Future<Output = Result<FullResponse, Infallible>> + Send,
> + Clone
where
    H: Fn(FullRequest, ConnInfo) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = FullResponse> + Send + 'static,
{
    service_fn(move |req: Request<Incoming>| {
        let handler = handler.clone();
        let info = info.clone();
        let limits = limits.clone();
        async move {
            let (parts, body) = req.into_parts();
            if let Some(len) = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
            {
                if len > limits.max_body_bytes as u64 {
                    return Ok(text_response(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "request body too large",
                    ));
                }
            }
            let collected = tokio::time::timeout(
                Duration::from_secs(limits.body_read_timeout_secs),
                Limited::new(body, limits.max_body_bytes).collect(),
            )
            .await;
            let bytes = match collected {
                Err(_) => {
                    return Ok(text_response(
                        StatusCode::REQUEST_TIMEOUT,
                        "request body not received in time",
                    ))
                }
                Ok(Err(e)) => {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        return Ok(text_response(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "request body too large",
                        ));
                    }
                    return Ok(text_response(StatusCode::BAD_REQUEST, "bad request body"));
                }
                Ok(Ok(c)) => c.to_bytes(),
            };
            let req = Request::from_parts(parts, bytes);
            Ok::<_, Infallible>(handler(req, info).await)
        }
    })
}
