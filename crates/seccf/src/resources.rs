//! Demo resources (the "requesting resources" behind the gateway) for `seccf dev`,
//! `seccf demo` and the tests.
//!
//! - HTTP echo: the response body lists the request line and every header received, then
//!   whether the gateway's signed identity assertion verified against the published key.
//! - TCP echo: reads the PROXY protocol v2 header the gateway sends first, answers one
//!   line naming the identity and method it carried, then echoes every byte.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

async fn echo(
    req: Request<Incoming>,
    jwks: Arc<String>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut out = format!("{} {} {:?}\n", req.method(), req.uri(), req.version());
    for (name, value) in req.headers() {
        out.push_str(&format!(
            "{}: {}\n",
            name,
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    let verdict = match req
        .headers()
        .get("x-seccf-assertion")
        .and_then(|v| v.to_str().ok())
    {
        None => "assertion: none".to_string(),
        Some(jwt) => match seccf_osg::verify_assertion(jwt, &jwks, seccf_kmc::unix_now()) {
            Ok(c) => format!("assertion: verified sub={} amr={}", c.sub, c.amr.join(",")),
            Err(e) => format!("assertion: INVALID ({e})"),
        },
    };
    out.push_str(&verdict);
    out.push('\n');
    let body = Limited::new(req.into_body(), 1 << 20)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if !body.is_empty() {
        out.push_str(&format!("body: {} bytes\n", body.len()));
    }
    let mut resp = Response::new(Full::new(Bytes::from(out)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

/// Serves the HTTP echo resource until `shutdown` turns true. `jwks` is the gateway's
/// published key set, used to check `X-Seccf-Assertion`.
pub async fn http_echo(listener: TcpListener, jwks: String, mut shutdown: watch::Receiver<bool>) {
    let jwks = Arc::new(jwks);
    loop {
        let (tcp, _) = tokio::select! {
            _ = shutdown.wait_for(|v| *v) => return,
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
        };
        let jwks = jwks.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| echo(req, jwks.clone()));
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

/// Serves the TCP echo resource until `shutdown` turns true.
pub async fn tcp_echo(listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    loop {
        let (mut tcp, _) = tokio::select! {
            _ = shutdown.wait_for(|v| *v) => return,
            a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
        };
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 4096];
            // Read until the PROXY v2 header is complete (bounded), or it is not one.
            let greeting = loop {
                match seccf_osg::proxy_v2::decode(&buf) {
                    Ok(Some((hdr, used))) => {
                        buf.drain(..used);
                        break format!(
                            "seccf tcp echo: identity={} method={}\n",
                            hdr.seccf_identity().unwrap_or("-"),
                            hdr.seccf_auth_method().unwrap_or("-")
                        );
                    }
                    Ok(None) if buf.len() < 4096 => {}
                    _ => break "seccf tcp echo: no PROXY header\n".to_string(),
                }
                match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk)).await {
                    Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            };
            if tcp.write_all(greeting.as_bytes()).await.is_err()
                || tcp.write_all(&buf).await.is_err()
            {
                return;
            }
            let (mut r, mut w) = tcp.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
    }
}
