//! `seccf seca get` and `seccf seca tunnel`: the security agent towards SEC_CF gateways
//! on the command line ([`seccf_seca::gateway`] and [`seccf_seca::tunnel`]).
//!
//! Both take an agent built from the common `seccf seca` options (`--usim`,
//! `--usim-state`, `--state-dir`, `--ub-ca`), so the bootstrapping context is shared
//! with `seccf seca bootstrap` and `seccf seca naf-key`.
//!
//! Wiring (in `seca_cmd.rs`, `SecaCmd`):
//! ```text
//! /// GET a URL through a SEC_CF gateway with GBA credentials (PSK-TLS or TLS + Digest).
//! Get(crate::seca_gw::GetArgs),
//! /// Forward a local TCP port over PSK-TLS to a gateway's TCP listener, until Ctrl-C.
//! Tunnel(crate::seca_gw::TunnelArgs),
//! …
//! SecaCmd::Get(a) => crate::seca_gw::run_get(agent, a).await?,
//! SecaCmd::Tunnel(a) => crate::seca_gw::run_tunnel(agent, a).await?,
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use seccf_seca::gateway::{GatewayAuth, GatewayClient, GatewayOptions, Prefer, UaOrg};
use seccf_seca::tunnel::{serve_tunnel, TunnelConfig};
use seccf_seca::Agent;
use seccf_uicc::CardTransport;

/// Which authentication `seccf seca get` offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PreferArg {
    /// PSK-TLS and (with --ca) certificate TLS + Digest; the gateway picks.
    #[default]
    Auto,
    /// PSK-TLS only.
    Psk,
    /// Certificate TLS + GBA Digest only.
    Digest,
}

impl From<PreferArg> for Prefer {
    fn from(p: PreferArg) -> Prefer {
        match p {
            PreferArg::Auto => Prefer::Auto,
            PreferArg::Psk => Prefer::Psk,
            PreferArg::Digest => Prefer::Digest,
        }
    }
}

/// `seccf seca get URL`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The URL (https://, or http:// for Digest over plain HTTP). Its host is the NAF
    /// FQDN the keys are derived for.
    pub url: String,
    /// CA certificate(s) the gateway's server certificate must chain to (certificate
    /// TLS + Digest). Without it, `auto` offers PSK-TLS only.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// KMC Ub URL to bootstrap at when there is no valid context (or the gateway
    /// refuses it). Without it only the stored context is used.
    #[arg(long)]
    pub ub_url: Option<String>,
    /// Use the OMA Ua security protocol ids (03 00 01 yy zz) instead of the 3GPP ones.
    #[arg(long)]
    pub oma: bool,
    /// What to offer the gateway.
    #[arg(long, value_enum, default_value_t = PreferArg::Auto)]
    pub prefer: PreferArg,
    /// Offer TLS 1.2 only.
    #[arg(long)]
    pub tls12: bool,
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// Request body (with -X POST/PUT).
    #[arg(long)]
    pub data: Option<String>,
    /// Largest response body read, in bytes.
    #[arg(long, default_value_t = seccf_seca::gateway::DEFAULT_MAX_RESPONSE_BODY)]
    pub max_body: usize,
}

/// `seccf seca tunnel LOCAL REMOTE`.
#[derive(Args, Debug)]
pub struct TunnelArgs {
    /// Local address to listen on, e.g. 127.0.0.1:7000.
    pub local: String,
    /// The gateway's TCP tunnel listener, host:port.
    pub remote: String,
    /// The gateway's FQDN (SNI and the FQDN of the NAF_Id).
    #[arg(long)]
    pub naf_fqdn: String,
    /// KMC Ub URL to bootstrap at when needed.
    #[arg(long)]
    pub ub_url: String,
    /// Use the OMA Ua security protocol ids instead of the 3GPP ones.
    #[arg(long)]
    pub oma: bool,
    /// Offer TLS 1.2 only.
    #[arg(long)]
    pub tls12: bool,
    /// Close a connection after this many seconds without traffic.
    #[arg(long, default_value_t = 300)]
    pub idle_timeout_secs: u64,
    /// Connections served at once.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
}

fn org(oma: bool) -> UaOrg {
    if oma {
        UaOrg::Oma
    } else {
        UaOrg::ThreeGpp
    }
}

/// The `GetArgs` as client options.
pub fn get_options(args: &GetArgs) -> GatewayOptions {
    GatewayOptions {
        ca_file: args.ca.clone(),
        ua_org: org(args.oma),
        prefer: args.prefer.into(),
        enable_tls13: !args.tls12,
        max_response_body: args.max_body,
        ..GatewayOptions::default()
    }
}

/// One line saying how the request was authenticated (for stderr).
pub fn describe_auth(auth: Option<&GatewayAuth>) -> String {
    match auth {
        Some(GatewayAuth::Psk {
            identity,
            version,
            cipher_suite,
            naf_id,
        }) => format!(
            "authenticated with PSK-TLS ({version}, suite 0x{cipher_suite:04x}) as {identity}; NAF_Id {naf_id}"
        ),
        Some(GatewayAuth::Digest {
            btid,
            tls_cipher_suite,
            naf_id,
        }) => match tls_cipher_suite {
            Some(s) => format!(
                "authenticated with HTTP Digest inside TLS (suite 0x{s:04x}) as {btid}; NAF_Id {naf_id}"
            ),
            None => format!("authenticated with HTTP Digest over plain HTTP as {btid}; NAF_Id {naf_id}"),
        },
        Some(GatewayAuth::None) | None => "not authenticated by the gateway".to_owned(),
    }
}

