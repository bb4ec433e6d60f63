//! `ub`: full GBA bootstraps per second against a running KMC.
//!
//! Set-up: S fresh GBA_ME subscribers are created through the admin REST API, each
//! with random test keys and a software USIM holding the same keys (in a temporary
//! directory). Each of the C workers owns every C-th subscriber and bootstraps them
//! round-robin: one bootstrap is the real agent's exchange — initial request, 401 with
//! the AKA challenge, the card's AUTHENTICATE, the digest answer, 200 with `rspauth`
//! checked — so two HTTP round trips on two fresh connections (the agent does not keep
//! connections alive), one AKA run on the card and one on the KMC, and one durable
//! context write in the KMC store. The subscribers are deleted again afterwards, also
//! when the run fails or is interrupted with Ctrl-C.
//!
//! The cards keep their SQN state in memory only: the client's disk is not what is
//! being measured.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{ensure, Context};
use seccf_seca::Agent;
use seccf_secret::{random_array, Secret};
use seccf_uicc::soft::SoftUsim;
use seccf_uicc::Usim;
use zeroize::Zeroizing;

use crate::admin::Admin;
use crate::dev::{loopback_url, DevJson};
use crate::driver::{self, Limits, Report, Worker};

/// Most subscribers one run creates.
pub const MAX_SUBSCRIBERS: usize = 10_000;
/// Realm of the generated IMPIs; no real operator uses it.
const IMPI_REALM: &str = "load.seccf.test";

/// Settings of a `ub` run.
#[derive(Clone, Copy, Debug)]
pub struct UbSettings {
    /// Concurrent workers.
    pub concurrency: usize,
    /// Test subscribers (at least `concurrency`).
    pub subscribers: usize,
    /// Run limits.
    pub limits: Limits,
}

struct UbWorker {
    agents: Vec<Agent<SoftUsim>>,
    next: usize,
    ub_url: Arc<str>,
}

impl Worker for UbWorker {
    async fn op(&mut self) -> anyhow::Result<()> {
        let n = self.agents.len();
        let agent = self
            .agents
            .get_mut(self.next % n.max(1))
            .context("worker has no subscriber")?;
        self.next = (self.next + 1) % n.max(1);
        agent.bootstrap(&self.ub_url).await?;
        Ok(())
    }
}

/// Runs the scenario; the created subscribers are removed before returning.
pub async fn run(dev: &DevJson, s: UbSettings, stop: Arc<AtomicBool>) -> anyhow::Result<Report> {
    ensure!(s.concurrency >= 1, "concurrency must be at least 1");
    ensure!(
        (s.concurrency..=MAX_SUBSCRIBERS).contains(&s.subscribers),
        "--subscribers must be between --concurrency ({}) and {MAX_SUBSCRIBERS}",
        s.concurrency
    );
    loopback_url(&dev.kmc.ub_url).context("Ub URL")?;
    let admin = Admin::new(&dev.kmc.admin_url, &dev.kmc.admin_token)?;
    let work = tempfile::tempdir().context("temporary directory for the USIM files")?;
    // A random run id keeps concurrent or left-over runs from colliding on IMPIs.
    let run_id = u32::from_be_bytes(random_array().context("random run id")?);

    let mut created = Vec::with_capacity(s.subscribers);
    let result = measure(dev, &s, &admin, work.path(), run_id, &mut created, stop).await;

    let mut cleanup_failures = 0usize;
    for impi in &created {
        if let Err(e) = admin.delete_subscriber(impi).await {
            cleanup_failures += 1;
            if cleanup_failures <= 3 {
                eprintln!("warning: cleanup: {e:#}");
            }
        }
    }
    if cleanup_failures > 0 {
        eprintln!(
            "warning: {cleanup_failures} of {} test subscribers (IMPIs seccf-load.{run_id:08x}.*@{IMPI_REALM}) were not deleted",
            created.len()
        );
    }
    result
}

async fn measure(
    dev: &DevJson,
    s: &UbSettings,
    admin: &Admin,
    dir: &Path,
    run_id: u32,
    created: &mut Vec<String>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Report> {
    let ub_url: Arc<str> = Arc::from(dev.kmc.ub_url.as_str());
    let mut workers: Vec<UbWorker> = (0..s.concurrency)
        .map(|_| UbWorker {
            agents: Vec::new(),
            next: 0,
            ub_url: ub_url.clone(),
        })
        .collect();
    eprintln!(
        "ub: creating {} test subscribers through the admin API",
        s.subscribers
    );
    for i in 0..s.subscribers {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            anyhow::bail!("interrupted during set-up");
        }
        let impi = format!("seccf-load.{run_id:08x}.{i:05}@{IMPI_REALM}");
        let k = Secret::<16>::random().context("random K")?;
        let opc = Secret::<16>::random().context("random OPc")?;
        admin.create_subscriber(&impi, &k, &opc).await?;
        created.push(impi.clone());
        let agent = soft_agent(dir, i, &impi, &k, &opc)?;
        if let Some(w) = workers.get_mut(i % s.concurrency) {
            w.agents.push(agent);
        }
    }

    // One bootstrap before the clock starts: a broken set-up fails here with its reason
    // instead of producing a run full of errors.
    if let Some(w) = workers.first_mut() {
        w.op().await.context("preflight bootstrap failed")?;
    }

    eprintln!(
        "ub: {} workers bootstrapping for {} s against {}",
        s.concurrency,
        s.limits.duration.as_secs(),
        dev.kmc.ub_url
    );
    let outcome = driver::run(workers, s.limits, stop).await;
    Ok(Report::new(
        "ub",
        format!(
            "full GBA_ME bootstrap (2 HTTP round trips + AKA), {} subscribers, {}",
            s.subscribers, dev.kmc.ub_url
        ),
        s.concurrency,
        s.limits.duration.as_secs_f64(),
        &outcome,
    ))
}

/// Writes the software USIM file (format of `seccf dev`) and opens an agent on it.
fn soft_agent(
    dir: &Path,
    i: usize,
    impi: &str,
    k: &Secret<16>,
    opc: &Secret<16>,
) -> anyhow::Result<Agent<SoftUsim>> {
    let text = Zeroizing::new(format!(
        "# Software USIM generated by seccf-load (test credentials).\nimpi = \"{impi}\"\nk = \"{}\"\nopc = \"{}\"\namf = \"8000\"\ngba_u = false\n",
        k.reveal_hex().as_str(),
        opc.reveal_hex().as_str()
    ));
    let path = dir.join(format!("usim-{i:05}.toml"));
    std::fs::write(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    // No state file: the SQN window lives in memory for the run.
    let card = SoftUsim::open(&path, None)
        .with_context(|| format!("opening software USIM {}", path.display()))?;
    Agent::new(Usim::new(card)).context("starting the agent")
}

/// Default subscriber count for a concurrency: four per worker, so consecutive
/// bootstraps of a worker hit different subscriber rows.
pub fn default_subscribers(concurrency: usize) -> usize {
    concurrency.saturating_mul(4).clamp(1, MAX_SUBSCRIBERS)
}
