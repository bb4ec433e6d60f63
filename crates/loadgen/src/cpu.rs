//! CPU accounting of a measurement: the processes named with `--cpu-pid LABEL=PID`,
//! this process, and the whole machine, sampled from `/proc` right before and right
//! after the measured loop (so set-up and warm-up are not counted).
//!
//! Per-operation CPU is the number that compares gateways fairly on a shared 2-core
//! machine: throughput depends on how the cores were split between client, gateway
//! and upstream; CPU-seconds per operation do not.

use std::io::Read;
use std::time::Instant;

use anyhow::{ensure, Context};
use seccf_load::procstat::{
    parse_machine_stat, parse_pid_stat, ticks_to_secs, MAX_MACHINE_STAT_LEN, MAX_PID_STAT_LEN,
};

use crate::driver::{CpuReport, ProcessCpu};

/// Most `--cpu-pid` arguments.
pub const MAX_CPU_PIDS: usize = 16;
/// Longest label.
pub const MAX_LABEL_LEN: usize = 32;
/// The label of this process in reports.
pub const SELF_LABEL: &str = "seccf-load";

/// One `--cpu-pid LABEL=PID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PidSpec {
    /// Lower-case letters, digits and `-`.
    pub label: String,
    /// The process.
    pub pid: u32,
}

/// clap value parser for `LABEL=PID`.
pub fn parse_pid_spec(text: &str) -> Result<PidSpec, String> {
    let (label, pid) = text
        .split_once('=')
        .ok_or_else(|| "expected LABEL=PID, e.g. gateway=1234".to_string())?;
    if label.is_empty()
        || label.len() > MAX_LABEL_LEN
        || !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || label == SELF_LABEL
    {
        return Err(format!(
            "label must be 1..={MAX_LABEL_LEN} of [a-z0-9-] and not {SELF_LABEL:?}"
        ));
    }
    let pid: u32 = pid
        .parse()
        .map_err(|_| format!("{pid:?} is not a process id"))?;
    if pid == 0 {
        return Err("process id 0 is not a process".into());
    }
    Ok(PidSpec {
        label: label.to_string(),
        pid,
    })
}

/// Reads at most `max` bytes of a `/proc` file.
fn read_bounded(path: &str, max: usize) -> anyhow::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    std::fs::File::open(path)
        .with_context(|| format!("opening {path}"))?
        .take(max as u64)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {path}"))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn pid_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    // One byte more than allowed, so an overlong file is refused rather than cut.
    let text = read_bounded(&path, MAX_PID_STAT_LEN + 1)?;
    Ok(parse_pid_stat(&text)
        .with_context(|| format!("parsing {path}"))?
        .total())
}

/// A point-in-time reading.
pub struct CpuSample {
    at: Instant,
    machine: u64,
    own: u64,
    pids: Vec<u64>,
}

/// Samples the configured processes.
pub struct CpuProbe {
    specs: Vec<PidSpec>,
}

impl CpuProbe {
    /// A probe for `specs` (checked to exist now, so a wrong pid fails before the run).
    pub fn new(specs: Vec<PidSpec>) -> anyhow::Result<Self> {
        ensure!(
            specs.len() <= MAX_CPU_PIDS,
            "at most {MAX_CPU_PIDS} --cpu-pid arguments"
        );
        for s in &specs {
            pid_ticks(s.pid).with_context(|| format!("--cpu-pid {}={}", s.label, s.pid))?;
        }
        Ok(CpuProbe { specs })
    }

    /// Reads every counter.
    pub fn sample(&self) -> anyhow::Result<CpuSample> {
        let at = Instant::now();
        // /proc/stat may be longer than the bound on big machines: only its first line
        // is used, so a cut is harmless here.
        let machine = parse_machine_stat(&read_bounded("/proc/stat", MAX_MACHINE_STAT_LEN)?)
            .context("parsing /proc/stat")?
            .busy;
        let own = pid_ticks(std::process::id())?;
        let pids = self
            .specs
            .iter()
            .map(|s| pid_ticks(s.pid))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(CpuSample {
            at,
            machine,
            own,
            pids,
        })
    }

