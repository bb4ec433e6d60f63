//! Bootstrapping a software USIM against a running KMC over real HTTP, then fetching
//! the NAF keys over Zn with mutual TLS; the failure cases of both interfaces.

use std::time::Duration;

use base64::Engine as _;
use seccf_e2e::*;
use seccf_gba::naf::{NafId, UaSecurityProtocolId};
use seccf_kmc::zn_client::ZnClientError;
use seccf_secret::Secret;
use seccf_store::Store;

fn naf(ua: UaSecurityProtocolId) -> NafId {
    NafId::new(NAF_FQDN, ua).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gba_me_bootstrap_then_zn_keys_agree() {
    let kmc = TestKmc::start().await;
    let sub = TestSub::random("1", false);
    kmc.add(&sub).await;
    let mut agent = kmc.agent(&sub);
    let ctx = agent.bootstrap(&kmc.ub_url).await.unwrap();
    assert!(ctx.btid.ends_with(&format!("@{BSF_DOMAIN}")));
    assert!(ctx.ks.is_some(), "GBA_ME keeps Ks in the ME");
    let zn = kmc.zn();
    for ua in [
        UaSecurityProtocolId::HTTP_DIGEST,
        UaSecurityProtocolId::tls_3gpp(0x00a8),
        UaSecurityProtocolId::TLS13_SHARED_KEY,
        UaSecurityProtocolId::tls_oma(0x00a8),
    ] {
        let id = naf(ua);
        let ue = agent.naf_key(&ctx, &id).unwrap();
        let keys = zn.bootstrapping_info(&ctx.btid, &id, true).await.unwrap();
        assert_eq!(keys.me_key, ue, "Ks_NAF must agree for {}", ua.to_hex());
        assert!(keys.uicc_key.is_none());
        assert_eq!(keys.impi, sub.impi);
        assert!(keys.key_expiry_unix > seccf_kmc::unix_now());
    }
    // Keys for different NAF_Ids differ.
    let a = agent
        .naf_key(&ctx, &naf(UaSecurityProtocolId::HTTP_DIGEST))
        .unwrap();
    let b = agent
        .naf_key(&ctx, &naf(UaSecurityProtocolId::TLS13_SHARED_KEY))
        .unwrap();
    assert_ne!(a, b);
    kmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gba_u_bootstrap_then_zn_keys_agree() {
    let kmc = TestKmc::start().await;
    let sub = TestSub::random("2", true);
    kmc.add(&sub).await;
    let mut agent = kmc.agent(&sub);
    let ctx = agent.bootstrap(&kmc.ub_url).await.unwrap();
    assert!(ctx.ks.is_none(), "GBA_U: Ks stays in the card");
    let id = naf(UaSecurityProtocolId::HTTP_DIGEST);
    let ext = agent.naf_key(&ctx, &id).unwrap();
    let zn = kmc.zn();
    let keys = zn.bootstrapping_info(&ctx.btid, &id, true).await.unwrap();
    assert_eq!(keys.me_key, ext, "Ks_ext_NAF must agree");
    let int = keys.uicc_key.expect("GBA_U aware NAF receives Ks_int_NAF");
    assert_ne!(int, ext);
    // Recompute Ks_int_NAF independently from K/OPc and RAND to check the KMC's value.
    let m = seccf_gba::Milenage::new(
        Secret::from_hex(&sub.k).unwrap(),
        Secret::from_hex(&sub.opc).unwrap(),
    );
    let f = m.f2345(&ctx.rand);
    let ks = seccf_gba::kdf::ks(&f.ck, &f.ik);
    assert_eq!(
        int,
        seccf_gba::naf::ks_int_naf(&ks, &ctx.rand, &sub.impi, &id).unwrap()
    );
    let unaware = zn.bootstrapping_info(&ctx.btid, &id, false).await.unwrap();
    assert!(
        unaware.uicc_key.is_none(),
        "no Ks_int_NAF without gbaUAware"
    );
    kmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_sqn_resynchronisation() {
    let kmc = TestKmc::start().await;
    let sub = TestSub::random("3", false);
    kmc.add(&sub).await;
    let mut agent = kmc.agent(&sub);
    agent.bootstrap(&kmc.ub_url).await.unwrap();
    // Roll the network's SQN back: the card has already seen the next SQN it will send.
    assert!(kmc.store.set_sqn(&sub.impi, 32).await.unwrap());
    let before = kmc
        .metric("seccf_kmc_ub_requests_total{outcome=\"resync\"}")
        .await;
    let ctx = agent.bootstrap(&kmc.ub_url).await.unwrap();
    let after = kmc
        .metric("seccf_kmc_ub_requests_total{outcome=\"resync\"}")
        .await;
    assert_eq!(after, before + 1.0, "exactly one resynchronisation round");
    let counter = kmc
        .store
        .get_subscriber(&sub.impi)
        .await
        .unwrap()
        .unwrap()
        .sqn;
    assert!(
        counter >= 64,
        "SQN moved to SEQ 2 past the card's SQN_MS 33 (now {counter})"
    );
    let id = naf(UaSecurityProtocolId::HTTP_DIGEST);
    let keys = kmc
        .zn()
        .bootstrapping_info(&ctx.btid, &id, false)
        .await
        .unwrap();
    assert_eq!(keys.me_key, agent.naf_key(&ctx, &id).unwrap());
    kmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bootstraps_of_one_subscriber_all_succeed() {
    let kmc = TestKmc::start().await;
    let sub = TestSub::random("4", false);
    kmc.add(&sub).await;
    // Several terminals' worth of concurrent runs on one IMPI: the KMC hands out distinct
    // SQNs; each agent has its own card copy, so each accepts its vector.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut agent = {
            let dir = kmc.dir.path().join(format!("c{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let usim = sub.write_usim(&dir);
            let card = seccf_uicc::soft::SoftUsim::open(&usim, None).unwrap();
            seccf_seca::Agent::new(seccf_uicc::Usim::new(card)).unwrap()
        };
        let url = kmc.ub_url.clone();
        tasks.push(tokio::spawn(async move {
            agent.bootstrap(&url).await.map(|c| c.btid)
        }));
    }
    let mut btids = std::collections::HashSet::new();
    for t in tasks {
        btids.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(btids.len(), 8);
    let counter = kmc
        .store
        .get_subscriber(&sub.impi)
        .await
        .unwrap()
        .unwrap()
        .sqn;
    assert_eq!(counter, 32 + 8, "one SQN per vector, none lost");
    kmc.stop().await;
}

/// Runs the first Ub round by hand; returns the parsed challenge.
async fn first_round(kmc: &TestKmc, impi: &str) -> (RawResponse, seccf_digest::Challenge) {
    let auth = seccf_seca::ub::initial_authorization(impi, BSF_DOMAIN, "/");
    let r = http_request(kmc.ub_addr, "GET", "/", &[("Authorization", &auth)], b"").await;
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    let ch = seccf_digest::Challenge::parse(r.header("www-authenticate").unwrap()).unwrap();
    (r, ch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_res_and_replayed_response_are_refused() {
    let kmc = TestKmc::start().await;
    let sub = TestSub::random("5", false);
    kmc.add(&sub).await;

    // Wrong RES → 403 and the challenge is gone.
    let (_, ch) = first_round(&kmc, &sub.impi).await;
    let wrong = seccf_digest::answer(
        &ch,
        &sub.impi,
        b"\x00\x01\x02\x03\x04\x05\x06\x07",
        "GET",
        "/",
        Some(seccf_digest::Qop::AuthInt),
        1,
        "abcdef0123",
        b"",
    )
    .unwrap();
    let r = http_request(
        kmc.ub_addr,
        "GET",
        "/",
        &[("Authorization", &wrong.to_header_value())],
        b"",
    )
    .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("wrong RES"));

    // A correct answer built by the agent's sans-IO steps, sent twice.
    let (first, _) = first_round(&kmc, &sub.impi).await;
    let usim_file = sub.write_usim(kmc.dir.path());
    let card = seccf_uicc::soft::SoftUsim::open(&usim_file, None).unwrap();
    let mut usim = seccf_uicc::Usim::new(card);
    let answer = seccf_seca::ub::answer_challenge(
        &mut usim,
        false,
        &sub.impi,
        first.header("www-authenticate").unwrap(),
        "GET",
        "/",
        "0a4f113b7c1d2e3f",
    )
    .unwrap();
    let (authorization, pending) = match answer {
        seccf_seca::ub::ChallengeAnswer::Respond {
            authorization,
            pending,
        } => (authorization, pending),
        other => panic!("expected a response, got {other:?}"),
    };
    let ok = http_request(
        kmc.ub_addr,
        "GET",
        "/",
        &[("Authorization", &authorization)],
        b"",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("content-type"),
        Some("application/vnd.3gpp.bsf+xml")
    );
    let ctx = seccf_seca::ub::finish(
        pending,
        ok.header("authentication-info"),
        &ok.body,
        seccf_kmc::unix_now(),
    )
    .unwrap();
    let sqn_after_ok = kmc
        .store
        .get_subscriber(&sub.impi)
        .await
        .unwrap()
        .unwrap()
        .sqn;

    let replay = http_request(
        kmc.ub_addr,
        "GET",
        "/",
        &[("Authorization", &authorization)],
        b"",
    )
    .await;
    assert_eq!(
        replay.status, 401,
        "a replayed response must not bootstrap again"
    );
    assert!(String::from_utf8_lossy(&replay.body).contains("already used"));
    // The replay created no context and did not disturb the existing one.
    let zn = kmc.zn();
    let id = naf(UaSecurityProtocolId::HTTP_DIGEST);
    assert!(zn.bootstrapping_info(&ctx.btid, &id, false).await.is_ok());
    let sqn_after_replay = kmc
        .store
        .get_subscriber(&sub.impi)
        .await
        .unwrap()
        .unwrap()
        .sqn;
    assert_eq!(
        sqn_after_replay,
        sqn_after_ok + 1,
        "the replay only cost a fresh challenge"
    );
    kmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ub_requests_get_clear_4xx() {
    let kmc = TestKmc::start().await;
    let sub = TestSub::random("6", false);
    kmc.add(&sub).await;
    let a = kmc.ub_addr;

    let r = http_request(a, "GET", "/", &[], b"").await;
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("Authorization"));

    for bad in [
        "Basic dXNlcjpwYXNz",
        "Digest",
        "Digest username=",
        "Digest username=\"unterminated",
        "Digest username=\"a@b\", username=\"a@b\", realm=\"r\", nonce=\"\", uri=\"/\", response=\"\"",
        "Digest username=\"a\u{7f}@b\", realm=\"r\", nonce=\"\", uri=\"/\", response=\"\"",
    ] {
        let r = http_request(a, "GET", "/", &[("Authorization", bad)], b"").await;
        assert_eq!(r.status, 400, "{bad:?} → {}", String::from_utf8_lossy(&r.body));
    }

    // Unknown IMPI.
    let auth = seccf_seca::ub::initial_authorization("999999999@ims.unknown.test", BSF_DOMAIN, "/");
    let r = http_request(a, "GET", "/", &[("Authorization", &auth)], b"").await;
    assert_eq!(r.status, 403);

    // Oversized Authorization header → 431 from the HTTP edge.
    let huge = format!("Digest username=\"{}\"", "a".repeat(40_000));
    let r = http_request(a, "GET", "/", &[("Authorization", &huge)], b"").await;
    assert!(r.status == 431 || r.status == 400, "got {}", r.status);

    // Oversized body.
    let auth = seccf_seca::ub::initial_authorization(&sub.impi, BSF_DOMAIN, "/");
    let big = vec![b'x'; 100_000];
    let r = http_request(a, "POST", "/", &[("Authorization", &auth)], &big).await;
    assert_eq!(r.status, 413);

    // Wrong method and path.
    let r = http_request(a, "POST", "/", &[("Authorization", &auth)], b"").await;
    assert_eq!(r.status, 405);
    let r = http_request(a, "GET", "/other", &[("Authorization", &auth)], b"").await;
    assert_eq!(r.status, 404);

    // Bad base64 in auts (after a real challenge).
    let (_, ch) = first_round(&kmc, &sub.impi).await;
    let mut creds = seccf_digest::answer(
        &ch,
        &sub.impi,
        b"",
        "GET",
        "/",
        Some(seccf_digest::Qop::AuthInt),
        1,
        "c1",
        b"",
    )
    .unwrap();
    creds.auts = Some("!!!not-base64!!!".into());
    let r = http_request(
        a,
        "GET",
        "/",
        &[("Authorization", &creds.to_header_value())],
        b"",
    )
    .await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));

    // AUTS with a wrong MAC-S.
    let (_, ch) = first_round(&kmc, &sub.impi).await;
    let mut creds = seccf_digest::answer(
        &ch,
        &sub.impi,
        b"",
        "GET",
        "/",
        Some(seccf_digest::Qop::AuthInt),
        1,
        "c1",
        b"",
    )
    .unwrap();
    creds.auts = Some(base64::engine::general_purpose::STANDARD.encode([7u8; 14]));
    let r = http_request(
        a,
        "GET",
        "/",
        &[("Authorization", &creds.to_header_value())],
        b"",
    )
    .await;
    assert_eq!(r.status, 403);

    // After all that the subscriber still bootstraps normally.
    let mut agent = kmc.agent(&sub);
    agent.bootstrap(&kmc.ub_url).await.unwrap();
    kmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_stall_others() {
    let kmc = TestKmc::start().await;
    let sub = TestSub::random("7", false);
    kmc.add(&sub).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Ten connections that send half a request head and then nothing.
    let mut slow = Vec::new();
    for _ in 0..10 {
        let mut s = tokio::net::TcpStream::connect(kmc.ub_addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nAuthori")
            .await
            .unwrap();
        slow.push(s);
    }
    // A normal client is served meanwhile.
    let mut agent = kmc.agent(&sub);
    tokio::time::timeout(Duration::from_secs(5), agent.bootstrap(&kmc.ub_url))
        .await
        .expect("bootstrap must not wait for slow clients")
        .unwrap();
    // The slow ones are cut off after the header timeout (2 s in the test config).
    for mut s in slow {
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(6), s.read_to_end(&mut buf)).await;
        assert!(
            r.is_ok(),
            "slow client still connected after the header timeout"
        );
    }
    kmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zn_refusals() {
    let kmc = TestKmc::start().await;
    let sub = TestSub::random("8", false);
    kmc.add(&sub).await;
    let mut agent = kmc.agent(&sub);
    let ctx = agent.bootstrap(&kmc.ub_url).await.unwrap();
    let id = naf(UaSecurityProtocolId::HTTP_DIGEST);

    // Unknown B-TID.
    let err = kmc
        .zn()
        .bootstrapping_info(
            &format!("AAAAAAAAAAAAAAAAAAAAAA==@{BSF_DOMAIN}"),
            &id,
            false,
        )
        .await
        .unwrap_err();
    assert!(err.is_unknown_btid(), "{err}");

    // A NAF FQDN this NAF is not registered for.
    let other = NafId::new("other.e2e.test", UaSecurityProtocolId::HTTP_DIGEST).unwrap();
    match kmc.zn().bootstrapping_info(&ctx.btid, &other, false).await {
        Err(ZnClientError::Refused { status: 403, cause }) => {
            assert_eq!(cause, "NAF_NOT_AUTHORIZED")
        }
        other => panic!("expected 403, got {other:?}"),
    }

    // A client certificate from the right CA that is not registered.
    let stranger = seccf_tls::pki::issue_client_cert(&kmc.ca, "stranger", 1).unwrap();
    let (c, k) = (kmc.dir.path().join("s.pem"), kmc.dir.path().join("s.key"));
    seccf_tls::pki::write_pem_pair(&stranger, &c, &k).unwrap();
    match kmc
        .zn_with(Some((c, k)))
        .bootstrapping_info(&ctx.btid, &id, false)
        .await
    {
        Err(ZnClientError::Refused { status: 403, cause }) => {
            assert_eq!(cause, "NAF_NOT_REGISTERED")
        }
        other => panic!("expected 403 for an unregistered certificate, got {other:?}"),
    }

    // No client certificate at all: the TLS handshake itself fails.
    match kmc
        .zn_with(None)
        .bootstrapping_info(&ctx.btid, &id, false)
        .await
    {
        Err(ZnClientError::Transport(_)) => {}
        other => panic!("expected a TLS failure without a client certificate, got {other:?}"),
    }

    // An expired context is gone for Zn.
    let mut expired = kmc.store.get_context(&ctx.btid, 0).await.unwrap().unwrap();
    expired.btid = format!("BBBBBBBBBBBBBBBBBBBBBB==@{BSF_DOMAIN}");
    expired.created_at = seccf_kmc::unix_now() - 7200;
    expired.expires_at = seccf_kmc::unix_now() - 3600;
    kmc.store.put_context(&expired).await.unwrap();
    let err = kmc
        .zn()
        .bootstrapping_info(&expired.btid, &id, false)
        .await
        .unwrap_err();
    assert!(
        err.is_unknown_btid(),
        "expired B-TID must be refused: {err}"
    );
    kmc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_file_holds_no_secret_in_clear() {
    let kmc = TestKmc::start().await;
    let sub = TestSub::random("9", false);
    kmc.add(&sub).await;
    let mut agent = kmc.agent(&sub);
    let ctx = agent.bootstrap(&kmc.ub_url).await.unwrap();
    let m = seccf_gba::Milenage::new(
        Secret::from_hex(&sub.k).unwrap(),
        Secret::from_hex(&sub.opc).unwrap(),
    );
    let f = m.f2345(&ctx.rand);
    let ks = seccf_gba::kdf::ks(&f.ck, &f.ik);
    let store_path = kmc.store_path.clone();
    let _dir = kmc.stop().await;
    let mut blob = std::fs::read(&store_path).unwrap();
    for ext in ["-wal", "-shm"] {
        let mut p = store_path.clone().into_os_string();
        p.push(ext);
        if let Ok(b) = std::fs::read(&p) {
            blob.extend(b);
        }
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("K", hex::decode(&sub.k).unwrap()),
        ("OPc", hex::decode(&sub.opc).unwrap()),
        ("Ks", ks.expose().to_vec()),
        ("CK", f.ck.expose().to_vec()),
    ];
    for (name, raw) in secrets {
        let forms = [
            raw.clone(),
            hex::encode(&raw).into_bytes(),
            hex::encode_upper(&raw).into_bytes(),
            b64.encode(&raw).into_bytes(),
        ];
        for form in forms {
            assert!(
                !blob.windows(form.len()).any(|w| w == form.as_slice()),
                "{name} found in clear in the store files"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_requires_the_bearer_token_and_manages_subscribers() {
    let kmc = TestKmc::start().await;
    let addr: std::net::SocketAddr = kmc.admin_url.trim_start_matches("http://").parse().unwrap();
    let good = format!("Bearer {ADMIN_TOKEN}");
    let sub = TestSub::random("a", false);
    let body = format!(
        r#"{{"impi":"{}","k":"{}","opc":"{}","gba_type":"GBA_ME"}}"#,
        sub.impi, sub.k, sub.opc
    );
    let json = ("Content-Type", "application/json");

    // No token, a wrong token, a token with the right prefix: all 401, nothing created.
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer e2e-admin-toke"),
        Some(ADMIN_TOKEN),
    ] {
        let mut h = vec![json];
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        let r = http_request(addr, "POST", "/admin/v1/subscribers", &h, body.as_bytes()).await;
        assert_eq!(r.status, 401, "auth {auth:?}");
    }
    assert!(kmc.store.get_subscriber(&sub.impi).await.unwrap().is_none());

    let h = [json, ("Authorization", good.as_str())];
    let r = http_request(addr, "POST", "/admin/v1/subscribers", &h, body.as_bytes()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = http_request(addr, "POST", "/admin/v1/subscribers", &h, body.as_bytes()).await;
    assert_eq!(r.status, 409, "duplicate IMPI");
    let r = http_request(
        addr,
        "POST",
        "/admin/v1/subscribers",
        &h,
        br#"{"impi":"x@y.z","k":"zz","opc":"00"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    let listing = http_request(addr, "GET", "/admin/v1/subscribers", &h, b"").await;
    let text = String::from_utf8_lossy(&listing.body).into_owned();
    assert_eq!(listing.status, 200);
    assert!(text.contains(&sub.impi));
    assert!(
        !text.contains(&sub.k) && !text.contains(&sub.opc),
        "listing must not show secrets"
    );

    // The subscriber created over REST bootstraps.
    let mut agent = kmc.agent(&sub);
    agent.bootstrap(&kmc.ub_url).await.unwrap();

    let path = format!("/admin/v1/subscribers/{}", sub.impi);
    assert_eq!(
        http_request(addr, "DELETE", &path, &h, b"").await.status,
        204
    );
    assert_eq!(
        http_request(addr, "DELETE", &path, &h, b"").await.status,
        404
    );
    let metrics = kmc.metrics().await;
    assert!(
        metrics.contains("seccf_kmc_admin_requests_total{outcome=\"unauthorised\"} 4"),
        "{metrics}"
    );
    kmc.stop().await;
}
