//! `upstream`: the resources behind every gateway in the gateway scenarios, and
//! `free-ports`, which the benchmark script uses to configure its peers.
//!
//! - HTTP: every request gets 200 and the same fixed-size body, nothing else. Responses
//!   carry [`UPSTREAM_MARK`] so the client can tell them from a gateway's own pages.
//! - TCP: an echo with `TCP_NODELAY`. A PROXY protocol v2 header at the start of a
//!   connection (the OSG sends one; stunnel does not) is removed with the gateway's
//!   own decoder, and everything after it is echoed.
//!
//! Why not the dev echo resources of `seccf dev`: the HTTP echo copies every request
//! header into its answer (so the response size depends on what each gateway adds)
//! and verifies the OSG's ES256 identity assertion on every request that carries one
//! (so it works harder for OSG traffic than for nginx traffic); the TCP echo leaves
//! Nagle's algorithm on, which with delayed ACKs stalls a bulk echo for 40 ms per
//! round (measured: under 6 MB/s through either gateway). Both would measure the
//! resource, not the gateway.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context};
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Response header naming the body length; only this upstream sets it.
pub const UPSTREAM_MARK: &str = "x-seccf-load-upstream";
/// Default response body size.
pub const DEFAULT_BODY_BYTES: usize = 1024;
/// Largest response body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest request body read (and thrown away).
const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// Most ports `free-ports` hands out at once.
pub const MAX_FREE_PORTS: usize = 32;

async fn answer(
    req: Request<Incoming>,
    body: Bytes,
    mark: HeaderValue,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the request body to its end (bounded) so the connection stays reusable.
    let _ = Limited::new(req.into_body(), MAX_REQUEST_BODY)
        .collect()
        .await;
    let mut resp = Response::new(Full::new(body));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp.headers_mut().insert(UPSTREAM_MARK, mark);
    Ok(resp)
}

/// Serves until SIGINT/SIGTERM. Prints `listening on http://ADDR` and
/// `listening on tcp://ADDR` on stdout once bound.
pub async fn run(
    http: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    body_bytes: usize,
) -> anyhow::Result<()> {
    ensure!(
        http.is_some() || tcp.is_some(),
        "give --http-listen, --tcp-listen or both"
    );
    for a in http.iter().chain(tcp.iter()) {
        ensure!(
            a.ip().is_loopback(),
            "the upstream only listens on loopback addresses"
        );
    }
    ensure!(
        body_bytes <= MAX_BODY_BYTES,
        "--body-bytes at most {MAX_BODY_BYTES}"
    );
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(addr) = http {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        println!(
            "seccf-load upstream: listening on http://{} ({body_bytes}-byte responses)",
            listener.local_addr().context("local address")?
        );
        tasks.spawn(serve_http(listener, body_bytes));
    }
    if let Some(addr) = tcp {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        println!(
            "seccf-load upstream: listening on tcp://{} (echo)",
            listener.local_addr().context("local address")?
        );
        tasks.spawn(serve_tcp(listener));
    }
    std::io::stdout().flush().context("stdout")?;
    shutdown_signal().await;
    tasks.abort_all();
    Ok(())
}

