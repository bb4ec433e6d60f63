//! The sans-IO Ub steps against the worked example of gba.md §3.6 (MILENAGE test set
//! 1), driven through a real software USIM over APDUs. Vectors: testdata/
//! ub_worked_example.txt and testdata/bootstrapping_info_3_6.xml (sources in the file
//! header). Expected digests for bodies other than the worked one are computed with
//! `seccf_digest` from the *vector* RES, not from anything the agent produced.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use seccf_digest::{Algorithm, Credentials, DigestInput, Qop};
use seccf_gba::naf::{NafId, UaSecurityProtocolId};
use seccf_gba::{aka, sqn, GbaType, Milenage, Secret, SqnWindow};
use seccf_seca::ub::{self, ChallengeAnswer, PendingBootstrap};
use seccf_seca::{Agent, SecaError};
use seccf_uicc::soft::{SoftUsim, SoftUsimConfig};
use seccf_uicc::Usim;

const BODY: &[u8] = include_bytes!("../testdata/bootstrapping_info_3_6.xml");

fn vectors() -> HashMap<&'static str, &'static str> {
    include_str!("../testdata/ub_worked_example.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(" = ").expect("key = value");
            (k.trim(), v.trim())
        })
        .collect()
}

fn h16(s: &str) -> [u8; 16] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// Unix time of `<lifetime>` in the worked body, 2025-01-01T12:00:00Z.
const LIFETIME: i64 = 1_735_732_800;

/// A soft USIM with test set 1's K/OPc and an SQN window just below the vector SQN
/// (every IND slot at SEQ(SQN) - 1), so the vector AUTN is fresh.
fn card_with_window(gba_u: bool, window: [u64; 32]) -> Usim<SoftUsim> {
    let v = vectors();
    let cfg = SoftUsimConfig {
        impi: v["impi"].to_owned(),
        k: Secret::from_hex(v["k"]).unwrap(),
        opc: Secret::from_hex(v["opc"]).unwrap(),
        amf: [0x80, 0x00],
        gba_u,
        sqn_window: Some(window),
        delta: SqnWindow::DEFAULT_DELTA,
    };
    Usim::new(SoftUsim::from_config(cfg))
}

fn card(gba_u: bool) -> Usim<SoftUsim> {
    let seq = sqn::from_bytes(&hex::decode(vectors()["sqn"]).unwrap().try_into().unwrap()) >> 5;
    card_with_window(gba_u, [seq - 1; 32])
}

/// The 401's WWW-Authenticate as a BSF sends it, for `nonce`.
fn www_authenticate(nonce: &str, algorithm: &str) -> String {
    format!(
        "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={algorithm}, qop=\"auth-int\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        vectors()["realm"]
    )
}

fn respond(usim: &mut Usim<SoftUsim>, gba_u: bool, nonce: &str) -> (Credentials, PendingBootstrap) {
    let v = vectors();
    let answer = ub::answer_challenge(
        usim,
        gba_u,
        v["impi"],
        &www_authenticate(nonce, "AKAv1-MD5"),
        "GET",
        "/",
        v["cnonce"],
    )
    .unwrap();
    match answer {
        ChallengeAnswer::Respond {
            authorization,
            pending,
        } => (Credentials::parse(&authorization).unwrap(), pending),
        ChallengeAnswer::Resync { .. } => panic!("unexpected resync"),
    }
}

fn auth_info(rspauth: &str) -> String {
    let v = vectors();
    format!(
        "qop=auth-int, rspauth=\"{rspauth}\", cnonce=\"{}\", nc={}",
        v["cnonce"], v["nc"]
    )
}

/// rspauth over `body` for the worked challenge, computed from the vector RES.
fn rspauth_for(nonce: &str, body: &[u8]) -> String {
    let v = vectors();
    let res = hex::decode(v["res"]).unwrap();
    seccf_digest::rspauth(&DigestInput {
        algorithm: Algorithm::AkaV1Md5,
        username: v["impi"],
        realm: v["realm"],
        password: &res,
        method: "",
        uri: "/",
        nonce,
        qop: Some(Qop::AuthInt),
        nc_text: v["nc"],
        cnonce: v["cnonce"],
        body,
    })
    .unwrap()
}

