//! The closed-loop driver shared by every network scenario, and the result record.
//!
//! Each worker runs one operation at a time, back to back (a closed loop: the offered
//! load is whatever the server sustains at that concurrency). A run ends at the first of:
//! the duration elapsed, the operation budget spent, or Ctrl-C. The gateway scenarios
//! (OSG, stunnel, nginx) are further [`Worker`] implementations.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::hist::Histogram;

/// The tool name written into every result.
pub const TOOL: &str = "seccf-load";
/// Longest a single operation may take before it counts as an error. Every client used
/// here has its own shorter timeout; this one bounds a worker even if one does not.
pub const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Error messages kept per run (the first ones; the rest are only counted).
const MAX_ERROR_SAMPLES: usize = 3;

/// One unit of load: a bootstrap, a key look-up, a handshake…
pub trait Worker: Send + 'static {
    /// Performs one operation. An `Err` is counted and the loop goes on.
    fn op(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// When a run stops.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall-clock duration of the run.
    pub duration: Duration,
    /// Operation budget over all workers (successes and errors).
    pub max_ops: u64,
}

/// What a run measured.
#[derive(Clone, Default)]
pub struct Outcome {
    /// Successful operations.
    pub ops: u64,
    /// Failed operations (including timeouts).
    pub errors: u64,
    /// From the start of the first operation to the end of the last one.
    pub elapsed: Duration,
    /// Latencies of the successful operations.
    pub hist: Histogram,
    /// The first few error messages.
    pub error_samples: Vec<String>,
}

impl Outcome {
    /// Successful operations per second of elapsed time.
    pub fn ops_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.ops as f64 / s
        } else {
            0.0
        }
    }
}

/// Runs `workers` concurrently (one tokio task each) until `limits` or `stop`.
pub async fn run<W: Worker>(workers: Vec<W>, limits: Limits, stop: Arc<AtomicBool>) -> Outcome {
    let n = workers.len().max(1) as u64;
    // Split the budget so the total never exceeds max_ops; the remainder goes to the
    // first workers.
    let base = limits.max_ops / n;
    let extra = limits.max_ops % n;
    let start = Instant::now();
    let deadline = start + limits.duration;
    let mut tasks = Vec::with_capacity(workers.len());
    for (i, mut w) in workers.into_iter().enumerate() {
        let budget = base + u64::from((i as u64) < extra);
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut done = 0u64;
            while done < budget && !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                done += 1;
                let t0 = Instant::now();
                let res = tokio::time::timeout(OP_TIMEOUT, w.op()).await;
                let dt = t0.elapsed();
                match res {
                    Ok(Ok(())) => {
                        out.ops += 1;
                        out.hist.record(dt);
                    }
                    Ok(Err(e)) => out.note_error(format!("{e:#}")),
                    Err(_) => out.note_error(format!(
                        "operation timed out after {} s",
                        OP_TIMEOUT.as_secs()
                    )),
                }
            }
            out
        }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        match t.await {
            Ok(o) => total.absorb(o),
            // A panicking worker is a bug in this tool; count it rather than lose the run.
            Err(e) => total.note_error(format!("worker task failed: {e}")),
        }
    }
    total.elapsed = start.elapsed();
    total
}

impl Outcome {
    fn note_error(&mut self, msg: String) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES && !self.error_samples.contains(&msg) {
            self.error_samples.push(msg);
        }
    }

    fn absorb(&mut self, o: Outcome) {
        self.ops += o.ops;
        self.errors += o.errors;
        self.hist.merge(&o.hist);
        for m in o.error_samples {
            if self.error_samples.len() < MAX_ERROR_SAMPLES && !self.error_samples.contains(&m) {
                self.error_samples.push(m);
            }
        }
    }
}

/// One result line (JSON on stdout).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Always [`TOOL`].
    pub tool: String,
    /// `crypto`, `ub`, `zn`, …
    pub scenario: String,
    /// What was measured, in words (target URL, operation).
    #[serde(default)]
    pub target: String,
    /// Concurrent workers.
    pub concurrency: usize,
    /// Requested duration in seconds.
    pub seconds: f64,
    /// Measured duration in seconds.
    #[serde(default)]
    pub elapsed_secs: f64,
    /// Successful operations.
    pub ops: u64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Median latency of successful operations.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of successful operations.
    pub p99_ms: Option<f64>,
    /// Largest latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
    /// Failed operations.
    pub errors: u64,
    /// The first distinct error messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
    /// crypto only: Milenage (f1 + f2345) alone, per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milenage_per_sec: Option<f64>,
    /// crypto only: Ks plus one Ks_NAF KDF alone, per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf_per_sec: Option<f64>,
    /// Gateway scenarios: what served the load (`osg-psk`, `stunnel`, `nginx-apr1`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Gateway scenarios: the TLS version and suite every connection negotiated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Bulk scenarios: payload bytes sent, and echoed back, per operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_op: Option<u64>,
    /// Bulk scenarios: payload megabytes (10^6 bytes) per second in each direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mb_per_sec: Option<f64>,
    /// Connection-reusing scenarios: connections opened during the measurement (after
    /// the warm-up ones), so a peer that closes keep-alive connections shows up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_connections: Option<u64>,
    /// CPU time of the processes named with `--cpu-pid` during the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuReport>,
}

