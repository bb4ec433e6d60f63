//! `report` and `compare`: turn result lines (the JSON this tool prints) into Markdown
//! tables, so `bench/run.sh` needs no JSON tooling.
//!
//! `compare` pairs every OSG result with every peer result of the same scenario and TLS
//! version and puts the ratio next to the acceptance target: the OSG at least matches
//! stunnel (handshakes/s, bulk MB/s) and reaches at least 0.8× nginx (keep-alive
//! requests/s).

use std::io::Read;
use std::path::Path;

use anyhow::{ensure, Context};

use crate::driver::Report;

/// Largest results file read.
pub const MAX_RESULTS_FILE: u64 = 1024 * 1024;
/// Most result lines rendered in one table.
pub const MAX_RESULTS: usize = 1000;

/// Reads every JSON line of `paths` (blank lines skipped).
pub fn read_results(paths: &[impl AsRef<Path>]) -> anyhow::Result<Vec<Report>> {
    let mut out = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let mut text = String::new();
        std::fs::File::open(p)
            .with_context(|| format!("opening {}", p.display()))?
            .take(MAX_RESULTS_FILE + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("reading {}", p.display()))?;
        ensure!(
            text.len() as u64 <= MAX_RESULTS_FILE,
            "{} is larger than {MAX_RESULTS_FILE} bytes",
            p.display()
        );
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            ensure!(out.len() < MAX_RESULTS, "more than {MAX_RESULTS} results");
            let r: Report = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a seccf-load result", p.display(), n + 1))?;
            out.push(r);
        }
    }
    Ok(out)
}

/// Milliseconds with three significant digits (0.00412, 0.412, 41.2, 412).
pub fn fmt_ms(v: f64) -> String {
    if !v.is_finite() || v <= 0.0 {
        return format!("{v}");
    }
    let decimals = (2 - v.log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.decimals$}")
}

/// A rate: no decimals from 100 up, one below.
pub fn fmt_rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The Markdown table of `results`.
pub fn markdown(results: &[Report]) -> String {
    let opt_ms = |v: Option<f64>| v.map(fmt_ms).unwrap_or_else(|| "–".into());
    let mut s = String::from(
        "| Scenario | What one operation is | Concurrency | Duration (s) | Operations | Operations/s | p50 (ms) | p99 (ms) | Errors |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} | {} | **{}** | {} | {} | {} |\n",
            cell(&r.scenario),
            cell(&r.target),
            r.concurrency,
            r.elapsed_secs,
            r.ops,
            fmt_rate(r.ops_per_sec),
            opt_ms(r.p50_ms),
            opt_ms(r.p99_ms),
            r.errors
        ));
        if let Some(m) = r.milenage_per_sec {
            s.push_str(&format!(
                "| {} (Milenage alone) | f1 + f2345 | 1 | | | {} | | | |\n",
                cell(&r.scenario),
                fmt_rate(m)
            ));
        }
        if let Some(k) = r.kdf_per_sec {
            s.push_str(&format!(
                "| {} (KDF alone) | Ks + one Ks_NAF (HMAC-SHA-256) | 1 | | | {} | | | |\n",
                cell(&r.scenario),
                fmt_rate(k)
            ));
        }
    }
    s
}

/// The acceptance target of a scenario, as a minimum ratio OSG ÷ peer.
pub fn target_ratio(scenario: &str) -> Option<f64> {
    match scenario {
        "tls-handshake" | "tls-bulk" => Some(1.0),
        "https-keepalive" => Some(0.8),
        _ => None,
    }
}

/// The compared quantity of a result and its unit.
fn headline(r: &Report) -> (f64, &'static str) {
    match (r.scenario.as_str(), r.mb_per_sec) {
        ("tls-bulk", Some(m)) => (m, "MB/s"),
        ("tls-handshake", _) => (r.ops_per_sec, "handshakes/s"),
        ("https-keepalive", _) => (r.ops_per_sec, "requests/s"),
        _ => (r.ops_per_sec, "ops/s"),
    }
}

