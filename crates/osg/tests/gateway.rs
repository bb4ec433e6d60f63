//! The gateway over real sockets: a real KMC, software-USIM terminals bootstrapped over
//! Ub, and the OSG in front of a recording upstream.

mod common;

use std::time::{Duration, Instant};

use common::*;
use seccf_digest::{answer, AuthenticationInfo, Qop};
use seccf_gba::naf::UaSecurityProtocolId;
use seccf_osg::principal::{ASSERTED_IDENTITY, ASSERTION, AUTH_METHOD};
use seccf_osg::verify_assertion;
use seccf_tls::psk::PskTlsVersion;

const GBA_UA: (&str, &str) = ("user-agent", "seccf-test 3gpp-gba");

#[allow(clippy::too_many_arguments)] // mirrors seccf_digest::answer
fn digest_header(
    ch: &seccf_digest::Challenge,
    user: &str,
    pw: &[u8],
    method: &str,
    uri: &str,
    qop: Qop,
    nc: u32,
    body: &[u8],
) -> (seccf_digest::Credentials, String) {
    let c = answer(ch, user, pw, method, uri, Some(qop), nc, "0a4f113b", body).unwrap();
    let v = c.to_header_value();
    (c, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_over_tls_with_a_real_bootstrap() {
    let env = Env::start().await;
    let t = env.terminal().await;
    for tls12 in [false, true] {
        let stream = tls_connect(env.addr("digest"), &env.connector(None, tls12))
            .await
            .unwrap();
        let suite = suite_of(&stream);
        assert_eq!(
            (0x1301..=0x1305).contains(&suite),
            !tls12,
            "suite {suite:04x}"
        );
        let mut s = h1(stream).await;

        // First round: 401 with the GBA challenge only (3gpp-gba client).
        let r = send(&mut s, "GET", "/hello?x=1", &[GBA_UA], b"").await;
        assert_eq!(r.status, 401);
        assert_eq!(r.all("www-authenticate").len(), 1);
        let ch = gba_challenge(&r);
        assert_eq!(ch.realm, format!("3GPP-bootstrapping@{NAF_FQDN}"));
        assert_eq!(ch.qop, vec![Qop::Auth, Qop::AuthInt]);
        assert!(ch.opaque.is_some());

        // Password = base64(Ks_NAF) for NAF_Id = FQDN || 01 00 01 yy zz (negotiated suite).
        let pw = t.digest_password(UaSecurityProtocolId::tls_3gpp(suite));
        let (creds, auth) =
            digest_header(&ch, &t.btid, &pw, "GET", "/hello?x=1", Qop::Auth, 1, b"");
        let r = send(
            &mut s,
            "GET",
            "/hello?x=1",
            &[
                GBA_UA,
                ("authorization", &auth),
                // Client-supplied identity headers must not reach the resource.
                ("x-3gpp-asserted-identity", "sip:admin@evil"),
                ("x-seccf-auth-method", "mtls"),
                ("x-seccf-assertion", "forged"),
                ("forwarded", "for=1.2.3.4"),
            ],
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let info = AuthenticationInfo::parse(r.header("authentication-info").unwrap()).unwrap();
        seccf_digest::verify_rspauth(&creds, &pw, b"", &info).unwrap();
        let seen = env.last_upstream().await;
        let h = &seen["headers"];
        assert_eq!(h[ASSERTED_IDENTITY], t.impi.as_str(), "{seen}");
        assert_eq!(h[AUTH_METHOD], "digest");
        assert!(h.get("authorization").is_none(), "credentials are consumed");
        assert!(!h["forwarded"].as_str().unwrap().contains("1.2.3.4"));
        assert_eq!(seen["uri"], "/hello?x=1");
        let claims = verify_assertion(
            h[ASSERTION].as_str().unwrap(),
            &env.jwks,
            seccf_osg::unix_now(),
        )
        .unwrap();
        assert_eq!(claims.sub, t.impi);
        assert_eq!(claims.amr, vec!["digest"]);
        assert_eq!(
            claims.btid_hash.as_deref(),
            Some(seccf_osg::assertion::btid_hash(&t.btid).as_str())
        );
        assert_eq!(claims.iss, format!("https://{NAF_FQDN}"));

        // Replaying the same Authorization (same nc) is refused.
        let r = send(
            &mut s,
            "GET",
            "/hello?x=1",
            &[GBA_UA, ("authorization", &auth)],
            b"",
        )
        .await;
        assert_eq!(r.status, 401);

        // nc=2 with auth-int over a POST body works; rspauth covers the response body.
        let body = b"{\"a\":1}";
        let (creds, auth) = digest_header(&ch, &t.btid, &pw, "POST", "/p", Qop::AuthInt, 2, body);
        let r = send(
            &mut s,
            "POST",
            "/p",
            &[GBA_UA, ("authorization", &auth)],
            body,
        )
        .await;
        assert_eq!(r.status, 200);
        let info = AuthenticationInfo::parse(r.header("authentication-info").unwrap()).unwrap();
        seccf_digest::verify_rspauth(&creds, &pw, &r.body, &info).unwrap();
        assert_eq!(r.json()["body"], "{\"a\":1}");

        // A wrong password is refused, with a fresh challenge.
        let (_, auth) = digest_header(&ch, &t.btid, b"wrong", "GET", "/", Qop::Auth, 3, b"");
        let r = send(&mut s, "GET", "/", &[GBA_UA, ("authorization", &auth)], b"").await;
        assert_eq!(r.status, 401);
        gba_challenge(&r);

        // The key of the other TLS version's suite (a NAF key for another NAF_Id) fails.
        let other = if tls12 { 0x1301 } else { 0xC02F };
        let pw_other = t.digest_password(UaSecurityProtocolId::tls_3gpp(other));
        let (_, auth) = digest_header(&ch, &t.btid, &pw_other, "GET", "/", Qop::Auth, 4, b"");
        let r = send(&mut s, "GET", "/", &[GBA_UA, ("authorization", &auth)], b"").await;
        assert_eq!(r.status, 401);

        // Unknown B-TID: 401 with a fresh challenge (the terminal re-bootstraps).
        let fake = format!("AAAAAAAAAAAAAAAAAAAAAA==@{BSF_DOMAIN}");
        let (_, auth) = digest_header(&ch, &fake, &pw, "GET", "/", Qop::Auth, 5, b"");
        let r = send(&mut s, "GET", "/", &[GBA_UA, ("authorization", &auth)], b"").await;
        assert_eq!(r.status, 401);
        gba_challenge(&r);
    }
    assert!(
        env.metric(
            "seccf_osg_auth_decisions_total{listener=\"digest\",method=\"digest\",result=\"ok\"}"
        )
        .await
            >= 4.0
    );
    assert!(env.metric("seccf_osg_auth_decisions_total{listener=\"digest\",method=\"digest\",result=\"replayed_nc\"}").await >= 2.0);
    assert!(env.metric("seccf_osg_auth_decisions_total{listener=\"digest\",method=\"digest\",result=\"unknown_btid\"}").await >= 2.0);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_nonce_and_plain_users() {
    let env = Env::start_with(Options {
        nonce_lifetime_secs: 1,
        ..Options::default()
    })
    .await;
    let t = env.terminal().await;
    let stream = tls_connect(env.addr("digest"), &env.connector(None, false))
        .await
        .unwrap();
    let suite = suite_of(&stream);
    let mut s = h1(stream).await;

    // A non-GBA client gets the SHA-256 users challenge first, then the GBA one.
    let r = send(&mut s, "GET", "/u", &[("user-agent", "curl/8")], b"").await;
    assert_eq!(r.status, 401);
    let challenges: Vec<_> = r
        .all("www-authenticate")
        .iter()
        .map(|v| seccf_digest::Challenge::parse(v).unwrap())
        .collect();
    assert_eq!(challenges.len(), 2);
    assert_eq!(challenges[0].realm, format!("seccf@{NAF_FQDN}"));
    assert_eq!(challenges[0].algorithm, seccf_digest::Algorithm::Sha256);
    let (_, auth) = digest_header(
        &challenges[0],
        "bob",
        env.user_pw.as_bytes(),
        "GET",
        "/u",
        Qop::Auth,
        1,
        b"",
    );
    let r = send(&mut s, "GET", "/u", &[("authorization", &auth)], b"").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("authentication-info")
        .unwrap()
        .contains("rspauth="));
    assert_eq!(
        env.last_upstream().await["headers"][ASSERTED_IDENTITY],
        "bob"
    );

    // Stale: a correct digest on an expired nonce → 401 stale=true.
    let pw = t.digest_password(UaSecurityProtocolId::tls_3gpp(suite));
    let ch = challenges[1].clone();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, auth) = digest_header(&ch, &t.btid, &pw, "GET", "/s", Qop::Auth, 1, b"");
    let r = send(
        &mut s,
        "GET",
        "/s",
        &[GBA_UA, ("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(gba_challenge(&r).stale, "stale=true on the GBA challenge");
    // The fresh nonce works.
    let ch = gba_challenge(&r);
    let (_, auth) = digest_header(&ch, &t.btid, &pw, "GET", "/s", Qop::Auth, 1, b"");
    let r = send(
        &mut s,
        "GET",
        "/s",
        &[GBA_UA, ("authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psk_tls_12_and_13_through_the_seccf_tls_client() {
    let env = Env::start().await;
    let t = env.terminal().await;
    let mut tokens = Vec::new();
    for (max, ciphers) in [
        (Some(PskTlsVersion::Tls12), Some("PSK-AES128-GCM-SHA256")),
        (
            Some(PskTlsVersion::Tls12),
            Some("ECDHE-PSK-CHACHA20-POLY1305"),
        ),
        (None, None),
    ] {
        let c = env.psk_connector(&t, max, ciphers, false);
        let stream = psk_connect(env.addr("psk"), &c).await.unwrap();
        let mut s = h1(stream).await;
        let r = send(
            &mut s,
            "GET",
            "/psk",
            &[("x-3gpp-asserted-identity", "forged")],
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{max:?} {ciphers:?}");
        let seen = env.last_upstream().await;
        assert_eq!(seen["headers"][ASSERTED_IDENTITY], t.impi.as_str());
        assert_eq!(seen["headers"][AUTH_METHOD], "psk-tls");
        let claims = verify_assertion(
            seen["headers"][ASSERTION].as_str().unwrap(),
            &env.jwks,
            seccf_osg::unix_now(),
        )
        .unwrap();
        assert_eq!(claims.amr, vec!["psk-tls"]);
        // Keep-alive: a second request on the same connection reuses the assertion
        // (within half its lifetime); another connection gets its own.
        let r = send(&mut s, "GET", "/psk2", &[], b"").await;
        assert_eq!(r.status, 200);
        let again = env.last_upstream().await;
        assert_eq!(again["headers"][ASSERTION], seen["headers"][ASSERTION]);
        tokens.push(seen["headers"][ASSERTION].as_str().unwrap().to_string());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 3, "one assertion per connection");
    // Wrong key: the handshake fails.
    let bad = env.psk_connector(&t, Some(PskTlsVersion::Tls12), None, true);
    assert!(psk_connect(env.addr("psk"), &bad).await.is_err());
    let bad13 = env.psk_connector(&t, None, None, true);
    assert!(psk_connect(env.addr("psk"), &bad13).await.is_err());
    // Unknown B-TID: the handshake fails (and the negative cache answers the repeat).
    let mut ghost = t.clone();
    ghost.btid = format!("AAAAAAAAAAAAAAAAAAAAAA==@{BSF_DOMAIN}");
    let c = env.psk_connector(&ghost, Some(PskTlsVersion::Tls12), None, false);
    assert!(psk_connect(env.addr("psk"), &c).await.is_err());
    assert!(psk_connect(env.addr("psk"), &c).await.is_err());
    assert!(env.metric("seccf_osg_auth_decisions_total{listener=\"psk\",method=\"psk-tls\",result=\"unknown_btid\"}").await >= 2.0);
    assert!(env.metric("seccf_osg_key_cache_hits").await >= 1.0);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psk_and_digest_on_one_listener() {
    let env = Env::start().await;
    let t = env.terminal().await;
    // PSK client.
    let c = env.psk_connector(&t, None, None, false);
    let mut s = h1(psk_connect(env.addr("gba-digest"), &c).await.unwrap()).await;
    assert_eq!(send(&mut s, "GET", "/", &[], b"").await.status, 200);
    assert_eq!(env.last_upstream().await["headers"][AUTH_METHOD], "psk-tls");
    // Certificate client + Digest on the same port.
    let stream = tls_connect(env.addr("gba-digest"), &env.connector(None, true))
        .await
        .unwrap();
    let suite = suite_of(&stream);
    let mut s = h1(stream).await;
    let r = send(&mut s, "GET", "/", &[GBA_UA], b"").await;
    assert_eq!(r.status, 401);
    let ch = gba_challenge(&r);
    let pw = t.digest_password(UaSecurityProtocolId::tls_3gpp(suite));
    let (_, auth) = digest_header(&ch, &t.btid, &pw, "GET", "/", Qop::Auth, 1, b"");
    let r = send(&mut s, "GET", "/", &[GBA_UA, ("authorization", &auth)], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(env.last_upstream().await["headers"][AUTH_METHOD], "digest");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_allowed_denied_and_crl_reload() {
    let env = Env::start_with(Options {
        crl: true,
        ..Options::default()
    })
    .await;
    let addr = env.addr("mtls");
    // Allowed certificate.
    let mut s = h1(tls_connect(addr, &env.connector(Some("client-1"), false))
        .await
        .unwrap())
    .await;
    let r = send(
        &mut s,
        "GET",
        "/m",
        &[("x-3gpp-asserted-identity", "forged")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = env.last_upstream().await;
    assert_eq!(seen["headers"][ASSERTED_IDENTITY], "client-1");
    assert_eq!(seen["headers"][AUTH_METHOD], "mtls");
    let claims = verify_assertion(
        seen["headers"][ASSERTION].as_str().unwrap(),
        &env.jwks,
        seccf_osg::unix_now(),
    )
    .unwrap();
    assert_eq!(claims.btid_hash, None);
    // Valid certificate, identity not in `allow`: 403.
    let mut s2 = h1(tls_connect(addr, &env.connector(Some("client-2"), false))
        .await
        .unwrap())
    .await;
    assert_eq!(send(&mut s2, "GET", "/m", &[], b"").await.status, 403);
    // No certificate: the handshake fails (TLS 1.3 reports it on first read).
    let no_cert = tls_connect(addr, &env.connector(None, true)).await;
    assert!(no_cert.is_err());
    // A certificate from another CA: refused.
    let rogue_ca = seccf_tls::pki::generate_ca("rogue", 1).unwrap();
    let rogue = seccf_tls::pki::issue_client_cert(&rogue_ca, "client-1", 1).unwrap();
    seccf_tls::pki::write_pem_pair(&rogue, &env.path("rogue.pem"), &env.path("rogue.key")).unwrap();
    let c = env.connector(Some("rogue"), true);
    assert!(tls_connect(addr, &c).await.is_err());

    // Revoke client-1 with a new CRL, reload: new connections fail, the established
    // one keeps working.
    let revoked =
        seccf_tls::pki::load_pem_pair(&env.path("client-1.pem"), &env.path("client-1.key"))
            .unwrap();
    std::fs::write(
        env.path("crl.pem"),
        seccf_tls::pki::generate_crl(&env.ca, &[&revoked], 2, 30).unwrap(),
    )
    .unwrap();
    env.reload.reload().unwrap();
    let c = env.connector(Some("client-1"), true);
    assert!(
        tls_connect(addr, &c).await.is_err(),
        "revoked certificate refused after reload"
    );
    assert_eq!(
        send(&mut s, "GET", "/still", &[], b"").await.status,
        200,
        "established connection kept"
    );
    // A broken file makes reload fail without changing anything.
    std::fs::write(env.path("crl.pem"), b"garbage").unwrap();
    assert!(env.reload.reload().is_err());
    let mut s3 = h1(tls_connect(addr, &env.connector(Some("client-2"), true))
        .await
        .unwrap())
    .await;
    assert_eq!(send(&mut s3, "GET", "/", &[], b"").await.status, 403);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_tunnel_sends_proxy_v2_with_identity() {
    let mut env = Env::start().await;
    let t = env.terminal().await;
    let c = env.psk_connector(
        &t,
        Some(PskTlsVersion::Tls12),
        Some("PSK-AES128-GCM-SHA256"),
        false,
    );
    let mut stream = psk_connect(env.addr("tunnel"), &c).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"ping through the tunnel").await.unwrap();
    let mut buf = [0u8; 23];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping through the tunnel");
    let h = tokio::time::timeout(Duration::from_secs(5), env.tcp_seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.seccf_identity(), Some(t.impi.as_str()));
    assert_eq!(h.seccf_auth_method(), Some("psk-tls"));
    assert_eq!(h.authority(), Some(NAF_FQDN));
    let ssl = h.ssl().unwrap().unwrap();
    assert_eq!(ssl.version.as_deref(), Some("TLSv1.2"));
    assert_eq!(ssl.cipher.as_deref(), Some("PSK-AES128-GCM-SHA256"));
    let (src, dst) = h.addresses.unwrap();
    assert_eq!(dst, env.addr("tunnel"));
    assert!(src.ip().is_loopback());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorisation_by_uss_flags_and_intended_identity() {
    let env = Env::start_with(Options {
        required_flags: vec![7],
        ..Options::default()
    })
    .await;
    let without = env.terminal().await;
    let with = env
        .terminal_with(Some(seccf_store::UserSecuritySettings {
            public_ids: vec!["sip:alice@osg.test".into(), "tel:+15550001".into()],
            flags: vec!["7".into()],
            naf_groups: vec![],
        }))
        .await;
    let c = env.psk_connector(&without, None, None, false);
    let mut s = h1(psk_connect(env.addr("psk"), &c).await.unwrap()).await;
    assert_eq!(send(&mut s, "GET", "/", &[], b"").await.status, 403);
    let c = env.psk_connector(&with, None, None, false);
    let mut s = h1(psk_connect(env.addr("psk"), &c).await.unwrap()).await;
    assert_eq!(send(&mut s, "GET", "/", &[], b"").await.status, 200);
    assert_eq!(
        env.last_upstream().await["headers"][ASSERTED_IDENTITY],
        "sip:alice@osg.test"
    );
    // X-3GPP-Intended-Identity picks another of the subscriber's identities…
    let r = send(
        &mut s,
        "GET",
        "/",
        &[("x-3gpp-intended-identity", "\"tel:+15550001\"")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = env.last_upstream().await;
    assert_eq!(seen["headers"][ASSERTED_IDENTITY], "tel:+15550001");
    assert!(seen["headers"].get("x-3gpp-intended-identity").is_none());
    // …but not someone else's.
    let r = send(
        &mut s,
        "GET",
        "/",
        &[("x-3gpp-intended-identity", "\"sip:bob@osg.test\"")],
        b"",
    )
    .await;
    assert_eq!(r.status, 403);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_half_open_clients_do_not_stall_others() {
    let env = Env::start_with(Options {
        tls_handshake_timeout_secs: 2,
        ..Options::default()
    })
    .await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = env.addr("digest");
    let mut idle = Vec::new();
    for i in 0..20 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        match i % 3 {
            0 => {} // connect and say nothing
            1 => s
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap(), // plain HTTP on TLS
            _ => s
                .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .await
                .unwrap(), // truncated ClientHello
        }
        idle.push(s);
    }
    // Normal clients are served promptly meanwhile.
    for _ in 0..3 {
        let start = Instant::now();
        let mut s = h1(tls_connect(addr, &env.connector(None, false))
            .await
            .unwrap())
        .await;
        assert_eq!(send(&mut s, "GET", "/", &[GBA_UA], b"").await.status, 401);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }
    // The half-open ones are closed by the handshake timeout.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for mut s in idle {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return 0usize,
                    Ok(_) => continue, // alerts from OpenSSL
                }
            }
        })
        .await
        .expect("server closed the connection");
        assert_eq!(n, 0);
    }
    assert!(
        env.metric("seccf_osg_tls_handshakes_total{listener=\"digest\",result=\"timeout\"}")
            .await
            >= 5.0
    );
    // Slowloris after the handshake: an unfinished request head is cut after
    // header_read_timeout_secs (3 s here) while others are served.
    let mut slow = tls_connect(addr, &env.connector(None, false))
        .await
        .unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: naf.osg.test\r\nX-Slow: 1")
        .await
        .unwrap();
    let started = Instant::now();
    let mut s = h1(tls_connect(addr, &env.connector(None, false))
        .await
        .unwrap())
    .await;
    assert_eq!(send(&mut s, "GET", "/", &[GBA_UA], b"").await.status, 401);
    let mut buf = [0u8; 256];
    let cut = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // hyper may answer 408 before closing
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "slow request head cut");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Oversized request head: refused without harming the server.
    let mut s = h1(tls_connect(addr, &env.connector(None, false))
        .await
        .unwrap())
    .await;
    let big = "a".repeat(20_000);
    let req = http::Request::get("/")
        .header("host", NAF_FQDN)
        .header("x-big", big)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let r = s.send_request(req).await;
    assert!(r.map(|r| r.status().as_u16() == 431).unwrap_or(true));
    let mut s = h1(tls_connect(addr, &env.connector(None, false))
        .await
        .unwrap())
    .await;
    assert_eq!(send(&mut s, "GET", "/", &[GBA_UA], b"").await.status, 401);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_and_graceful_shutdown() {
    let mut env = Env::start().await;
    let (st, body) = env.admin_get("/healthz").await;
    assert_eq!(st, 200, "{body}");
    let (st, jwks) = env.admin_get("/.well-known/jwks.json").await;
    assert_eq!(st, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&jwks).unwrap(),
        serde_json::from_str::<serde_json::Value>(&env.jwks).unwrap()
    );
    let (st, metrics) = env.admin_get("/metrics").await;
    assert_eq!(st, 200);
    assert!(metrics.contains("seccf_osg_key_cache_entries"), "{metrics}");

    // A slow in-flight request finishes across shutdown; new connections are refused.
    let t = env.terminal().await;
    let c = env.psk_connector(&t, None, None, false);
    let mut s = h1(psk_connect(env.addr("psk"), &c).await.unwrap()).await;
    let inflight = tokio::spawn(async move { send(&mut s, "GET", "/slow", &[], b"").await.status });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = env.osg_stop.send(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(env.addr("psk"))
            .await
            .is_err(),
        "listener closed"
    );
    assert_eq!(inflight.await.unwrap(), 200);
    let task = env.osg_task.take().unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert!(res.is_ok());
    env.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn current_thread_runtime_is_refused() {
    let text = format!(
        r#"
[osg]
fqdn = "{NAF_FQDN}"
[osg.kmc]
url = "https://127.0.0.1:1"
tls = {{ ca_file = "{ca}" }}
[[osg.listener]]
name = "psk"
listen = "127.0.0.1:0"
kind = "https"
auth = ["psk"]
upstream = "http://127.0.0.1:1"
"#,
        ca = {
            let dir = std::env::temp_dir().join(format!("osg-ct-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let ca = seccf_tls::pki::generate_ca("x", 1).unwrap();
            seccf_tls::pki::write_pem_pair(&ca, &dir.join("ca.pem"), &dir.join("ca.key")).unwrap();
            dir.join("ca.pem").display().to_string()
        }
    );
    let cfg = seccf_osg::OsgConfig::from_toml_str(&text).unwrap();
    let osg = seccf_osg::Osg::new(cfg).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let err = osg
        .run(seccf_osg::OsgListeners::default(), rx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("multi-thread"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psk_with_oma_ua_ids() {
    let env = Env::start().await;
    let t = env.terminal().await;
    for max in [Some(PskTlsVersion::Tls12), None] {
        let c = env.psk_connector_org(&t, max, None, false, true);
        let mut s = h1(psk_connect(env.addr("psk-oma"), &c).await.unwrap()).await;
        assert_eq!(
            send(&mut s, "GET", "/", &[], b"").await.status,
            200,
            "{max:?}"
        );
        // 3GPP ids do not open the OMA listener.
        let c = env.psk_connector(&t, max, None, false);
        assert!(
            psk_connect(env.addr("psk-oma"), &c).await.is_err(),
            "{max:?}"
        );
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_responder_down_soft_and_hard_fail() {
    // Nothing listens on this port: the responder is down.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for hard in [false, true] {
        let env = Env::start_with(Options {
            ocsp: (format!("http://{down}"), hard),
            ..Options::default()
        })
        .await;
        let mut s = h1(
            tls_connect(env.addr("mtls"), &env.connector(Some("client-1"), false))
                .await
                .unwrap(),
        )
        .await;
        let status = send(&mut s, "GET", "/", &[], b"").await.status;
        assert_eq!(status, if hard { 403 } else { 200 }, "hard_fail = {hard}");
        env.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_via_alpn() {
    let env = Env::start().await;
    let cfg = seccf_tls::client::ClientTlsConfig {
        ca_file: env.ca_file.clone(),
        client_cert_file: Some(env.path("client-1.pem")),
        client_key_file: Some(env.path("client-1.key")),
    };
    let mut b = seccf_tls::client::connector_builder(&cfg).unwrap();
    b.set_alpn_protos(b"\x02h2").unwrap();
    let c = b.build();
    let stream = tls_connect(env.addr("mtls"), &c).await.unwrap();
    assert_eq!(stream.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    let (mut send_req, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("https://{NAF_FQDN}/h2?q"))
        .header("x-3gpp-asserted-identity", "forged")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let r = send_req.send_request(req).await.unwrap();
    assert_eq!(r.status(), 200);
    let seen = env.last_upstream().await;
    assert_eq!(seen["headers"][ASSERTED_IDENTITY], "client-1");
    assert_eq!(seen["headers"]["host"], NAF_FQDN);
    assert_eq!(seen["uri"], "/h2?q");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_tunnels_are_closed_and_the_connection_limit_holds() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::start_with(Options {
        idle_timeout_secs: 1,
        max_connections: 3,
        ..Options::default()
    })
    .await;
    let t = env.terminal().await;
    // An idle keep-alive HTTPS connection is closed after the idle timeout.
    let c = env.psk_connector(&t, None, None, false);
    let mut stream = psk_connect(env.addr("psk"), &c).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: naf.osg.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let start = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "idle HTTPS connection closed");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    // An idle tunnel too.
    let mut tunnel = psk_connect(env.addr("tunnel"), &c).await.unwrap();
    tunnel.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    tunnel.read_exact(&mut one).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tunnel.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "idle tunnel closed");
    // max_connections = 3: a fourth simultaneous connection is closed at accept.
    let held: Vec<_> = futures_hold(env.addr("digest"), 3).await;
    let mut extra = tokio::net::TcpStream::connect(env.addr("digest"))
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "over-limit connection closed");
    drop(held);
    assert!(
        env.metric("seccf_osg_connections_total{listener=\"digest\",result=\"over_limit\"}")
            .await
            >= 1.0
    );
    env.stop().await;
}

/// Opens `n` TCP connections and keeps them (they sit in the TLS handshake).
async fn futures_hold(addr: std::net::SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // Let the gateway accept them before the next connection arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    v
}
