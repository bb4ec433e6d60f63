//! `seccf demo`: every flow that exists, end to end, against a dev environment.
//!
//! Each flow prints `PASS <name>` or `FAIL <name>: <reason>`; the exit code is non-zero
//! when any flow failed. Nothing here is simulated: the agent talks to the KMC over
//! HTTP, the gateway side over mutual TLS, exactly as separate processes would.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, ensure, Context};
use clap::Args;
use seccf_gba::naf::{NafId, UaSecurityProtocolId};
use seccf_kmc::zn_client::ZnClient;
use seccf_seca::Agent;
use seccf_secret::random_array;

use crate::dev::DevJson;

/// `seccf demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Use a running dev environment described by this dev.json instead of starting one.
    #[arg(long)]
    pub dev_json: Option<PathBuf>,
}

struct Ctx {
    dev: DevJson,
    work: tempfile::TempDir,
}

impl Ctx {
    fn zn_client(&self) -> anyhow::Result<ZnClient> {
        let tls = seccf_tls::client::ClientTlsConfig {
            ca_file: self.dev.ca_cert.clone(),
            client_cert_file: Some(self.dev.naf_client.cert.clone()),
            client_key_file: Some(self.dev.naf_client.key.clone()),
        };
        Ok(ZnClient::new(&self.dev.kmc.zn_url, &tls)?)
    }

    fn agent(
        &self,
        usim_file: &Path,
        tag: &str,
    ) -> anyhow::Result<Agent<seccf_uicc::soft::SoftUsim>> {
        let state = self.work.path().join(format!("{tag}.usim-state"));
        let usim = crate::seca_cmd::open_usim(usim_file, Some(state))?;
        let agent =
            Agent::new(usim)?.with_state_dir(self.work.path().join(format!("{tag}-seca")))?;
        Ok(agent)
    }

    fn naf_id(&self, ua: UaSecurityProtocolId) -> anyhow::Result<NafId> {
        NafId::new(&self.dev.naf_client.fqdn, ua).map_err(|e| anyhow::anyhow!("{e}"))
    }

