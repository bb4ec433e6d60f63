//! `seccf dev`: a complete environment on loopback, made from generated material.
//!
//! The data directory holds everything (master key, PKI, store, software USIMs, the
//! generated `seccf.toml` and `dev.json`); running `seccf dev` again on the same
//! directory reuses it, so subscribers and their SQN state carry over.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use seccf_kmc::admin::{NafSpec, SubscriberSpec};
use seccf_secret::{random_array, MasterKey};
use seccf_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The B-TID domain of the dev KMC.
pub const DEV_BSF_DOMAIN: &str = "bsf.seccf.test";
/// A second FQDN the demo NAF is registered for.
pub const DEV_NAF_FQDN: &str = "naf.seccf.test";
/// The FQDN of the dev gateway (the name clients use, so `localhost`).
pub const DEV_OSG_FQDN: &str = "localhost";

/// `seccf dev`.
#[derive(Args, Debug)]
pub struct DevArgs {
    /// Data directory (created if missing, reused if present).
    #[arg(long, default_value = ".seccf-dev")]
    pub data_dir: PathBuf,
    /// First port: Ub = N, admin = N+1, Zn = N+2. 0 picks free ports.
    #[arg(long, default_value_t = 7480)]
    pub base_port: u16,
}

/// What `dev.json` describes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevJson {
    /// The data directory.
    pub data_dir: PathBuf,
    /// KMC endpoints.
    pub kmc: DevKmc,
    /// CA certificate of every dev server certificate (PEM file).
    pub ca_cert: PathBuf,
    /// Client certificate of the registered demo NAF.
    pub naf_client: DevNafClient,
    /// Demo subscriber (GBA_ME).
    pub subscriber: DevSubscriber,
    /// Demo subscriber with a GBA_U card.
    pub subscriber_gba_u: DevSubscriber,
    /// The security gateway.
    pub osg: DevOsg,
}

/// The dev gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevOsg {
    /// NAF FQDN (keys are derived for it).
    pub fqdn: String,
    /// host:port of the PSK-TLS HTTPS listener.
    pub psk_addr: String,
    /// URL of the server-certificate TLS + Digest listener.
    pub digest_url: String,
    /// URL of the mutual-TLS listener.
    pub mtls_url: String,
    /// host:port of the PSK-TLS TCP tunnel to the TCP echo resource.
    pub tcp_tunnel_addr: String,
    /// Client certificate for the mutual-TLS listener.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// Metrics, health and JWKS.
    pub admin_url: String,
    /// The key set that verifies the gateway's identity assertions.
    pub jwks_url: String,
    /// The HTTP echo resource behind the gateway (direct, unprotected).
    pub echo_http_addr: String,
    /// The TCP echo resource behind the tunnel.
    pub echo_tcp_addr: String,
}

/// KMC endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevKmc {
    /// Ub (HTTP).
    pub ub_url: String,
    /// Zn (HTTPS, mutual TLS).
    pub zn_url: String,
    /// Admin REST API base.
    pub admin_url: String,
    /// Bearer token for the admin API.
    pub admin_token: String,
    /// Prometheus metrics.
    pub metrics_url: String,
    /// B-TID domain.
    pub bsf_domain: String,
}

/// The demo NAF's credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevNafClient {
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
    /// FQDN the NAF is registered for.
    pub fqdn: String,
}

/// A demo subscriber (test credentials, generated for this data directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevSubscriber {
    /// IMPI.
    pub impi: String,
    /// K (hex).
    pub k: String,
    /// OPc (hex).
    pub opc: String,
    /// GBA type.
    pub gba_type: String,
    /// Software USIM file holding the same credentials.
    pub usim_file: PathBuf,
}

/// A running dev environment.
pub struct DevEnv {
    /// Its description (also written to `<data_dir>/dev.json`).
    pub info: DevJson,
    shutdown: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
}

