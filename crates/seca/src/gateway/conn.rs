//! One HTTP/1.1 keep-alive connection to a gateway (hyper 1 client connection).

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use seccf_tls::psk::PskTlsVersion;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use crate::error::SecaError;
use crate::http::{read_response, HttpResponse, Scheme, Url, MAX_RESPONSE_HEAD};

/// How a connection authenticated the agent (or did not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConnKind {
    /// Plain HTTP.
    Plain,
    /// PSK-TLS with the context of `btid`.
    Psk {
        identity: String,
        btid: String,
        version: PskTlsVersion,
        cipher_suite: u16,
    },
    /// Server-certificate TLS; the agent authenticates per request (Digest).
    Certificate { cipher_suite: u16 },
}

impl ConnKind {
    /// The negotiated TLS suite, `None` without TLS.
    pub(crate) fn tls_suite(&self) -> Option<u16> {
        match self {
            ConnKind::Plain => None,
            ConnKind::Psk { cipher_suite, .. } | ConnKind::Certificate { cipher_suite } => {
                Some(*cipher_suite)
            }
        }
    }
}

/// Where a connection goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Origin {
    pub(crate) fn of(url: &Url) -> Self {
        Origin {
            scheme: url.scheme,
            host: url.host.clone(),
            port: url.port,
        }
    }
}

/// Why an exchange failed.
pub(crate) enum SendError {
    /// Nothing was sent (the connection was already closed): safe to retry anywhere.
    NotSent(SecaError),
    /// The request may have reached the gateway.
    Failed(SecaError),
}

impl SendError {
    pub(crate) fn into_error(self) -> SecaError {
        match self {
            SendError::NotSent(e) | SendError::Failed(e) => e,
        }
    }
}

/// A connection and the task driving it; dropping it closes the connection.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
    pub(crate) origin: Origin,
    pub(crate) kind: ConnKind,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    /// HTTP/1.1 over an established (TLS) stream.
    pub(crate) async fn start<S>(io: S, origin: Origin, kind: ConnKind) -> Result<Conn, SecaError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(MAX_RESPONSE_HEAD.max(8192))
            .handshake::<_, Full<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| SecaError::Http(format!("HTTP/1.1 handshake: {e}")))?;
        // The connection must be driven while idle too (to notice the gateway closing
        // it), so it gets its own task; `Drop` ends it with the connection.
        let driver = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "gateway connection ended with an error");
            }
        });
        Ok(Conn {
            sender,
            driver,
            origin,
            kind,
        })
    }

    /// Whether another request can go out on this connection.
    pub(crate) fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `req` and reads the whole response within `timeout`.
    pub(crate) async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
        max_body: usize,
        timeout: Duration,
    ) -> Result<HttpResponse, SendError> {
        let exchange = async {
            self.sender.ready().await.map_err(|e| {
                SendError::NotSent(SecaError::Http(format!("connection closed: {e}")))
            })?;
            let resp = self.sender.send_request(req).await.map_err(|e| {
                // hyper hands the request back untouched when the connection closed
                // before it was written.
                if e.is_canceled() {
                    SendError::NotSent(SecaError::Http(format!("connection closed: {e}")))
                } else {
                    SendError::Failed(SecaError::Http(format!("sending request: {e}")))
                }
            })?;
            read_response(resp, max_body)
                .await
                .map_err(SendError::Failed)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Failed(SecaError::Http(format!(
                "no complete response within {} s",
                timeout.as_secs()
            )))),
        }
    }
}
