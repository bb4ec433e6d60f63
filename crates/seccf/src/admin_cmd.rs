//! `seccf admin …`: subscriber and NAF registry administration on the KMC store.
//!
//! The CLI opens the store file named in the configuration directly (SQLite allows it
//! while the KMC runs); the REST admin API offers the same operations remotely.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use seccf_kmc::admin::{NafSpec, SubscriberSpec};
use seccf_store::{Store, UserSecuritySettings};

use crate::config::Config;

/// `seccf admin`.
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Configuration file (its [store] is used).
    #[arg(long, short, env = "SECCF_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    cmd: AdminCmd,
}

#[derive(Subcommand, Debug)]
enum AdminCmd {
    /// Subscribers (the built-in AuC).
    #[command(subcommand)]
    Subscriber(SubscriberCmd),
    /// Gateways allowed to fetch keys over Zn.
    #[command(subcommand)]
    Naf(NafCmd),
    /// Delete expired bootstrapping contexts and challenges now.
    Gc,
}

#[derive(Subcommand, Debug)]
enum SubscriberCmd {
    /// Add a subscriber. K, OPc and OP may come from the environment (SECCF_SUB_K,
    /// SECCF_SUB_OPC, SECCF_SUB_OP) instead of flags, to keep them out of shell history
    /// and process listings.
    Add {
        /// IMPI (user@realm).
        #[arg(long)]
        impi: String,
        /// K (32 hex digits).
        #[arg(long, env = "SECCF_SUB_K", hide_env_values = true)]
        k: String,
        /// OPc (32 hex digits).
        #[arg(
            long,
            env = "SECCF_SUB_OPC",
            hide_env_values = true,
            conflicts_with = "op"
        )]
        opc: Option<String>,
        /// OP (32 hex digits); only the derived OPc is stored.
        #[arg(long, env = "SECCF_SUB_OP", hide_env_values = true)]
        op: Option<String>,
        /// AMF (4 hex digits).
        #[arg(long, default_value = "8000")]
        amf: String,
        /// Initial SQN counter (the first vector uses counter + 1; 32 gives SEQ 1).
        #[arg(long, default_value_t = seccf_kmc::admin::DEFAULT_INITIAL_SQN)]
        sqn: u64,
        /// GBA_ME or GBA_U.
        #[arg(long, default_value = "GBA_ME")]
        gba_type: String,
        /// Ks lifetime override in seconds.
        #[arg(long)]
        key_lifetime_secs: Option<u64>,
        /// Public identity for the user security settings (repeatable).
        #[arg(long = "public-id")]
        public_ids: Vec<String>,
        /// USS flag (repeatable).
        #[arg(long = "flag")]
        flags: Vec<String>,
    },
    /// List subscribers (no secrets).
    List,
    /// Remove a subscriber and its contexts.
    Remove {
        /// IMPI.
        impi: String,
    },
}

#[derive(Subcommand, Debug)]
enum NafCmd {
    /// Register a NAF by its client certificate.
    Add {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// FQDN it may request keys for (repeatable; `*.domain` = one label).
        #[arg(long = "fqdn", required = true)]
        fqdns: Vec<String>,
        /// Its client certificate (PEM file).
        #[arg(
            long,
            conflicts_with = "cert_sha256",
            required_unless_present = "cert_sha256"
        )]
        cert: Option<PathBuf>,
        /// SHA-256 of its client certificate (hex).
        #[arg(long)]
        cert_sha256: Option<String>,
        /// May receive Ks_int_NAF (GBA_U).
        #[arg(long)]
        gba_u_aware: bool,
    },
    /// List registered NAFs.
    List,
    /// Remove a NAF.
    Remove {
        /// Name.
        name: String,
    },
}

/// Runs an admin subcommand.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    let store = crate::open_store(cfg.store()?)?;
    match args.cmd {
        AdminCmd::Subscriber(SubscriberCmd::Add {
            impi,
            k,
            opc,
            op,
            amf,
            sqn,
            gba_type,
            key_lifetime_secs,
            public_ids,
            flags,
        }) => {
            let spec = SubscriberSpec {
                impi,
                k: k.into(),
                opc: opc.map(Into::into),
                op: op.map(Into::into),
                amf: Some(amf),
                sqn: Some(sqn),
                gba_type: Some(gba_type),
                key_lifetime_secs,
                uss: Some(UserSecuritySettings {
                    public_ids,
                    flags,
                    naf_groups: Vec::new(),
                }),
            };
            let sub = spec.to_subscriber()?;
            store.insert_subscriber(&sub).await?;
            println!("added subscriber {} ({})", sub.impi, sub.gba_type);
        }
        AdminCmd::Subscriber(SubscriberCmd::List) => {
            let list = store.list_subscribers().await?;
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        AdminCmd::Subscriber(SubscriberCmd::Remove { impi }) => {
            if store.delete_subscriber(&impi).await? {
                println!("removed subscriber {impi}");
            } else {
                anyhow::bail!("no subscriber {impi}");
            }
        }
        AdminCmd::Naf(NafCmd::Add {
            name,
            fqdns,
            cert,
            cert_sha256,
            gba_u_aware,
        }) => {
            let cert_pem = match cert {
                Some(p) => Some(
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?,
                ),
                None => None,
            };
            let rec = NafSpec {
                name,
                fqdns,
                cert_sha256,
                cert_pem,
                gba_u_aware,
            }
            .to_record()?;
            store.put_naf(&rec).await?;
            println!(
                "registered NAF {} for {:?} (client cert sha256 {})",
                rec.name, rec.fqdns, rec.cert_sha256
            );
        }
        AdminCmd::Naf(NafCmd::List) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&store.list_nafs().await?)?
            );
        }
        AdminCmd::Naf(NafCmd::Remove { name }) => {
            if store.delete_naf(&name).await? {
                println!("removed NAF {name}");
            } else {
                anyhow::bail!("no NAF {name}");
            }
        }
        AdminCmd::Gc => {
            let s = store.gc(seccf_kmc::unix_now()).await?;
            println!(
                "removed {} expired contexts and {} expired challenges",
                s.contexts, s.challenges
            );
        }
    }
    Ok(())
}
