//! A local TCP port that forwards every connection over PSK-TLS to a gateway's TCP
//! listener (stunnel-like, client side), authenticated with the agent's GBA
//! credentials.
//!
//! For each accepted local connection [`serve_tunnel`] opens a TCP connection to the
//! gateway, runs PSK-TLS with identity `3GPP-bootstrapping.<B-TID>` and the key for
//! NAF_Id = `naf_fqdn` ‖ the Ua id of the negotiated protocol (the rules of
//! [`crate::gateway::ua`]), sends `naf_fqdn` as SNI, and copies bytes both ways:
//! * buffers are bounded ([`TunnelConfig::buffer_size`] per direction), so a slow side
//!   slows the other down instead of filling memory;
//! * half-close is passed on: end of input from the local side becomes a TLS
//!   `close_notify` plus TCP FIN towards the gateway, and the end of the gateway's
//!   stream becomes a FIN towards the local client, while the other direction keeps
//!   flowing;
//! * a connection with no byte in either direction for
//!   [`TunnelConfig::idle_timeout`] is closed;
//! * at most [`TunnelConfig::max_connections`] run at once; more are closed at accept.
//!
//! The context is bootstrapped when needed (with a Ub URL) and once more when the
//! gateway refuses the B-TID (the same rule as [`crate::gateway`]); concurrent
//! connections share one bootstrap. At shutdown the listener stops, running
//! connections get [`TunnelConfig::shutdown_grace`] to finish, then are cut.
//!
//! What it does not do: certificate TLS or Digest (a byte stream has no HTTP layer),
//! PROXY protocol towards the gateway (the gateway knows who we are from the PSK),
//! UDP.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::ssl::SslConnector;
use seccf_gba::naf::{NafId, UaSecurityProtocolId};
use seccf_uicc::CardTransport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_openssl::SslStream;

use crate::agent::Agent;
use crate::error::SecaError;
use crate::gateway::keys::{KeyKeeper, Keys};
use crate::gateway::tls::{
    self, psk_connector, should_rebootstrap, GbaPskKeys, Negotiated, Versions,
};
use crate::gateway::ua::UaOrg;

/// Longest `host:port` accepted for the remote end.
pub const MAX_REMOTE_LEN: usize = 300;
/// Smallest and largest per-direction buffer.
pub const BUFFER_SIZE_RANGE: std::ops::RangeInclusive<usize> = 1024..=1024 * 1024;

/// Settings of [`serve_tunnel`].
#[derive(Clone, Debug)]
pub struct TunnelConfig {
    /// `host:port` of the gateway's TCP listener (`[v6]:port` for IPv6 literals).
    pub remote: String,
    /// The gateway's FQDN: SNI and the FQDN of the NAF_Id.
    pub naf_fqdn: String,
    /// 3GPP or OMA Ua ids (the gateway's setting).
    pub ua_org: UaOrg,
    /// Where to bootstrap; without it only an existing context is used.
    pub ub_url: Option<String>,
    /// Offer TLS 1.3 as well as TLS 1.2.
    pub enable_tls13: bool,
    /// TCP connect plus TLS handshake to the gateway.
    pub connect_timeout: Duration,
    /// A connection idle in both directions this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Buffer per direction, in bytes (within [`BUFFER_SIZE_RANGE`]).
    pub buffer_size: usize,
    /// Time running connections get after shutdown is signalled.
    pub shutdown_grace: Duration,
}

