//! The gateway side of HTTP Digest over TLS (TS 24.109 §5.2 inside TS 33.222 §5.3
//! server-certificate TLS), plus plain RFC 7616 users — sans-IO.
//!
//! A request goes through [`DigestEngine::begin`] (parse, realm, challenge match, nonce
//! validity, B-TID syntax), then, for GBA, the caller fetches the NAF key for the
//! B-TID and the NafId of the connection and calls [`DigestEngine::finish_gba`] (digest
//! check, then nc replay check — in that order, so a forged request cannot burn a
//! victim's nonce). Plain users finish with [`DigestEngine::finish_user`].
//!
//! Challenges (`WWW-Authenticate`):
//!
//! * GBA: `realm="3GPP-bootstrapping@<fqdn>"`, `algorithm=MD5`, `qop="auth,auth-int"`,
//!   a stateless HMAC nonce (see `seccf_digest::nonce`) valid for the listener's
//!   `nonce_lifetime_secs`, and an opaque value fixed per gateway process.
//! * Plain users (only when a users file is configured): the users realm,
//!   `algorithm=SHA-256`, same qop.
//!
//! Which challenges a client gets: a User-Agent with the `3gpp-gba` token gets only
//! the GBA challenge. Any other client gets the users challenge first (when a users
//! file is configured) and then the GBA challenge, so that both browsers with a
//! password and generic GBA clients (e.g. `curl --digest` with a B-TID) can answer;
//! note that curl answers the first Digest challenge it sees, so GBA use of curl on a
//! listener with a users file needs `-A '… 3gpp-gba'`.
//!
//! An unknown or expired B-TID gets a fresh 401 challenge (the terminal bootstraps
//! again, TS 24.109 §5.2.5); a stale nonce with a correct digest gets `stale=true`.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use seccf_digest::nonce::{NonceCounter, NonceError, NonceFactory};
use seccf_digest::{Algorithm, Challenge, Credentials, DigestError, Qop};
use seccf_gba::btid::parse_btid;
use seccf_secret::{Secret, SecretBytes};

use crate::config::AuthMethod;
use crate::keys::{KeyError, NafKeys};
use crate::principal::Principal;
use crate::ua::{gba_realm, has_gba_token};
use crate::users::{rspauth_ha1, verify_ha1, UsersDb};

/// Nonces whose counts are tracked per listener.
pub const NONCE_COUNTER_CAPACITY: usize = 100_000;

/// What [`DigestEngine::begin`] concluded.
#[derive(Debug)]
pub enum Begin {
    /// Answer with the outcome now.
    Done(Outcome),
    /// GBA credentials, syntactically fine: fetch the NAF key for `btid`.
    NeedGbaKey(PendingGba),
    /// Plain-user credentials: finish with the users file.
    User(PendingUser),
}

/// GBA credentials waiting for their key.
#[derive(Debug)]
pub struct PendingGba {
    creds: Credentials,
    issued_at: u64,
    stale: bool,
}

impl PendingGba {
    /// The B-TID (Digest user name).
    pub fn btid(&self) -> &str {
        &self.creds.username
    }
}

/// Plain-user credentials waiting for the users file.
#[derive(Debug)]
pub struct PendingUser {
    creds: Credentials,
    issued_at: u64,
    stale: bool,
}

