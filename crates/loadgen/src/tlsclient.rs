//! The TLS client side of the gateway scenarios: one PSK connector and one
//! certificate connector per TLS version, each pinned to a single suite, so the OSG
//! and its peer are measured with exactly the same protocol.
//!
//! | version | PSK (OSG, stunnel) | certificate (OSG Digest, nginx) |
//! |---|---|---|
//! | 1.2 | PSK-AES128-GCM-SHA256 (0x00A8), Ua id 01 00 01 00 a8 | ECDHE-ECDSA-AES128-GCM-SHA256 (0xC02B; the dev certificates are P-256) |
//! | 1.3 | TLS_AES_128_GCM_SHA256 (psk_dhe_ke, X25519), Ua id 01 00 00 00 07 | TLS_AES_128_GCM_SHA256 (0x1301) |
//!
//! Every handshake is checked afterwards: wrong version, or a PSK connection that was
//! not authenticated by our PSK, is an error rather than a silently different
//! measurement.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use openssl::ssl::{SslConnector, SslVersion};
use seccf_gba::naf::UaSecurityProtocolId;
use seccf_load::keyfile::GbaKeys;
use seccf_secret::SecretBytes;
use seccf_tls::psk::{PeerAuth, PskClientConfig, PskTlsVersion};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// Longest a TCP connect plus TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS 1.2 PSK suite of the benchmarks.
pub const PSK12_SUITE: u16 = 0x00a8;
/// TLS 1.2 certificate suite of the benchmarks (the dev certificates are ECDSA P-256).
pub const CERT12_SUITE: u16 = 0xc02b;
/// TLS 1.3 suite of the benchmarks.
pub const TLS13_SUITE: u16 = 0x1301;

/// The TLS version of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsVer {
    /// TLS 1.2.
    #[value(name = "1.2")]
    V12,
    /// TLS 1.3.
    #[value(name = "1.3")]
    V13,
}

impl TlsVer {
    fn openssl(self) -> SslVersion {
        match self {
            TlsVer::V12 => SslVersion::TLS1_2,
            TlsVer::V13 => SslVersion::TLS1_3,
        }
    }

    /// `TLSv1.2 PSK-AES128-GCM-SHA256` and the like, for reports.
    pub fn describe(self, psk: bool) -> &'static str {
        match (self, psk) {
            (TlsVer::V12, true) => "TLSv1.2 PSK-AES128-GCM-SHA256",
            (TlsVer::V12, false) => "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256",
            (TlsVer::V13, true) => "TLSv1.3 TLS_AES_128_GCM_SHA256 (PSK with X25519)",
            (TlsVer::V13, false) => "TLSv1.3 TLS_AES_128_GCM_SHA256",
        }
    }

    /// The Ua security protocol id of a PSK connection (TS 33.222 §5.4, TS 33.220 H).
    pub fn psk_ua(self) -> UaSecurityProtocolId {
        match self {
            TlsVer::V12 => UaSecurityProtocolId::tls_3gpp(PSK12_SUITE),
            TlsVer::V13 => UaSecurityProtocolId::TLS13_SHARED_KEY,
        }
    }

    /// The suite a certificate connection negotiates.
    pub fn cert_suite(self) -> u16 {
        match self {
            TlsVer::V12 => CERT12_SUITE,
            TlsVer::V13 => TLS13_SUITE,
        }
    }
}

/// A PSK connector offering only the run's suite, with the key of the key file.
pub fn psk_connector(keys: &GbaKeys, ver: TlsVer) -> anyhow::Result<SslConnector> {
    let ua = ver.psk_ua();
    let key = keys
        .key(&ua)
        .with_context(|| format!("the key file has no key for Ua id {}", ua.to_hex()))?
        .clone();
    let identity = keys.psk_identity();
    let cfg = match ver {
        TlsVer::V12 => PskClientConfig {
            tls12_ciphers: "PSK-AES128-GCM-SHA256".into(),
            enable_tls13: false,
            max_version: Some(PskTlsVersion::Tls12),
            ..PskClientConfig::default()
        },
        TlsVer::V13 => PskClientConfig {
            tls12_ciphers: "PSK-AES128-GCM-SHA256".into(),
            tls13_ciphersuites: "TLS_AES_128_GCM_SHA256".into(),
            ..PskClientConfig::default()
        },
    };
    let want = match ver {
        TlsVer::V12 => PskTlsVersion::Tls12,
        TlsVer::V13 => PskTlsVersion::Tls13,
    };
    // Offer the key only for the version being measured: a TLS 1.2 fallback with a
    // TLS 1.3 key (or the reverse) would fail the handshake anyway, later and less
    // clearly.
    let keys_fn = move |_hint: Option<&[u8]>, v: PskTlsVersion, suite: u16| {
        let suite_ok = v == PskTlsVersion::Tls13 || suite == PSK12_SUITE;
        (v == want && suite_ok).then(|| (identity.clone(), SecretBytes::from(&key)))
    };
    seccf_tls::psk::build_psk_connector(&cfg, Arc::new(keys_fn)).context("PSK client context")
}

