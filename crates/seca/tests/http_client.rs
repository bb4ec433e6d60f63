//! The bounded HTTP client against real sockets on 127.0.0.1: a hyper server for the
//! normal path and raw TCP peers for misbehaving servers.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use seccf_seca::http::{self as seca_http, MAX_RESPONSE_BODY};
use seccf_seca::SecaError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A hyper server that echoes what it received in response headers, with a body of
/// `body_len` bytes.
async fn echo_server(body_len: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        let h = req.headers();
                        let get = |n: &str| {
                            h.get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-")
                                .to_owned()
                        };
                        let resp = http::Response::builder()
                            .status(401)
                            .header("x-host", get("host"))
                            .header("x-ua", get("user-agent"))
                            .header("x-auth", get("authorization"))
                            .header("x-path", req.uri().to_string())
                            .header("www-authenticate", "Basic realm=\"x\"")
                            .header("www-authenticate", "Digest realm=\"r\", nonce=\"n\"")
                            .body(Full::new(Bytes::from(vec![b'a'; body_len])))
                            .unwrap();
                        Ok::<_, Infallible>(resp)
                    },
                );
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// A raw TCP peer that reads the request head and writes `reply` verbatim (then
/// optionally stalls).
async fn raw_server(reply: Vec<u8>, stall: bool) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut tcp, _)) = listener.accept().await else {
            return;
        };
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tcp.write_all(&reply).await;
        if stall {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    addr
}

#[tokio::test]
async fn sends_host_user_agent_and_headers_and_reads_the_response() {
    let addr = echo_server(100).await;
    let url = format!("http://127.0.0.1:{}/ub?x=1", addr.port());
    let resp = seca_http::request(
        &url,
        "GET",
        &[("Authorization", "Digest username=\"u\"")],
        b"",
        None,
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("x-host"),
        Some(format!("127.0.0.1:{}", addr.port()).as_str())
    );
    assert_eq!(resp.header("x-ua"), Some(seca_http::USER_AGENT));
    assert_eq!(resp.header("x-auth"), Some("Digest username=\"u\""));
    assert_eq!(resp.header("x-path"), Some("/ub?x=1"));
    let challenges: Vec<_> = resp.header_values("www-authenticate").collect();
    assert_eq!(challenges.len(), 2);
    assert_eq!(resp.body.len(), 100);
}

#[tokio::test]
async fn body_at_the_limit_is_read_and_one_byte_more_is_refused() {
    let addr = echo_server(MAX_RESPONSE_BODY).await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let resp = seca_http::request(&url, "GET", &[], b"", None)
        .await
        .unwrap();
    assert_eq!(resp.body.len(), MAX_RESPONSE_BODY);

    let addr = echo_server(MAX_RESPONSE_BODY + 1).await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    match seca_http::request(&url, "GET", &[], b"", None).await {
        Err(SecaError::Http(m)) => assert!(m.contains("larger than"), "{m}"),
        other => panic!("expected a size error, got {other:?}"),
    }
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_refused() {
    // No Content-Length: the limit must hold while streaming.
    let mut reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'z'; 8192];
    for _ in 0..(MAX_RESPONSE_BODY / 8192 + 2) {
        reply.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        reply.extend_from_slice(&chunk);
        reply.extend_from_slice(b"\r\n");
    }
    reply.extend_from_slice(b"0\r\n\r\n");
    let addr = raw_server(reply, false).await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    match seca_http::request(&url, "GET", &[], b"", None).await {
        Err(SecaError::Http(m)) => assert!(m.contains("larger than"), "{m}"),
        other => panic!("expected a size error, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_and_refused_connections_are_transport_errors() {
    let addr = raw_server(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(), false).await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    assert!(matches!(
        seca_http::request(&url, "GET", &[], b"", None).await,
        Err(SecaError::Http(_))
    ));

    // A port nobody listens on (bind, learn the port, close).
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    assert!(matches!(
        seca_http::request(&url, "GET", &[], b"", None).await,
        Err(SecaError::Http(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_server_times_out() {
    // Head promises a body that never comes.
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec();
    let addr = raw_server(reply, true).await;
    let url = format!("http://127.0.0.1:{}/", addr.port());
    match seca_http::request(&url, "GET", &[], b"", None).await {
        Err(SecaError::Http(m)) => assert!(m.contains("within 15 s"), "{m}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_urls_are_refused_before_connecting() {
    assert!(matches!(
        seca_http::request("ftp://127.0.0.1/", "GET", &[], b"", None).await,
        Err(SecaError::BadUrl(_))
    ));
}
