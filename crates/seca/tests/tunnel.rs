//! `serve_tunnel` end to end: a local TCP client → the tunnel → PSK-TLS → a PSK echo
//! server built from `seccf_tls::psk` whose key lookup derives Ks_NAF from the real
//! KMC's record (see `common/mod.rs`). TLS 1.2 and 1.3, half-close, concurrency,
//! re-bootstrap on an unknown B-TID, idle timeout, shutdown.

mod common;

use std::time::Duration;

use common::{agent, Kmc, Naf, NafCfg};
use seccf_seca::tunnel::{serve_tunnel, TunnelConfig};
use seccf_tls::psk::PskTlsVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Tunnel {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), seccf_seca::SecaError>>,
}

impl Tunnel {
    async fn shutdown(mut self) -> Result<(), seccf_seca::SecaError> {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap()
    }
}

async fn start_tunnel(
    cfg: TunnelConfig,
    a: seccf_seca::Agent<seccf_uicc::soft::SoftUsim>,
) -> Tunnel {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_tunnel(listener, cfg, a, async move {
        let _ = rx.await;
    }));
    Tunnel {
        addr,
        stop: Some(stop),
        task,
    }
}

fn echo_naf(tls13: bool) -> NafCfg {
    NafCfg {
        echo: true,
        ..NafCfg::psk(tls13)
    }
}

fn cfg(naf: &Naf, kmc: &Kmc) -> TunnelConfig {
    let mut c = TunnelConfig::new(&format!("127.0.0.1:{}", naf.addr.port()), common::NAF_HOST);
    c.ub_url = Some(kmc.ub_url());
    c
}

/// Writes `data`, half-closes, reads until the far end closes.
async fn round_trip(addr: std::net::SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = s.split();
    let write = async {
        w.write_all(data).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let read = async { r.read_to_end(&mut back).await.unwrap() };
    tokio::time::timeout(Duration::from_secs(20), async { tokio::join!(write, read) })
        .await
        .expect("echo within 20 s");
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_through_the_tunnel_tls12_and_tls13() {
    let kmc = Kmc::start().await;
    for (n, tls13) in [(40, false), (41, true)] {
        let naf = Naf::start(echo_naf(tls13), kmc.store.clone()).await;
        let tunnel = start_tunnel(cfg(&naf, &kmc), agent(&kmc, n, false).await).await;
        // More than any buffer on the way, with a half-close at the end.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let back = round_trip(tunnel.addr, &data).await;
        assert_eq!(back.len(), data.len(), "tls13={tls13}");
        assert!(back == data);
        let (identity, version) = naf.log().conns[0].psk.clone().unwrap();
        assert!(identity.starts_with("3GPP-bootstrapping."));
        assert_eq!(
            version,
            if tls13 {
                PskTlsVersion::Tls13
            } else {
                PskTlsVersion::Tls12
            }
        );
        tunnel.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connections_share_one_context() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(echo_naf(true), kmc.store.clone()).await;
    let tunnel = start_tunnel(cfg(&naf, &kmc), agent(&kmc, 42, false).await).await;
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let addr = tunnel.addr;
        tasks.push(tokio::spawn(async move {
            let data = vec![i; 10_000 + usize::from(i)];
            assert_eq!(round_trip(addr, &data).await, data);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    {
        let log = naf.log();
        assert_eq!(log.conns.len(), 8);
        let first = log.conns[0].psk.clone().unwrap().0;
        assert!(log
            .conns
            .iter()
            .all(|c| c.psk.as_ref().map(|p| &p.0) == Some(&first)));
    }
    tunnel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_btid_rebootstraps_and_the_connection_still_works() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(echo_naf(false), kmc.store.clone()).await;
    let tunnel = start_tunnel(cfg(&naf, &kmc), agent(&kmc, 43, false).await).await;
    assert_eq!(round_trip(tunnel.addr, b"one").await, b"one");
    let first = naf.log().conns[0].psk.clone().unwrap().0;
    naf.reject(first.strip_prefix("3GPP-bootstrapping.").unwrap());
    assert_eq!(round_trip(tunnel.addr, b"two").await, b"two");
    let second = naf.log().conns.last().unwrap().psk.clone().unwrap().0;
    assert_ne!(first, second);
    // Refused after the fresh bootstrap too: this connection is closed, the tunnel
    // keeps serving.
    naf.reject("*");
    let mut s = TcpStream::connect(tunnel.addr).await.unwrap();
    let _ = s.write_all(b"three").await;
    let mut back = Vec::new();
    // EOF or a reset (the tunnel closed with our bytes unread): nothing echoed.
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut back))
        .await
        .expect("closed by the tunnel");
    assert!(back.is_empty());
    let lookups = naf.log().lookups.len();
    assert!(lookups >= 4, "old and new identity were tried: {lookups}");
    tunnel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(echo_naf(true), kmc.store.clone()).await;
    let mut c = cfg(&naf, &kmc);
    c.idle_timeout = Duration::from_millis(300);
    let tunnel = start_tunnel(c, agent(&kmc, 44, false).await).await;
    let mut s = TcpStream::connect(tunnel.addr).await.unwrap();
    s.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    // Then nothing: the tunnel closes the connection, which we see as EOF.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .expect("closed by the idle timeout")
        .unwrap();
    assert_eq!(n, 0);
    tunnel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_fails_without_a_context_and_on_bad_settings() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(echo_naf(true), kmc.store.clone()).await;
    let mut c = cfg(&naf, &kmc);
    c.ub_url = None;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(matches!(
        serve_tunnel(
            listener,
            c,
            agent(&kmc, 45, false).await,
            std::future::pending()
        )
        .await,
        Err(seccf_seca::SecaError::NotBootstrapped)
    ));
    for (n, bad) in [(46, "no-port"), (48, "127.0.0.1:0"), (49, "[::1:80")] {
        let mut c = cfg(&naf, &kmc);
        c.remote = bad.into();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        assert!(
            serve_tunnel(
                listener,
                c,
                agent(&kmc, n, false).await,
                std::future::pending()
            )
            .await
            .is_err(),
            "{bad}"
        );
    }
    let mut c = cfg(&naf, &kmc);
    c.naf_fqdn = "not a host".into();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(serve_tunnel(
        listener,
        c,
        agent(&kmc, 47, false).await,
        std::future::pending()
    )
    .await
    .is_err());
}
