//! TLS tunnels to TCP resources (stunnel-like): PSK-TLS or mutual TLS from the
//! terminal, then a plain TCP connection to the upstream that starts with a PROXY
//! protocol v2 header carrying the authenticated identity (when enabled).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Copy buffer per direction of a tunnel: one maximal TLS record.
const TUNNEL_BUFFER: usize = 16 * 1024;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::config::AuthMethod;
use crate::conn::{Activity, DrainToken, Tracked};
use crate::proxy_v2::{
    ProxyHeader, SslInfo, PP2_CLIENT_CERT_CONN, PP2_CLIENT_SSL, PP2_TYPE_AUTHORITY,
    PP2_TYPE_SECCF_AUTH_METHOD, PP2_TYPE_SECCF_IDENTITY,
};
use crate::session::{connection_auth, handshake, ConnAuth};
use crate::tls_setup::negotiated;
use crate::{ListenerState, Shared};

/// One TCP tunnel listener.
pub(crate) struct TcpTunnel {
    pub(crate) state: Arc<ListenerState>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) upstream: (String, u16),
}

impl TcpTunnel {
    fn name(&self) -> &str {
        &self.state.cfg.name
    }

    /// Serves one accepted connection to its end.
    pub(crate) async fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        mut shutdown: watch::Receiver<bool>,
        _token: DrainToken,
    ) {
        let _open = self.shared.metrics.open_guard(self.name());
        let local = tcp.local_addr().ok();
        let acceptor = self.state.acceptor();
        let Some(stream) = handshake(&self.state, &self.shared, &acceptor, tcp, peer).await else {
            return;
        };
        let principal = match connection_auth(&self.state, &self.shared, &stream, peer).await {
            ConnAuth::Authenticated(p) => p,
            ConnAuth::Denied(_) => return,
            ConnAuth::None => {
                self.shared
                    .metrics
                    .auth(self.name(), "none", "no_credentials");
                return;
            }
        };
        let limits = &self.state.cfg.limits;
        let connect = tokio::time::timeout(
            Duration::from_secs(limits.upstream_timeout_secs),
            TcpStream::connect((self.upstream.0.as_str(), self.upstream.1)),
        )
        .await;
        let mut upstream = match connect {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                self.shared.metrics.upstream_error(self.name(), "connect");
                tracing::info!(listener = self.name(), error = %e, "tunnel upstream connect failed");
                return;
            }
            Err(_) => {
                self.shared.metrics.upstream_error(self.name(), "timeout");
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        if self.state.cfg.proxy_protocol {
            let ssl = stream.ssl();
            let (_, _, cipher) = negotiated(ssl);
            let dst = local.unwrap_or(peer);
            let mut h = ProxyHeader::proxy(peer, dst);
            let authority = ssl
                .servername(openssl::ssl::NameType::HOST_NAME)
                .unwrap_or(&self.shared.fqdn)
                .to_string();
            h.push(PP2_TYPE_AUTHORITY, authority);
            let mtls = principal.method == AuthMethod::Mtls;
            h.push_ssl(&SslInfo {
                client: PP2_CLIENT_SSL | if mtls { PP2_CLIENT_CERT_CONN } else { 0 },
                verify: 0,
                version: Some(ssl.version_str().to_string()),
                cn: mtls.then(|| principal.identity.clone()),
                cipher: Some(cipher.to_string()),
            });
            h.push(PP2_TYPE_SECCF_IDENTITY, principal.identity.clone());
            h.push(PP2_TYPE_SECCF_AUTH_METHOD, principal.method.label());
            let bytes = match h.encode() {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(listener = self.name(), error = %e, "PROXY header not encodable");
                    return;
                }
            };
            if upstream.write_all(&bytes).await.is_err() {
                self.shared.metrics.upstream_error(self.name(), "connect");
                return;
            }
        }
        let activity = Activity::new();
        let mut client = Tracked::new(stream, activity.clone());
        let mut upstream = Tracked::new(upstream, activity.clone());
        let idle = activity.idle(Duration::from_secs(limits.idle_timeout_secs));
        tokio::pin!(idle);
        // 16 KiB from the client side fills whole TLS records (the default 8 KiB
        // buffers halve the record size and double the send calls); bounded per
        // connection either way.
        let pump = tokio::io::copy_bidirectional_with_sizes(
            &mut client,
            &mut upstream,
            TUNNEL_BUFFER,
            TUNNEL_BUFFER,
        );
        tokio::pin!(pump);
        let grace = self.shared.grace;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let until = deadline
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                r = &mut pump => {
                    if let Err(e) = r {
                        tracing::debug!(listener = self.name(), %peer, error = %e, "tunnel ended with error");
                    }
                    break;
                }
                _ = &mut idle => {
                    tracing::debug!(listener = self.name(), %peer, "tunnel idle; closing");
                    break;
                }
                // Tunnels have no request boundary: at shutdown they get the grace
                // period to finish, then they are cut.
                _ = crate::conn::wait_true(&mut shutdown), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + grace);
                }
                _ = tokio::time::sleep_until(until), if deadline.is_some() => break,
            }
        }
    }
}