impl TunnelConfig {
    /// Defaults for everything but the two names: 3GPP ids, TLS 1.3 on, 15 s connect,
    /// 300 s idle, 256 connections, 16 KiB buffers, 5 s shutdown grace.
    pub fn new(remote: &str, naf_fqdn: &str) -> Self {
        TunnelConfig {
            remote: remote.to_owned(),
            naf_fqdn: naf_fqdn.to_owned(),
            ua_org: UaOrg::ThreeGpp,
            ub_url: None,
            enable_tls13: true,
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(300),
            max_connections: 256,
            buffer_size: 16 * 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// A parsed `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port, never 0.
    pub port: u16,
}

/// Parses `host:port` or `[v6]:port`: printable ASCII, at most [`MAX_REMOTE_LEN`]
/// bytes, a port in 1..=65535.
pub fn parse_remote(text: &str) -> Result<Remote, SecaError> {
    let bad = |why: &str| SecaError::BadUrl(format!("remote {why}; expected host:port"));
    if text.is_empty() || text.len() > MAX_REMOTE_LEN {
        return Err(bad("is empty or too long"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("has spaces, control or non-ASCII characters"));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("has an unterminated IPv6 literal"))?;
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("has an invalid IPv6 literal"));
        }
        let port = after.strip_prefix(':').ok_or_else(|| bad("has no port"))?;
        (inside, port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
        if host.is_empty()
            || host.contains(':')
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(bad("has an invalid host"));
        }
        (host, port)
    };
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("port must be 1 to 5 digits"));
    }
    let port = match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(bad("port out of range")),
        Ok(p) => p,
    };
    Ok(Remote {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// State shared by the connection tasks.
struct Shared<T: CardTransport> {
    cfg: TunnelConfig,
    remote: Remote,
    fqdn: String,
    keys: tokio::sync::Mutex<KeyKeeper<T>>,
    /// The connector of the current context (the key callback carries the context).
    connector: Mutex<Option<(String, SslConnector)>>,
}

/// Serves `local` until `shutdown` completes; see the [module documentation](self).
///
/// Fails before accepting anything when the configuration is unusable or no context
/// can be had (no valid one and no Ub URL, or the bootstrap fails); after that,
/// failures only end the connection they happen on (logged).
pub async fn serve_tunnel<T, F>(
    local: TcpListener,
    cfg: TunnelConfig,
    agent: Agent<T>,
    shutdown: F,
) -> Result<(), SecaError>
where
    T: CardTransport + 'static,
    F: Future<Output = ()>,
{
    let remote = parse_remote(&cfg.remote)?;
    let fqdn = NafId::new(&cfg.naf_fqdn, UaSecurityProtocolId::TLS13_SHARED_KEY)
        .map_err(|e| SecaError::BadUrl(format!("NAF FQDN {:?}: {e}", cfg.naf_fqdn)))?
        .fqdn;
    if !BUFFER_SIZE_RANGE.contains(&cfg.buffer_size) {
        return Err(SecaError::BadUrl(format!(
            "buffer_size must be within {}..={}",
            BUFFER_SIZE_RANGE.start(),
            BUFFER_SIZE_RANGE.end()
        )));
    }
    if cfg.max_connections == 0 || cfg.idle_timeout.is_zero() {
        return Err(SecaError::BadUrl(
            "max_connections and idle_timeout must be non-zero".into(),
        ));
    }
    let mut keeper = KeyKeeper::new(agent, cfg.ub_url.clone());
    // Bootstrap now, so that a missing card, a wrong Ub URL or an unreachable KMC shows
    // up at start rather than at the first connection.
    let keys = keeper.ensure().await?;
    tracing::info!(
        local = ?local.local_addr().ok(),
        remote = %cfg.remote,
        naf_fqdn = %fqdn,
        btid = keys.deriver.btid(),
        "tunnel ready"
    );
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let grace = cfg.shutdown_grace;
    let shared = Arc::new(Shared {
        cfg,
        remote,
        fqdn,
        keys: tokio::sync::Mutex::new(keeper),
        connector: Mutex::new(None),
    });
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = local.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "tunnel connection limit reached; connection closed");
                        continue;
                    };
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        serve_connection(&shared, tcp, peer).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(local);
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::info!(
            cut = tasks.len(),
            "shutdown grace over; cutting tunnel connections"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

async fn serve_connection<T: CardTransport + 'static>(
    shared: &Shared<T>,
    local: TcpStream,
    peer: std::net::SocketAddr,
) {
    let _ = local.set_nodelay(true);
    let remote = match open_remote(shared).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "tunnel to the gateway failed");
            return;
        }
    };
    let (up, down, idle) = relay(
        local,
        remote,
        shared.cfg.buffer_size,
        shared.cfg.idle_timeout,
    )
    .await;
    tracing::debug!(%peer, up, down, idle, "tunnel connection closed");
}

