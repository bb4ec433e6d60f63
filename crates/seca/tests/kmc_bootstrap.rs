//! The agent against the real KMC Ub service (`seccf_kmc::ub::UbService` served by
//! `seccf_kmc::http::serve` on 127.0.0.1, SQLite in memory), over real sockets, with
//! software USIMs: GBA_ME, GBA_U, resynchronisation, HTTPS, persistence, failures.
//! The KMC's own record of each context is the independent check of what the agent
//! derived.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use seccf_gba::naf::{self, NafId, UaSecurityProtocolId};
use seccf_gba::{GbaType, Secret, SqnWindow};
use seccf_kmc::config::UbAlgorithm;
use seccf_kmc::http::{serve, ConnInfo, FullRequest, FullResponse, Limits};
use seccf_kmc::obs::{Audit, Metrics};
use seccf_kmc::ub::{UbRequest, UbService, UbSettings};
use seccf_seca::{Agent, SecaError};
use seccf_secret::MasterKey;
use seccf_store::sqlite::SqliteStore;
use seccf_store::{Store, Subscriber, UserSecuritySettings};
use seccf_uicc::soft::{SoftUsim, SoftUsimConfig};
use seccf_uicc::Usim;
use tokio::net::TcpListener;
use tokio::sync::watch;

const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
const BSF_DOMAIN: &str = "bsf.mnc001.mcc001.pub.3gppnetwork.org";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Kmc {
    store: Arc<SqliteStore>,
    port: u16,
    stop: watch::Sender<bool>,
}