fn measure_name(scenario: &str) -> &'static str {
    match scenario {
        "tls-handshake" => "New PSK-TLS tunnels (handshakes/s)",
        "tls-bulk" => "Bulk through a PSK-TLS tunnel (MB/s each way)",
        "https-keepalive" => "Keep-alive authenticated HTTPS (requests/s)",
        _ => "other",
    }
}

fn fmt_cpu(v: Option<f64>) -> String {
    v.map(|ms| format!("{ms:.3}")).unwrap_or_else(|| "–".into())
}

/// Results of one gateway in one scenario and TLS setting, in input (round) order.
struct Group<'a> {
    scenario: &'a str,
    gateway: &'a str,
    tls: &'a str,
    runs: Vec<&'a Report>,
}

impl Group<'_> {
    fn is_osg(&self) -> bool {
        self.gateway == "osg" || self.gateway.starts_with("osg-")
    }

    fn tls_version(&self) -> &str {
        self.tls.split_whitespace().next().unwrap_or("")
    }

    fn headlines(&self) -> Vec<f64> {
        self.runs.iter().map(|r| headline(r).0).collect()
    }

    fn cpu_ms(&self, label: &str) -> Option<f64> {
        median(
            self.runs
                .iter()
                .filter_map(|r| r.cpu_ms_per_op(label))
                .collect(),
        )
    }

    fn errors(&self) -> u64 {
        self.runs.iter().map(|r| r.errors).sum()
    }
}

/// Median (mean of the two middle values for an even count); `None` when empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => Some((v.get(n / 2 - 1)? + v.get(n / 2)?) / 2.0),
    }
}

/// Groups gateway results by (scenario, gateway, TLS), keeping first-appearance order.
fn groups(results: &[Report]) -> Vec<Group<'_>> {
    let mut out: Vec<Group<'_>> = Vec::new();
    for r in results {
        let (Some(gateway), Some(tls)) = (r.gateway.as_deref(), r.tls.as_deref()) else {
            continue;
        };
        match out
            .iter_mut()
            .find(|g| g.scenario == r.scenario && g.gateway == gateway && g.tls == tls)
        {
            Some(g) => g.runs.push(r),
            None => out.push(Group {
                scenario: &r.scenario,
                gateway,
                tls,
                runs: vec![r],
            }),
        }
    }
    out
}

/// The "OSG versus peers" table: one row per (OSG, peer) pair of the same scenario and
/// TLS version. Repeated runs (rounds) are summarised by their median; the i-th run of
/// each side is taken to be the same round, and the spread of those per-round ratios
/// is shown next to the ratio of the medians.
pub fn compare_markdown(results: &[Report]) -> String {
    let mut s = String::from(
        "| Measure | TLS | OSG | OSG (median) | Peer | Peer (median) | OSG ÷ peer | Per-round ratios | Target | Met | Gateway CPU-ms per op, OSG / peer |\n\
         |---|---|---|---:|---|---:|---:|---:|---:|---|---:|\n",
    );
    let all = groups(results);
    for osg in all.iter().filter(|g| g.is_osg()) {
        for peer in all.iter().filter(|p| {
            !p.is_osg() && p.scenario == osg.scenario && p.tls_version() == osg.tls_version()
        }) {
            let (a, b) = (osg.headlines(), peer.headlines());
            let unit = osg.runs.first().map(|r| headline(r).1).unwrap_or("");
            let (ma, mb) = (median(a.clone()), median(b.clone()));
            let ratio = match (ma, mb) {
                (Some(x), Some(y)) if y > 0.0 => Some(x / y),
                _ => None,
            };
            let per_round: Vec<f64> = a
                .iter()
                .zip(b.iter())
                .filter(|(_, y)| **y > 0.0)
                .map(|(x, y)| x / y)
                .collect();
            let spread = match (
                per_round.iter().copied().reduce(f64::min),
                per_round.iter().copied().reduce(f64::max),
            ) {
                (Some(lo), Some(hi)) if per_round.len() > 1 => {
                    format!("{lo:.2}–{hi:.2} ({} rounds)", per_round.len())
                }
                (Some(lo), _) => format!("{lo:.2} (1 round)"),
                _ => "–".into(),
            };
            let target = target_ratio(osg.scenario);
            let met = match (ratio, target) {
                (Some(r), Some(t)) if r >= t => "yes",
                (Some(_), Some(_)) => "**no**",
                _ => "–",
            };
            let errors = if osg.errors() > 0 || peer.errors() > 0 {
                format!(" (errors: {} / {})", osg.errors(), peer.errors())
            } else {
                String::new()
            };
            let fmt_opt = |v: Option<f64>| v.map(fmt_rate).unwrap_or_else(|| "–".into());
            s.push_str(&format!(
                "| {} | {} | {} | {} {unit} | {} | {} {unit} | **{}** | {spread} | {} | {met}{errors} | {} / {} |\n",
                measure_name(osg.scenario),
                cell(osg.tls_version()),
                cell(osg.gateway),
                fmt_opt(ma),
                cell(peer.gateway),
                fmt_opt(mb),
                ratio.map(|r| format!("{r:.2}")).unwrap_or_else(|| "–".into()),
                target.map(|t| format!("≥ {t:.2}")).unwrap_or_else(|| "–".into()),
                fmt_cpu(osg.cpu_ms("gateway")),
                fmt_cpu(peer.cpu_ms("gateway")),
            ));
        }
    }
    s
}