/// CPU use during a measurement, from `/proc` (user + system time of every thread).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CpuReport {
    /// Wall time between the two samples, seconds.
    pub wall_secs: f64,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// CPU-seconds the whole machine spent working.
    pub machine_busy_secs: f64,
    /// The load generator itself (this process).
    pub load_generator_secs: f64,
    /// Each label given with `--cpu-pid` (processes with the same label summed).
    pub processes: Vec<ProcessCpu>,
    /// Work by every other process on the machine (busy minus the above, at least 0).
    pub other_secs: f64,
}

/// CPU-seconds of one labelled group of processes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProcessCpu {
    /// The label (`gateway`, `upstream`, …).
    pub label: String,
    /// The process ids summed under it.
    pub pids: Vec<u32>,
    /// CPU-seconds used during the measurement.
    pub cpu_secs: f64,
}

impl CpuReport {
    /// CPU-seconds of `label`, if it was measured.
    pub fn secs_of(&self, label: &str) -> Option<f64> {
        self.processes
            .iter()
            .find(|p| p.label == label)
            .map(|p| p.cpu_secs)
    }
}

impl Report {
    /// A report of `outcome`.
    pub fn new(
        scenario: &str,
        target: String,
        concurrency: usize,
        seconds: f64,
        outcome: &Outcome,
    ) -> Self {
        Report {
            tool: TOOL.into(),
            scenario: scenario.into(),
            target,
            concurrency,
            seconds,
            elapsed_secs: outcome.elapsed.as_secs_f64(),
            ops: outcome.ops,
            ops_per_sec: outcome.ops_per_sec(),
            p50_ms: outcome.hist.percentile_ms(50.0),
            p99_ms: outcome.hist.percentile_ms(99.0),
            max_ms: outcome.hist.max_nanos().map(|n| n as f64 / 1e6),
            errors: outcome.errors,
            error_samples: outcome.error_samples.clone(),
            milenage_per_sec: None,
            kdf_per_sec: None,
            gateway: None,
            tls: None,
            bytes_per_op: None,
            mb_per_sec: None,
            new_connections: None,
            cpu: None,
        }
    }

    /// CPU-milliseconds `label` spent per successful operation.
    pub fn cpu_ms_per_op(&self, label: &str) -> Option<f64> {
        let secs = self.cpu.as_ref()?.secs_of(label)?;
        (self.ops > 0).then(|| secs * 1000.0 / self.ops as f64)
    }

    /// The one-line human summary (for stderr).
    pub fn human(&self) -> String {
        let ms = |v: Option<f64>| v.map(crate::report::fmt_ms).unwrap_or_else(|| "-".into());
        let mut s = format!(
            "{}: {} worker(s), {:.1} s: {} ops ({:.1}/s), p50 {} ms, p99 {} ms, {} error(s)",
            self.scenario,
            self.concurrency,
            self.elapsed_secs,
            self.ops,
            self.ops_per_sec,
            ms(self.p50_ms),
            ms(self.p99_ms),
            self.errors
        );
        if let Some(m) = self.milenage_per_sec {
            s.push_str(&format!("; Milenage alone {m:.0}/s"));
        }
        if let Some(k) = self.kdf_per_sec {
            s.push_str(&format!("; KDF alone {k:.0}/s"));
        }
        if let Some(m) = self.mb_per_sec {
            s.push_str(&format!("; {m:.1} MB/s each way"));
        }
        if let Some(c) = &self.cpu {
            for p in &c.processes {
                if let Some(ms) = self.cpu_ms_per_op(&p.label) {
                    s.push_str(&format!("; {} {ms:.3} CPU-ms/op", p.label));
                }
            }
        }
        if let Some(e) = self.error_samples.first() {
            s.push_str(&format!("; first error: {e}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails every third operation.
    struct Flaky {
        n: u64,
    }

    impl Worker for Flaky {
        async fn op(&mut self) -> anyhow::Result<()> {
            self.n += 1;
            tokio::task::yield_now().await;
            if self.n % 3 == 0 {
                anyhow::bail!("flaky failure");
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn budget_is_split_and_errors_counted() {
        let workers = (0..4).map(|_| Flaky { n: 0 }).collect();
        let limits = Limits {
            duration: Duration::from_secs(60),
            max_ops: 30,
        };
        let out = run(workers, limits, Arc::new(AtomicBool::new(false))).await;
        // Budgets 8, 8, 7, 7: two failures per worker (ops 3 and 6).
        assert_eq!(out.ops + out.errors, 30);
        assert_eq!(out.errors, 8);
        assert_eq!(out.hist.count(), out.ops);
        assert_eq!(out.error_samples, vec!["flaky failure".to_string()]);
    }

    #[tokio::test]
    async fn stop_flag_ends_the_run() {
        let workers = vec![Flaky { n: 0 }];
        let limits = Limits {
            duration: Duration::from_secs(60),
            max_ops: 1_000_000,
        };
        let out = run(workers, limits, Arc::new(AtomicBool::new(true))).await;
        assert_eq!(out.ops + out.errors, 0);
        assert_eq!(out.ops_per_sec(), 0.0);
    }
}