impl Drop for Kmc {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn start_kmc(tls: Option<Arc<openssl::ssl::SslAcceptor>>, algorithm: UbAlgorithm) -> Kmc {
    let store = Arc::new(SqliteStore::open_in_memory(MasterKey::generate().unwrap()).unwrap());
    let settings = UbSettings {
        realm: BSF_DOMAIN.into(),
        bsf_domain: BSF_DOMAIN.into(),
        key_lifetime_secs: 3600,
        challenge_lifetime_secs: 60,
        algorithm,
    };
    let ub = Arc::new(UbService::new(
        store.clone(),
        settings,
        Arc::new(Metrics::new()),
        Arc::new(Audit::new(Secret::new([9; 32]))),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, rx) = watch::channel(false);
    let handler = move |req: FullRequest, _info: ConnInfo| {
        let ub = ub.clone();
        async move {
            let auth = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let resp = ub
                .handle(
                    UbRequest {
                        method: req.method().as_str(),
                        path: req.uri().path(),
                        authorization: auth.as_deref(),
                        body: req.body(),
                    },
                    now(),
                )
                .await;
            let mut r: FullResponse = http::Response::new(Full::new(Bytes::from(resp.body)));
            *r.status_mut() = http::StatusCode::from_u16(resp.status).unwrap();
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(resp.content_type),
            );
            for (name, value) in resp.headers {
                r.headers_mut()
                    .insert(name, http::HeaderValue::from_str(&value).unwrap());
            }
            r
        }
    };
    let mut rx2 = rx.clone();
    tokio::spawn(serve(
        listener,
        tls,
        Limits::default(),
        handler,
        async move {
            let _ = rx2.wait_for(|v| *v).await;
        },
    ));
    drop(rx);
    Kmc { store, port, stop }
}

async fn add_subscriber(kmc: &Kmc, impi: &str, gba_type: GbaType, sqn: u64) {
    kmc.store
        .insert_subscriber(&Subscriber {
            impi: impi.into(),
            k: Secret::from_hex(K).unwrap(),
            opc: Secret::from_hex(OPC).unwrap(),
            amf: [0x80, 0x00],
            sqn,
            gba_type,
            key_lifetime_secs: None,
            uss: UserSecuritySettings::default(),
        })
        .await
        .unwrap();
}

fn soft_card(impi: &str, k: &str, gba_u: bool, window: Option<[u64; 32]>) -> Usim<SoftUsim> {
    Usim::new(SoftUsim::from_config(SoftUsimConfig {
        impi: impi.into(),
        k: Secret::from_hex(k).unwrap(),
        opc: Secret::from_hex(OPC).unwrap(),
        amf: [0x80, 0x00],
        gba_u,
        sqn_window: window,
        delta: SqnWindow::DEFAULT_DELTA,
    }))
}

fn naf_id() -> NafId {
    NafId::new("naf.example.com", UaSecurityProtocolId::HTTP_DIGEST).unwrap()
}

/// The NAF key the KMC would hand a NAF for this context (from its own Ks).
async fn kmc_naf_key(kmc: &Kmc, btid: &str) -> Secret<32> {
    let c = kmc
        .store
        .get_context(btid, now())
        .await
        .unwrap()
        .expect("KMC has the context");
    naf::ks_naf(&c.ks, &c.rand, &c.impi, &naf_id()).unwrap()
}

#[tokio::test]
async fn gba_me_bootstrap_matches_the_kmc() {
    let kmc = start_kmc(None, UbAlgorithm::AkaV1Md5).await;
    let impi = "001010000000001@ims.mnc001.mcc001.3gppnetwork.org";
    add_subscriber(&kmc, impi, GbaType::Me, 0).await;
    let mut agent = Agent::new(soft_card(impi, K, false, None)).unwrap();
    let url = format!("http://127.0.0.1:{}/", kmc.port);
    let ctx = agent.bootstrap(&url).await.unwrap();

    assert_eq!(ctx.gba_type, GbaType::Me);
    assert!(ctx.btid.ends_with(&format!("@{BSF_DOMAIN}")));
    assert!(ctx.is_valid(now()));
    assert!(
        (ctx.expires_at - (now() + 3600)).abs() <= 5,
        "lifetime ≈ 1 h"
    );
    let stored = kmc
        .store
        .get_context(&ctx.btid, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.rand, ctx.rand);
    assert_eq!(
        Some(&stored.ks),
        ctx.ks.as_ref(),
        "agent and KMC agree on Ks"
    );

    let key = agent.naf_key(&ctx, &naf_id()).unwrap();
    assert_eq!(key, kmc_naf_key(&kmc, &ctx.btid).await);

    // A second bootstrap gives a new context (fresh RAND, next SQN accepted by the card).
    let again = agent.bootstrap(&url).await.unwrap();
    assert_ne!(again.btid, ctx.btid);
}

#[tokio::test]
async fn akav2_bootstrap() {
    let kmc = start_kmc(None, UbAlgorithm::AkaV2Md5).await;
    let impi = "001010000000009@ims.mnc001.mcc001.3gppnetwork.org";
    add_subscriber(&kmc, impi, GbaType::Me, 0).await;
    let mut agent = Agent::new(soft_card(impi, K, false, None)).unwrap();
    let ctx = agent
        .bootstrap(&format!("http://127.0.0.1:{}/", kmc.port))
        .await
        .unwrap();
    let stored = kmc
        .store
        .get_context(&ctx.btid, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Some(&stored.ks), ctx.ks.as_ref());
}

#[tokio::test]
async fn gba_u_bootstrap_keeps_ks_in_the_card() {
    let kmc = start_kmc(None, UbAlgorithm::AkaV1Md5).await;
    let impi = "001010000000002@ims.mnc001.mcc001.3gppnetwork.org";
    add_subscriber(&kmc, impi, GbaType::U, 0).await;
    let mut agent = Agent::new(soft_card(impi, K, true, None)).unwrap();
    assert_eq!(agent.gba_type(), GbaType::U);
    let ctx = agent
        .bootstrap(&format!("http://127.0.0.1:{}/", kmc.port))
        .await
        .unwrap();
    assert_eq!(ctx.gba_type, GbaType::U);
    assert!(ctx.ks.is_none());
    // The agent wrote EF_GBABP.
    let gbabp = agent.usim_mut().read_gbabp().unwrap().unwrap();
    assert_eq!(
        (gbabp.rand, gbabp.btid.as_str()),
        (ctx.rand, ctx.btid.as_str())
    );
    // Ks_ext_NAF from the card equals the KMC's Ks_NAF derivation ("gba-me").
    let key = agent.naf_key(&ctx, &naf_id()).unwrap();
    assert_eq!(key, kmc_naf_key(&kmc, &ctx.btid).await);
}

#[tokio::test]
async fn resynchronisation_round() {
    let kmc = start_kmc(None, UbAlgorithm::AkaV1Md5).await;
    let impi = "001010000000003@ims.mnc001.mcc001.3gppnetwork.org";
    // The KMC's counter starts at 0 while the card has already seen SEQ 5000 in every
    // IND slot: the first challenge is stale and the card answers AUTS.
    add_subscriber(&kmc, impi, GbaType::Me, 0).await;
    let mut agent = Agent::new(soft_card(impi, K, false, Some([5000; 32]))).unwrap();
    let ctx = agent
        .bootstrap(&format!("http://127.0.0.1:{}/", kmc.port))
        .await
        .unwrap();
    assert!(kmc
        .store
        .get_context(&ctx.btid, now())
        .await
        .unwrap()
        .is_some());
    let sub = kmc.store.get_subscriber(impi).await.unwrap().unwrap();
    assert!(
        sub.sqn >> 5 > 5000,
        "KMC counter moved past the card's SQN_MS"
    );
}

#[tokio::test]
async fn state_dir_persists_the_context_across_agents() {
    let kmc = start_kmc(None, UbAlgorithm::AkaV1Md5).await;
    let impi = "001010000000004@ims.mnc001.mcc001.3gppnetwork.org";
    add_subscriber(&kmc, impi, GbaType::Me, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("seca");
    let url = format!("http://127.0.0.1:{}/", kmc.port);

    let ctx = {
        let mut agent = Agent::new(soft_card(impi, K, false, None))
            .unwrap()
            .with_state_dir(state.clone())
            .unwrap();
        agent.ensure_bootstrapped(&url).await.unwrap()
    };
    assert!(state.join(seccf_seca::CONTEXT_FILE).exists());

    // A new agent finds it without talking to any BSF (the URL is unreachable).
    let mut agent = Agent::new(soft_card(impi, K, false, None))
        .unwrap()
        .with_state_dir(state.clone())
        .unwrap();
    assert_eq!(agent.context(now()).unwrap(), Some(ctx.clone()));
    let again = agent
        .ensure_bootstrapped("http://127.0.0.1:1/")
        .await
        .unwrap();
    assert_eq!(again, ctx);
    assert_eq!(
        agent.naf_key(&again, &naf_id()).unwrap(),
        kmc_naf_key(&kmc, &ctx.btid).await
    );
    // Past its lifetime (minus the margin) it is gone.
    assert_eq!(agent.context(ctx.expires_at - 29).unwrap(), None);

    // Another identity with the same state directory does not see it.
    let mut other = Agent::new(soft_card(
        "001010000000099@ims.mnc001.mcc001.3gppnetwork.org",
        K,
        false,
        None,
    ))
    .unwrap()
    .with_state_dir(state.clone())
    .unwrap();
    assert_eq!(other.context(now()).unwrap(), None);

    // forget_context removes it from disk too.
    agent.forget_context().unwrap();
    let mut fresh = Agent::new(soft_card(impi, K, false, None))
        .unwrap()
        .with_state_dir(state)
        .unwrap();
    assert_eq!(fresh.context(now()).unwrap(), None);
}

#[tokio::test]
async fn gba_u_context_from_disk_needs_the_card_to_hold_it() {
    let kmc = start_kmc(None, UbAlgorithm::AkaV1Md5).await;
    let impi = "001010000000005@ims.mnc001.mcc001.3gppnetwork.org";
    add_subscriber(&kmc, impi, GbaType::U, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/", kmc.port);
    let mut agent = Agent::new(soft_card(impi, K, true, None))
        .unwrap()
        .with_state_dir(dir.path().to_path_buf())
        .unwrap();
    agent.bootstrap(&url).await.unwrap();
    // A different (fresh) card with the same IMPI holds no Ks: the stored GBA_U
    // context is not offered.
    let mut other_card = Agent::new(soft_card(impi, K, true, None))
        .unwrap()
        .with_state_dir(dir.path().to_path_buf())
        .unwrap();
    assert_eq!(other_card.context(now()).unwrap(), None);
}

#[tokio::test]
async fn network_authentication_failure_and_unknown_subscriber() {
    let kmc = start_kmc(None, UbAlgorithm::AkaV1Md5).await;
    let impi = "001010000000006@ims.mnc001.mcc001.3gppnetwork.org";
    add_subscriber(&kmc, impi, GbaType::Me, 0).await;
    let url = format!("http://127.0.0.1:{}/", kmc.port);

    // The card has another K: AUTN's MAC fails on the card; nothing is answered.
    let mut agent = Agent::new(soft_card(
        impi,
        "000102030405060708090a0b0c0d0e0f",
        false,
        None,
    ))
    .unwrap();
    assert!(matches!(
        agent.bootstrap(&url).await,
        Err(SecaError::NetworkAuthFailed)
    ));

    let mut stranger = Agent::new(soft_card(
        "001010000000777@ims.mnc001.mcc001.3gppnetwork.org",
        K,
        false,
        None,
    ))
    .unwrap();
    match stranger.bootstrap(&url).await {
        Err(SecaError::Status { code: 403, body }) => assert!(body.contains("unknown"), "{body}"),
        other => panic!("{other:?}"),
    }

    // Wrong path on the KMC: 404 surfaces as a status error.
    let mut agent = Agent::new(soft_card(impi, K, false, None)).unwrap();
    assert!(matches!(
        agent
            .bootstrap(&format!("http://127.0.0.1:{}/other", kmc.port))
            .await,
        Err(SecaError::Status { code: 404, .. })
    ));
}

fn write_pki(dir: &Path) -> (seccf_tls::server::ServerTlsConfig, std::path::PathBuf) {
    use seccf_tls::pki;
    let ca = pki::generate_ca("seca test CA", 1).unwrap();
    let leaf = pki::issue_server_cert(&ca, "kmc", &["127.0.0.1"], 1).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let cert = dir.join("kmc.pem");
    let key = dir.join("kmc.key");
    pki::write_pem_pair(&leaf, &cert, &key).unwrap();
    (
        seccf_tls::server::ServerTlsConfig {
            cert_file: cert,
            key_file: key,
            client_ca_file: None,
            require_client_cert: false,
        },
        ca_path,
    )
}

#[tokio::test]
async fn bootstrap_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (server_cfg, ca_path) = write_pki(dir.path());
    let acceptor = Arc::new(seccf_tls::server::build_acceptor(&server_cfg).unwrap());
    let kmc = start_kmc(Some(acceptor), UbAlgorithm::AkaV1Md5).await;
    let impi = "001010000000007@ims.mnc001.mcc001.3gppnetwork.org";
    add_subscriber(&kmc, impi, GbaType::Me, 0).await;
    let url = format!("https://127.0.0.1:{}/", kmc.port);

    let mut agent = Agent::new(soft_card(impi, K, false, None))
        .unwrap()
        .with_ub_tls(ca_path);
    let ctx = agent.bootstrap(&url).await.unwrap();
    assert!(kmc
        .store
        .get_context(&ctx.btid, now())
        .await
        .unwrap()
        .is_some());

    // Without the operator CA (system trust store only) the server is not trusted.
    let mut untrusting = Agent::new(soft_card(impi, K, false, None)).unwrap();
    assert!(matches!(
        untrusting.bootstrap(&url).await,
        Err(SecaError::Tls(_))
    ));
    // Plain HTTP to the TLS port fails cleanly.
    let mut plain = Agent::new(soft_card(impi, K, false, None)).unwrap();
    assert!(plain
        .bootstrap(&format!("http://127.0.0.1:{}/", kmc.port))
        .await
        .is_err());
}