/// PSK-TLS to the gateway, re-bootstrapping once if it refuses the B-TID.
async fn open_remote<T: CardTransport + 'static>(
    shared: &Shared<T>,
) -> Result<SslStream<TcpStream>, SecaError> {
    let mut keys = shared.keys.lock().await.ensure().await?;
    let mut rebootstrapped = false;
    loop {
        let connector = connector(shared, &keys)?;
        let tcp = match tokio::time::timeout(
            shared.cfg.connect_timeout,
            TcpStream::connect((shared.remote.host.as_str(), shared.remote.port)),
        )
        .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                return Err(SecaError::Http(format!(
                    "connect to {}: {e}",
                    shared.cfg.remote
                )))
            }
            Err(_) => {
                return Err(SecaError::Http(format!(
                    "connect to {}: timed out",
                    shared.cfg.remote
                )))
            }
        };
        let _ = tcp.set_nodelay(true);
        let done = tokio::time::timeout(
            shared.cfg.connect_timeout,
            tls::handshake(&connector, &shared.fqdn, tcp),
        )
        .await
        .map_err(|_| SecaError::Tls(format!("handshake with {} timed out", shared.cfg.remote)))?;
        match done {
            Ok((stream, Negotiated::Psk { .. })) => return Ok(stream),
            // Cannot happen with a connector that trusts no CA; refused all the same.
            Ok((_, Negotiated::Certificate { .. })) => {
                return Err(SecaError::Tls("the gateway did not take the PSK".into()))
            }
            Err(failure) => {
                let mut keeper = shared.keys.lock().await;
                if !rebootstrapped
                    && keeper.can_bootstrap()
                    && should_rebootstrap(&failure, keys.fresh, false)
                {
                    tracing::info!(error = %failure, "PSK-TLS refused by the gateway");
                    let refused = keys.deriver.btid().to_owned();
                    keys = keeper.rebootstrap(&refused).await?;
                    rebootstrapped = true;
                    continue;
                }
                return Err(SecaError::Tls(format!(
                    "PSK-TLS with {} (B-TID {}): {failure}",
                    shared.cfg.remote,
                    keys.deriver.btid()
                )));
            }
        }
    }
}

/// The PSK connector of `keys`' context, built once per context.
fn connector<T: CardTransport>(shared: &Shared<T>, keys: &Keys) -> Result<SslConnector, SecaError> {
    let mut slot = shared
        .connector
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((btid, c)) = slot.as_ref() {
        if btid == keys.deriver.btid() {
            return Ok(c.clone());
        }
    }
    let c = psk_connector(
        GbaPskKeys::new(keys.deriver.clone(), &shared.fqdn, shared.cfg.ua_org),
        None,
        Versions {
            tls13: shared.cfg.enable_tls13,
        },
    )?;
    *slot = Some((keys.deriver.btid().to_owned(), c.clone()));
    Ok(c)
}

/// Copies both ways until both directions ended, a write failed, or nothing moved
/// for `idle`. Returns bytes local→remote, remote→local, and whether it idled out.
pub(crate) async fn relay<A, B>(a: A, b: B, buffer_size: usize, idle: Duration) -> (u64, u64, bool)
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let up_count = AtomicU64::new(0);
    let down_count = AtomicU64::new(0);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let both = async {
        tokio::try_join!(
            copy_half(ar, bw, buffer_size, &last, start, &up_count),
            copy_half(br, aw, buffer_size, &last, start, &down_count),
        )
    };
    let watchdog = async {
        loop {
            let since = Duration::from_millis(last.load(Ordering::Relaxed));
            let deadline = start + since + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    let idled = tokio::select! {
        result = both => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "tunnel write failed");
            }
            false
        }
        _ = watchdog => true,
    };
    (
        up_count.load(Ordering::Relaxed),
        down_count.load(Ordering::Relaxed),
        idled,
    )
}

