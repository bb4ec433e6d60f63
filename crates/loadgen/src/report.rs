//! `report`: turns result lines (the JSON this tool prints) into a Markdown table, so
//! `bench/run.sh` needs no JSON tooling and later peer comparisons share one format.

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

fn fmt_rate(v: f64) -> String {
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