    /// What happened between `a` and `b`.
    pub fn report(&self, a: &CpuSample, b: &CpuSample) -> CpuReport {
        let mut processes: Vec<ProcessCpu> = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            let before = a.pids.get(i).copied().unwrap_or(0);
            let after = b.pids.get(i).copied().unwrap_or(0);
            let secs = ticks_to_secs(after.saturating_sub(before));
            match processes.iter_mut().find(|p| p.label == spec.label) {
                Some(p) => {
                    p.cpu_secs += secs;
                    p.pids.push(spec.pid);
                }
                None => processes.push(ProcessCpu {
                    label: spec.label.clone(),
                    pids: vec![spec.pid],
                    cpu_secs: secs,
                }),
            }
        }
        let machine = ticks_to_secs(b.machine.saturating_sub(a.machine));
        let own = ticks_to_secs(b.own.saturating_sub(a.own));
        let named: f64 = processes.iter().map(|p| p.cpu_secs).sum();
        CpuReport {
            wall_secs: b.at.saturating_duration_since(a.at).as_secs_f64(),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            machine_busy_secs: machine,
            load_generator_secs: own,
            processes,
            other_secs: (machine - own - named).max(0.0),
        }
    }
}

/// Samples around `fut`: the report is `None` (with a warning) when a process went
/// away, so a crashed peer does not throw away the throughput numbers.
pub async fn measure<T>(
    probe: &CpuProbe,
    fut: impl std::future::Future<Output = T>,
) -> (T, Option<CpuReport>) {
    let before = probe.sample();
    let out = fut.await;
    let after = probe.sample();
    match (before, after) {
        (Ok(a), Ok(b)) => (out, Some(probe.report(&a, &b))),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("warning: no CPU accounting for this run: {e:#}");
            (out, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_specs_are_checked() {
        assert_eq!(
            parse_pid_spec("gateway=42"),
            Ok(PidSpec {
                label: "gateway".into(),
                pid: 42
            })
        );
        for bad in [
            "gateway",
            "=42",
            "Gateway=42",
            "gateway=0",
            "gateway=-1",
            "gateway=x",
            "seccf-load=42",
            "a b=1",
        ] {
            assert!(parse_pid_spec(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn measures_a_busy_process_and_sums_labels() {
        // This process, under two labels and twice under one: the busy loop must show.
        let me = std::process::id();
        let probe = CpuProbe::new(vec![
            PidSpec {
                label: "a".into(),
                pid: me,
            },
            PidSpec {
                label: "b".into(),
                pid: me,
            },
            PidSpec {
                label: "b".into(),
                pid: me,
            },
        ])
        .expect("own pid exists");
        let ((), report) = measure(&probe, async {
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed().as_millis() < 300 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        })
        .await;
        let r = report.expect("samples taken");
        let a = r.secs_of("a").expect("label a");
        let b = r.secs_of("b").expect("label b");
        // 300 ms of spinning at 10 ms tick resolution.
        assert!(a >= 0.2, "{a}");
        assert!((b - 2.0 * a).abs() < 1e-9, "{a} {b}");
        assert!(r.load_generator_secs >= 0.2, "{r:?}");
        assert!(r.wall_secs >= 0.3, "{r:?}");
        assert_eq!(r.processes.len(), 2);
        assert_eq!(r.processes[1].pids, vec![me, me]);
    }

    #[test]
    fn a_missing_process_is_refused_up_front() {
        // pid_max is at most 2^22 on Linux, so this pid cannot exist.
        let r = CpuProbe::new(vec![PidSpec {
            label: "gone".into(),
            pid: 4_194_305,
        }]);
        assert!(r.is_err());
    }
}
