//! Client and server driven against each other in memory, through header text only,
//! with a virtual clock: the way the security gateway, the KMC and the agent use this
//! crate.

use seccf_digest::nonce::{NonceCounter, NonceError, NonceFactory};
use seccf_digest::{
    answer, authentication_info, verify, verify_rspauth, Algorithm, AuthenticationInfo, Challenge,
    Credentials, DigestError, Qop,
};
use seccf_secret::Secret;

const T0: u64 = 1_750_000_000;
const LIFE: u64 = 120;
const REALM: &str = "3GPP-bootstrapping@naf.example.com";
const BTID: &str = "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.mnc001.mcc001.pub.3gppnetwork.org";
/// base64(Ks_NAF) from gba.md 10, the Ua password.
const KS_NAF_B64: &[u8] = b"rp7MPHwXaSwdRNbWjVOjsWJKcGA5dTupkegpPzz97Ag=";

/// A minimal Ua gateway: stateless nonces bound to the realm, replay counter.
struct Gateway {
    nonces: NonceFactory,
    counter: NonceCounter,
    algorithm: Algorithm,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok(String),        // Authentication-Info
    Challenge(String), // WWW-Authenticate
    Forbidden(&'static str),
}

impl Gateway {
    fn new(algorithm: Algorithm) -> Self {
        Gateway {
            nonces: NonceFactory::new(Secret::new([9; 32]), LIFE),
            counter: NonceCounter::new(64, LIFE),
            algorithm,
        }
    }

    fn challenge(&self, now: u64, stale: bool) -> String {
        Challenge {
            stale,
            qop: vec![Qop::Auth, Qop::AuthInt],
            opaque: Some("gw-1".into()),
            ..Challenge::new(
                REALM,
                &self.nonces.issue(now, REALM.as_bytes()).unwrap(),
                self.algorithm,
            )
        }
        .to_header_value()
    }