impl DevEnv {
    /// Stops every role gracefully.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        while let Some(r) = self.tasks.join_next().await {
            r.context("a dev role panicked")??;
        }
        Ok(())
    }
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn new_subscriber(
    dir: &Path,
    name: &str,
    impi: &str,
    gba_u: bool,
) -> anyhow::Result<DevSubscriber> {
    let k: [u8; 16] = random_array()?;
    let opc: [u8; 16] = random_array()?;
    let usim_file = dir.join(format!("usim-{name}.toml"));
    let sub = DevSubscriber {
        impi: impi.to_string(),
        k: hex::encode(k),
        opc: hex::encode(opc),
        gba_type: if gba_u { "GBA_U" } else { "GBA_ME" }.into(),
        usim_file: usim_file.clone(),
    };
    let text = format!(
        "# Software USIM generated by `seccf dev` (test credentials).\nimpi = \"{}\"\nk = \"{}\"\nopc = \"{}\"\namf = \"8000\"\ngba_u = {}\n",
        sub.impi, sub.k, sub.opc, gba_u
    );
    write_private(&usim_file, text.as_bytes())?;
    Ok(sub)
}

async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr).await.with_context(|| {
        format!("binding {addr} (use --base-port to pick other ports, 0 for free ones)")
    })
}

