//! `GatewayClient` over PSK-TLS against a NAF built from `seccf_tls::psk` whose key
//! lookup derives Ks_NAF from the real KMC's record of the context (see
//! `common/mod.rs`), on TLS 1.2 and TLS 1.3, with 3GPP and OMA Ua ids, GBA_ME and
//! GBA_U cards; re-bootstrap when the NAF does not know the B-TID.
//!
//! Multi-thread runtimes: the NAF's PSK lookup blocks in place on the KMC store.

mod common;

use common::{agent, psk_naf_id, Kmc, Naf, NafCfg, Org};
use seccf_seca::gateway::{GatewayAuth, GatewayClient, GatewayOptions, Prefer, UaOrg};
use seccf_seca::SecaError;
use seccf_tls::psk::PskTlsVersion;

fn opts(org: UaOrg) -> GatewayOptions {
    GatewayOptions {
        ua_org: org,
        ..GatewayOptions::default()
    }
}

/// The body of the NAF's PSK answer: what it saw of the connection.
fn body(resp: &seccf_seca::http::HttpResponse) -> String {
    String::from_utf8(resp.body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psk_tls12_identity_suite_and_key() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(NafCfg::psk(false), kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 1, false).await,
        Some(kmc.ub_url()),
        opts(UaOrg::ThreeGpp),
    );
    let resp = client.get(&naf.url("/res?x=1")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", body(&resp));

    // The agent bootstrapped (no context before) and the NAF saw the prefixed B-TID.
    let (identity, version, suite) = {
        let log = naf.log();
        assert_eq!(log.conns.len(), 1);
        let (identity, version) = log.conns[0].psk.clone().expect("a PSK connection");
        (identity, version, log.conns[0].suite)
    };
    assert_eq!(version, PskTlsVersion::Tls12);
    let btid = identity
        .strip_prefix("3GPP-bootstrapping.")
        .expect("identity prefix");
    assert!(
        btid.ends_with(&format!("@{}", common::BSF_DOMAIN)),
        "{btid}"
    );
    assert!(kmc.knows(btid).await);
    // The server picked a PSK suite of the default list; the key matched, which the
    // NAF derived for 01 00 01 yy zz of exactly that suite.
    assert_eq!(
        suite, 0x00a8,
        "PSK-AES128-GCM-SHA256 is first on both sides"
    );
    assert_eq!(
        body(&resp),
        format!("psk identity={identity} version=TLSv1.2 suite=00a8 path=/res?x=1")
    );
    match client.last_auth() {
        Some(GatewayAuth::Psk {
            identity: id,
            version: PskTlsVersion::Tls12,
            cipher_suite: 0x00a8,
            naf_id,
        }) => {
            assert_eq!(id, &identity);
            assert_eq!(
                naf_id,
                &psk_naf_id(Org::ThreeGpp, PskTlsVersion::Tls12, 0x00a8)
            );
        }
        other => panic!("{other:?}"),
    }
    // No Authorization on a PSK connection, and the 3gpp-gba token in User-Agent.
    let req = naf.log().requests[0].clone();
    assert!(req.authorization.is_none());
    assert!(req
        .user_agent
        .as_deref()
        .is_some_and(|ua| ua.split(' ').any(|t| t == "3gpp-gba")));

    // Keep-alive: the next request goes over the same PSK connection.
    let again = client.get(&naf.url("/second")).await.unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(naf.log().conns.len(), 1, "connection reused");
    assert_eq!(naf.log().requests.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psk_tls13_uses_the_shared_key_tls13_ua_id() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(NafCfg::psk(true), kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 2, false).await,
        Some(kmc.ub_url()),
        opts(UaOrg::ThreeGpp),
    );
    let resp = client.get(&naf.url("/")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", body(&resp));
    let log = naf.log();
    let (identity, version) = log.conns[0].psk.clone().unwrap();
    assert_eq!(version, PskTlsVersion::Tls13);
    assert!(identity.starts_with("3GPP-bootstrapping."));
    // TLS 1.3 lookups happen while reading the ClientHello.
    assert!(log
        .lookups
        .iter()
        .all(|(id, v, _)| id == &identity && *v == PskTlsVersion::Tls13));
    match client.last_auth() {
        Some(GatewayAuth::Psk {
            version: PskTlsVersion::Tls13,
            naf_id,
            ..
        }) => assert_eq!(naf_id.ua.0, [1, 0, 0, 0, 7]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oma_ua_ids_on_both_versions() {
    let kmc = Kmc::start().await;
    for (n, tls13) in [(3, false), (4, true)] {
        let naf = Naf::start(
            NafCfg {
                org: Org::Oma,
                ..NafCfg::psk(tls13)
            },
            kmc.store.clone(),
        )
        .await;
        let mut client = GatewayClient::new(
            agent(&kmc, n, false).await,
            Some(kmc.ub_url()),
            opts(UaOrg::Oma),
        );
        let resp = client.get(&naf.url("/")).await.unwrap();
        assert_eq!(resp.status, 200, "tls13={tls13}");
        let org_octet = match client.last_auth() {
            Some(GatewayAuth::Psk { naf_id, .. }) => naf_id.ua.0[0],
            other => panic!("{other:?}"),
        };
        assert_eq!(org_octet, 0x03);

        // A 3GPP-configured agent derives another key: the NAF cannot decrypt and the
        // handshake fails (no re-bootstrap: the context is fresh... and it would not
        // help); the error names the Ua setting.
        let mut wrong = GatewayClient::new(
            agent(&kmc, n + 100, false).await,
            Some(kmc.ub_url()),
            opts(UaOrg::ThreeGpp),
        );
        match wrong.get(&naf.url("/")).await {
            Err(SecaError::Tls(msg)) => assert!(msg.contains("3gpp"), "{msg}"),
            other => panic!("tls13={tls13}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gba_u_card_supplies_ks_ext_naf() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(NafCfg::psk(false), kmc.store.clone()).await;
    let a = agent(&kmc, 5, true).await;
    assert_eq!(a.gba_type(), seccf_gba::GbaType::U);
    let mut client = GatewayClient::new(a, Some(kmc.ub_url()), opts(UaOrg::ThreeGpp));
    let resp = client.get(&naf.url("/")).await.unwrap();
    assert_eq!(resp.status, 200, "{}", body(&resp));
    assert!(naf.log().conns[0].psk.is_some());
    // The card holds the context the agent used.
    let mut a = client.into_agent();
    let gbabp = a.usim_mut().read_gbabp().unwrap().unwrap();
    let id = naf.log().conns[0].psk.clone().unwrap().0;
    assert_eq!(format!("3GPP-bootstrapping.{}", gbabp.btid), id);
}

/// TLS 1.2: the NAF answers an unknown B-TID with alert 115; the agent bootstraps
/// again (its context came from an earlier request, so it is not fresh) and retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_btid_tls12_rebootstraps_once() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(NafCfg::psk(false), kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 6, false).await,
        Some(kmc.ub_url()),
        opts(UaOrg::ThreeGpp),
    );
    client.get(&naf.url("/")).await.unwrap();
    let first = naf.log().conns[0].psk.clone().unwrap().0;
    client.close();

    // The KMC forgets the context (as after its expiry at the BSF).
    kmc.forget_contexts().await;
    let resp = client.get(&naf.url("/")).await.unwrap();
    assert_eq!(resp.status, 200);
    let log = naf.log();
    let second = log.conns.last().unwrap().psk.clone().unwrap().0;
    assert_ne!(first, second, "a new B-TID after the rejection");
    // Lookups: first ok, then the old identity (refused), then the new one.
    let ids: Vec<&str> = log.lookups.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids, vec![first.as_str(), first.as_str(), second.as_str()]);
}

/// TLS 1.3 has no unknown-identity alert: any refused PSK handshake with an old
/// context triggers the one re-bootstrap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_btid_tls13_rebootstraps_once() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(NafCfg::psk(true), kmc.store.clone()).await;
    let mut client = GatewayClient::new(
        agent(&kmc, 7, false).await,
        Some(kmc.ub_url()),
        opts(UaOrg::ThreeGpp),
    );
    client.get(&naf.url("/")).await.unwrap();
    let first = naf.log().conns[0].psk.clone().unwrap().0;
    client.close();
    naf.reject(first.strip_prefix("3GPP-bootstrapping.").unwrap());
    let resp = client.get(&naf.url("/")).await.unwrap();
    assert_eq!(resp.status, 200);
    let second = naf.log().conns.last().unwrap().psk.clone().unwrap().0;
    assert_ne!(first, second);

    // A NAF that refuses every B-TID: one re-bootstrap, then the error.
    let naf2 = Naf::start(NafCfg::psk(true), kmc.store.clone()).await;
    naf2.reject("*");
    client.close();
    let err = client.get(&naf2.url("/")).await.unwrap_err();
    assert!(matches!(err, SecaError::Tls(_)), "{err:?}");
    let ids: Vec<String> = naf2.log().lookups.iter().map(|l| l.0.clone()).collect();
    assert_eq!(ids.len(), 2, "the old identity, then one new one: {ids:?}");
    assert_eq!(ids[0], second);
    assert_ne!(ids[1], second);
    assert!(
        kmc.knows(ids[1].strip_prefix("3GPP-bootstrapping.").unwrap())
            .await
    );
}

/// Without a Ub URL the agent cannot bootstrap: no context → NotBootstrapped; a
/// refused context → the handshake error, no bootstrap attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ub_url_only_existing_contexts() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(NafCfg::psk(false), kmc.store.clone()).await;
    let mut client = GatewayClient::new(agent(&kmc, 8, false).await, None, opts(UaOrg::ThreeGpp));
    assert!(matches!(
        client.get(&naf.url("/")).await,
        Err(SecaError::NotBootstrapped)
    ));
    let mut a = client.into_agent();
    let ctx = a.bootstrap(&kmc.ub_url()).await.unwrap();
    let mut client = GatewayClient::new(a, None, opts(UaOrg::ThreeGpp));
    assert_eq!(client.get(&naf.url("/")).await.unwrap().status, 200);
    client.close();
    naf.reject(&ctx.btid);
    assert!(matches!(
        client.get(&naf.url("/")).await,
        Err(SecaError::Tls(_))
    ));
}

/// A server whose hint asks for another key family gets no PSK (Prefer::Psk: the
/// handshake fails rather than sending a key the server did not ask for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_identity_hint_gets_no_psk() {
    let kmc = Kmc::start().await;
    let naf = Naf::start(
        NafCfg {
            hint: Some("3GPP-bootstrapping-uicc".into()),
            ..NafCfg::psk(false)
        },
        kmc.store.clone(),
    )
    .await;
    let mut client = GatewayClient::new(
        agent(&kmc, 9, false).await,
        Some(kmc.ub_url()),
        GatewayOptions {
            prefer: Prefer::Psk,
            ..GatewayOptions::default()
        },
    );
    assert!(client.get(&naf.url("/")).await.is_err());
    assert!(
        naf.log().lookups.is_empty(),
        "no identity reached the server"
    );
}
