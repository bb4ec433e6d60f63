//! `seccf-load`: the seccf load generator and benchmark tool.
//!
//! What it does:
//! - `crypto`: GBA crypto rates on one core, in process (Milenage + Ks + Ks_NAF, and
//!   each part alone).
//! - `ub`: full GBA bootstraps per second against a running KMC (`seccf dev`), with
//!   test subscribers it creates through the admin API and deletes afterwards.
//! - `zn`: NAF key look-ups per second against a running KMC over mutual TLS
//!   keep-alive connections, every answer checked against the agent's key.
//! - Gateway against peers, with one client for all: `tls-handshake` and `tls-bulk`
//!   (PSK-TLS tunnels through the OSG or stunnel), `https-keepalive` (authenticated
//!   keep-alive HTTPS through the OSG's PSK or Digest listener or nginx), helped by
//!   `gba-keys` (one bootstrap whose keys a whole run shares, also written as stunnel
//!   PSK files), `upstream` (the fixed-size HTTP resource behind every gateway) and
//!   `free-ports`. With `--cpu-pid LABEL=PID` a run also reports the CPU time of the
//!   named processes during the measurement.
//! - `report` and `compare`: render result lines as Markdown tables (used by
//!   `bench/run.sh`).
//!
//! Each measuring run prints one JSON object on stdout and a human summary on stderr.
//! Runs are closed loops bounded in time and in operation count; targets must be
//! loopback addresses.
//!
//! What it does not do: it asserts nothing about performance (numbers go to
//! `docs/performance.md`, never into tests), it starts no server it measures (the KMC,
//! the OSG, stunnel and nginx are started by `bench/run.sh`), and it does not run
//! open-loop (fixed-rate) load.

mod admin;
mod cpu;
mod crypto;
mod dev;
mod driver;
mod gbakeys;
mod hist;
mod https;
mod report;
mod tlsclient;
mod tunnel;
mod ub;
mod upstream;
mod zn;

use std::net::SocketAddr;
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
    /// Render gateway results as the OSG-versus-peers ratio table and a detail table.
    Compare {
        /// Files with one result object per line.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Bootstrap the dev subscriber once and write the key file the gateway scenarios
    /// share (mode 0600; it holds test keys), plus stunnel PSKsecrets files.
    GbaKeys {
        /// dev.json of a running `seccf dev` environment.
        #[arg(long)]
        dev_json: PathBuf,
        /// Key file to create (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// stunnel PSKsecrets file for TLS 1.2 (Ua id 01000100a8) to create.
        #[arg(long)]
        stunnel_tls12: Option<PathBuf>,
        /// stunnel PSKsecrets file for TLS 1.3 (Ua id 0100000007) to create.
        #[arg(long)]
        stunnel_tls13: Option<PathBuf>,
    },
    /// New PSK-TLS tunnels per second: connect, handshake, one byte echoed, close.
    TlsHandshake {
        #[command(flatten)]
        gw: GatewayArgs,
        /// The gateway at --addr (labels the report; the client is the same).
        #[arg(long, value_enum)]
        target: tunnel::TunnelTarget,
    },
    /// Payload MB/s through open PSK-TLS tunnels (chunks sent and echoed back).
    TlsBulk {
        #[command(flatten)]
        gw: GatewayArgs,
        /// The gateway at --addr (labels the report; the client is the same).
        #[arg(long, value_enum)]
        target: tunnel::TunnelTarget,
        /// Bytes per operation, each way.
        #[arg(long, default_value_t = tunnel::DEFAULT_CHUNK)]
        chunk_bytes: usize,
    },
    /// Authenticated HTTPS requests per second over keep-alive connections.
    HttpsKeepalive {
        #[command(flatten)]
        gw: GatewayArgs,
        /// The gateway at --addr and how requests are authenticated.
        #[arg(long, value_enum)]
        target: https::HttpsTarget,
        /// CA of the server certificate (osg-digest, nginx).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// File with one line `user:password` (nginx).
        #[arg(long)]
        basic_auth_file: Option<PathBuf>,
    },
    /// Serve the benchmark upstreams: HTTP (200 and a fixed-size body for every
    /// request) and a TCP echo that strips a leading PROXY v2 header.
    Upstream {
        /// Loopback address of the HTTP upstream (port 0 picks one; it is printed).
        #[arg(long, value_parser = tlsclient::loopback_addr)]
        http_listen: Option<SocketAddr>,
        /// Loopback address of the TCP echo (port 0 picks one; it is printed).
        #[arg(long, value_parser = tlsclient::loopback_addr)]
        tcp_listen: Option<SocketAddr>,
        /// Response body size.
        #[arg(long, default_value_t = upstream::DEFAULT_BODY_BYTES)]
        body_bytes: usize,
    },
    /// Print free loopback TCP ports, one per line.
    FreePorts {
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: usize,
    },
}