    fn handle(
        &mut self,
        authorization: Option<&str>,
        method: &str,
        body: &[u8],
        now: u64,
    ) -> Outcome {
        let Some(h) = authorization else {
            return Outcome::Challenge(self.challenge(now, false));
        };
        let Ok(creds) = Credentials::parse(h) else {
            return Outcome::Forbidden("parse");
        };
        let expected = Challenge {
            qop: vec![Qop::Auth, Qop::AuthInt],
            opaque: Some("gw-1".into()),
            ..Challenge::new(REALM, &creds.nonce, self.algorithm)
        };
        if creds.check_against(&expected).is_err() {
            return Outcome::Forbidden("challenge");
        }
        // A real gateway gets the password from the KMC via Zn using the B-TID.
        let password = if creds.username == BTID {
            KS_NAF_B64
        } else {
            b"" as &[u8]
        };
        let issued = match self.nonces.check(&creds.nonce, now, REALM.as_bytes()) {
            Ok(t) => t,
            Err(NonceError::Stale) => {
                // RFC 7616 3.3: stale=true only if the digest itself was right.
                return if verify(&creds, password, method, body).is_ok() {
                    Outcome::Challenge(self.challenge(now, true))
                } else {
                    Outcome::Forbidden("digest")
                };
            }
            Err(_) => return Outcome::Forbidden("nonce"),
        };
        if verify(&creds, password, method, body).is_err() {
            return Outcome::Forbidden("digest");
        }
        let nc = creds.nc.unwrap_or(0);
        if self
            .counter
            .check_and_record_issued(&creds.nonce, issued, nc, now)
            .is_err()
        {
            return Outcome::Forbidden("replay");
        }
        let body_out = b"hello";
        let info = authentication_info(&creds, password, body_out, None).unwrap();
        Outcome::Ok(info.to_header_value())
    }
}

fn client_answer(www: &str, nc: u32, qop: Qop, method: &str, body: &[u8]) -> Credentials {
    let ch = Challenge::parse(www).unwrap();
    assert_eq!(ch.realm, REALM);
    answer(
        &ch,
        BTID,
        KS_NAF_B64,
        method,
        "/service",
        Some(qop),
        nc,
        &format!("cn{nc}"),
        body,
    )
    .unwrap()
}

#[test]
fn ua_flow_md5_and_sha256_with_mutual_auth() {
    for alg in [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha256Sess] {
        let mut gw = Gateway::new(alg);
        let Outcome::Challenge(www) = gw.handle(None, "GET", b"", T0) else {
            panic!("expected a challenge")
        };
        for (nc, qop) in [(1, Qop::Auth), (2, Qop::AuthInt), (3, Qop::Auth)] {
            let creds = client_answer(&www, nc, qop, "POST", b"payload");
            let out = gw.handle(Some(&creds.to_header_value()), "POST", b"payload", T0 + 5);
            let Outcome::Ok(info) = out else {
                panic!("{alg:?} {out:?}")
            };
            let info = AuthenticationInfo::parse(&info).unwrap();
            assert_eq!(verify_rspauth(&creds, KS_NAF_B64, b"hello", &info), Ok(()));
            // Only auth-int covers the response body.
            let other_body = verify_rspauth(&creds, KS_NAF_B64, b"HELLO", &info);
            match qop {
                Qop::AuthInt => assert_eq!(other_body, Err(DigestError::Mismatch)),
                Qop::Auth => assert_eq!(other_body, Ok(())),
            }
            assert_eq!(
                verify_rspauth(&creds, b"wrong", b"hello", &info),
                Err(DigestError::Mismatch)
            );
        }
    }
}

#[test]
fn ua_replay_tamper_and_stale() {
    let mut gw = Gateway::new(Algorithm::Md5);
    let Outcome::Challenge(www) = gw.handle(None, "GET", b"", T0) else {
        panic!()
    };
    let creds = client_answer(&www, 1, Qop::AuthInt, "PUT", b"body");
    let header = creds.to_header_value();
    assert!(matches!(
        gw.handle(Some(&header), "PUT", b"body", T0 + 1),
        Outcome::Ok(_)
    ));
    // The same request again is a replay.
    assert_eq!(
        gw.handle(Some(&header), "PUT", b"body", T0 + 2),
        Outcome::Forbidden("replay")
    );
    // auth-int protects the body; the method is covered too.
    let c2 = client_answer(&www, 2, Qop::AuthInt, "PUT", b"body");
    assert_eq!(
        gw.handle(Some(&c2.to_header_value()), "PUT", b"bodX", T0 + 2),
        Outcome::Forbidden("digest")
    );
    assert_eq!(
        gw.handle(Some(&c2.to_header_value()), "DELETE", b"body", T0 + 2),
        Outcome::Forbidden("digest")
    );
    // A forged nonce is refused even with a correct digest over it.
    let forged_ch = Challenge::parse(&www.replace("nonce=\"", "nonce=\"A")).unwrap();
    let forged = answer(
        &forged_ch,
        BTID,
        KS_NAF_B64,
        "GET",
        "/service",
        Some(Qop::Auth),
        1,
        "c",
        b"",
    )
    .unwrap();
    assert_eq!(
        gw.handle(Some(&forged.to_header_value()), "GET", b"", T0 + 2),
        Outcome::Forbidden("nonce")
    );
    // After the lifetime, a right digest gets stale=true and a fresh nonce works.
    let c3 = client_answer(&www, 3, Qop::Auth, "GET", b"");
    let out = gw.handle(Some(&c3.to_header_value()), "GET", b"", T0 + LIFE + 1);
    let Outcome::Challenge(www2) = out else {
        panic!("{out:?}")
    };
    let ch2 = Challenge::parse(&www2).unwrap();
    assert!(ch2.stale);
    let c4 = client_answer(&www2, 1, Qop::Auth, "GET", b"");
    assert!(matches!(
        gw.handle(Some(&c4.to_header_value()), "GET", b"", T0 + LIFE + 2),
        Outcome::Ok(_)
    ));
    // A wrong password on a stale nonce is not told "stale".
    let mut bad = client_answer(&www, 4, Qop::Auth, "GET", b"");
    bad.response = "0".repeat(32);
    assert_eq!(
        gw.handle(Some(&bad.to_header_value()), "GET", b"", T0 + LIFE + 1),
        Outcome::Forbidden("digest")
    );
}

#[test]
fn ub_flow_akav1_with_milenage_set1() {
    // gba.md 3.6: the BSF's challenge carries base64(RAND || AUTN); RES is the password.
    let res = hex::decode("a54211d5e3ba50bf").unwrap();
    let impi = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org";
    let realm = "bsf.mnc001.mcc001.pub.3gppnetwork.org";

    // 1. UE: initial request.
    let initial = Credentials::initial(impi, realm, "/").to_header_value();
    // 2. BSF: parses it, sees a new bootstrap, challenges.
    let req = Credentials::parse(&initial).unwrap();
    assert!(req.is_initial());
    let ch = Challenge {
        qop: vec![Qop::AuthInt],
        opaque: Some("bsf-opaque".into()),
        ..Challenge::new(
            realm,
            "I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=",
            Algorithm::AkaV1Md5,
        )
    };
    let www = ch.to_header_value();
    // 3. UE: runs AKA (RES from the card) and answers.
    let ue_ch = Challenge::parse(&www).unwrap();
    let creds = answer(
        &ue_ch,
        impi,
        &res,
        "GET",
        "/",
        Some(Qop::AuthInt),
        1,
        "0a4f113b7c1d2e3f",
        b"",
    )
    .unwrap();
    assert_eq!(creds.response, "b785f2d81716d01f1646ddc103ffaa09");
    // 4. BSF: verifies with XRES and answers with rspauth over the XML body.
    let got = Credentials::parse(&creds.to_header_value()).unwrap();
    assert_eq!(got.check_against(&ch), Ok(()));
    assert_eq!(verify(&got, &res, "GET", b""), Ok(()));
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/ub_bootstrapping_info.xml"
    ))
    .unwrap();
    let info = authentication_info(&got, &res, &body, None)
        .unwrap()
        .to_header_value();
    // 5. UE: checks rspauth, which proves the BSF knew XRES.
    let info = AuthenticationInfo::parse(&info).unwrap();
    assert_eq!(
        info.rspauth.as_deref(),
        Some("31da94a50b9bef5769f02dfb4c9aa5da")
    );
    assert_eq!(verify_rspauth(&creds, &res, &body, &info), Ok(()));
    // A wrong RES at the BSF side fails.
    assert_eq!(
        verify(&got, &[0u8; 8], "GET", b""),
        Err(DigestError::Mismatch)
    );
}