/// `seccf seca get`: prints `HTTP <status>` and the body on stdout, how the request
/// was authenticated on stderr; fails (after printing) on a status of 400 or more.
pub async fn run_get<T: CardTransport + 'static>(
    agent: Agent<T>,
    args: GetArgs,
) -> anyhow::Result<()> {
    let opts = get_options(&args);
    let mut client = GatewayClient::new(agent, args.ub_url.clone(), opts);
    let body = args.data.as_deref().unwrap_or("").as_bytes();
    let resp = client
        .request(&args.method, &args.url, &[], body)
        .await
        .with_context(|| format!("{} {}", args.method, args.url))?;
    eprintln!("{}", describe_auth(client.last_auth()));
    let mut out = std::io::stdout().lock();
    writeln!(out, "HTTP {}", resp.status)?;
    out.write_all(&resp.body)?;
    if !resp.body.ends_with(b"\n") && !resp.body.is_empty() {
        writeln!(out)?;
    }
    out.flush()?;
    if resp.status >= 400 {
        anyhow::bail!("the gateway answered HTTP {}", resp.status);
    }
    Ok(())
}

/// The `TunnelArgs` as tunnel settings.
pub fn tunnel_config(args: &TunnelArgs) -> TunnelConfig {
    let mut cfg = TunnelConfig::new(&args.remote, &args.naf_fqdn);
    cfg.ua_org = org(args.oma);
    cfg.ub_url = Some(args.ub_url.clone());
    cfg.enable_tls13 = !args.tls12;
    cfg.idle_timeout = Duration::from_secs(args.idle_timeout_secs.max(1));
    cfg.max_connections = args.max_connections.max(1);
    cfg
}

/// `seccf seca tunnel`: listens on LOCAL and forwards until Ctrl-C (or SIGTERM).
pub async fn run_tunnel<T: CardTransport + 'static>(
    agent: Agent<T>,
    args: TunnelArgs,
) -> anyhow::Result<()> {
    let cfg = tunnel_config(&args);
    let listener = tokio::net::TcpListener::bind(&args.local)
        .await
        .with_context(|| format!("listening on {}", args.local))?;
    eprintln!(
        "tunnel {} -> {} (NAF {}); Ctrl-C to stop",
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| args.local.clone()),
        args.remote,
        args.naf_fqdn
    );
    serve_tunnel(listener, cfg, agent, stop_signal()).await?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        match term {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct GetCli {
        #[command(flatten)]
        get: GetArgs,
    }

    #[derive(Parser, Debug)]
    struct TunnelCli {
        #[command(flatten)]
        tunnel: TunnelArgs,
    }

    #[test]
    fn get_arguments() {
        let cli = GetCli::try_parse_from([
            "get",
            "https://osg.example:8443/x",
            "--ca",
            "ca.pem",
            "--ub-url",
            "http://127.0.0.1:7480/",
            "--oma",
            "--prefer",
            "digest",
        ])
        .unwrap();
        let o = get_options(&cli.get);
        assert_eq!(o.ca_file.as_deref(), Some(std::path::Path::new("ca.pem")));
        assert_eq!(o.ua_org, UaOrg::Oma);
        assert_eq!(o.prefer, Prefer::Digest);
        assert!(o.enable_tls13);
        assert_eq!(cli.get.ub_url.as_deref(), Some("http://127.0.0.1:7480/"));

        let cli = GetCli::try_parse_from(["get", "https://h/", "--tls12"]).unwrap();
        let o = get_options(&cli.get);
        assert_eq!(
            (o.ua_org, o.prefer, o.enable_tls13),
            (UaOrg::ThreeGpp, Prefer::Auto, false)
        );
        assert!(GetCli::try_parse_from(["get"]).is_err());
        assert!(GetCli::try_parse_from(["get", "https://h/", "--prefer", "mtls"]).is_err());
    }

    #[test]
    fn tunnel_arguments() {
        let cli = TunnelCli::try_parse_from([
            "tunnel",
            "127.0.0.1:7000",
            "osg.example:7443",
            "--naf-fqdn",
            "osg.example",
            "--ub-url",
            "http://127.0.0.1:7480/",
        ])
        .unwrap();
        let c = tunnel_config(&cli.tunnel);
        assert_eq!(c.remote, "osg.example:7443");
        assert_eq!(c.naf_fqdn, "osg.example");
        assert_eq!(c.ub_url.as_deref(), Some("http://127.0.0.1:7480/"));
        assert_eq!(c.idle_timeout, Duration::from_secs(300));
        assert_eq!(c.ua_org, UaOrg::ThreeGpp);
        // --naf-fqdn and --ub-url are required.
        assert!(
            TunnelCli::try_parse_from(["tunnel", "127.0.0.1:7000", "osg.example:7443"]).is_err()
        );
    }

    #[test]
    fn auth_lines() {
        assert_eq!(describe_auth(None), "not authenticated by the gateway");
        let naf_id = seccf_gba::naf::NafId::new(
            "osg.example",
            seccf_gba::naf::UaSecurityProtocolId::TLS13_SHARED_KEY,
        )
        .unwrap();
        let line = describe_auth(Some(&GatewayAuth::Psk {
            identity: "3GPP-bootstrapping.b@bsf".into(),
            version: seccf_tls::psk::PskTlsVersion::Tls13,
            cipher_suite: 0x1301,
            naf_id,
        }));
        assert!(line.contains("PSK-TLS (TLSv1.3, suite 0x1301)"), "{line}");
        assert!(line.contains("osg.example/0100000007"), "{line}");
    }
}
