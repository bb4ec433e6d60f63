//! `seccf-load`: the seccf load generator and benchmark tool.
//!
//! What it does:
//! - `crypto`: GBA crypto rates on one core, in process (Milenage + Ks + Ks_NAF, and
//!   each part alone).
//! - `ub`: full GBA bootstraps per second against a running KMC (`seccf dev`), with
//!   test subscribers it creates through the admin API and deletes afterwards.
//! - `zn`: NAF key look-ups per second against a running KMC over mutual TLS
//!   keep-alive connections, every answer checked against the agent's key.
//! - `report`: renders result lines as a Markdown table (used by `bench/run.sh`).
//!
//! Each measuring run prints one JSON object on stdout and a human summary on stderr.
//! Runs are closed loops bounded in time and in operation count; targets must be
//! loopback addresses.
//!
//! What it does not do: it asserts nothing about performance (numbers go to
//! `docs/performance.md`, never into tests), it does not start a KMC (`bench/run.sh`
//! does), it does not run open-loop (fixed-rate) load, and it has no peers yet (stunnel,
//! nginx comparisons are meant to arrive as further subcommands using
//! [`driver::Worker`]).

mod admin;
mod crypto;
mod dev;
mod driver;
mod hist;
mod report;
mod ub;
mod zn;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::driver::{Limits, Report};

/// Longest run accepted, in seconds.
const MAX_SECONDS: u64 = 3600;
/// Most concurrent workers (the KMC's default connection limit is 1024, and Ub uses
/// two connections per bootstrap).
const MAX_CONCURRENCY: u64 = 256;
/// Default and largest operation budget of a network run.
const DEFAULT_MAX_OPS: u64 = 10_000_000;
const MAX_MAX_OPS: u64 = 1_000_000_000;

/// seccf-load — benchmarks and load generation for seccf (loopback targets only).
///
/// Start a KMC with `seccf dev --base-port 0`, then point `ub` and `zn` at its
/// dev.json. Results: one JSON object per run on stdout, a summary on stderr.
#[derive(Parser, Debug)]
#[command(name = "seccf-load", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// GBA crypto on one thread: Milenage f1+f2345, Ks and one Ks_NAF per operation;
    /// also Milenage alone and the KDF alone. The time is split ½, ¼, ¼.
    Crypto {
        /// Total duration in seconds.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
        seconds: u64,
    },
    /// Full GBA bootstraps (Ub) per second with fresh test subscribers.
    Ub {
        #[command(flatten)]
        common: NetArgs,
        /// Test subscribers to create (default: 4 per worker; at least --concurrency).
        #[arg(long)]
        subscribers: Option<usize>,
    },
    /// Zn key look-ups per second for one bootstrapped B-TID.
    Zn {
        #[command(flatten)]
        common: NetArgs,
    },
    /// Render result files (JSON lines from earlier runs) as a Markdown table.
    Report {
        /// Files with one result object per line.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct NetArgs {
    /// dev.json of a running `seccf dev` environment.
    #[arg(long)]
    dev_json: PathBuf,
    /// Concurrent workers.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=MAX_CONCURRENCY))]
    concurrency: u64,
    /// Duration in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    seconds: u64,
    /// Stop after this many operations (successes and errors) even if time remains.
    #[arg(long, default_value_t = DEFAULT_MAX_OPS, value_parser = clap::value_parser!(u64).range(1..=MAX_MAX_OPS))]
    max_ops: u64,
}

impl NetArgs {
    fn limits(&self) -> Limits {
        Limits {
            duration: Duration::from_secs(self.seconds),
            max_ops: self.max_ops,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crypto { seconds } => {
            eprintln!("crypto: single thread, {seconds} s in total");
            crypto::run(seconds).map(Some)
        }
        Command::Report { files } => report::read_results(&files).map(|r| {
            print!("{}", report::markdown(&r));
            None
        }),
        cmd => run_network(cmd).map(Some),
    };
    match result {
        Ok(Some(report)) => emit(&report),
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the result; a run that measured nothing fails.
fn emit(report: &Report) -> ExitCode {
    match serde_json::to_string(report) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("error: cannot encode the result: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("{}", report.human());
    if report.ops == 0 {
        eprintln!("error: no operation succeeded");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn run_network(cmd: Command) -> anyhow::Result<Report> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        // Ctrl-C ends the measurement early; `ub` still deletes its subscribers.
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: finishing the run");
                flag.store(true, Ordering::Relaxed);
            }
        });
        match cmd {
            Command::Ub {
                common,
                subscribers,
            } => {
                let dev = dev::DevJson::load(&common.dev_json)?;
                let concurrency = common.concurrency as usize;
                let settings = ub::UbSettings {
                    concurrency,
                    subscribers: subscribers
                        .unwrap_or_else(|| ub::default_subscribers(concurrency)),
                    limits: common.limits(),
                };
                ub::run(&dev, settings, stop).await
            }
            Command::Zn { common } => {
                let dev = dev::DevJson::load(&common.dev_json)?;
                let settings = zn::ZnSettings {
                    concurrency: common.concurrency as usize,
                    limits: common.limits(),
                };
                zn::run(&dev, settings, stop).await
            }
            Command::Crypto { .. } | Command::Report { .. } => {
                anyhow::bail!("not a network scenario")
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn out_of_range_arguments_are_refused() {
        for argv in [
            &["seccf-load", "crypto", "--seconds", "0"][..],
            &["seccf-load", "zn", "--dev-json", "x", "--concurrency", "0"],
            &[
                "seccf-load",
                "zn",
                "--dev-json",
                "x",
                "--concurrency",
                "100000",
            ],
            &["seccf-load", "ub", "--dev-json", "x", "--seconds", "999999"],
        ] {
            assert!(Cli::try_parse_from(argv).is_err(), "{argv:?}");
        }
        assert!(Cli::try_parse_from(["seccf-load", "ub", "--dev-json", "x"]).is_ok());
    }
}
