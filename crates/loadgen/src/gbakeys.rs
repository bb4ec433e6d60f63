//! `gba-keys`: bootstraps the dev subscriber once and writes the key file (and the
//! stunnel `PSKsecrets` files) that every gateway scenario of a run shares.
//!
//! Keys derived, all for NAF_Id = the dev gateway's FQDN ‖ Ua id:
//!
//! | Ua id | used by |
//! |---|---|
//! | 01 00 01 00 a8 | PSK-TLS 1.2 with PSK-AES128-GCM-SHA256 (OSG and stunnel) |
//! | 01 00 00 00 07 | PSK-TLS 1.3 (OSG and stunnel) |
//! | 01 00 01 13 01 | HTTP Digest inside TLS 1.3 TLS_AES_128_GCM_SHA256 (OSG) |
//! | 01 00 01 c0 2b | HTTP Digest inside TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 (OSG) |
//!
//! Files are created with mode 0600 and must not exist yet (no silent overwrite of
//! someone's file with keys).

use std::io::Write;
use std::path::Path;

use anyhow::{ensure, Context};
use seccf_gba::naf::{NafId, UaSecurityProtocolId};
use seccf_load::keyfile::GbaKeys;
use seccf_seca::Agent;
use seccf_uicc::soft::SoftUsim;
use seccf_uicc::Usim;

use crate::dev::{loopback_url, DevJson};
use crate::tlsclient::{TlsVer, CERT12_SUITE, TLS13_SUITE};

/// The Ua ids a benchmark run needs keys for (see the module table).
pub fn bench_ua_ids() -> [UaSecurityProtocolId; 4] {
    [
        TlsVer::V12.psk_ua(),
        TlsVer::V13.psk_ua(),
        UaSecurityProtocolId::tls_3gpp(TLS13_SUITE),
        UaSecurityProtocolId::tls_3gpp(CERT12_SUITE),
    ]
}

/// Creates `path` with mode 0600 and writes `data`; fails if it exists.
pub fn write_new_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Reads a key file written by [`run`].
pub fn load(path: &Path) -> anyhow::Result<GbaKeys> {
    use std::io::Read;
    let mut text = zeroize::Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .take(seccf_load::keyfile::MAX_KEY_FILE_LEN as u64 + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    GbaKeys::from_json(&text).with_context(|| format!("key file {}", path.display()))
}

/// Bootstraps, derives, writes the files.
pub async fn run(
    dev: &DevJson,
    out: &Path,
    stunnel_tls12: Option<&Path>,
    stunnel_tls13: Option<&Path>,
) -> anyhow::Result<()> {
    loopback_url(&dev.kmc.ub_url).context("Ub URL")?;
    // No state file, as in `zn`: the dev card's SQN state on disk stays untouched.
    let card = SoftUsim::open(&dev.subscriber.usim_file, None).with_context(|| {
        format!(
            "opening software USIM {}",
            dev.subscriber.usim_file.display()
        )
    })?;
    let mut agent = Agent::new(Usim::new(card)).context("starting the agent")?;
    ensure!(
        agent.impi() == dev.subscriber.impi,
        "the USIM file's IMPI differs from dev.json's subscriber.impi"
    );
    let ctx = agent
        .bootstrap(&dev.kmc.ub_url)
        .await
        .context("bootstrapping the dev.json subscriber")?;
    let mut keys = Vec::new();
    for ua in bench_ua_ids() {
        let naf = NafId::new(&dev.osg.fqdn, ua).map_err(|e| anyhow::anyhow!("osg.fqdn: {e}"))?;
        keys.push((
            ua,
            agent
                .naf_key(&ctx, &naf)
                .with_context(|| format!("deriving Ks_NAF for Ua id {}", ua.to_hex()))?,
        ));
    }
    let file = GbaKeys::new(&ctx.btid, &dev.osg.fqdn, ctx.expires_at, keys)?;
    write_new_private(out, file.to_json()?.as_bytes())?;
    for (path, ver) in [(stunnel_tls12, TlsVer::V12), (stunnel_tls13, TlsVer::V13)] {
        if let Some(path) = path {
            let line = file
                .stunnel_psk_line(&ver.psk_ua())
                .context("key missing for the stunnel file")?;
            write_new_private(path, line.as_bytes())?;
        }
    }
    eprintln!(
        "gba-keys: B-TID {} (expires at {}), {} keys for {} written to {}",
        file.btid(),
        file.expires_at(),
        bench_ua_ids().len(),
        file.fqdn(),
        out.display()
    );
    Ok(())
}