/// A certificate connector trusting `ca_file` only, offering only the run's suite.
pub fn cert_connector(ca_file: &Path, ver: TlsVer) -> anyhow::Result<SslConnector> {
    let cfg = seccf_tls::client::ClientTlsConfig {
        ca_file: ca_file.to_path_buf(),
        client_cert_file: None,
        client_key_file: None,
    };
    let mut b = seccf_tls::client::connector_builder(&cfg).context("TLS client context")?;
    match ver {
        TlsVer::V12 => {
            b.set_max_proto_version(Some(SslVersion::TLS1_2))
                .context("TLS 1.2 cap")?;
            b.set_cipher_list("ECDHE-ECDSA-AES128-GCM-SHA256")
                .context("TLS 1.2 suite")?;
        }
        TlsVer::V13 => {
            b.set_min_proto_version(Some(SslVersion::TLS1_3))
                .context("TLS 1.3 floor")?;
            b.set_ciphersuites("TLS_AES_128_GCM_SHA256")
                .context("TLS 1.3 suite")?;
        }
    }
    Ok(b.build())
}

/// Parses a `host:port` target and refuses anything but a loopback address.
pub fn loopback_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("{text:?} is not an IP:port address"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address; seccf-load only targets 127.0.0.0/8 or ::1"
        ));
    }
    Ok(addr)
}

async fn tcp(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    // Small writes (one byte, one request) must not wait for Nagle.
    s.set_nodelay(true).context("TCP_NODELAY")?;
    Ok(s)
}

fn check_version(stream: &SslStream<TcpStream>, ver: TlsVer) -> anyhow::Result<u16> {
    let ssl = stream.ssl();
    ensure!(
        ssl.version2() == Some(ver.openssl()),
        "negotiated {} instead of {:?}",
        ssl.version_str(),
        ver
    );
    let suite = ssl
        .current_cipher()
        .map(|c| u16::from_be_bytes(c.protocol_id()))
        .context("no cipher negotiated")?;
    Ok(suite)
}

/// TCP connect plus PSK handshake; checks that our PSK authenticated the connection.
pub async fn connect_psk(
    connector: &SslConnector,
    host: &str,
    addr: SocketAddr,
    ver: TlsVer,
) -> anyhow::Result<SslStream<TcpStream>> {
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let tcp = tcp(addr).await?;
        seccf_tls::psk::psk_connect(connector, host, tcp)
            .await
            .map_err(anyhow::Error::from)
    })
    .await
    .context("TLS handshake timed out")??;
    check_version(&stream, ver)?;
    if !matches!(seccf_tls::psk::psk_peer(&stream), PeerAuth::Psk { .. }) {
        bail!("the handshake was not authenticated by the PSK");
    }
    Ok(stream)
}

/// TCP connect plus certificate handshake (server verified against the CA and `host`);
/// returns the stream and the negotiated suite.
pub async fn connect_cert(
    connector: &SslConnector,
    host: &str,
    addr: SocketAddr,
    ver: TlsVer,
) -> anyhow::Result<(SslStream<TcpStream>, u16)> {
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let tcp = tcp(addr).await?;
        seccf_tls::client::connect(connector, host, tcp)
            .await
            .map_err(anyhow::Error::from)
    })
    .await
    .context("TLS handshake timed out")??;
    let suite = check_version(&stream, ver)?;
    Ok((stream, suite))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        for ok in ["127.0.0.1:1", "127.8.0.1:443", "[::1]:80"] {
            assert!(loopback_addr(ok).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1:1",
            "0.0.0.0:80",
            "[::]:1",
            "localhost:80",
            "127.0.0.1",
        ] {
            assert!(loopback_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ua_ids_follow_ts_33_222() {
        assert_eq!(TlsVer::V12.psk_ua().to_hex(), "01000100a8");
        assert_eq!(TlsVer::V13.psk_ua().to_hex(), "0100000007");
        assert_eq!(
            UaSecurityProtocolId::tls_3gpp(TlsVer::V13.cert_suite()).to_hex(),
            "0100011301"
        );
        assert_eq!(
            UaSecurityProtocolId::tls_3gpp(TlsVer::V12.cert_suite()).to_hex(),
            "010001c02b"
        );
    }
}