/// The decision for one request.
#[derive(Debug)]
pub enum Outcome {
    /// Authenticated (authorisation is the caller's next step).
    Authenticated(Box<Authenticated>),
    /// 401 with fresh challenges (`stale` applies to `realm`).
    Unauthorized {
        /// Set `stale=true` on the challenge of `realm`.
        stale: bool,
        /// The realm of the credentials, if any.
        realm: Option<String>,
        /// Short reason for metrics and audit.
        reason: &'static str,
        /// The claimed user name / B-TID, for the audit hash.
        identity: Option<String>,
    },
    /// 403: the KMC refuses to give this gateway keys for that B-TID.
    Forbidden {
        /// Short reason.
        reason: &'static str,
        /// The B-TID.
        identity: Option<String>,
    },
    /// 503: the KMC is unavailable.
    Unavailable,
    /// 400: the credentials do not belong to this request.
    BadRequest(&'static str),
}

fn unauthorized(reason: &'static str, creds: Option<&Credentials>) -> Outcome {
    Outcome::Unauthorized {
        stale: false,
        realm: creds.map(|c| c.realm.clone()),
        reason,
        identity: creds.map(|c| c.username.clone()),
    }
}

enum Proof {
    Gba {
        creds: Credentials,
        password: SecretBytes,
    },
    User {
        creds: Credentials,
        ha1: Secret<32>,
    },
}

/// A verified request; can produce `Authentication-Info`.
pub struct Authenticated {
    /// The party.
    pub principal: Principal,
    proof: Proof,
}

impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl Authenticated {
    /// True when `rspauth` covers the response body (qop=auth-int): the caller must
    /// buffer the body before sending the head.
    pub fn needs_response_body(&self) -> bool {
        let creds = match &self.proof {
            Proof::Gba { creds, .. } | Proof::User { creds, .. } => creds,
        };
        creds.qop == Some(Qop::AuthInt)
    }

    /// The `Authentication-Info` value (rspauth, qop, cnonce, nc) for a response whose
    /// body is `response_body` (only hashed with auth-int).
    pub fn authentication_info(&self, response_body: &[u8]) -> Option<String> {
        match &self.proof {
            Proof::Gba { creds, password } => {
                seccf_digest::authentication_info(creds, password.expose(), response_body, None)
                    .ok()
                    .map(|i| i.to_header_value())
            }
            Proof::User { creds, ha1 } => {
                let rspauth = rspauth_ha1(creds, ha1, response_body).ok()?;
                Some(
                    seccf_digest::AuthenticationInfo {
                        qop: creds.qop,
                        rspauth: Some(rspauth),
                        cnonce: creds.qop.and(creds.cnonce.clone()),
                        nc_text: creds.qop.and(creds.nc_text.clone()),
                        nextnonce: None,
                    }
                    .to_header_value(),
                )
            }
        }
    }
}

/// Digest state of one listener.
pub struct DigestEngine {
    gba_realm: String,
    users_realm: Option<String>,
    nonces: NonceFactory,
    counter: Mutex<NonceCounter>,
    opaque: String,
}

impl std::fmt::Debug for DigestEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestEngine")
            .field("gba_realm", &self.gba_realm)
            .field("users_realm", &self.users_realm)
            .finish_non_exhaustive()
    }
}

const QOPS: [Qop; 2] = [Qop::Auth, Qop::AuthInt];

impl DigestEngine {
    /// An engine for gateway `fqdn`; `users_realm` when plain users are configured.
    /// The nonce key is random per process: nonces do not survive a restart and are
    /// not shared between replicas (a client then simply gets a fresh challenge).
    pub fn new(
        fqdn: &str,
        users_realm: Option<String>,
        nonce_lifetime_secs: u64,
    ) -> Result<Self, seccf_secret::RandomError> {
        Ok(DigestEngine {
            gba_realm: gba_realm(fqdn),
            users_realm,
            nonces: NonceFactory::new(Secret::random()?, nonce_lifetime_secs),
            counter: Mutex::new(NonceCounter::new(
                NONCE_COUNTER_CAPACITY,
                nonce_lifetime_secs,
            )),
            opaque: hex::encode(seccf_secret::random_array::<16>()?),
        })
    }

    /// The GBA realm.
    pub fn gba_realm(&self) -> &str {
        &self.gba_realm
    }

    fn challenge(
        &self,
        realm: &str,
        algorithm: Algorithm,
        stale: bool,
        now: u64,
    ) -> Option<String> {
        let nonce = self.nonces.issue(now, realm.as_bytes()).ok()?;
        let mut c = Challenge::new(realm, &nonce, algorithm);
        c.qop = QOPS.to_vec();
        c.opaque = Some(self.opaque.clone());
        c.stale = stale;
        Some(c.to_header_value())
    }

    /// The `WWW-Authenticate` values for a 401 (see the module documentation for the
    /// order). `stale_realm` marks the challenge of that realm `stale=true`.
    pub fn challenges(
        &self,
        now: u64,
        user_agent: Option<&str>,
        stale_realm: Option<&str>,
    ) -> Vec<String> {
        let gba_client = user_agent.is_some_and(has_gba_token);
        let mut out = Vec::with_capacity(2);
        if let (Some(r), false) = (&self.users_realm, gba_client) {
            out.extend(self.challenge(r, Algorithm::Sha256, stale_realm == Some(r.as_str()), now));
        }
        out.extend(self.challenge(
            &self.gba_realm,
            Algorithm::Md5,
            stale_realm == Some(self.gba_realm.as_str()),
            now,
        ));
        out
    }

