//! Logging set-up: JSON (default) or text logs on stderr, and the audit trail
//! (`seccf::audit` events) appended to a file when configured.

use std::fs::OpenOptions;
use std::sync::Mutex;

use anyhow::Context;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::LogConfig;

/// Installs the global subscriber. `RUST_LOG` overrides the configured level.
pub fn init(cfg: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .context("log.level is not a valid filter")?;
    let main: Box<dyn Layer<_> + Send + Sync> = match cfg.format.as_str() {
        "json" => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        ),
        "text" => Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        ),
        other => anyhow::bail!("log.format must be json or text, not {other:?}"),
    };
    let audit = match &cfg.audit_file {
        Some(path) => {
            let mut opts = OpenOptions::new();
            opts.create(true).append(true);
            // Audit lines hold hashed identities only, but who authenticated when is
            // still operator business: owner-only.
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let file = opts
                .open(path)
                .with_context(|| format!("opening audit file {}", path.display()))?;
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(Mutex::new(file))
                    .with_filter(filter_fn(|m| m.target() == "seccf::audit")),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(main)
        .with(audit)
        .try_init()
        .context("logging already initialised")?;
    Ok(())
}
