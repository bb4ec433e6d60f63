//! The agent's side of GBA HTTP Digest on Ua (TS 24.109 §5.2, inside TS 33.222 §5.3
//! server-certificate TLS) — sans-IO: pick the challenge, answer it, check the
//! gateway's `Authentication-Info`.
//!
//! Rules (gba.md §5.1, §5.2):
//! * only a challenge whose realm is `3GPP-bootstrapping@<host>` is answered, where
//!   `<host>` is the host the agent connected to: a realm naming another FQDN would
//!   make the agent derive (and prove knowledge of) a key for a NAF it is not talking
//!   to, so it is refused, not followed;
//! * `3GPP-bootstrapping-uicc@…` (Ks_int_NAF, which never leaves a GBA_U card) and the
//!   GBA_Digest / AKMA realms are not answered;
//! * username = B-TID, password = base64(Ks_NAF) (standard alphabet, padded);
//! * qop `auth` when offered, else `auth-int`, else the RFC 2069 form; MD5 or SHA-256
//!   (and their `-sess` variants), never the AKA algorithms (those belong to Ub);
//! * `rspauth`, when the gateway sends one, must verify.

use base64::Engine as _;
use seccf_digest::{AuthenticationInfo, Challenge, Credentials, Qop};
use seccf_gba::Secret;
use seccf_secret::SecretBytes;

use crate::error::SecaError;

/// Realm prefix of GBA challenges with the ME-based key.
pub const GBA_REALM_PREFIX: &str = "3GPP-bootstrapping@";

/// Most `WWW-Authenticate` values looked at in one response.
pub const MAX_CHALLENGES: usize = 8;

/// Why no challenge of a 401 could be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// No Digest challenge at all (or none that parsed).
    #[error("the 401 carries no usable Digest challenge")]
    NoDigest,
    /// Digest challenges, but none with a `3GPP-bootstrapping@` realm.
    #[error("the 401 carries no 3GPP-bootstrapping Digest challenge")]
    NoGbaRealm,
    /// A GBA realm that names another host than the one connected to.
    #[error("the GBA realm names {realm_fqdn:?}, not the host {host:?}; not answered")]
    ForeignRealm {
        /// The FQDN in the realm (printable ASCII, at most 253 bytes).
        realm_fqdn: String,
        /// The host connected to.
        host: String,
    },
    /// A GBA realm with an algorithm the Ua does not use (AKA).
    #[error("the GBA challenge asks for algorithm {0}, which Ua does not use")]
    Algorithm(&'static str),
}

/// Picks the GBA challenge among the `WWW-Authenticate` values of a 401 (at most
/// [`MAX_CHALLENGES`] looked at). `host` is the host the request went to.
pub fn select_gba_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
    host: &str,
) -> Result<Challenge, ChallengeError> {
    let mut worst = ChallengeError::NoDigest;
    for value in values.into_iter().take(MAX_CHALLENGES) {
        let is_digest = value
            .trim_start()
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("digest"));
        if !is_digest {
            continue;
        }
        let Ok(challenge) = Challenge::parse(value) else {
            continue;
        };
        let Some(fqdn) = challenge.realm.strip_prefix(GBA_REALM_PREFIX) else {
            if worst == ChallengeError::NoDigest {
                worst = ChallengeError::NoGbaRealm;
            }
            continue;
        };
        if !fqdn.eq_ignore_ascii_case(host) {
            worst = ChallengeError::ForeignRealm {
                realm_fqdn: printable(fqdn),
                host: printable(host),
            };
            continue;
        }
        if challenge.algorithm.is_aka() {
            if !matches!(worst, ChallengeError::ForeignRealm { .. }) {
                worst = ChallengeError::Algorithm(challenge.algorithm.token());
            }
            continue;
        }
        return Ok(challenge);
    }
    Err(worst)
}