/// Creates or reuses `data_dir` and starts the KMC on loopback.
pub async fn start(data_dir: &Path, base_port: u16) -> anyhow::Result<DevEnv> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", data_dir.display()))?;
    let pki = data_dir.join("pki");
    std::fs::create_dir_all(&pki)?;

    // Master key.
    let mk_path = data_dir.join("master.key");
    if !mk_path.exists() {
        let mk = MasterKey::generate()?;
        write_private(&mk_path, format!("{}\n", mk.to_hex().as_str()).as_bytes())?;
    }

    // PKI: one CA for the KMC server certificate and the NAF client certificate.
    let ca_cert = pki.join("ca.pem");
    let kmc_cert = pki.join("kmc.pem");
    let kmc_key = pki.join("kmc.key");
    let naf_cert = pki.join("naf-client.pem");
    let naf_key = pki.join("naf-client.key");
    let osg_cert = pki.join("osg.pem");
    let client_cert = pki.join("demo-client.pem");
    let client_key = pki.join("demo-client.key");
    if !(ca_cert.exists()
        && kmc_cert.exists()
        && naf_cert.exists()
        && osg_cert.exists()
        && client_cert.exists())
    {
        use seccf_tls::pki;
        let ca = pki::generate_ca("seccf dev CA", 3650)?;
        pki::write_pem_pair(&ca, &ca_cert, &pki.join("ca.key"))?;
        let server = pki::issue_server_cert(
            &ca,
            "seccf dev KMC",
            &["localhost", "127.0.0.1", "kmc.seccf.test", DEV_BSF_DOMAIN],
            825,
        )?;
        pki::write_pem_pair(&server, &kmc_cert, &kmc_key)?;
        let client = pki::issue_client_cert(&ca, "demo-naf", 825)?;
        pki::write_pem_pair(&client, &naf_cert, &naf_key)?;
        let osg = pki::issue_server_cert(
            &ca,
            "seccf dev gateway",
            &[DEV_OSG_FQDN, "127.0.0.1", DEV_NAF_FQDN],
            825,
        )?;
        pki::write_pem_pair(&osg, &osg_cert, &pki.join("osg.key"))?;
        let user = pki::issue_client_cert(&ca, "demo-user", 825)?;
        pki::write_pem_pair(&user, &client_cert, &client_key)?;
    }

    // Admin token.
    let token_path = data_dir.join("admin.token");
    let admin_token = match std::fs::read_to_string(&token_path) {
        Ok(t) => t.trim().to_string(),
        Err(_) => {
            let t = hex::encode(random_array::<32>()?);
            write_private(&token_path, format!("{t}\n").as_bytes())?;
            t
        }
    };

    // Listeners first, so the config and dev.json carry the real ports.
    let port = |off: u16| {
        if base_port == 0 {
            0
        } else {
            base_port.saturating_add(off)
        }
    };
    let ub_l = bind(port(0)).await?;
    let admin_l = bind(port(1)).await?;
    let zn_l = bind(port(2)).await?;
    let osg_psk_l = bind(port(3)).await?;
    let osg_digest_l = bind(port(4)).await?;
    let osg_mtls_l = bind(port(5)).await?;
    let osg_tcp_l = bind(port(6)).await?;
    let osg_admin_l = bind(port(7)).await?;
    let echo_http_l = bind(port(8)).await?;
    let echo_tcp_l = bind(port(9)).await?;
    let ub_addr = ub_l.local_addr()?;
    let admin_addr = admin_l.local_addr()?;
    let zn_addr = zn_l.local_addr()?;

    let config_text = format!(
        r#"# Generated by `seccf dev`. Run the same KMC with: seccf kmc --config {dir}/seccf.toml
[log]
format = "text"
level = "info"
audit_file = "{dir}/audit.log"

[store]
path = "{dir}/kmc.sqlite"
master_key_file = "{dir}/master.key"

[kmc]
bsf_domain = "{bsf}"
key_lifetime_secs = 3600
challenge_lifetime_secs = 60

[kmc.ub]
listen = "{ub}"

[kmc.zn]
listen = "{zn}"
[kmc.zn.tls]
cert_file = "{dir}/pki/kmc.pem"
key_file = "{dir}/pki/kmc.key"
client_ca_file = "{dir}/pki/ca.pem"
require_client_cert = true

[kmc.admin]
listen = "{admin}"
token_sha256 = "{token_hash}"

[osg]
fqdn = "{osg_fqdn}"
[osg.kmc]
url = "https://{zn}"
tls = {{ ca_file = "{dir}/pki/ca.pem", client_cert_file = "{dir}/pki/naf-client.pem", client_key_file = "{dir}/pki/naf-client.key" }}
[osg.admin]
listen = "{osg_admin}"

[[osg.listener]]
name = "psk-https"
listen = "{osg_psk}"
kind = "https"
auth = ["psk"]
upstream = "http://{echo_http}"

[[osg.listener]]
name = "digest-https"
listen = "{osg_digest}"
kind = "https"
auth = ["digest"]
tls = {{ cert_file = "{dir}/pki/osg.pem", key_file = "{dir}/pki/osg.key" }}
upstream = "http://{echo_http}"

[[osg.listener]]
name = "mtls-https"
listen = "{osg_mtls}"
kind = "https"
auth = ["mtls"]
tls = {{ cert_file = "{dir}/pki/osg.pem", key_file = "{dir}/pki/osg.key", client_ca_file = "{dir}/pki/ca.pem" }}
upstream = "http://{echo_http}"

[[osg.listener]]
name = "tcp-tunnel"
listen = "{osg_tcp}"
kind = "tcp"
auth = ["psk"]
upstream = "{echo_tcp}"
proxy_protocol = true
"#,
        dir = data_dir.display(),
        bsf = DEV_BSF_DOMAIN,
        ub = ub_addr,
        zn = zn_addr,
        admin = admin_addr,
        token_hash = hex::encode(Sha256::digest(admin_token.as_bytes())),
        osg_fqdn = DEV_OSG_FQDN,
        osg_admin = osg_admin_l.local_addr()?,
        osg_psk = osg_psk_l.local_addr()?,
        osg_digest = osg_digest_l.local_addr()?,
        osg_mtls = osg_mtls_l.local_addr()?,
        osg_tcp = osg_tcp_l.local_addr()?,
        echo_http = echo_http_l.local_addr()?,
        echo_tcp = echo_tcp_l.local_addr()?,
    );
    let config_path = data_dir.join("seccf.toml");
    std::fs::write(&config_path, &config_text)?;
    let cfg = crate::config::Config::from_str_with_env(&config_text, std::iter::empty())?;
    let store = crate::open_store(cfg.store()?)?;

    // Subscribers and the NAF: created once, reused afterwards.
    let dev_json_path = data_dir.join("dev.json");
    let previous: Option<DevJson> = std::fs::read(&dev_json_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let (subscriber, subscriber_gba_u) = match previous {
        Some(p) if p.subscriber.usim_file.exists() && p.subscriber_gba_u.usim_file.exists() => {
            (p.subscriber, p.subscriber_gba_u)
        }
        _ => (
            new_subscriber(
                &data_dir,
                "demo",
                "001010000000001@ims.mnc001.mcc001.3gppnetwork.org",
                false,
            )?,
            new_subscriber(
                &data_dir,
                "demo-gba-u",
                "001010000000002@ims.mnc001.mcc001.3gppnetwork.org",
                true,
            )?,
        ),
    };
    for s in [&subscriber, &subscriber_gba_u] {
        if store.get_subscriber(&s.impi).await?.is_none() {
            let spec = SubscriberSpec {
                impi: s.impi.clone(),
                k: s.k.clone().into(),
                opc: Some(s.opc.clone().into()),
                gba_type: Some(s.gba_type.clone()),
                ..Default::default()
            };
            store.insert_subscriber(&spec.to_subscriber()?).await?;
        }
    }
    let naf = NafSpec {
        name: "demo-naf".into(),
        fqdns: vec![DEV_NAF_FQDN.into(), "localhost".into()],
        cert_sha256: None,
        cert_pem: Some(std::fs::read_to_string(&naf_cert)?),
        gba_u_aware: true,
    }
    .to_record()?;
    let registered = store.list_nafs().await?;
    if !registered.iter().any(|n| n == &naf) {
        if registered.iter().any(|n| n.name == naf.name) {
            store.delete_naf(&naf.name).await?;
        }
        match store.put_naf(&naf).await {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }

    let info = DevJson {
        data_dir: data_dir.clone(),
        kmc: DevKmc {
            ub_url: format!("http://{ub_addr}/"),
            zn_url: format!("https://{zn_addr}"),
            admin_url: format!("http://{admin_addr}"),
            admin_token,
            metrics_url: format!("http://{admin_addr}/metrics"),
            bsf_domain: DEV_BSF_DOMAIN.into(),
        },
        ca_cert,
        naf_client: DevNafClient {
            cert: naf_cert,
            key: naf_key,
            fqdn: DEV_NAF_FQDN.into(),
        },
        subscriber,
        subscriber_gba_u,
        osg: DevOsg {
            fqdn: DEV_OSG_FQDN.into(),
            psk_addr: format!("{}:{}", DEV_OSG_FQDN, osg_psk_l.local_addr()?.port()),
            digest_url: format!(
                "https://{}:{}/",
                DEV_OSG_FQDN,
                osg_digest_l.local_addr()?.port()
            ),
            mtls_url: format!(
                "https://{}:{}/",
                DEV_OSG_FQDN,
                osg_mtls_l.local_addr()?.port()
            ),
            tcp_tunnel_addr: format!("{}:{}", DEV_OSG_FQDN, osg_tcp_l.local_addr()?.port()),
            client_cert,
            client_key,
            admin_url: format!("http://{}", osg_admin_l.local_addr()?),
            jwks_url: format!("http://{}/.well-known/jwks.json", osg_admin_l.local_addr()?),
            echo_http_addr: echo_http_l.local_addr()?.to_string(),
            echo_tcp_addr: echo_tcp_l.local_addr()?.to_string(),
        },
    };
    write_private(
        &dev_json_path,
        serde_json::to_string_pretty(&info)?.as_bytes(),
    )?;

    let mk = cfg.store()?.master_key()?;
    let kmc_cfg = cfg.kmc.clone().context("generated config lacks [kmc]")?;
    let osg_cfg = cfg.osg.clone().context("generated config lacks [osg]")?;
    let kmc = seccf_kmc::Kmc::new(
        kmc_cfg,
        store,
        mk.derive_subkey("seccf audit identity hashing v1"),
    )?;
    let osg = seccf_osg::Osg::new(osg_cfg)?;
    let jwks = osg.jwks_json();
    let (tx, rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let kmc_listeners = seccf_kmc::KmcListeners {
        ub: ub_l,
        zn: zn_l,
        admin: admin_l,
    };
    let r = rx.clone();
    tasks.spawn(async move { kmc.run(kmc_listeners, r).await.map_err(anyhow::Error::from) });
    let mut osg_listeners = seccf_osg::OsgListeners::default();
    osg_listeners
        .listeners
        .insert("psk-https".into(), osg_psk_l);
    osg_listeners
        .listeners
        .insert("digest-https".into(), osg_digest_l);
    osg_listeners
        .listeners
        .insert("mtls-https".into(), osg_mtls_l);
    osg_listeners
        .listeners
        .insert("tcp-tunnel".into(), osg_tcp_l);
    osg_listeners.admin = Some(osg_admin_l);
    let r = rx.clone();
    tasks.spawn(async move { osg.run(osg_listeners, r).await.map_err(anyhow::Error::from) });
    let r = rx.clone();
    tasks.spawn(async move {
        crate::resources::http_echo(echo_http_l, jwks, r).await;
        Ok(())
    });
    let r = rx.clone();
    tasks.spawn(async move {
        crate::resources::tcp_echo(echo_tcp_l, r).await;
        Ok(())
    });
    Ok(DevEnv {
        info,
        shutdown: tx,
        tasks,
    })
}

/// Runs `seccf dev` until SIGINT/SIGTERM.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    crate::logging::init(&crate::config::LogConfig {
        format: "text".into(),
        level: "info".into(),
        audit_file: None,
    })?;
    let env = start(&args.data_dir, args.base_port).await?;
    let i = &env.info;
    let dir = i.data_dir.display();
    println!("seccf dev environment is running (Ctrl-C to stop)");
    println!("  description      {dir}/dev.json");
    println!("  KMC Ub           {}", i.kmc.ub_url);
    println!("  KMC Zn (mTLS)    {}", i.kmc.zn_url);
    println!(
        "  KMC admin        {}  (token in {dir}/admin.token)",
        i.kmc.admin_url
    );
    println!("  metrics          {}", i.kmc.metrics_url);
    println!(
        "  OSG PSK-TLS      https://{}/  (PSK identity 3GPP-bootstrapping.<B-TID>)",
        i.osg.psk_addr
    );
    println!("  OSG TLS+Digest   {}", i.osg.digest_url);
    println!(
        "  OSG mutual TLS   {}  (client cert {})",
        i.osg.mtls_url,
        i.osg.client_cert.display()
    );
    println!(
        "  OSG TCP tunnel   {}  (PSK-TLS, to a TCP echo)",
        i.osg.tcp_tunnel_addr
    );
    println!("  OSG metrics/JWKS {}", i.osg.admin_url);
    println!();
    println!("Try:");
    println!("  seccf demo --dev-json {dir}/dev.json");
    println!(
        "  seccf seca --usim {} --state-dir {dir}/seca bootstrap --ub-url {}",
        i.subscriber.usim_file.display(),
        i.kmc.ub_url
    );
    println!(
        "  seccf seca --usim {} --state-dir {dir}/seca naf-key --naf-fqdn {} --reveal",
        i.subscriber.usim_file.display(),
        i.naf_client.fqdn
    );
    println!("  seccf admin --config {dir}/seccf.toml subscriber list");
    println!("  curl -s {}", i.kmc.metrics_url);
    println!(
        "  curl --cacert {} --cert {} --key {} {}",
        i.ca_cert.display(),
        i.osg.client_cert.display(),
        i.osg.client_key.display(),
        i.osg.mtls_url
    );
    crate::shutdown_signal().await;
    println!("stopping");
    env.stop().await
}