/// Accepts forever, backing off on errors (EMFILE and friends) instead of spinning.
async fn accept(listener: &TcpListener) -> tokio::net::TcpStream {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                return tcp;
            }
            Err(e) => {
                eprintln!("upstream: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_http(listener: TcpListener, body_bytes: usize) {
    let body = Bytes::from(
        (0..body_bytes)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<_>>(),
    );
    let mark = HeaderValue::from(body_bytes);
    loop {
        let tcp = accept(&listener).await;
        let (body, mark) = (body.clone(), mark.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| answer(req, body.clone(), mark.clone()));
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .keep_alive(true)
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

async fn serve_tcp(listener: TcpListener) {
    loop {
        let tcp = accept(&listener).await;
        tokio::spawn(echo(tcp));
    }
}

/// Buffer of the TCP echo (four TLS records' worth of plaintext).
const ECHO_BUF: usize = 64 * 1024;
/// Time a connection may take to show whether it starts with a PROXY header.
const PROXY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the start of a connection turned out to be.
#[derive(Debug, PartialEq, Eq)]
enum Start {
    /// Need more bytes.
    More,
    /// A PROXY v2 header of this many bytes; the rest is payload.
    Header(usize),
    /// No PROXY header: everything is payload.
    Payload,
}

/// Classifies the first bytes of a connection (pure, so it is tested directly).
fn classify(head: &[u8]) -> Start {
    match seccf_osg::proxy_v2::decode(head) {
        Ok(Some((_, used))) => Start::Header(used),
        Ok(None) => Start::More,
        Err(_) => Start::Payload,
    }
}

async fn echo(mut tcp: tokio::net::TcpStream) {
    let mut buf = vec![0u8; ECHO_BUF];
    let mut head: Vec<u8> = Vec::new();
    let payload_start = loop {
        let read = tokio::time::timeout(PROXY_TIMEOUT, tcp.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        match classify(&head) {
            // The decoder refuses headers longer than its bound, so `head` stays small.
            Start::More => continue,
            Start::Header(used) => break used,
            Start::Payload => break 0,
        }
    };
    if let Some(rest) = head.get(payload_start..) {
        if !rest.is_empty() && tcp.write_all(rest).await.is_err() {
            return;
        }
    }
    loop {
        let n = match tcp.read(&mut buf).await {
            Ok(n) if n > 0 => n,
            _ => return,
        };
        if tcp
            .write_all(buf.get(..n).unwrap_or_default())
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `count` distinct free loopback ports: all are bound at once (so they differ),
/// then released. Another process could take one before the caller binds it; on a
/// benchmark machine that race is accepted (the peer then fails to start, loudly).
pub fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    ensure!(
        (1..=MAX_FREE_PORTS).contains(&count),
        "--count must be 1..={MAX_FREE_PORTS}"
    );
    let held = (0..count)
        .map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)).context("binding a free port"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    held.iter()
        .map(|l| Ok(l.local_addr().context("local address")?.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bounded() {
        let p = free_ports(5).expect("ports");
        let mut q = p.clone();
        q.sort_unstable();
        q.dedup();
        assert_eq!(q.len(), 5);
        assert!(p.iter().all(|&x| x != 0));
        assert!(free_ports(0).is_err());
        assert!(free_ports(MAX_FREE_PORTS + 1).is_err());
    }

    #[tokio::test]
    async fn refuses_bad_settings() {
        let any: SocketAddr = "0.0.0.0:0".parse().expect("addr");
        let lo: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        assert!(run(Some(any), None, 10).await.is_err());
        assert!(run(None, Some(any), 10).await.is_err());
        assert!(run(Some(lo), None, MAX_BODY_BYTES + 1).await.is_err());
        assert!(run(None, None, 10).await.is_err());
    }

    #[test]
    fn proxy_header_is_recognised_and_other_bytes_are_payload() {
        use seccf_osg::proxy_v2::ProxyHeader;
        let hdr = ProxyHeader::proxy(
            "127.0.0.1:5000".parse().expect("addr"),
            "127.0.0.1:443".parse().expect("addr"),
        )
        .encode()
        .expect("encodes");
        assert_eq!(classify(&hdr[..5]), Start::More);
        assert_eq!(classify(&hdr), Start::Header(hdr.len()));
        let mut with_data = hdr.clone();
        with_data.push(0);
        assert_eq!(classify(&with_data), Start::Header(hdr.len()));
        // The tunnel benchmark's first byte, and ordinary text, are payload at once.
        assert_eq!(classify(&[0]), Start::Payload);
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Start::Payload);
    }

    #[tokio::test]
    async fn echoes_after_stripping_a_proxy_header() {
        use seccf_osg::proxy_v2::ProxyHeader;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve_tcp(listener));
        let hdr = ProxyHeader::proxy(addr, addr).encode().expect("encodes");
        for with_header in [true, false] {
            let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let mut out = if with_header { hdr.clone() } else { Vec::new() };
            out.extend_from_slice(b"\0hello");
            c.write_all(&out).await.expect("write");
            let mut back = [0u8; 6];
            c.read_exact(&mut back).await.expect("echo");
            assert_eq!(&back, b"\0hello");
            c.write_all(b"more").await.expect("write");
            let mut more = [0u8; 4];
            c.read_exact(&mut more).await.expect("echo");
            assert_eq!(&more, b"more");
        }
        server.abort();
    }
}