/// Bounded, printable copy of server-supplied text for an error message.
fn printable(s: &str) -> String {
    s.chars()
        .take(253)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// The qop the agent answers with: `auth`, else `auth-int`, else none (RFC 2069).
pub fn choose_qop(challenge: &Challenge) -> Option<Qop> {
    if challenge.qop.contains(&Qop::Auth) {
        Some(Qop::Auth)
    } else if challenge.qop.contains(&Qop::AuthInt) {
        Some(Qop::AuthInt)
    } else {
        None
    }
}

/// The Digest password of a NAF key: the bytes of base64(Ks_NAF), 44 for 32 octets.
pub fn digest_password(naf_key: &Secret<32>) -> SecretBytes {
    SecretBytes::new(
        base64::engine::general_purpose::STANDARD
            .encode(naf_key.expose())
            .into_bytes(),
    )
}

/// The credentials answering `challenge` with the B-TID and `password`
/// ([`digest_password`]); nonce count 1, as every challenge is answered once.
#[allow(clippy::too_many_arguments)] // mirrors the digest inputs one to one
pub fn answer(
    challenge: &Challenge,
    btid: &str,
    password: &SecretBytes,
    method: &str,
    uri: &str,
    body: &[u8],
    cnonce: &str,
) -> Result<Credentials, SecaError> {
    seccf_digest::answer(
        challenge,
        btid,
        password.expose(),
        method,
        uri,
        choose_qop(challenge),
        1,
        cnonce,
        body,
    )
    .map_err(|e| SecaError::BadResponse(format!("cannot answer the Digest challenge: {e}")))
}

/// Checks the gateway's `Authentication-Info` for the request sent as `creds`: absent,
/// or without `rspauth`, is accepted (TS 24.109 does not oblige a NAF to send one);
/// present, it must verify over `response_body`.
pub fn check_authentication_info(
    header: Option<&str>,
    creds: &Credentials,
    password: &SecretBytes,
    response_body: &[u8],
) -> Result<(), SecaError> {
    let Some(value) = header else {
        return Ok(());
    };
    let info = AuthenticationInfo::parse(value)
        .map_err(|e| SecaError::BadResponse(format!("Authentication-Info: {e}")))?;
    if info.rspauth.is_none() {
        return Ok(());
    }
    seccf_digest::verify_rspauth(creds, password.expose(), response_body, &info)
        .map_err(|_| SecaError::GatewayRspauth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccf_digest::Algorithm;

    fn ch(realm: &str, extra: &str) -> String {
        format!("Digest realm=\"{realm}\", nonce=\"abc\", qop=\"auth,auth-int\"{extra}")
    }

    #[test]
    fn picks_the_gba_challenge_for_this_host() {
        let users =
            "Digest realm=\"seccf@naf.example\", nonce=\"x\", algorithm=SHA-256, qop=\"auth\"";
        let gba = ch("3GPP-bootstrapping@naf.example", "");
        let values = ["Basic realm=\"x\"", users, gba.as_str()];
        let c = select_gba_challenge(values, "naf.example").unwrap();
        assert_eq!(c.realm, "3GPP-bootstrapping@naf.example");
        assert_eq!(c.algorithm, Algorithm::Md5);
        // Host comparison ignores ASCII case (DNS names).
        assert!(select_gba_challenge([gba.as_str()], "NAF.example").is_ok());
    }

    #[test]
    fn refuses_what_it_must_not_answer() {
        let other = ch("3GPP-bootstrapping@evil.example", "");
        assert_eq!(
            select_gba_challenge([other.as_str()], "naf.example"),
            Err(ChallengeError::ForeignRealm {
                realm_fqdn: "evil.example".into(),
                host: "naf.example".into()
            })
        );
        let uicc = ch("3GPP-bootstrapping-uicc@naf.example", "");
        assert_eq!(
            select_gba_challenge([uicc.as_str()], "naf.example"),
            Err(ChallengeError::NoGbaRealm)
        );
        let aka = ch("3GPP-bootstrapping@naf.example", ", algorithm=AKAv1-MD5");
        assert_eq!(
            select_gba_challenge([aka.as_str()], "naf.example"),
            Err(ChallengeError::Algorithm("AKAv1-MD5"))
        );
        assert_eq!(
            select_gba_challenge(
                ["Basic realm=\"3GPP-bootstrapping@naf.example\""],
                "naf.example"
            ),
            Err(ChallengeError::NoDigest)
        );
        assert_eq!(
            select_gba_challenge(["Digest nonce=\"no realm\""], "naf.example"),
            Err(ChallengeError::NoDigest)
        );
        // A realm with a port or a trailing dot is another name, not this host.
        let port = ch("3GPP-bootstrapping@naf.example:443", "");
        assert!(select_gba_challenge([port.as_str()], "naf.example").is_err());
        // Only the first MAX_CHALLENGES values are looked at.
        let gba = ch("3GPP-bootstrapping@naf.example", "");
        let mut many = vec!["Basic realm=\"x\""; MAX_CHALLENGES];
        many.push(gba.as_str());
        assert_eq!(
            select_gba_challenge(many, "naf.example"),
            Err(ChallengeError::NoDigest)
        );
    }

    #[test]
    fn qop_preference() {
        let mut c = Challenge::new("r", "n", Algorithm::Md5);
        c.qop = vec![];
        assert_eq!(choose_qop(&c), None);
        c.qop = vec![Qop::AuthInt];
        assert_eq!(choose_qop(&c), Some(Qop::AuthInt));
        c.qop = vec![Qop::AuthInt, Qop::Auth];
        assert_eq!(choose_qop(&c), Some(Qop::Auth));
    }

    /// gba.md §10 "Ua digest example (qop=auth)" [SELF]: the HTTP-digest NAF key of the
    /// worked example, its base64 password and the expected response. The inputs and
    /// outputs are in testdata/ua_digest_example.txt.
    #[test]
    fn worked_ua_digest_example() {
        let v = crate::gateway::testdata::ua_digest_example();
        let key = Secret::<32>::from_hex(v.get("ks_naf")).unwrap();
        let password = digest_password(&key);
        assert_eq!(password.expose(), v.get("password").as_bytes());
        let mut challenge = Challenge::new(v.get("realm"), v.get("nonce"), Algorithm::Md5);
        challenge.qop = vec![Qop::Auth];
        let creds = answer(
            &challenge,
            v.get("btid"),
            &password,
            v.get("method"),
            v.get("uri"),
            b"",
            v.get("cnonce"),
        )
        .unwrap();
        assert_eq!(creds.response, v.get("response"));
        assert_eq!(creds.username, v.get("btid"));
        assert_eq!(creds.nc_text.as_deref(), Some(v.get("nc")));

        // rspauth computed by the server side of seccf-digest verifies; a changed one
        // does not; a missing header or a header without rspauth is accepted.
        let info =
            seccf_digest::authentication_info(&creds, password.expose(), b"ok", None).unwrap();
        let header = info.to_header_value();
        check_authentication_info(Some(&header), &creds, &password, b"ok").unwrap();
        // With qop=auth, rspauth does not cover the response body.
        check_authentication_info(Some(&header), &creds, &password, b"other body").unwrap();
        let mut bad = info.clone();
        bad.rspauth = Some("0".repeat(32));
        assert!(matches!(
            check_authentication_info(Some(&bad.to_header_value()), &creds, &password, b"ok"),
            Err(SecaError::GatewayRspauth)
        ));
        check_authentication_info(None, &creds, &password, b"ok").unwrap();
        check_authentication_info(Some("nextnonce=\"abc\""), &creds, &password, b"ok").unwrap();
        assert!(matches!(
            check_authentication_info(Some("rspauth"), &creds, &password, b"ok"),
            Err(SecaError::BadResponse(_))
        ));
    }

    #[test]
    fn auth_int_rspauth_covers_the_body() {
        let key = Secret::new([7u8; 32]);
        let password = digest_password(&key);
        let mut challenge = Challenge::new("3GPP-bootstrapping@h", "n0nce", Algorithm::Sha256);
        challenge.qop = vec![Qop::AuthInt];
        let creds = answer(
            &challenge, "btid@bsf", &password, "POST", "/x", b"req", "cn",
        )
        .unwrap();
        assert_eq!(creds.qop, Some(Qop::AuthInt));
        let info =
            seccf_digest::authentication_info(&creds, password.expose(), b"resp", None).unwrap();
        let header = info.to_header_value();
        check_authentication_info(Some(&header), &creds, &password, b"resp").unwrap();
        assert!(matches!(
            check_authentication_info(Some(&header), &creds, &password, b"other"),
            Err(SecaError::GatewayRspauth)
        ));
    }

    /// Randomized: challenge selection never panics on arbitrary header values, and
    /// whatever it returns meets its promises.
    #[test]
    fn challenge_selection_never_panics() {
        let mut state: u64 = 0x5eed_1234_abcd_ef01;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [
            ch("3GPP-bootstrapping@naf.example", ""),
            ch(
                "3GPP-bootstrapping@naf.example",
                ", algorithm=SHA-256-sess, stale=true",
            ),
            "Digest realm=\"seccf@naf.example\", nonce=\"x\", algorithm=SHA-256".to_string(),
        ];
        let alphabet =
            b"Digest realm=\"3GPP-bootstrapping@naf.example\",nonce=qop=auth-int\\ \x00\xc3\xa9";
        for i in 0..4000 {
            let n = 1 + (next() % 3) as usize;
            let mut values = Vec::new();
            for _ in 0..n {
                let mut bytes = if i % 3 == 0 {
                    (0..(next() % 120))
                        .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                        .collect()
                } else {
                    seeds[(next() % seeds.len() as u64) as usize]
                        .as_bytes()
                        .to_vec()
                };
                for _ in 0..(next() % 5) {
                    if bytes.is_empty() {
                        break;
                    }
                    let pos = (next() % bytes.len() as u64) as usize;
                    let b = alphabet[(next() % alphabet.len() as u64) as usize];
                    match next() % 3 {
                        0 => bytes[pos] = b,
                        1 => {
                            bytes.remove(pos);
                        }
                        _ => bytes.insert(pos, b),
                    }
                }
                values.push(String::from_utf8_lossy(&bytes).into_owned());
            }
            if let Ok(c) = select_gba_challenge(values.iter().map(String::as_str), "naf.example") {
                assert!(c
                    .realm
                    .strip_prefix(GBA_REALM_PREFIX)
                    .is_some_and(|f| f.eq_ignore_ascii_case("naf.example")));
                assert!(!c.algorithm.is_aka());
            }
        }
    }
}