    async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(u16, String)> {
        let url = format!("{}{}", self.dev.kmc.admin_url, path);
        let auth = format!("Bearer {}", self.dev.kmc.admin_token);
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let resp = seccf_seca::http::request(
            &url,
            method,
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ],
            &body,
            None,
        )
        .await?;
        Ok((
            resp.status,
            String::from_utf8_lossy(&resp.body).into_owned(),
        ))
    }

    async fn metric(&self, needle: &str) -> anyhow::Result<f64> {
        let resp =
            seccf_seca::http::request(&self.dev.kmc.metrics_url, "GET", &[], &[], None).await?;
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        Ok(text
            .lines()
            .filter(|l| l.starts_with(needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

async fn flow_gba_me(c: &Ctx) -> anyhow::Result<String> {
    let mut agent = c.agent(&c.dev.subscriber.usim_file, "me")?;
    let ctx = agent.bootstrap(&c.dev.kmc.ub_url).await?;
    ensure!(
        ctx.btid.ends_with(&format!("@{}", c.dev.kmc.bsf_domain)),
        "unexpected B-TID {}",
        ctx.btid
    );
    let zn = c.zn_client()?;
    for ua in [
        UaSecurityProtocolId::HTTP_DIGEST,
        UaSecurityProtocolId::tls_3gpp(0x00a8),
        UaSecurityProtocolId::OMA_SIP_DIGEST,
    ] {
        let naf = c.naf_id(ua)?;
        let ue_key = agent.naf_key(&ctx, &naf)?;
        let keys = zn.bootstrapping_info(&ctx.btid, &naf, false).await?;
        ensure!(
            keys.me_key == ue_key,
            "Ks_NAF differs between agent and KMC for Ua id {}",
            ua.to_hex()
        );
        ensure!(
            keys.uicc_key.is_none(),
            "GBA_ME context must not release a UICC key"
        );
        ensure!(keys.impi == ctx.impi, "Zn returned another IMPI");
    }
    Ok(format!(
        "B-TID {} and Ks_NAF agree for 3 Ua protocol ids",
        ctx.btid
    ))
}

async fn flow_gba_u(c: &Ctx) -> anyhow::Result<String> {
    let mut agent = c.agent(&c.dev.subscriber_gba_u.usim_file, "u")?;
    let ctx = agent.bootstrap(&c.dev.kmc.ub_url).await?;
    ensure!(ctx.ks.is_none(), "GBA_U: Ks must stay in the card");
    let naf = c.naf_id(UaSecurityProtocolId::HTTP_DIGEST)?;
    let ext = agent.naf_key(&ctx, &naf)?;
    let zn = c.zn_client()?;
    let keys = zn.bootstrapping_info(&ctx.btid, &naf, true).await?;
    ensure!(
        keys.me_key == ext,
        "Ks_ext_NAF differs between card and KMC"
    );
    let int = keys.uicc_key.context("GBA_U aware NAF got no Ks_int_NAF")?;
    ensure!(int != ext, "Ks_int_NAF must differ from Ks_ext_NAF");
    let unaware = zn.bootstrapping_info(&ctx.btid, &naf, false).await?;
    ensure!(
        unaware.uicc_key.is_none(),
        "Ks_int_NAF released to a request that is not GBA_U aware"
    );
    Ok("Ks_ext_NAF agrees; Ks_int_NAF only for GBA_U-aware requests".into())
}

async fn flow_resync(c: &Ctx) -> anyhow::Result<String> {
    // A fresh subscriber, created through the REST admin API.
    let impi = format!(
        "0010199{:08}@ims.mnc001.mcc001.3gppnetwork.org",
        u32::from_be_bytes(random_array()?) % 100_000_000
    );
    let k = hex::encode(random_array::<16>()?);
    let opc = hex::encode(random_array::<16>()?);
    let spec = serde_json::json!({ "impi": impi, "k": k, "opc": opc });
    let (st, body) = c
        .admin("POST", "/admin/v1/subscribers", Some(spec.clone()))
        .await?;
    ensure!(st == 201, "admin API add subscriber: HTTP {st} {body}");
    let usim_file = c.work.path().join("usim-resync.toml");
    std::fs::write(
        &usim_file,
        format!("impi = \"{impi}\"\nk = \"{k}\"\nopc = \"{opc}\"\namf = \"8000\"\ngba_u = false\n"),
    )?;
    let mut agent = c.agent(&usim_file, "resync")?;
    agent.bootstrap(&c.dev.kmc.ub_url).await?;
    // Reset the network side: the card has already accepted the SQN the KMC will issue next.
    let (st, body) = c
        .admin("DELETE", &format!("/admin/v1/subscribers/{impi}"), None)
        .await?;
    ensure!(st == 204, "admin API delete: HTTP {st} {body}");
    let (st, body) = c.admin("POST", "/admin/v1/subscribers", Some(spec)).await?;
    ensure!(st == 201, "admin API re-add: HTTP {st} {body}");
    let before = c
        .metric("seccf_kmc_ub_requests_total{outcome=\"resync\"}")
        .await?;
    let ctx = agent.bootstrap(&c.dev.kmc.ub_url).await?;
    let after = c
        .metric("seccf_kmc_ub_requests_total{outcome=\"resync\"}")
        .await?;
    ensure!(
        after > before,
        "bootstrap succeeded but the KMC counted no resynchronisation"
    );
    let zn = c.zn_client()?;
    let naf = c.naf_id(UaSecurityProtocolId::HTTP_DIGEST)?;
    let keys = zn.bootstrapping_info(&ctx.btid, &naf, false).await?;
    ensure!(
        keys.me_key == agent.naf_key(&ctx, &naf)?,
        "keys differ after resync"
    );
    let (st, _) = c
        .admin("DELETE", &format!("/admin/v1/subscribers/{impi}"), None)
        .await?;
    ensure!(st == 204, "cleanup failed");
    Ok("AUTS accepted, SQN moved, bootstrap and Zn keys agree".into())
}

async fn flow_zn_refusals(c: &Ctx) -> anyhow::Result<String> {
    let zn = c.zn_client()?;
    let naf = c.naf_id(UaSecurityProtocolId::HTTP_DIGEST)?;
    let fake = format!("AAAAAAAAAAAAAAAAAAAAAA==@{}", c.dev.kmc.bsf_domain);
    match zn.bootstrapping_info(&fake, &naf, false).await {
        Err(e) if e.is_unknown_btid() => {}
        other => bail!("unknown B-TID: expected TRANSACTION_IDENTIFIER_INVALID, got {other:?}"),
    }
    let mut agent = c.agent(&c.dev.subscriber.usim_file, "refusal")?;
    let ctx = agent.bootstrap(&c.dev.kmc.ub_url).await?;
    let foreign = NafId::new("other.example.org", UaSecurityProtocolId::HTTP_DIGEST)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match zn.bootstrapping_info(&ctx.btid, &foreign, false).await {
        Err(seccf_kmc::zn_client::ZnClientError::Refused { status: 403, .. }) => {}
        other => bail!("foreign FQDN: expected 403, got {other:?}"),
    }
    Ok("unknown B-TID → 404, unregistered FQDN → 403".into())
}

async fn flow_osg_mtls(c: &Ctx) -> anyhow::Result<String> {
    let tls = seccf_tls::client::ClientTlsConfig {
        ca_file: c.dev.ca_cert.clone(),
        client_cert_file: Some(c.dev.osg.client_cert.clone()),
        client_key_file: Some(c.dev.osg.client_key.clone()),
    };
    let connector = seccf_tls::client::build_connector(&tls)?;
    let resp = seccf_seca::http::request(
        &c.dev.osg.mtls_url,
        "GET",
        &[("x-3gpp-asserted-identity", "forged@example.org")],
        &[],
        Some(&connector),
    )
    .await?;
    let body = String::from_utf8_lossy(&resp.body).into_owned();
    ensure!(resp.status == 200, "HTTP {}: {body}", resp.status);
    ensure!(
        !body.contains("forged@example.org"),
        "client-supplied identity header reached the resource"
    );
    ensure!(
        body.contains("x-3gpp-asserted-identity: demo-user"),
        "no asserted identity:\n{body}"
    );
    ensure!(
        body.contains("assertion: verified sub=demo-user"),
        "assertion did not verify:\n{body}"
    );
    Ok("certificate identity asserted, forged header stripped, JWT verified".into())
}

async fn flow_osg_tunnel(c: &Ctx) -> anyhow::Result<String> {
    use seccf_tls::psk::{PskClientConfig, PskTlsVersion};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut agent = c.agent(&c.dev.subscriber.usim_file, "tunnel")?;
    let ctx = agent.bootstrap(&c.dev.kmc.ub_url).await?;
    let fqdn = &c.dev.osg.fqdn;
    let naf = |ua| NafId::new(fqdn, ua).map_err(|e| anyhow::anyhow!("{e}"));
    let k13 = agent.naf_key(&ctx, &naf(UaSecurityProtocolId::TLS13_SHARED_KEY)?)?;
    let k12 = agent.naf_key(&ctx, &naf(UaSecurityProtocolId::tls_3gpp(0x00a8))?)?;
    let identity = format!("3GPP-bootstrapping.{}", ctx.btid);
    let keys = move |_hint: Option<&[u8]>, v: PskTlsVersion, suite: u16| match v {
        PskTlsVersion::Tls13 => Some((identity.clone(), seccf_secret::SecretBytes::from(&k13))),
        PskTlsVersion::Tls12 if suite == 0x00a8 => {
            Some((identity.clone(), seccf_secret::SecretBytes::from(&k12)))
        }
        _ => None,
    };
    let connector = seccf_tls::psk::build_psk_connector(
        &PskClientConfig::default(),
        std::sync::Arc::new(keys),
    )?;
    let (host, port) = c
        .dev
        .osg
        .tcp_tunnel_addr
        .rsplit_once(':')
        .context("tunnel address")?;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>()?)).await?;
    let tls = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        seccf_tls::psk::psk_connect(&connector, host, tcp),
    )
    .await
    .context("handshake timed out")??;
    let mut stream = tokio::io::BufReader::new(tls);
    let mut line = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_line(&mut line),
    )
    .await??;
    ensure!(
        line.contains(&format!("identity={}", ctx.impi)) && line.contains("method=psk-tls"),
        "unexpected greeting from the TCP resource: {line:?}"
    );
    stream
        .get_mut()
        .write_all(b"ping through the tunnel\n")
        .await?;
    let mut echo = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_line(&mut echo),
    )
    .await??;
    ensure!(echo == "ping through the tunnel\n", "echo was {echo:?}");
    Ok("PSK-TLS tunnel; PROXY v2 carried the IMPI to the TCP resource".into())
}