#[derive(Args, Debug)]
struct GatewayArgs {
    /// Gateway address (loopback IP:port).
    #[arg(long, value_parser = tlsclient::loopback_addr)]
    addr: SocketAddr,
    /// Key file written by `gba-keys`.
    #[arg(long)]
    keys: PathBuf,
    /// TLS version (each pinned to one AES-128-GCM suite).
    #[arg(long, value_enum, default_value = "1.3")]
    tls: tlsclient::TlsVer,
    /// TLS host name (SNI, certificate name); default the key file's FQDN.
    #[arg(long)]
    host: Option<String>,
    /// Gateway label in the report (default from --target).
    #[arg(long)]
    label: Option<String>,
    /// Report the CPU time of this process under LABEL (repeatable; the gateway
    /// comparison uses the labels `gateway` and `upstream`).
    #[arg(long = "cpu-pid", value_parser = cpu::parse_pid_spec)]
    cpu_pids: Vec<cpu::PidSpec>,
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

impl GatewayArgs {
    fn limits(&self) -> Limits {
        Limits {
            duration: Duration::from_secs(self.seconds),
            max_ops: self.max_ops,
        }
    }

    fn host(&self, keys: &seccf_load::keyfile::GbaKeys) -> String {
        self.host.clone().unwrap_or_else(|| keys.fqdn().to_string())
    }
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
        Command::Compare { files } => report::read_results(&files).map(|r| {
            print!(
                "{}\n{}",
                report::compare_markdown(&r),
                report::runs_markdown(&r)
            );
            None
        }),
        Command::FreePorts { count } => upstream::free_ports(count).map(|ports| {
            for p in ports {
                println!("{p}");
            }
            None
        }),
        cmd => run_network(cmd),
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

/// Runs a command that needs the async runtime; `None` for those that print no result.
fn run_network(cmd: Command) -> anyhow::Result<Option<Report>> {
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
                ub::run(&dev, settings, stop).await.map(Some)
            }
            Command::Zn { common } => {
                let dev = dev::DevJson::load(&common.dev_json)?;
                let settings = zn::ZnSettings {
                    concurrency: common.concurrency as usize,
                    limits: common.limits(),
                };
                zn::run(&dev, settings, stop).await.map(Some)
            }
            Command::GbaKeys {
                dev_json,
                out,
                stunnel_tls12,
                stunnel_tls13,
            } => {
                let dev = dev::DevJson::load(&dev_json)?;
                gbakeys::run(
                    &dev,
                    &out,
                    stunnel_tls12.as_deref(),
                    stunnel_tls13.as_deref(),
                )
                .await?;
                Ok(None)
            }
            Command::Upstream {
                http_listen,
                tcp_listen,
                body_bytes,
            } => {
                upstream::run(http_listen, tcp_listen, body_bytes).await?;
                Ok(None)
            }
            Command::TlsHandshake { gw, target } => {
                let keys = gbakeys::load(&gw.keys)?;
                let probe = cpu::CpuProbe::new(gw.cpu_pids.clone())?;
                let connector = tlsclient::psk_connector(&keys, gw.tls)?;
                let settings = tunnel_settings(&gw, &keys, target);
                tunnel::run_handshakes(connector, settings, &probe, stop)
                    .await
                    .map(Some)
            }
            Command::TlsBulk {
                gw,
                target,
                chunk_bytes,
            } => {
                let keys = gbakeys::load(&gw.keys)?;
                let probe = cpu::CpuProbe::new(gw.cpu_pids.clone())?;
                let connector = tlsclient::psk_connector(&keys, gw.tls)?;
                let settings = tunnel_settings(&gw, &keys, target);
                tunnel::run_bulk(connector, settings, chunk_bytes, &probe, stop)
                    .await
                    .map(Some)
            }
            Command::HttpsKeepalive {
                gw,
                target,
                ca_file,
                basic_auth_file,
            } => {
                let keys = gbakeys::load(&gw.keys)?;
                let probe = cpu::CpuProbe::new(gw.cpu_pids.clone())?;
                let settings = https::HttpsSettings {
                    addr: gw.addr,
                    host: gw.host(&keys),
                    ver: gw.tls,
                    target,
                    label: gw.label.clone(),
                    ca_file,
                    basic_file: basic_auth_file,
                    concurrency: gw.concurrency as usize,
                    limits: gw.limits(),
                };
                https::run(&keys, settings, &probe, stop).await.map(Some)
            }
            Command::Crypto { .. }
            | Command::Report { .. }
            | Command::Compare { .. }
            | Command::FreePorts { .. } => {
                anyhow::bail!("not a network scenario")
            }
        }
    })
}

fn tunnel_settings(
    gw: &GatewayArgs,
    keys: &seccf_load::keyfile::GbaKeys,
    target: tunnel::TunnelTarget,
) -> tunnel::TunnelSettings {
    tunnel::TunnelSettings {
        addr: gw.addr,
        host: gw.host(keys),
        ver: gw.tls,
        target,
        label: gw.label.clone(),
        concurrency: gw.concurrency as usize,
        limits: gw.limits(),
    }
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
