//! The parts of a `seccf dev` description (`<data-dir>/dev.json`) this tool uses, and
//! the loopback-only rule.
//!
//! Only the fields read here are declared; others are ignored so dev.json can grow.

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context};
use seccf_seca::http::Url;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Largest dev.json read (it is a few KiB).
pub const MAX_DEV_JSON: u64 = 1024 * 1024;

/// dev.json (subset).
#[derive(Deserialize)]
pub struct DevJson {
    /// KMC endpoints.
    pub kmc: DevKmc,
    /// CA of the KMC's server certificate.
    pub ca_cert: PathBuf,
    /// The registered demo NAF's client credentials.
    pub naf_client: DevNafClient,
    /// The demo GBA_ME subscriber.
    pub subscriber: DevSubscriber,
    /// The dev gateway (subset).
    pub osg: DevOsg,
}

/// The dev gateway (subset).
#[derive(Deserialize)]
pub struct DevOsg {
    /// The NAF FQDN the gateway derives keys for (clients connect to this name).
    pub fqdn: String,
}

/// KMC endpoints (subset).
#[derive(Deserialize)]
pub struct DevKmc {
    /// Ub base URL.
    pub ub_url: String,
    /// Zn URL (`https://host:port`).
    pub zn_url: String,
    /// Admin API base URL.
    pub admin_url: String,
    /// Admin bearer token: a credential, so it is zeroized and never printed.
    pub admin_token: Zeroizing<String>,
}

/// Demo NAF client credentials.
#[derive(Deserialize)]
pub struct DevNafClient {
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The FQDN the NAF is registered for.
    pub fqdn: String,
}

/// Demo subscriber (subset: the card file holds the keys).
#[derive(Deserialize)]
pub struct DevSubscriber {
    /// IMPI.
    pub impi: String,
    /// Software USIM file.
    pub usim_file: PathBuf,
}

impl DevJson {
    /// Reads and parses `path`; every KMC URL must point at a loopback address.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut text = Zeroizing::new(Vec::new());
        f.take(MAX_DEV_JSON + 1)
            .read_to_end(&mut text)
            .with_context(|| format!("reading {}", path.display()))?;
        ensure!(
            text.len() as u64 <= MAX_DEV_JSON,
            "{} is larger than {MAX_DEV_JSON} bytes; is it really a dev.json?",
            path.display()
        );
        let dev: DevJson = serde_json::from_slice(&text)
            .with_context(|| format!("parsing {} (written by `seccf dev`)", path.display()))?;
        for (name, url) in [
            ("kmc.ub_url", &dev.kmc.ub_url),
            ("kmc.zn_url", &dev.kmc.zn_url),
            ("kmc.admin_url", &dev.kmc.admin_url),
        ] {
            loopback_url(url).with_context(|| format!("{name} in {}", path.display()))?;
        }
        Ok(dev)
    }
}

/// Parses `url` and refuses anything but a loopback host: this tool generates load and
/// must not be pointed at someone else's server by a stray config file.
pub fn loopback_url(url: &str) -> anyhow::Result<Url> {
    let u = Url::parse(url).map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        is_loopback_host(&u.host),
        "{url:?} is not a loopback address; seccf-load only targets 127.0.0.0/8, ::1 or localhost"
    );
    Ok(u)
}

/// True for `localhost`, 127.0.0.0/8 and ::1.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_pass() {
        for ok in [
            "http://127.0.0.1:7480/",
            "https://127.0.0.1:7482",
            "http://127.9.9.9:1/",
            "http://[::1]:8080/",
            "http://localhost:1/",
        ] {
            assert!(loopback_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:7480/",
            "http://example.org/",
            "https://[::2]:443",
            "http://0.0.0.0:80/",
            "http://localhost.example.org/",
            "ftp://127.0.0.1/",
        ] {
            assert!(loopback_url(bad).is_err(), "{bad}");
        }
    }
}