    /// First stage: everything that needs no key. `request_target` is the
    /// path-and-query of the request (the Digest `uri` must name it).
    pub fn begin(&self, authorization: Option<&str>, request_target: &str, now: u64) -> Begin {
        let Some(value) = authorization else {
            return Begin::Done(unauthorized("no_credentials", None));
        };
        let creds = match Credentials::parse(value) {
            Ok(c) => c,
            Err(_) => return Begin::Done(unauthorized("malformed", None)),
        };
        let (algorithm, gba) = if creds.realm == self.gba_realm {
            (Algorithm::Md5, true)
        } else if self.users_realm.as_deref() == Some(creds.realm.as_str()) {
            (Algorithm::Sha256, false)
        } else {
            return Begin::Done(unauthorized("unknown_realm", Some(&creds)));
        };
        let mut expected = Challenge::new(&creds.realm, &creds.nonce, algorithm);
        expected.qop = QOPS.to_vec();
        expected.opaque = Some(self.opaque.clone());
        if creds.check_against(&expected).is_err() || creds.userhash {
            return Begin::Done(unauthorized("challenge_mismatch", Some(&creds)));
        }
        if !uri_matches(&creds.uri, request_target) {
            return Begin::Done(Outcome::BadRequest("digest uri does not match the request"));
        }
        let (issued_at, stale) = match self.nonces.check(&creds.nonce, now, creds.realm.as_bytes())
        {
            Ok(t) => (t, false),
            Err(NonceError::Stale) => (0, true),
            Err(_) => return Begin::Done(unauthorized("bad_nonce", Some(&creds))),
        };
        if gba {
            if parse_btid(&creds.username).is_err() {
                return Begin::Done(unauthorized("bad_btid", Some(&creds)));
            }
            Begin::NeedGbaKey(PendingGba {
                creds,
                issued_at,
                stale,
            })
        } else {
            Begin::User(PendingUser {
                creds,
                issued_at,
                stale,
            })
        }
    }

    fn after_verify(
        &self,
        creds: &Credentials,
        issued_at: u64,
        stale: bool,
        now: u64,
    ) -> Option<Outcome> {
        if stale {
            return Some(Outcome::Unauthorized {
                stale: true,
                realm: Some(creds.realm.clone()),
                reason: "stale_nonce",
                identity: Some(creds.username.clone()),
            });
        }
        let nc = creds.nc.unwrap_or(0);
        let recorded = match self.counter.lock() {
            Ok(mut c) => c.check_and_record_issued(&creds.nonce, issued_at, nc, now),
            Err(_) => Err(NonceError::Invalid),
        };
        match recorded {
            Ok(()) => None,
            Err(NonceError::Stale) => Some(Outcome::Unauthorized {
                stale: true,
                realm: Some(creds.realm.clone()),
                reason: "stale_nonce",
                identity: Some(creds.username.clone()),
            }),
            Err(_) => Some(unauthorized("replayed_nc", Some(creds))),
        }
    }

    /// Second stage for GBA: `keys` is the result of the key lookup for the B-TID and
    /// the connection's NafId; `method`/`body` are the request's.
    pub fn finish_gba(
        &self,
        pending: PendingGba,
        keys: Result<Arc<NafKeys>, KeyError>,
        method: &str,
        body: &[u8],
        now: u64,
    ) -> Outcome {
        let creds = pending.creds;
        let keys = match keys {
            Ok(k) => k,
            Err(KeyError::UnknownBtid) => return unauthorized("unknown_btid", Some(&creds)),
            Err(KeyError::Refused(_)) => {
                return Outcome::Forbidden {
                    reason: "kmc_refused",
                    identity: Some(creds.username.clone()),
                }
            }
            Err(KeyError::Unavailable(_)) => return Outcome::Unavailable,
        };
        if i64::try_from(now).unwrap_or(i64::MAX) >= keys.expires_at {
            return unauthorized("key_expired", Some(&creds));
        }
        // The password is the base64 text of Ks_(ext)_NAF (TS 24.109 §5.2; gba.md §5.2).
        let password = SecretBytes::new(
            base64::engine::general_purpose::STANDARD
                .encode(keys.me_key.expose())
                .into_bytes(),
        );
        match seccf_digest::verify(&creds, password.expose(), method, body) {
            Ok(()) => {}
            Err(DigestError::Mismatch) => return unauthorized("bad_credentials", Some(&creds)),
            Err(_) => return unauthorized("malformed", Some(&creds)),
        }
        if let Some(o) = self.after_verify(&creds, pending.issued_at, pending.stale, now) {
            return o;
        }
        let principal = Principal::gba(AuthMethod::Digest, &creds.username, &keys);
        Outcome::Authenticated(Box::new(Authenticated {
            principal,
            proof: Proof::Gba { creds, password },
        }))
    }

