//! `seccf`: one binary for the SEC_CF key management centre, the security agent, the
//! operator tools and the development environment. It parses arguments and
//! configuration, builds the components from the library crates and runs them.

mod admin_cmd;
mod config;
mod crypto_cmd;
mod demo;
mod dev;
mod logging;
mod resources;
mod seca_cmd;
mod seca_gw;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// seccf — OMA SEC_CF security enabler: GBA key management centre (KMC), security
/// agent (SECA) and operator tools.
///
/// Start with `seccf dev` (everything on loopback with generated keys and PKI) and
/// `seccf demo` (runs every flow end to end and prints PASS/FAIL per flow).
#[derive(Parser, Debug)]
#[command(name = "seccf", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the key management centre (GBA BSF: Ub, Zn, admin API) from a TOML config.
    ///
    /// Environment variables SECCF__SECTION__KEY override config values
    /// (e.g. SECCF__KMC__UB__LISTEN=0.0.0.0:80). SIGINT/SIGTERM stop it gracefully.
    Kmc {
        /// Configuration file.
        #[arg(long, short, env = "SECCF_CONFIG")]
        config: PathBuf,
    },
    /// Run the security gateway (PSK-TLS, TLS + Digest, mutual TLS in front of HTTP and
    /// TCP enablers) from the `[osg]` table of a TOML config.
    ///
    /// SIGHUP reloads certificates, CRLs and users files without dropping connections;
    /// SIGINT/SIGTERM drain and stop.
    Osg {
        /// Configuration file.
        #[arg(long, short, env = "SECCF_CONFIG")]
        config: PathBuf,
    },
    /// Run every role the configuration contains ([kmc] and/or [osg]) in one process.
    Run {
        /// Configuration file.
        #[arg(long, short, env = "SECCF_CONFIG")]
        config: PathBuf,
    },
    /// Check a configuration file and print what it would run.
    CheckConfig {
        /// Configuration file.
        #[arg(long, short, env = "SECCF_CONFIG")]
        config: PathBuf,
    },
    /// Administer subscribers and the NAF registry directly in the KMC store.
    Admin(admin_cmd::AdminArgs),
    /// Security agent: bootstrap with a (software) USIM and derive NAF keys.
    Seca(seca_cmd::SecaArgs),
    /// Offline GBA crypto tools for debugging interop with other stacks.
    Crypto(crypto_cmd::CryptoArgs),
    /// Start a complete development environment on loopback.
    ///
    /// Creates (or reuses) a data directory with a master key, a test PKI, an SQLite
    /// store, a registered demo NAF and demo subscribers with software USIMs, starts the
    /// KMC, and writes <data-dir>/dev.json describing it all.
    Dev(dev::DevArgs),
    /// Run every flow end to end against a dev environment and print PASS/FAIL lines.
    ///
    /// Without --dev-json it starts its own dev environment in a temporary directory.
    /// Exits non-zero if any flow fails.
    Demo(demo::DemoArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Kmc { config } => {
            let mut cfg = config::Config::load(&config)?;
            logging::init(&cfg.log)?;
            cfg.osg = None;
            anyhow::ensure!(cfg.kmc.is_some(), "the configuration has no [kmc] table");
            run_roles(cfg).await?;
        }
        Command::Osg { config } => {
            let mut cfg = config::Config::load(&config)?;
            logging::init(&cfg.log)?;
            cfg.kmc = None;
            anyhow::ensure!(cfg.osg.is_some(), "the configuration has no [osg] table");
            run_roles(cfg).await?;
        }
        Command::Run { config } => {
            let cfg = config::Config::load(&config)?;
            logging::init(&cfg.log)?;
            anyhow::ensure!(
                cfg.kmc.is_some() || cfg.osg.is_some(),
                "the configuration has neither [kmc] nor [osg]"
            );
            run_roles(cfg).await?;
        }
        Command::CheckConfig { config } => {
            let cfg = config::Config::load(&config)?;
            if let Some(store) = &cfg.store {
                store.master_key()?;
            }
            println!("configuration OK");
            if let Some(k) = &cfg.kmc {
                println!(
                    "kmc: ub {} zn {} admin {} (B-TID domain {})",
                    k.ub.listen, k.zn.listen, k.admin.listen, k.bsf_domain
                );
            }
            if let Some(o) = &cfg.osg {
                for l in &o.listeners {
                    println!(
                        "osg: listener {} on {} ({:?}, auth {:?}) -> {}",
                        l.name,
                        l.listen,
                        l.kind,
                        l.auth,
                        l.upstream().unwrap_or("(routes)")
                    );
                    for r in &l.routes {
                        println!(
                            "osg:   route {} {}{} -> {}",
                            r.name,
                            r.host.as_deref().unwrap_or(""),
                            r.path_prefix,
                            r.upstream.as_deref().or(l.upstream()).unwrap_or("-")
                        );
                    }
                }
            }
        }
        Command::Admin(a) => admin_cmd::run(a).await?,
        Command::Seca(a) => seca_cmd::run(a).await?,
        Command::Crypto(a) => crypto_cmd::run(a)?,
        Command::Dev(a) => dev::run(a).await?,
        Command::Demo(a) => return demo::run(a).await,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Opens the store named in the config.
pub fn open_store(cfg: &config::StoreConfig) -> anyhow::Result<seccf_store::sqlite::SqliteStore> {
    let mk = cfg.master_key()?;
    if let Some(parent) = cfg.path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
    }
    seccf_store::sqlite::SqliteStore::open(&cfg.path, mk)
        .with_context(|| format!("opening store {}", cfg.path.display()))
}

