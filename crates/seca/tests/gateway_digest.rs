//! `GatewayClient` with server-certificate TLS + GBA HTTP Digest against a hyper NAF
//! (certificate from a test CA) that verifies the Digest with `seccf_digest` and a key
//! derived from the real KMC's record of the context (see `common/mod.rs`); also the
//! mixed PSK + certificate NAF, where TLS 1.3 falls back to the certificate when the
//! PSK is refused, and Digest over plain HTTP.

mod common;

use common::{agent, digest_naf_id, pki, Kmc, Naf, NafCfg, Org};
use seccf_digest::Qop;
use seccf_seca::gateway::{GatewayAuth, GatewayClient, GatewayOptions, Prefer, UaOrg};
use seccf_seca::SecaError;

fn opts(ca: &std::path::Path) -> GatewayOptions {
    GatewayOptions {
        ca_file: Some(ca.to_path_buf()),
        ..GatewayOptions::default()
    }
}

fn text(resp: &seccf_seca::http::HttpResponse) -> String {
    String::from_utf8(resp.body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_over_certificate_tls_both_versions() {
    let kmc = Kmc::start().await;
    let pki = pki();
    for (n, tls13) in [(20, false), (21, true)] {
        let naf = Naf::start(NafCfg::cert(&pki, tls13), kmc.store.clone()).await;
        let mut client = GatewayClient::new(
            agent(&kmc, n, false).await,
            Some(kmc.ub_url()),
            opts(&pki.ca),
        );
        let resp = client.get(&naf.url("/svc?q=1")).await.unwrap();
        assert_eq!(resp.status, 200, "tls13={tls13}: {}", text(&resp));

        let (suite, creds) = {
            let log = naf.log();
            assert_eq!(log.conns.len(), 1, "401 and the answer on one connection");
            let suite = log.conns[0].suite;
            assert!(log.conns[0].psk.is_none());
            if tls13 {
                assert!(matches!(suite, 0x1301..=0x1303), "{suite:04x}");
            } else {
                assert!(suite >= 0xc000, "an ECDHE certificate suite: {suite:04x}");
            }
            // First the bare request, then the Digest answer with the B-TID.
            assert_eq!(log.requests.len(), 2);
            assert!(log.requests[0].authorization.is_none());
            let creds = log.requests[1].authorization.clone().unwrap();
            assert_eq!(creds.realm, "3GPP-bootstrapping@localhost");
            assert_eq!(creds.qop, Some(Qop::Auth), "auth preferred");
            assert_eq!(creds.uri, "/svc?q=1");
            assert!(log.requests.iter().all(|r| r
                .user_agent
                .as_deref()
                .is_some_and(|u| u.contains("3gpp-gba"))));
            (suite, creds)
        };
        // The NAF verified the digest with the key for 01 00 01 yy zz of this suite.
        assert_eq!(
            text(&resp),
            format!("digest btid={} suite={suite:04x} qop=auth", creds.username)
        );
        match client.last_auth() {
            Some(GatewayAuth::Digest {
                btid,
                tls_cipher_suite,
                naf_id,
            }) => {
                assert_eq!(btid, &creds.username);
                assert_eq!(*tls_cipher_suite, Some(suite));
                assert_eq!(naf_id, &digest_naf_id(Org::ThreeGpp, Some(suite)));
            }
            other => panic!("{other:?}"),
        }
        assert!(kmc.knows(&creds.username).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_int_when_it_is_the_only_qop_and_oma_ids() {
    let kmc = Kmc::start().await;
    let pki = pki();
    let mut cfg = NafCfg::cert(&pki, true);
    cfg.digest.qop = vec![Qop::AuthInt];
    cfg.org = Org::Oma;
    let naf = Naf::start(cfg, kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 22, false).await,
        Some(kmc.ub_url()),
        GatewayOptions {
            ua_org: UaOrg::Oma,
            ..opts(&pki.ca)
        },
    );
    let resp = client
        .request(
            "POST",
            &naf.url("/upload"),
            &[("content-type", "text/plain")],
            b"payload",
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", text(&resp));
    assert!(text(&resp).ends_with("qop=auth-int"));
    let creds = naf.log().requests[1].authorization.clone().unwrap();
    assert_eq!(creds.qop, Some(Qop::AuthInt));
    match client.last_auth() {
        Some(GatewayAuth::Digest { naf_id, .. }) => assert_eq!(naf_id.ua.0[0], 0x03),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_nonce_is_answered_again_without_bootstrapping() {
    let kmc = Kmc::start().await;
    let pki = pki();
    let mut cfg = NafCfg::cert(&pki, true);
    cfg.digest.stale_first = true;
    let naf = Naf::start(cfg, kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 23, false).await,
        Some(kmc.ub_url()),
        opts(&pki.ca),
    );
    let resp = client.get(&naf.url("/")).await.unwrap();
    assert_eq!(resp.status, 200);
    let log = naf.log();
    let statuses: Vec<u16> = log.requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 200]);
    let a = log.requests[1].authorization.clone().unwrap();
    let b = log.requests[2].authorization.clone().unwrap();
    assert_eq!(a.username, b.username, "same B-TID: no new bootstrap");
    assert_ne!(a.nonce, b.nonce, "the fresh nonce was used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_btid_gets_one_rebootstrap() {
    let kmc = Kmc::start().await;
    let pki = pki();
    let naf = Naf::start(NafCfg::cert(&pki, false), kmc.store.clone()).await;
    let mut a = agent(&kmc, 24, false).await;
    let old = a.bootstrap(&kmc.ub_url()).await.unwrap();
    naf.reject(&old.btid);
    let mut client = GatewayClient::new(a, Some(kmc.ub_url()), opts(&pki.ca));
    let resp = client.get(&naf.url("/")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", text(&resp));
    {
        let log = naf.log();
        let users: Vec<String> = log
            .requests
            .iter()
            .filter_map(|r| r.authorization.as_ref().map(|c| c.username.clone()))
            .collect();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0], old.btid);
        assert_ne!(users[1], old.btid);
    }

    // Refused again after the fresh bootstrap: an error, and no third bootstrap.
    naf.reject("*");
    client.close();
    let before = naf.log().requests.len();
    match client.get(&naf.url("/")).await {
        Err(SecaError::Rejected(msg)) => assert!(msg.contains("fresh bootstrap"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let sent: Vec<_> = naf.log().requests[before..]
        .iter()
        .filter_map(|r| r.authorization.clone())
        .collect();
    assert_eq!(sent.len(), 2, "one answer with each B-TID");
    assert_ne!(sent[0].username, sent[1].username);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_rspauth_is_refused() {
    let kmc = Kmc::start().await;
    let pki = pki();
    let mut cfg = NafCfg::cert(&pki, true);
    cfg.digest.corrupt_rspauth = true;
    let naf = Naf::start(cfg, kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 25, false).await,
        Some(kmc.ub_url()),
        opts(&pki.ca),
    );
    assert!(matches!(
        client.get(&naf.url("/")).await,
        Err(SecaError::GatewayRspauth)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realm_for_another_host_is_not_answered() {
    let kmc = Kmc::start().await;
    let pki = pki();
    let mut cfg = NafCfg::cert(&pki, true);
    cfg.digest.realm = Some("3GPP-bootstrapping@other.example".into());
    let naf = Naf::start(cfg, kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 26, false).await,
        Some(kmc.ub_url()),
        opts(&pki.ca),
    );
    match client.get(&naf.url("/")).await {
        Err(SecaError::Rejected(msg)) => assert!(msg.contains("other.example"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(naf.log().requests.len(), 1);
    assert!(
        naf.log().requests[0].authorization.is_none(),
        "no credentials sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_refused() {
    let kmc = Kmc::start().await;
    let pki = pki();
    let naf = Naf::start(NafCfg::cert(&pki, true), kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 27, false).await,
        Some(kmc.ub_url()),
        opts(&pki.other_ca),
    );
    match client.get(&naf.url("/")).await {
        Err(SecaError::Tls(msg)) => assert!(msg.contains("certificate"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(naf.log().requests.is_empty());
    // PSK only: a certificate server is never accepted.
    let mut psk_only = GatewayClient::new(
        agent(&kmc, 28, false).await,
        Some(kmc.ub_url()),
        GatewayOptions {
            prefer: Prefer::Psk,
            ..opts(&pki.ca)
        },
    );
    assert!(matches!(
        psk_only.get(&naf.url("/")).await,
        Err(SecaError::Tls(_))
    ));
}

/// One port with PSK and a certificate (as an OSG listener with auth = ["psk",
/// "digest"]): Auto takes the PSK; Prefer::Digest takes the certificate and Digest;
/// and a refused PSK in TLS 1.3 falls back to the certificate, after which Digest
/// with the old B-TID is refused too and the agent bootstraps once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_port_psk_certificate_and_fallback() {
    let kmc = Kmc::start().await;
    let pki = pki();
    let cfg = NafCfg {
        cert: Some((pki.cert.clone(), pki.key.clone())),
        ..NafCfg::psk(true)
    };
    let naf = Naf::start(cfg, kmc.store.clone()).await;

    let mut auto = GatewayClient::new(
        agent(&kmc, 29, false).await,
        Some(kmc.ub_url()),
        opts(&pki.ca),
    );
    assert_eq!(auto.get(&naf.url("/")).await.unwrap().status, 200);
    assert!(matches!(auto.last_auth(), Some(GatewayAuth::Psk { .. })));

    let mut digest = GatewayClient::new(
        agent(&kmc, 30, false).await,
        Some(kmc.ub_url()),
        GatewayOptions {
            prefer: Prefer::Digest,
            ..opts(&pki.ca)
        },
    );
    assert_eq!(digest.get(&naf.url("/")).await.unwrap().status, 200);
    assert!(matches!(
        digest.last_auth(),
        Some(GatewayAuth::Digest { .. })
    ));

    // The NAF forgets the auto client's B-TID.
    let old = match auto.last_auth() {
        Some(GatewayAuth::Psk { identity, .. }) => identity.clone(),
        other => panic!("{other:?}"),
    };
    naf.reject(old.strip_prefix("3GPP-bootstrapping.").unwrap());
    auto.close();
    let conns_before = naf.log().conns.len();
    let resp = auto.get(&naf.url("/")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", text(&resp));
    // TLS 1.3 fell back to the certificate; Digest with the old B-TID got a second
    // 401; the agent bootstrapped and answered on the same connection.
    let log = naf.log();
    assert_eq!(log.conns.len(), conns_before + 1);
    assert!(log.conns.last().unwrap().psk.is_none());
    match auto.last_auth() {
        Some(GatewayAuth::Digest { btid, .. }) => {
            assert_ne!(format!("3GPP-bootstrapping.{btid}"), old)
        }
        other => panic!("{other:?}"),
    }
}

/// The NAF closes the connection with every 401: the answer goes out on a new
/// connection, and its key follows that connection's suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_on_a_new_connection_after_close() {
    let kmc = Kmc::start().await;
    let pki = pki();
    let mut cfg = NafCfg::cert(&pki, false);
    cfg.digest.close_after_401 = true;
    let naf = Naf::start(cfg, kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 31, false).await,
        Some(kmc.ub_url()),
        opts(&pki.ca),
    );
    let resp = client.get(&naf.url("/")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", text(&resp));
    assert!(naf.log().conns.len() >= 2);
}

/// Digest over plain HTTP uses the 01 00 00 00 02 key (TS 24.109 §5.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_over_plain_http() {
    let kmc = Kmc::start().await;
    let cfg = NafCfg {
        tls: false,
        psk: false,
        ..NafCfg::psk(false)
    };
    let naf = Naf::start(cfg, kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 32, false).await,
        Some(kmc.ub_url()),
        GatewayOptions::default(),
    );
    let resp = client.get(&naf.url("/plain")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", text(&resp));
    assert!(text(&resp).contains("suite=none"));
    match client.last_auth() {
        Some(GatewayAuth::Digest {
            tls_cipher_suite: None,
            naf_id,
            ..
        }) => assert_eq!(naf_id, &digest_naf_id(Org::ThreeGpp, None)),
        other => panic!("{other:?}"),
    }
    // PSK needs TLS.
    let mut psk = GatewayClient::new(
        agent(&kmc, 33, false).await,
        Some(kmc.ub_url()),
        GatewayOptions {
            prefer: Prefer::Psk,
            ..GatewayOptions::default()
        },
    );
    assert!(matches!(
        psk.get(&naf.url("/")).await,
        Err(SecaError::BadUrl(_))
    ));
}