    /// Second stage for plain users.
    pub fn finish_user(
        &self,
        pending: PendingUser,
        users: Option<&UsersDb>,
        method: &str,
        body: &[u8],
        now: u64,
    ) -> Outcome {
        let creds = pending.creds;
        let Some(ha1) = users
            .filter(|u| u.realm() == creds.realm)
            .and_then(|u| u.ha1(&creds.username))
            .cloned()
        else {
            return unauthorized("unknown_user", Some(&creds));
        };
        match verify_ha1(&creds, &ha1, method, body) {
            Ok(()) => {}
            Err(DigestError::Mismatch) => return unauthorized("bad_credentials", Some(&creds)),
            Err(_) => return unauthorized("malformed", Some(&creds)),
        }
        if let Some(o) = self.after_verify(&creds, pending.issued_at, pending.stale, now) {
            return o;
        }
        let principal = Principal::named(AuthMethod::Digest, &creds.username);
        Outcome::Authenticated(Box::new(Authenticated {
            principal,
            proof: Proof::User { creds, ha1 },
        }))
    }
}

/// The Digest `uri` must be the request target: the path-and-query, or the absolute
/// form some clients send (`https://host/path`), compared on its path-and-query.
fn uri_matches(digest_uri: &str, request_target: &str) -> bool {
    if digest_uri == request_target {
        return true;
    }
    match digest_uri.parse::<http::Uri>() {
        Ok(u) if u.scheme().is_some() => {
            u.path_and_query().map(|p| p.as_str()) == Some(request_target)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::sha256_ha1;
    use seccf_digest::answer;

    const FQDN: &str = "naf.example.org";
    const BTID: &str = "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org";
    const NOW: u64 = 1_800_000_000;

    fn engine() -> DigestEngine {
        DigestEngine::new(FQDN, Some("seccf@naf".into()), 60).unwrap()
    }

    fn keys() -> Arc<NafKeys> {
        Arc::new(NafKeys {
            me_key: Secret::new([0x42; 32]),
            expires_at: (NOW + 3600) as i64,
            impi: "impi@x".into(),
            ue_ids: vec!["sip:alice@x".into()],
            flags: vec![],
        })
    }

    fn password() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode([0x42; 32])
            .into_bytes()
    }

    fn gba_challenge(e: &DigestEngine, now: u64) -> Challenge {
        let v = e.challenges(now, Some("agent 3gpp-gba"), None);
        assert_eq!(v.len(), 1, "GBA clients get one challenge");
        Challenge::parse(&v[0]).unwrap()
    }

    fn run_gba(e: &DigestEngine, auth: &str, body: &[u8], now: u64) -> Outcome {
        match e.begin(Some(auth), "/r?q=1", now) {
            Begin::NeedGbaKey(p) => {
                assert_eq!(p.btid(), BTID);
                e.finish_gba(p, Ok(keys()), "POST", body, now)
            }
            Begin::Done(o) => o,
            Begin::User(_) => panic!("GBA realm routed to users"),
        }
    }

    #[test]
    fn gba_flow_replay_and_rspauth() {
        let e = engine();
        let ch = gba_challenge(&e, NOW);
        assert_eq!(ch.realm, "3GPP-bootstrapping@naf.example.org");
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert_eq!(ch.qop, vec![Qop::Auth, Qop::AuthInt]);
        let creds = answer(
            &ch,
            BTID,
            &password(),
            "POST",
            "/r?q=1",
            Some(Qop::AuthInt),
            1,
            "c1",
            b"hi",
        )
        .unwrap();
        let auth = creds.to_header_value();
        let Outcome::Authenticated(a) = run_gba(&e, &auth, b"hi", NOW + 1) else {
            panic!("not authenticated")
        };
        assert_eq!(a.principal.identity, "sip:alice@x");
        assert_eq!(a.principal.btid.as_deref(), Some(BTID));
        assert!(a.needs_response_body());
        let info =
            seccf_digest::AuthenticationInfo::parse(&a.authentication_info(b"resp").unwrap())
                .unwrap();
        seccf_digest::verify_rspauth(&creds, &password(), b"resp", &info).unwrap();
        // The same request again: nc replay.
        assert!(matches!(
            run_gba(&e, &auth, b"hi", NOW + 2),
            Outcome::Unauthorized {
                reason: "replayed_nc",
                ..
            }
        ));
        // Next nc is fine.
        let c2 = answer(
            &ch,
            BTID,
            &password(),
            "POST",
            "/r?q=1",
            Some(Qop::Auth),
            2,
            "c2",
            b"",
        )
        .unwrap();
        assert!(matches!(
            run_gba(&e, &c2.to_header_value(), b"", NOW + 2),
            Outcome::Authenticated(_)
        ));
        // auth-int body tampering.
        let c3 = answer(
            &ch,
            BTID,
            &password(),
            "POST",
            "/r?q=1",
            Some(Qop::AuthInt),
            3,
            "c3",
            b"hi",
        )
        .unwrap();
        assert!(matches!(
            run_gba(&e, &c3.to_header_value(), b"HI", NOW + 2),
            Outcome::Unauthorized {
                reason: "bad_credentials",
                ..
            }
        ));
    }

    #[test]
    fn wrong_password_does_not_burn_the_nonce() {
        let e = engine();
        let ch = gba_challenge(&e, NOW);
        let bad = answer(
            &ch,
            BTID,
            b"wrong",
            "POST",
            "/r?q=1",
            Some(Qop::Auth),
            9,
            "c",
            b"",
        )
        .unwrap();
        assert!(matches!(
            run_gba(&e, &bad.to_header_value(), b"", NOW),
            Outcome::Unauthorized {
                reason: "bad_credentials",
                ..
            }
        ));
        let good = answer(
            &ch,
            BTID,
            &password(),
            "POST",
            "/r?q=1",
            Some(Qop::Auth),
            1,
            "c",
            b"",
        )
        .unwrap();
        assert!(matches!(
            run_gba(&e, &good.to_header_value(), b"", NOW),
            Outcome::Authenticated(_)
        ));
    }

    #[test]
    fn stale_only_when_the_digest_is_right() {
        let e = engine();
        let ch = gba_challenge(&e, NOW);
        let good = answer(
            &ch,
            BTID,
            &password(),
            "POST",
            "/r?q=1",
            Some(Qop::Auth),
            1,
            "c",
            b"",
        )
        .unwrap();
        assert!(matches!(
            run_gba(&e, &good.to_header_value(), b"", NOW + 61),
            Outcome::Unauthorized { stale: true, .. }
        ));
        let bad = answer(
            &ch,
            BTID,
            b"x",
            "POST",
            "/r?q=1",
            Some(Qop::Auth),
            1,
            "c",
            b"",
        )
        .unwrap();
        assert!(matches!(
            run_gba(&e, &bad.to_header_value(), b"", NOW + 61),
            Outcome::Unauthorized { stale: false, .. }
        ));
        let v = e.challenges(NOW, Some("3gpp-gba"), Some(e.gba_realm()));
        assert!(Challenge::parse(&v[0]).unwrap().stale);
    }

    #[test]
    fn refusals_before_the_key() {
        let e = engine();
        let ch = gba_challenge(&e, NOW);
        let good = answer(
            &ch,
            BTID,
            &password(),
            "GET",
            "/r?q=1",
            Some(Qop::Auth),
            1,
            "c",
            b"",
        )
        .unwrap();
        // Other URI.
        assert!(matches!(
            e.begin(Some(&good.to_header_value()), "/other", NOW),
            Begin::Done(Outcome::BadRequest(_))
        ));
        // Absolute-form URI is accepted.
        let abs = answer(
            &ch,
            BTID,
            &password(),
            "GET",
            "https://naf.example.org/r?q=1",
            Some(Qop::Auth),
            1,
            "c",
            b"",
        )
        .unwrap();
        assert!(matches!(
            e.begin(Some(&abs.to_header_value()), "/r?q=1", NOW),
            Begin::NeedGbaKey(_)
        ));
        // Nonce from another engine (another key).
        let other = engine();
        let och = gba_challenge(&other, NOW);
        let c = answer(
            &och,
            BTID,
            &password(),
            "GET",
            "/r?q=1",
            Some(Qop::Auth),
            1,
            "c",
            b"",
        )
        .unwrap();
        let mut c = c;
        c.opaque = ch.opaque.clone();
        assert!(matches!(
            e.begin(Some(&c.to_header_value()), "/r?q=1", NOW),
            Begin::Done(Outcome::Unauthorized {
                reason: "bad_nonce",
                ..
            })
        ));
        // Wrong opaque.
        let mut c = good.clone();
        c.opaque = Some("00".into());
        assert!(matches!(
            e.begin(Some(&c.to_header_value()), "/r?q=1", NOW),
            Begin::Done(Outcome::Unauthorized {
                reason: "challenge_mismatch",
                ..
            })
        ));
        // A user name that is no B-TID.
        let c = answer(
            &ch,
            "alice",
            &password(),
            "GET",
            "/r?q=1",
            Some(Qop::Auth),
            1,
            "c",
            b"",
        )
        .unwrap();
        assert!(matches!(
            e.begin(Some(&c.to_header_value()), "/r?q=1", NOW),
            Begin::Done(Outcome::Unauthorized {
                reason: "bad_btid",
                ..
            })
        ));
        assert!(matches!(
            e.begin(None, "/", NOW),
            Begin::Done(Outcome::Unauthorized {
                reason: "no_credentials",
                ..
            })
        ));
        assert!(matches!(
            e.begin(Some("Basic Zm9v"), "/", NOW),
            Begin::Done(Outcome::Unauthorized {
                reason: "malformed",
                ..
            })
        ));
    }

    #[test]
    fn unknown_btid_and_kmc_failures() {
        let e = engine();
        let ch = gba_challenge(&e, NOW);
        let c = answer(
            &ch,
            BTID,
            &password(),
            "GET",
            "/",
            Some(Qop::Auth),
            1,
            "c",
            b"",
        )
        .unwrap();
        let outcome =
            |k: Result<Arc<NafKeys>, KeyError>| match e.begin(Some(&c.to_header_value()), "/", NOW)
            {
                Begin::NeedGbaKey(p) => e.finish_gba(p, k, "GET", b"", NOW),
                other => panic!("{other:?}"),
            };
        assert!(matches!(
            outcome(Err(KeyError::UnknownBtid)),
            Outcome::Unauthorized {
                reason: "unknown_btid",
                ..
            }
        ));
        assert!(matches!(
            outcome(Err(KeyError::Refused("x".into()))),
            Outcome::Forbidden { .. }
        ));
        assert!(matches!(
            outcome(Err(KeyError::Unavailable("x".into()))),
            Outcome::Unavailable
        ));
    }

    #[test]
    fn plain_users() {
        let e = engine();
        let users = UsersDb::parse(
            &format!(
                "bob:seccf@naf:{}\n",
                hex::encode(sha256_ha1("bob", "seccf@naf", b"pw").expose())
            ),
            "seccf@naf",
        )
        .unwrap();
        let v = e.challenges(NOW, Some("curl/8"), None);
        assert_eq!(v.len(), 2);
        let ch = Challenge::parse(&v[0]).unwrap();
        assert_eq!(ch.realm, "seccf@naf");
        assert_eq!(ch.algorithm, Algorithm::Sha256);
        assert_eq!(Challenge::parse(&v[1]).unwrap().realm, e.gba_realm());
        let run = |user: &str, pw: &[u8], nc: u32| {
            let c = answer(&ch, user, pw, "GET", "/", Some(Qop::Auth), nc, "c", b"").unwrap();
            match e.begin(Some(&c.to_header_value()), "/", NOW) {
                Begin::User(p) => e.finish_user(p, Some(&users), "GET", b"", NOW),
                Begin::Done(o) => o,
                Begin::NeedGbaKey(_) => panic!("users realm routed to GBA"),
            }
        };
        let Outcome::Authenticated(a) = run("bob", b"pw", 1) else {
            panic!()
        };
        assert_eq!(a.principal.identity, "bob");
        assert!(a.authentication_info(b"").unwrap().contains("rspauth="));
        assert!(matches!(
            run("bob", b"nope", 2),
            Outcome::Unauthorized {
                reason: "bad_credentials",
                ..
            }
        ));
        assert!(matches!(
            run("carol", b"pw", 3),
            Outcome::Unauthorized {
                reason: "unknown_user",
                ..
            }
        ));
    }
}
