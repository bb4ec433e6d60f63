//! `tls-handshake` and `tls-bulk`: PSK-TLS tunnels to a TCP echo, through the OSG's
//! TCP listener or through stunnel with the same PSK.
//!
//! The client cannot tell the two apart and does not try to: the same connector, the
//! same suite, the same upstream (`seccf-load upstream`'s TCP echo, which removes the
//! OSG's PROXY v2 header). It also tolerates an upstream that talks first: the dev TCP
//! echo of `seccf dev` answers one greeting line before echoing, so the client reads
//! until the byte it sent comes back, whatever precedes it.
//!
//! - `tls-handshake`: one operation = TCP connect, PSK-TLS handshake, send one byte,
//!   read until it is echoed, close_notify, close. New connections per second is what
//!   a tunnel gateway's handshake path sustains (the PSK lookup is a cache hit: one
//!   B-TID throughout, fetched once during the warm-up).
//! - `tls-bulk`: each worker keeps one tunnel open; one operation = send a chunk and
//!   read the same bytes back (sent and received concurrently, compared). Payload
//!   MB/s each way is what the gateway's record layer and copy loop sustain.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, ensure, Context};
use openssl::ssl::SslConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::cpu::CpuProbe;
use crate::driver::{self, Limits, Report, Worker};
use crate::tlsclient::{connect_psk, TlsVer};

/// The byte sent through a new tunnel. NUL never occurs in the echo's greeting line
/// (text), so its return marks the end of whatever came first.
pub const MARKER: u8 = 0;
/// Most bytes read before the marker comes back (the greeting is under 200 bytes).
pub const MAX_PREAMBLE: usize = 4096;
/// Default bulk chunk: four full TLS records each way.
pub const DEFAULT_CHUNK: usize = 64 * 1024;
/// Largest bulk chunk.
pub const MAX_CHUNK: usize = 16 * 1024 * 1024;

/// Which gateway serves the tunnel (for the report; the client is the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TunnelTarget {
    /// The OSG's PSK-TLS TCP listener.
    Osg,
    /// stunnel with the same PSK in its PSKsecrets file.
    Stunnel,
}

impl TunnelTarget {
    fn label(self) -> &'static str {
        match self {
            TunnelTarget::Osg => "osg",
            TunnelTarget::Stunnel => "stunnel",
        }
    }
}

/// Settings shared by both scenarios.
pub struct TunnelSettings {
    /// Gateway address.
    pub addr: SocketAddr,
    /// TLS host name (SNI).
    pub host: String,
    /// TLS version.
    pub ver: TlsVer,
    /// The gateway, for the report.
    pub target: TunnelTarget,
    /// Overrides the gateway label in the report.
    pub label: Option<String>,
    /// Concurrent workers.
    pub concurrency: usize,
    /// Run limits.
    pub limits: Limits,
}

impl TunnelSettings {
    fn gateway_label(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| self.target.label().to_string())
    }
}

/// Sends the marker and reads until it is echoed; returns the bytes before it.
async fn marker_round_trip<S>(stream: &mut S) -> anyhow::Result<usize>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(&[MARKER]).await.context("sending")?;
    stream.flush().await.context("sending")?;
    let mut buf = [0u8; 512];
    let mut seen = 0usize;
    loop {
        let n = stream.read(&mut buf).await.context("reading the echo")?;
        ensure!(n > 0, "the tunnel closed before the byte came back");
        let chunk = buf.get(..n).unwrap_or_default();
        if let Some(pos) = chunk.iter().position(|b| *b == MARKER) {
            ensure!(
                pos + 1 == n,
                "bytes after the echoed marker: the upstream is not an echo"
            );
            return Ok(seen + pos);
        }
        seen += n;
        ensure!(
            seen <= MAX_PREAMBLE,
            "more than {MAX_PREAMBLE} bytes without the echo"
        );
    }
}

struct HandshakeWorker {
    connector: Arc<SslConnector>,
    host: Arc<str>,
    addr: SocketAddr,
    ver: TlsVer,
}

impl Worker for HandshakeWorker {
    async fn op(&mut self) -> anyhow::Result<()> {
        let mut s = connect_psk(&self.connector, &self.host, self.addr, self.ver).await?;
        marker_round_trip(&mut s).await?;
        // close_notify, then the TCP FIN: the orderly end a real client produces, so
        // neither gateway logs an abrupt disconnect.
        s.shutdown().await.context("closing")?;
        Ok(())
    }
}