/// The agent's gateway client: bootstraps, then picks PSK-TLS or TLS + Digest as
/// the listener offers; the echo resource shows what reached it.
async fn gateway_get(
    c: &Ctx,
    url: &str,
    tag: &str,
    prefer: seccf_seca::gateway::Prefer,
) -> anyhow::Result<(String, String)> {
    let agent = c.agent(&c.dev.subscriber.usim_file, tag)?;
    let opts = seccf_seca::gateway::GatewayOptions {
        ca_file: Some(c.dev.ca_cert.clone()),
        prefer,
        ..Default::default()
    };
    let mut client =
        seccf_seca::gateway::GatewayClient::new(agent, Some(c.dev.kmc.ub_url.clone()), opts);
    let resp = client
        .request(
            "GET",
            url,
            &[("x-3gpp-asserted-identity", "forged@example.org")],
            &[],
        )
        .await?;
    let body = String::from_utf8_lossy(&resp.body).into_owned();
    ensure!(resp.status == 200, "HTTP {}: {body}", resp.status);
    ensure!(
        !body.contains("forged@example.org"),
        "client-supplied identity header reached the resource"
    );
    let impi = &c.dev.subscriber.impi;
    ensure!(
        body.contains(&format!("x-3gpp-asserted-identity: {impi}")),
        "IMPI not asserted:\n{body}"
    );
    ensure!(
        body.contains(&format!("assertion: verified sub={impi}")),
        "assertion did not verify:\n{body}"
    );
    let auth = format!("{:?}", client.last_auth());
    Ok((body, auth))
}