/// Runs the roles of a loaded configuration until SIGINT/SIGTERM; SIGHUP reloads the
/// gateway's TLS material. Every listener is bound before any role starts, so a bad
/// address fails the start instead of leaving half a deployment running.
async fn run_roles(cfg: config::Config) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();

    let kmc = match cfg.kmc.clone() {
        Some(kmc_cfg) => {
            let store_cfg = cfg.store()?;
            let mk = store_cfg.master_key()?;
            let audit_key = mk.derive_subkey("seccf audit identity hashing v1");
            let store = open_store(store_cfg)?;
            let listeners = seccf_kmc::KmcListeners::bind(&kmc_cfg)
                .await
                .context("binding the KMC listeners")?;
            Some((seccf_kmc::Kmc::new(kmc_cfg, store, audit_key)?, listeners))
        }
        None => None,
    };
    let osg = match cfg.osg.clone() {
        Some(osg_cfg) => {
            let listeners = seccf_osg::OsgListeners::bind(&osg_cfg)
                .await
                .context("binding the gateway listeners")?;
            Some((seccf_osg::Osg::new(osg_cfg)?, listeners))
        }
        None => None,
    };
    if let Some((kmc, listeners)) = kmc {
        let rx = rx.clone();
        tasks.spawn(async move { kmc.run(listeners, rx).await.map_err(anyhow::Error::from) });
    }
    let reload = osg.as_ref().map(|(o, _)| o.reload_handle());
    if let Some((osg, listeners)) = osg {
        let rx = rx.clone();
        tasks.spawn(async move { osg.run(listeners, rx).await.map_err(anyhow::Error::from) });
    }
    #[cfg(unix)]
    if let Some(reload) = reload {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut hup) = signal(SignalKind::hangup()) {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    match reload.reload() {
                        Ok(()) => tracing::info!("gateway TLS material reloaded"),
                        Err(e) => {
                            tracing::error!(error = %e, "reload failed; keeping the old material")
                        }
                    }
                }
            });
        }
    }
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; draining connections");
        let _ = tx.send(true);
    });
    while let Some(res) = tasks.join_next().await {
        res.context("a role panicked")??;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