/// One direction. A read error counts as the end of input (a peer that vanished
/// without `close_notify`); the end is passed on with a write shutdown. A write error
/// ends the whole relay: nobody is left to deliver to.
async fn copy_half<R, W>(
    mut r: R,
    mut w: W,
    buffer_size: usize,
    last: &AtomicU64,
    start: Instant,
    count: &AtomicU64,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; buffer_size];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "tunnel read ended with an error");
                break;
            }
        };
        let Some(chunk) = buf.get(..n) else { break };
        w.write_all(chunk).await?;
        w.flush().await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(ms, Ordering::Relaxed);
    }
    // Best effort: the peer may already be gone, which the other direction notices.
    let _ = w.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes() {
        assert_eq!(
            parse_remote("osg.example:7443").unwrap(),
            Remote {
                host: "osg.example".into(),
                port: 7443
            }
        );
        assert_eq!(
            parse_remote("[::1]:1").unwrap(),
            Remote {
                host: "::1".into(),
                port: 1
            }
        );
        assert_eq!(parse_remote("127.0.0.1:65535").unwrap().port, 65535);
        assert_eq!(parse_remote("OSG.Example:80").unwrap().host, "osg.example");
        for bad in [
            "",
            "osg.example",
            "osg.example:",
            ":80",
            "osg.example:0",
            "osg.example:65536",
            "osg.example:8x",
            "::1:80",
            "[::1]",
            "[::1]80",
            "[::g]:80",
            "osg example:80",
            "osg/example:80",
            "osg.example:123456",
        ] {
            assert!(parse_remote(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_remote(&format!("{}:80", "a".repeat(MAX_REMOTE_LEN))).is_err());
    }

    /// Randomized: the remote parser never panics, and what it accepts is usable.
    #[test]
    fn remote_parser_never_panics() {
        let mut state: u64 = 0x0bad_cafe_1234_5678;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = ["osg.example:7443", "[::1]:80", "127.0.0.1:1"];
        let alphabet = b"[]:.-_09azAZ \x00\xc3\xa9/@";
        for i in 0..5000 {
            let mut bytes: Vec<u8> = if i % 3 == 0 {
                (0..(next() % 40))
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            } else {
                seeds[(next() % 3) as usize].as_bytes().to_vec()
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
            if let Ok(r) = parse_remote(&text) {
                assert!(r.port != 0 && !r.host.is_empty());
                assert!(r
                    .host
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'[' && b != b']'));
            }
        }
    }

    /// The relay passes a half-close on and keeps the other direction open, over an
    /// in-memory pair of duplex pipes.
    #[tokio::test]
    async fn relay_half_close_and_idle() {
        let (client, tunnel_local) = tokio::io::duplex(64);
        let (tunnel_remote, mut server) = tokio::io::duplex(64);
        let relay_task = tokio::spawn(relay(
            tunnel_local,
            tunnel_remote,
            1024,
            Duration::from_secs(30),
        ));
        let (mut cr, mut cw) = tokio::io::split(client);
        cw.write_all(b"ping").await.unwrap();
        cw.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping", "EOF from the client reached the server");
        // The other direction still works after the half-close (more than the pipes
        // and buffers hold, so both sides must run at once).
        let writer = async {
            server.write_all(&vec![7u8; 5000]).await.unwrap();
            server.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let reader = async { cr.read_to_end(&mut back).await.unwrap() };
        tokio::join!(writer, reader);
        assert_eq!(back.len(), 5000);
        let (up, down, idled) = relay_task.await.unwrap();
        assert_eq!((up, down, idled), (4, 5000, false));

        // Nothing moves: the watchdog ends it.
        tokio::time::pause();
        let (_c, l) = tokio::io::duplex(64);
        let (r, _s) = tokio::io::duplex(64);
        let (up, down, idled) = relay(l, r, 1024, Duration::from_secs(5)).await;
        assert_eq!((up, down, idled), (0, 0, true));
    }
}
