//! `zn`: NAF key look-ups per second against a running KMC.
//!
//! Set-up: the dev.json demo subscriber bootstraps once with its software USIM, and the
//! agent derives the Ks_NAF it expects for the demo NAF's FQDN (Ua protocol: HTTP
//! Digest). Each of the C workers then owns one `ZnClient` — one keep-alive HTTP/1.1
//! connection with mutual TLS, presenting the demo NAF's client certificate — and asks
//! for that B-TID's key back to back. Every answer is compared with the agent's key: a
//! wrong key counts as an error, not as a look-up.
//!
//! Each worker sends one request before the clock starts, so the TLS handshakes are not
//! part of the measurement: this is the steady state of a gateway with warm connections.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{ensure, Context};
use seccf_gba::naf::{NafId, UaSecurityProtocolId};
use seccf_kmc::zn_client::ZnClient;
use seccf_seca::Agent;
use seccf_secret::Secret;
use seccf_tls::client::ClientTlsConfig;
use seccf_uicc::soft::SoftUsim;
use seccf_uicc::Usim;

use crate::dev::{loopback_url, DevJson};
use crate::driver::{self, Limits, Report, Worker};

/// Settings of a `zn` run.
#[derive(Clone, Copy, Debug)]
pub struct ZnSettings {
    /// Concurrent workers (one connection each).
    pub concurrency: usize,
    /// Run limits.
    pub limits: Limits,
}

struct ZnWorker {
    client: ZnClient,
    btid: Arc<str>,
    naf: NafId,
    expected: Arc<Secret<32>>,
}

impl Worker for ZnWorker {
    async fn op(&mut self) -> anyhow::Result<()> {
        let keys = self
            .client
            .bootstrapping_info(&self.btid, &self.naf, false)
            .await?;
        // Constant-time comparison (Secret's PartialEq).
        ensure!(
            keys.me_key == *self.expected,
            "the KMC returned a Ks_NAF that differs from the agent's"
        );
        Ok(())
    }
}

/// Runs the scenario.
pub async fn run(dev: &DevJson, s: ZnSettings, stop: Arc<AtomicBool>) -> anyhow::Result<Report> {
    ensure!(s.concurrency >= 1, "concurrency must be at least 1");
    loopback_url(&dev.kmc.ub_url).context("Ub URL")?;
    loopback_url(&dev.kmc.zn_url).context("Zn URL")?;

    // No state file for the card: this run must not disturb the SQN state other tools
    // keep next to the dev USIM file, and the KMC's SQN is ahead of a fresh window.
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
    let naf = NafId::new(&dev.naf_client.fqdn, UaSecurityProtocolId::HTTP_DIGEST)
        .map_err(|e| anyhow::anyhow!("naf_client.fqdn: {e}"))?;
    let expected = Arc::new(
        agent
            .naf_key(&ctx, &naf)
            .context("deriving the expected Ks_NAF")?,
    );
    let btid: Arc<str> = Arc::from(ctx.btid.as_str());

    let tls = ClientTlsConfig {
        ca_file: dev.ca_cert.clone(),
        client_cert_file: Some(dev.naf_client.cert.clone()),
        client_key_file: Some(dev.naf_client.key.clone()),
    };
    let mut workers = Vec::with_capacity(s.concurrency);
    for _ in 0..s.concurrency {
        workers.push(ZnWorker {
            client: ZnClient::new(&dev.kmc.zn_url, &tls).context("Zn client")?,
            btid: btid.clone(),
            naf: naf.clone(),
            expected: expected.clone(),
        });
    }
    for (i, w) in workers.iter_mut().enumerate() {
        w.op()
            .await
            .with_context(|| format!("warm-up request of worker {i} failed"))?;
    }

    eprintln!(
        "zn: {} workers (one mTLS keep-alive connection each) for {} s against {}",
        s.concurrency,
        s.limits.duration.as_secs(),
        dev.kmc.zn_url
    );
    let outcome = driver::run(workers, s.limits, stop).await;
    Ok(Report::new(
        "zn",
        format!(
            "Zn key look-up (mTLS keep-alive), one B-TID, {}",
            dev.kmc.zn_url
        ),
        s.concurrency,
        s.limits.duration.as_secs_f64(),
        &outcome,
    ))
}