/// Every gateway run in detail: throughput, latency, errors and where the CPU went.
pub fn runs_markdown(results: &[Report]) -> String {
    let opt_ms = |v: Option<f64>| v.map(fmt_ms).unwrap_or_else(|| "–".into());
    let mut s = String::from(
        "| Scenario | Gateway | TLS | Conc. | Ops | Ops/s | MB/s | p50 (ms) | p99 (ms) | Errors | New conns | CPU-ms/op gateway | upstream | seccf-load | Other processes |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results.iter().filter(|r| r.gateway.is_some()) {
        let own = r
            .cpu
            .as_ref()
            .and_then(|c| (r.ops > 0).then(|| c.load_generator_secs * 1000.0 / r.ops as f64));
        let other = r.cpu.as_ref().map(|c| {
            let cap = c.wall_secs * c.cpus as f64;
            if cap > 0.0 {
                format!("{:.0} %", 100.0 * c.other_secs / cap)
            } else {
                "–".into()
            }
        });
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&r.scenario),
            cell(r.gateway.as_deref().unwrap_or("")),
            cell(r.tls.as_deref().unwrap_or("")),
            r.concurrency,
            r.ops,
            fmt_rate(r.ops_per_sec),
            r.mb_per_sec.map(fmt_rate).unwrap_or_else(|| "–".into()),
            opt_ms(r.p50_ms),
            opt_ms(r.p99_ms),
            r.errors,
            r.new_connections
                .map(|n| n.to_string())
                .unwrap_or_else(|| "–".into()),
            fmt_cpu(r.cpu_ms_per_op("gateway")),
            fmt_cpu(r.cpu_ms_per_op("upstream")),
            fmt_cpu(own),
            other.unwrap_or_else(|| "–".into()),
        ));
    }
    s
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_keeps_three_significant_digits() {
        assert_eq!(fmt_ms(0.004123), "0.00412");
        assert_eq!(fmt_ms(0.4123), "0.412");
        assert_eq!(fmt_ms(41.23), "41.2");
        assert_eq!(fmt_ms(412.3), "412");
        assert_eq!(fmt_ms(4123.0), "4123");
    }

    #[test]
    fn table_round_trips_a_result_line() {
        let line = r#"{"tool":"seccf-load","scenario":"zn","target":"a|b","concurrency":8,"seconds":10.0,"elapsed_secs":10.01,"ops":12345,"ops_per_sec":1233.3,"p50_ms":6.1,"p99_ms":12.26,"errors":0}"#;
        let r: Report = serde_json::from_str(line).expect("result line parses");
        let t = markdown(&[r]);
        assert!(
            t.contains("| zn | a\\|b | 8 | 10.0 | 12345 | **1233** | 6.10 | 12.3 | 0 |"),
            "{t}"
        );
    }
}