/// Runs `tls-handshake`.
pub async fn run_handshakes(
    connector: SslConnector,
    s: TunnelSettings,
    probe: &CpuProbe,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Report> {
    let connector = Arc::new(connector);
    let host: Arc<str> = Arc::from(s.host.as_str());
    let mut workers: Vec<HandshakeWorker> = (0..s.concurrency)
        .map(|_| HandshakeWorker {
            connector: connector.clone(),
            host: host.clone(),
            addr: s.addr,
            ver: s.ver,
        })
        .collect();
    // One tunnel before the clock: a wrong key or address fails here with its reason,
    // and the gateway's key lookup (a Zn fetch for the OSG) is warm.
    if let Some(w) = workers.first_mut() {
        w.op().await.context("warm-up tunnel failed")?;
    }
    eprintln!(
        "tls-handshake: {} workers, {} s, {} via {} ({})",
        s.concurrency,
        s.limits.duration.as_secs(),
        s.addr,
        s.gateway_label(),
        s.ver.describe(true)
    );
    let (outcome, cpu) = crate::cpu::measure(probe, driver::run(workers, s.limits, stop)).await;
    let mut r = Report::new(
        "tls-handshake",
        format!(
            "new PSK-TLS tunnel: connect, handshake, 1 byte echoed, close ({} at {})",
            s.gateway_label(),
            s.addr
        ),
        s.concurrency,
        s.limits.duration.as_secs_f64(),
        &outcome,
    );
    r.gateway = Some(s.gateway_label());
    r.tls = Some(s.ver.describe(true).to_string());
    r.cpu = cpu;
    Ok(r)
}

struct BulkWorker {
    rd: ReadHalf<SslStream<TcpStream>>,
    wr: WriteHalf<SslStream<TcpStream>>,
    out: Vec<u8>,
    back: Vec<u8>,
    n: u64,
}

impl Worker for BulkWorker {
    async fn op(&mut self) -> anyhow::Result<()> {
        self.n = self.n.wrapping_add(1);
        // A per-operation stamp, so stale or misrouted data cannot pass the comparison.
        if let Some(head) = self.out.get_mut(..8) {
            head.copy_from_slice(&self.n.to_be_bytes());
        }
        let (rd, wr, out, back) = (&mut self.rd, &mut self.wr, &self.out, &mut self.back);
        // Concurrently: a chunk larger than the socket buffers would otherwise
        // deadlock writer against echo.
        let send = async {
            wr.write_all(out).await?;
            wr.flush().await
        };
        let recv = rd.read_exact(back);
        let (sent, received) = tokio::join!(send, recv);
        sent.context("sending")?;
        received.context("receiving the echo")?;
        if back != out {
            bail!("the echoed bytes differ from the sent ones");
        }
        Ok(())
    }
}

/// Runs `tls-bulk` with `chunk` bytes per operation.
pub async fn run_bulk(
    connector: SslConnector,
    s: TunnelSettings,
    chunk: usize,
    probe: &CpuProbe,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Report> {
    ensure!(
        (8..=MAX_CHUNK).contains(&chunk),
        "chunk must be 8..={MAX_CHUNK} bytes"
    );
    let mut workers = Vec::with_capacity(s.concurrency);
    for i in 0..s.concurrency {
        let mut stream = connect_psk(&connector, &s.host, s.addr, s.ver)
            .await
            .with_context(|| format!("tunnel of worker {i}"))?;
        marker_round_trip(&mut stream)
            .await
            .with_context(|| format!("first echo of worker {i}"))?;
        let (rd, wr) = tokio::io::split(stream);
        // A pattern rather than zeros: compressible data would flatter nothing here
        // (no compression in TLS), but a wrong offset must not compare equal.
        let out: Vec<u8> = (0..chunk).map(|j| (j % 251) as u8).collect();
        workers.push(BulkWorker {
            rd,
            wr,
            back: vec![0u8; chunk],
            out,
            n: 0,
        });
    }
    for (i, w) in workers.iter_mut().enumerate() {
        w.op()
            .await
            .with_context(|| format!("warm-up chunk of worker {i}"))?;
    }
    eprintln!(
        "tls-bulk: {} tunnels, {} bytes per op, {} s, {} via {} ({})",
        s.concurrency,
        chunk,
        s.limits.duration.as_secs(),
        s.addr,
        s.gateway_label(),
        s.ver.describe(true)
    );
    let (outcome, cpu) = crate::cpu::measure(probe, driver::run(workers, s.limits, stop)).await;
    let mut r = Report::new(
        "tls-bulk",
        format!(
            "{} KiB sent and echoed back over an open PSK-TLS tunnel ({} at {})",
            chunk / 1024,
            s.gateway_label(),
            s.addr
        ),
        s.concurrency,
        s.limits.duration.as_secs_f64(),
        &outcome,
    );
    r.gateway = Some(s.gateway_label());
    r.tls = Some(s.ver.describe(true).to_string());
    r.bytes_per_op = Some(chunk as u64);
    let secs = outcome.elapsed.as_secs_f64();
    r.mb_per_sec = Some(if secs > 0.0 {
        outcome.ops as f64 * chunk as f64 / secs / 1e6
    } else {
        0.0
    });
    r.cpu = cpu;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn marker_round_trip_skips_a_greeting() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let echo = tokio::spawn(async move {
            let mut b = [0u8; 1];
            server.read_exact(&mut b).await.expect("marker");
            server
                .write_all(b"seccf tcp echo: identity=x method=psk-tls\n")
                .await
                .expect("greeting");
            server.write_all(&b).await.expect("echo");
            server
        });
        let pre = marker_round_trip(&mut client).await.expect("round trip");
        assert_eq!(pre, 42);
        drop(echo.await);
    }

    #[tokio::test]
    async fn a_closed_or_chatty_upstream_is_an_error() {
        let (mut client, server) = tokio::io::duplex(64);
        drop(server);
        assert!(marker_round_trip(&mut client).await.is_err());

        let (mut client, mut server) = tokio::io::duplex(16 * 1024);
        let flood = tokio::spawn(async move {
            let mut b = [0u8; 1];
            let _ = server.read_exact(&mut b).await;
            let _ = server.write_all(&[b'x'; MAX_PREAMBLE + 10]).await;
            server
        });
        let err = marker_round_trip(&mut client).await.expect_err("flood");
        assert!(err.to_string().contains("without the echo"), "{err}");
        drop(flood.await);
    }
}
