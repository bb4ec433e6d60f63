//! OCSP over HTTP (RFC 6960 appendix A.1): one POST of `application/ocsp-request` over
//! HTTP/1.1, answer read into a bounded buffer. The caller applies the timeout.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::url::OcspUrl;

/// Largest OCSP response read (a response with a certificate chain is a few KiB).
pub const MAX_OCSP_RESPONSE_BYTES: usize = 64 * 1024;

/// POSTs `request_der` to `url` and returns the response body. Errors are short
/// texts for `OcspOutcome::Unavailable`.
pub(crate) async fn post(url: &OcspUrl, request_der: Vec<u8>) -> Result<Vec<u8>, String> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("HTTP to {url}: {e}"))?;
    // The connection future must run while the request is in flight; it ends when the
    // responder closes or when `sender` is dropped, and is aborted below in any case.
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let req = Request::post(url.path.as_str())
            .header(HOST, url.host_header())
            .header(CONTENT_TYPE, "application/ocsp-request")
            .header(ACCEPT, "application/ocsp-response")
            .body(Full::new(Bytes::from(request_der)))
            .map_err(|e| format!("building HTTP request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("HTTP to {url}: {e}"))?;
        if resp.status() != StatusCode::OK {
            return Err(format!("{url} answered HTTP {}", resp.status()));
        }
        if let Some(ct) = resp.headers().get(CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/ocsp-response")
            {
                return Err(format!("{url} answered with content type {ct:?}"));
            }
        }
        let body = Limited::new(resp.into_body(), MAX_OCSP_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer of {url}: {e}"))?;
        Ok(body.to_bytes().to_vec())
    }
    .await;
    driver.abort();
    result
}
