//! `seccf seca …`: the security agent on the command line, with a software USIM.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use seccf_gba::naf::{NafId, UaSecurityProtocolId};
use seccf_seca::Agent;
use seccf_uicc::soft::SoftUsim;
use seccf_uicc::Usim;

/// `seccf seca`.
#[derive(Args, Debug)]
pub struct SecaArgs {
    /// Software USIM file (TOML: impi, k, opc or op, amf, gba_u).
    #[arg(long, env = "SECCF_USIM")]
    usim: PathBuf,
    /// Where the card keeps its SQN state (default: <usim>.state).
    #[arg(long)]
    usim_state: Option<PathBuf>,
    /// Agent state directory (sealed bootstrapping context and its key).
    #[arg(long, env = "SECCF_SECA_STATE", default_value = ".seccf-seca")]
    state_dir: PathBuf,
    /// CA certificate for https:// Ub URLs.
    #[arg(long)]
    ub_ca: Option<PathBuf>,
    #[command(subcommand)]
    cmd: SecaCmd,
}

#[derive(Subcommand, Debug)]
enum SecaCmd {
    /// Bootstrap over Ub (TS 24.109) and store the context; prints B-TID and lifetime.
    Bootstrap {
        /// KMC Ub URL, e.g. http://127.0.0.1:7480/
        #[arg(long)]
        ub_url: String,
    },
    /// Derive the NAF key for a NAF_Id from the stored context.
    ///
    /// The key itself is printed only with --reveal.
    NafKey {
        /// NAF FQDN (as the client addresses it).
        #[arg(long)]
        naf_fqdn: String,
        /// Ua security protocol identifier, 10 hex digits (default 0100000002, HTTP Digest).
        #[arg(long, default_value = "0100000002")]
        ua_id: String,
        /// Print the key (hex and base64) — it is a live credential.
        #[arg(long)]
        reveal: bool,
        /// Bootstrap first at this Ub URL if there is no valid context.
        #[arg(long)]
        ub_url: Option<String>,
    },
    /// GET a URL through a SEC_CF gateway with GBA credentials (PSK-TLS or TLS + Digest).
    Get(crate::seca_gw::GetArgs),
    /// Forward a local TCP port over PSK-TLS to a gateway's TCP listener, until Ctrl-C.
    Tunnel(crate::seca_gw::TunnelArgs),
}

/// Opens the software USIM of the arguments.
pub fn open_usim(usim: &std::path::Path, state: Option<PathBuf>) -> anyhow::Result<Usim<SoftUsim>> {
    let state = state.unwrap_or_else(|| {
        let mut p = usim.as_os_str().to_owned();
        p.push(".state");
        PathBuf::from(p)
    });
    let card = SoftUsim::open(usim, Some(&state))
        .with_context(|| format!("opening software USIM {}", usim.display()))?;
    Ok(Usim::new(card))
}

/// Runs a seca subcommand.
pub async fn run(args: SecaArgs) -> anyhow::Result<()> {
    let usim = open_usim(&args.usim, args.usim_state.clone())?;
    let mut agent = Agent::new(usim)?.with_state_dir(args.state_dir.clone())?;
    if let Some(ca) = &args.ub_ca {
        agent = agent.with_ub_tls(ca.clone());
    }
    match args.cmd {
        SecaCmd::Bootstrap { ub_url } => {
            let ctx = agent.bootstrap(&ub_url).await?;
            let out = serde_json::json!({
                "impi": ctx.impi,
                "btid": ctx.btid,
                "gba_type": ctx.gba_type.as_str(),
                "expires_at": ctx.expires_at,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        SecaCmd::NafKey {
            naf_fqdn,
            ua_id,
            reveal,
            ub_url,
        } => {
            let ua = UaSecurityProtocolId::from_hex(&ua_id)
                .map_err(|e| anyhow::anyhow!("--ua-id: {e}"))?;
            let naf = NafId::new(&naf_fqdn, ua).map_err(|e| anyhow::anyhow!("--naf-fqdn: {e}"))?;
            let ctx = match ub_url {
                Some(url) => agent.ensure_bootstrapped(&url).await?,
                None => agent
                    .context(seccf_kmc::unix_now())?
                    .context("no valid bootstrapping context: run `seccf seca bootstrap` first (or pass --ub-url)")?,
            };
            let key = agent.naf_key(&ctx, &naf)?;
            let mut out = serde_json::json!({
                "btid": ctx.btid,
                "naf_fqdn": naf.fqdn,
                "ua_id": naf.ua.to_hex(),
                "gba_type": ctx.gba_type.as_str(),
                "expires_at": ctx.expires_at,
            });
            if reveal {
                use base64::Engine as _;
                out["key_hex"] = key.reveal_hex().as_str().into();
                out["key_base64"] = base64::engine::general_purpose::STANDARD
                    .encode(key.expose())
                    .into();
            } else {
                out["key"] = "[hidden: pass --reveal to print it]".into();
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        SecaCmd::Get(a) => crate::seca_gw::run_get(agent, a).await?,
        SecaCmd::Tunnel(a) => crate::seca_gw::run_tunnel(agent, a).await?,
    }
    Ok(())
}