async fn flow_osg_psk(c: &Ctx) -> anyhow::Result<String> {
    let url = format!("https://{}/demo/psk", c.dev.osg.psk_addr);
    let (body, auth) = gateway_get(c, &url, "gw-psk", seccf_seca::gateway::Prefer::Auto).await?;
    ensure!(
        body.contains("x-seccf-auth-method: psk-tls"),
        "not PSK-TLS:\n{body}"
    );
    ensure!(auth.contains("Psk"), "client did not use PSK: {auth}");
    Ok("agent bootstrapped, PSK-TLS with Ks_NAF, IMPI asserted to the resource".into())
}

async fn flow_osg_digest(c: &Ctx) -> anyhow::Result<String> {
    let url = format!("{}demo/digest", c.dev.osg.digest_url);
    let (body, auth) = gateway_get(c, &url, "gw-digest", seccf_seca::gateway::Prefer::Auto).await?;
    ensure!(
        body.contains("x-seccf-auth-method: digest"),
        "not Digest:\n{body}"
    );
    ensure!(auth.contains("Digest"), "client did not use Digest: {auth}");
    Ok("server-certificate TLS + Digest (B-TID, base64 Ks_NAF), IMPI asserted".into())
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut own_env = None;
    let own_dir;
    let dev = match &args.dev_json {
        Some(p) => serde_json::from_slice::<DevJson>(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("parsing {}", p.display()))?,
        None => {
            own_dir = tempfile::tempdir()?;
            let env = crate::dev::start(own_dir.path(), 0).await?;
            let info = env.info.clone();
            own_env = Some((env, own_dir));
            info
        }
    };
    let c = Ctx {
        dev,
        work: tempfile::tempdir()?,
    };
    let mut failed = 0;
    let mut flows = 0;
    macro_rules! flow {
        ($name:expr, $f:expr) => {
            flows += 1;
            match $f.await {
                Ok(detail) => println!("PASS {:<28} {}", $name, detail),
                Err(e) => {
                    failed += 1;
                    println!("FAIL {:<28} {:#}", $name, e);
                }
            }
        };
    }
    flow!("ub+zn gba_me", flow_gba_me(&c));
    flow!("ub+zn gba_u", flow_gba_u(&c));
    flow!("ub sqn resync (admin api)", flow_resync(&c));
    flow!("zn refusals", flow_zn_refusals(&c));
    flow!("osg psk-tls https", flow_osg_psk(&c));
    flow!("osg tls + digest", flow_osg_digest(&c));
    flow!("osg mutual tls", flow_osg_mtls(&c));
    flow!("osg psk-tls tcp tunnel", flow_osg_tunnel(&c));
    if let Some((env, _dir)) = own_env {
        env.stop().await?;
    }
    println!("summary: {} of {} flows passed", flows - failed, flows);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