#[test]
fn worked_example_response_rspauth_and_context() {
    let v = vectors();
    let mut usim = card(false);
    let (creds, pending) = respond(&mut usim, false, v["nonce"]);
    assert_eq!(creds.response, v["response"]);
    assert_eq!(creds.username, v["impi"]);
    assert_eq!(creds.realm, v["realm"]);
    assert_eq!(creds.nonce, v["nonce"]);
    assert_eq!(creds.uri, "/");
    assert_eq!(creds.qop, Some(Qop::AuthInt));
    assert_eq!(creds.nc_text.as_deref(), Some(v["nc"]));
    assert_eq!(creds.cnonce.as_deref(), Some(v["cnonce"]));
    assert_eq!(creds.algorithm, Some(Algorithm::AkaV1Md5));
    assert_eq!(
        creds.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    assert_eq!(creds.auts, None);
    assert_eq!(pending.rand(), &h16(v["rand"]));
    assert_eq!(pending.gba_type(), GbaType::Me);
    // RES, CK and IK are redacted in Debug output (hex and decimal byte forms).
    let dbg = format!("{pending:?}");
    let res = hex::decode(v["res"]).unwrap();
    assert!(
        !dbg.contains(v["res"]) && !dbg.contains(&format!("{res:?}")[1..12]),
        "{dbg}"
    );
    assert!(!dbg.contains(v["ck"]) && !dbg.contains(v["ik"]));

    let ctx = ub::finish(
        pending,
        Some(&auth_info(v["rspauth"])),
        BODY,
        LIFETIME - 3600,
    )
    .unwrap();
    assert_eq!(ctx.btid, v["btid"]);
    assert_eq!(ctx.impi, v["impi"]);
    assert_eq!(ctx.rand, h16(v["rand"]));
    assert_eq!(ctx.gba_type, GbaType::Me);
    assert_eq!(ctx.expires_at, LIFETIME);
    assert_eq!(
        hex::encode(ctx.ks.as_ref().unwrap().expose()),
        v["ks"],
        "Ks = CK || IK"
    );
    assert!(!format!("{ctx:?}").contains(&v["ks"][..16]));
    assert!(ctx.is_valid(LIFETIME - 3600));
    assert!(!ctx.is_valid(LIFETIME - 10));
}

#[test]
fn rspauth_is_checked() {
    let v = vectors();
    let upper = v["rspauth"].to_ascii_uppercase();
    let mut wrong = v["rspauth"].to_owned();
    wrong.replace_range(0..1, "4");
    let mut other_body = BODY.to_vec();
    let pos = other_body.windows(4).position(|w| w == b"2025").unwrap();
    other_body[pos + 3] = b'9';

    // (Authentication-Info, body, expected to pass)
    let cases: Vec<(Option<String>, Vec<u8>, bool)> = vec![
        (Some(auth_info(v["rspauth"])), BODY.to_vec(), true),
        (Some(auth_info(&upper)), BODY.to_vec(), true),
        (Some(auth_info(&wrong)), BODY.to_vec(), false),
        (None, BODY.to_vec(), false),
        (
            Some("qop=auth-int, cnonce=\"0a4f113b7c1d2e3f\", nc=00000001".into()),
            BODY.to_vec(),
            false,
        ),
        (Some("rspauth=".into()), BODY.to_vec(), false),
        // Echoed cnonce that is not ours.
        (
            Some(format!(
                "qop=auth-int, rspauth=\"{}\", cnonce=\"other\", nc=00000001",
                v["rspauth"]
            )),
            BODY.to_vec(),
            false,
        ),
        // The body is not the one the rspauth covers (lifetime moved to 2029).
        (Some(auth_info(v["rspauth"])), other_body, false),
    ];
    for (i, (info, body, good)) in cases.into_iter().enumerate() {
        let mut usim = card(false);
        let (_, pending) = respond(&mut usim, false, v["nonce"]);
        let r = ub::finish(pending, info.as_deref(), &body, LIFETIME - 3600);
        match (good, r) {
            (true, Ok(_)) => {}
            (false, Err(SecaError::BadRspauth)) => {}
            (g, r) => panic!("case {i}: expected pass={g}, got {r:?}"),
        }
    }
}

#[test]
fn btid_must_carry_the_challenge_rand_and_lifetime_must_be_ahead() {
    let v = vectors();
    let foreign = String::from_utf8(BODY.to_vec())
        .unwrap()
        .replace("I1U8vpY3qJ0hiuZNrke/NQ==", "AAAAAAAAAAAAAAAAAAAAAA==");
    let mut usim = card(false);
    let (_, pending) = respond(&mut usim, false, v["nonce"]);
    let info = auth_info(&rspauth_for(v["nonce"], foreign.as_bytes()));
    match ub::finish(pending, Some(&info), foreign.as_bytes(), LIFETIME - 3600) {
        Err(SecaError::BadResponse(m)) => assert!(m.contains("RAND"), "{m}"),
        other => panic!("{other:?}"),
    }

    // A lifetime already in the past (terminal clock after the BSF's expiry).
    let mut usim = card(false);
    let (_, pending) = respond(&mut usim, false, v["nonce"]);
    match ub::finish(pending, Some(&auth_info(v["rspauth"])), BODY, LIFETIME + 1) {
        Err(SecaError::BadResponse(m)) => assert!(m.contains("already passed"), "{m}"),
        other => panic!("{other:?}"),
    }

    // A body that is not BootstrappingInfo, correctly authenticated.
    let junk = b"<html>hello</html>";
    let mut usim = card(false);
    let (_, pending) = respond(&mut usim, false, v["nonce"]);
    let info = auth_info(&rspauth_for(v["nonce"], junk));
    assert!(matches!(
        ub::finish(pending, Some(&info), junk, LIFETIME - 3600),
        Err(SecaError::BadResponse(_))
    ));
}

#[test]
fn currenttime_corrects_for_terminal_clock_skew() {
    let v = vectors();
    // The BSF says it is 10:00Z; the terminal believes it is 11:00Z (one hour ahead),
    // so the key expires at 13:00Z in the terminal's clock.
    let body = String::from_utf8(BODY.to_vec()).unwrap().replace(
        "</lifetime>\n",
        "</lifetime>\n  <Extension>\n    <currenttime>2025-01-01T10:00:00Z</currenttime>\n  </Extension>\n",
    );
    let mut usim = card(false);
    let (_, pending) = respond(&mut usim, false, v["nonce"]);
    let info = auth_info(&rspauth_for(v["nonce"], body.as_bytes()));
    let ctx = ub::finish(pending, Some(&info), body.as_bytes(), LIFETIME - 3600).unwrap();
    assert_eq!(ctx.expires_at, LIFETIME + 3600);
}

#[test]
fn resync_carries_auts_and_an_empty_password_digest() {
    let v = vectors();
    // Window whose highest accepted SQN is SEQ 1 / IND 0 (SQN_MS = 0x20): the vector
    // SQN is then too far ahead and the card answers AUTS (gba.md §3.6 resync row).
    let mut window = [0u64; 32];
    window[0] = 1;
    let mut usim = card_with_window(false, window);
    let answer = ub::answer_challenge(
        &mut usim,
        false,
        v["impi"],
        &www_authenticate(v["nonce"], "AKAv1-MD5"),
        "GET",
        "/",
        v["cnonce"],
    )
    .unwrap();
    let ChallengeAnswer::Resync { authorization } = answer else {
        panic!("expected a resync answer");
    };
    let creds = Credentials::parse(&authorization).unwrap();
    assert_eq!(creds.auts.as_deref(), Some("RR6L7KQb+O5YnUbYNck="));
    assert_eq!(creds.nonce, v["nonce"]);
    // RFC 3310: the digest of the resync request uses an empty password.
    seccf_digest::verify(&creds, b"", "GET", b"").unwrap();
    let res = hex::decode(v["res"]).unwrap();
    assert!(seccf_digest::verify(&creds, &res, "GET", b"").is_err());
}

#[test]
fn replayed_challenge_gives_auts_the_network_accepts() {
    let v = vectors();
    let mut usim = card(false);
    let _ = respond(&mut usim, false, v["nonce"]);
    // Same AUTN again: not fresh any more → sync failure with SQN_MS = the vector SQN.
    let answer = ub::answer_challenge(
        &mut usim,
        false,
        v["impi"],
        &www_authenticate(v["nonce"], "AKAv1-MD5"),
        "GET",
        "/",
        v["cnonce"],
    )
    .unwrap();
    let ChallengeAnswer::Resync { authorization } = answer else {
        panic!("a replayed AUTN must not be answered");
    };
    let creds = Credentials::parse(&authorization).unwrap();
    let auts: [u8; 14] = B64.decode(creds.auts.unwrap()).unwrap().try_into().unwrap();
    let m = Milenage::new(
        Secret::from_hex(v["k"]).unwrap(),
        Secret::from_hex(v["opc"]).unwrap(),
    );
    let sqn_ms = aka::verify_auts(&m, &h16(v["rand"]), &auts).expect("MAC-S verifies");
    assert_eq!(
        sqn::to_bytes(sqn_ms),
        hex::decode(v["sqn"]).unwrap().as_slice()
    );
}

#[test]
fn mac_failure_is_never_answered() {
    let v = vectors();
    let mut raw = B64.decode(v["nonce"]).unwrap();
    raw[31] ^= 0x01; // last octet of MAC-A
    let nonce = B64.encode(&raw);
    let mut usim = card(false);
    let r = ub::answer_challenge(
        &mut usim,
        false,
        v["impi"],
        &www_authenticate(&nonce, "AKAv1-MD5"),
        "GET",
        "/",
        v["cnonce"],
    );
    assert!(matches!(r, Err(SecaError::NetworkAuthFailed)), "{r:?}");
}

#[test]
fn unusable_challenges_are_refused() {
    let v = vectors();
    for (www, gba_u) in [
        (www_authenticate(v["nonce"], "MD5"), false),
        (www_authenticate(v["nonce"], "SHA-256"), false),
        (www_authenticate(v["nonce"], "AKAv2-MD5"), true),
        (www_authenticate("c2hvcnQ=", "AKAv1-MD5"), false),
        ("Basic realm=\"x\"".to_owned(), false),
        ("Digest realm=\"x\"".to_owned(), false),
    ] {
        let mut usim = card(gba_u);
        let r = ub::answer_challenge(&mut usim, gba_u, v["impi"], &www, "GET", "/", v["cnonce"]);
        assert!(matches!(r, Err(SecaError::BadResponse(_))), "{www}: {r:?}");
    }
}

#[test]
fn akav2_uses_the_rfc4169_password() {
    let v = vectors();
    let mut usim = card(false);
    let answer = ub::answer_challenge(
        &mut usim,
        false,
        v["impi"],
        &www_authenticate(v["nonce"], "AKAv2-MD5"),
        "GET",
        "/",
        v["cnonce"],
    )
    .unwrap();
    let ChallengeAnswer::Respond { authorization, .. } = answer else {
        panic!("expected a response");
    };
    let creds = Credentials::parse(&authorization).unwrap();
    assert_eq!(creds.algorithm, Some(Algorithm::AkaV2Md5));
    // gba.md §3.6: the AKAv2 password of this AV.
    seccf_digest::verify(&creds, b"shzt3q8CWaZnCAWqs3WmEQ==", "GET", b"").unwrap();
}

fn naf() -> NafId {
    let v = vectors();
    NafId::new(
        v["naf_fqdn"],
        UaSecurityProtocolId::from_hex(v["naf_ua"]).unwrap(),
    )
    .unwrap()
}

#[test]
fn gba_me_naf_key_matches_the_worked_table() {
    let v = vectors();
    let mut agent = Agent::new(card(false)).unwrap();
    assert_eq!(agent.impi(), v["impi"]);
    assert_eq!(agent.gba_type(), GbaType::Me);
    let (_, pending) = respond(&mut agent.usim_mut(), false, v["nonce"]);
    let ctx = ub::finish(
        pending,
        Some(&auth_info(v["rspauth"])),
        BODY,
        LIFETIME - 3600,
    )
    .unwrap();
    let key = agent.naf_key(&ctx, &naf()).unwrap();
    assert_eq!(hex::encode(key.expose()), v["ks_naf"]);

    let foreign = seccf_seca::BootstrapContext {
        impi: "someone@else.example".into(),
        ..ctx.clone()
    };
    assert!(matches!(
        agent.naf_key(&foreign, &naf()),
        Err(SecaError::NotBootstrapped)
    ));
}

#[test]
fn gba_u_keeps_ks_in_the_card_and_derives_ks_ext_naf_there() {
    let v = vectors();
    // The BSF sends AUTN* for a GBA_U subscriber (formula UNCONFIRMED, shared with the
    // KMC and the soft card through seccf_gba::aka::autn_star).
    let ik = Secret::<16>::from_hex(v["ik"]).unwrap();
    let autn_star = aka::autn_star(&h16(v["autn"]), &ik);
    let mut raw = h16(v["rand"]).to_vec();
    raw.extend_from_slice(&autn_star);
    let nonce = B64.encode(&raw);

    let mut agent = Agent::new(card(true)).unwrap();
    assert_eq!(agent.gba_type(), GbaType::U);
    let (creds, pending) = respond(&mut agent.usim_mut(), true, &nonce);
    assert_eq!(pending.gba_type(), GbaType::U);
    // The card returned the same RES as GBA_ME would: check the digest with it.
    let res = hex::decode(v["res"]).unwrap();
    seccf_digest::verify(&creds, &res, "GET", b"").unwrap();

    let ctx = ub::finish(
        pending,
        Some(&auth_info(&rspauth_for(&nonce, BODY))),
        BODY,
        LIFETIME - 3600,
    )
    .unwrap();
    assert_eq!(ctx.gba_type, GbaType::U);
    assert!(ctx.ks.is_none(), "Ks must stay in the card");

    // Before EF_GBABP names this context the agent refuses to derive.
    assert!(matches!(
        agent.naf_key(&ctx, &naf()),
        Err(SecaError::NotBootstrapped)
    ));
    agent
        .usim_mut()
        .write_gbabp(&ctx.rand, &ctx.btid, "2025-01-01T12:00:00Z")
        .unwrap();
    // Ks_ext_NAF = KDF(Ks, "gba-me", …) = the GBA_ME Ks_NAF of the worked table.
    let key = agent.naf_key(&ctx, &naf()).unwrap();
    assert_eq!(hex::encode(key.expose()), v["ks_naf"]);
}

/// A BSF that answers every request with the same worked-example 401 challenge and
/// records the Authorization headers it received.
async fn stubborn_bsf() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let www = www_authenticate(vectors()["nonce"], "AKAv1-MD5");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 2048];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head).to_string();
            if let Some(auth) = text.lines().find_map(|l| l.strip_prefix("authorization: ")) {
                log.lock().unwrap().push(auth.to_owned());
            }
            let reply = format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {www}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = tcp.write_all(reply.as_bytes()).await;
        }
    });
    (port, seen)
}

#[tokio::test]
async fn agent_gives_up_after_two_rounds() {
    let (port, seen) = stubborn_bsf().await;
    let mut agent = Agent::new(card(false)).unwrap();
    let r = agent.bootstrap(&format!("http://127.0.0.1:{port}/")).await;
    assert!(matches!(r, Err(SecaError::TooManyResyncs)), "{r:?}");
    let seen = seen.lock().unwrap();
    // Initial request, the answer to the first challenge, then (the same AUTN again is
    // a replay for the card) a resynchronisation request — and no fourth request.
    assert_eq!(seen.len(), 3, "{seen:?}");
    let initial = Credentials::parse(&seen[0]).unwrap();
    assert!(initial.is_initial());
    assert_eq!(initial.realm, "127.0.0.1");
    let answer = Credentials::parse(&seen[1]).unwrap();
    assert!(answer.auts.is_none());
    // The agent's own random cnonce: check the digest with the vector RES instead.
    let res = hex::decode(vectors()["res"]).unwrap();
    seccf_digest::verify(&answer, &res, "GET", b"").unwrap();
    assert!(Credentials::parse(&seen[2]).unwrap().auts.is_some());
}
