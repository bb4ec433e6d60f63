//! Sans-IO Ub client steps (no sockets): usable with any HTTP stack.
//!
//! A bootstrap (TS 24.109 clause 4 / Annex A, RFC 3310) is three calls around two or
//! three HTTP exchanges that the caller performs:
//!
//! 1. [`initial_authorization`] gives the `Authorization` value of the first `GET`
//!    (user name = IMPI, empty nonce and response); the BSF answers `401`.
//! 2. [`answer_challenge`] takes the 401's `WWW-Authenticate` value, runs AKA on the
//!    card and returns either the answer to send with a [`PendingBootstrap`], or — when
//!    the card reports a synchronisation failure — a resynchronisation request (`auts`,
//!    digest over an empty password) after which the BSF challenges again.
//! 3. [`finish`] takes the 200's `Authentication-Info` and body, checks `rspauth`
//!    (the BSF knew XRES), parses the BootstrappingInfo and yields the
//!    [`BootstrapContext`].
//!
//! Nothing here reads the clock or the network: `now_unix` and the cnonce come from
//! the caller. The card is driven synchronously through [`Usim`].

mod xml;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use seccf_digest::{Algorithm, AuthenticationInfo, Challenge, Credentials, DigestError, Qop};
use seccf_gba::{btid, kdf, GbaType, Secret, SecretBytes};
use seccf_uicc::{AkaOutcome, CardTransport, GbaUOutcome, Usim};

use crate::card::usim_error;
use crate::error::SecaError;
use crate::BootstrapContext;

pub use xml::{
    format_time, parse_bootstrapping_info, BootstrappingInfo, MAX_BOOTSTRAPPING_INFO_LEN,
    MAX_DEPTH, MAX_FIELD_LEN,
};

/// The request URI of the BSF (TS 24.109 A.3 uses `/`).
pub const DEFAULT_UB_URI: &str = "/";

/// The Ub nonce is base64(RAND ‖ AUTN ‖ optional server data); anything longer than
/// this many decoded octets is refused rather than decoded.
pub const MAX_NONCE_OCTETS: usize = 256;

/// First request's Authorization value: username=IMPI, realm, nonce="", uri, response="".
///
/// The empty nonce and response tell the BSF to start a new bootstrap. TS 24.109 A.3
/// uses the BSF's FQDN as the realm here.
pub fn initial_authorization(impi: &str, realm: &str, uri: &str) -> String {
    Credentials::initial(impi, realm, uri).to_header_value()
}

/// What to send after a 401.
// One value per AKA run, moved once: boxing the pending state would only add an
// allocation (and the API is shared with other crates as written).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ChallengeAnswer {
    /// AKA succeeded: send `authorization`; the 200 OK goes to [`finish`] with `pending`.
    Respond {
        /// The `Authorization` header value.
        authorization: String,
        /// What [`finish`] needs to check the BSF's answer.
        pending: PendingBootstrap,
    },
    /// The card reported a synchronisation failure: send `authorization` (it carries
    /// `auts`); the BSF resynchronises and answers with a fresh 401 challenge.
    Resync {
        /// The `Authorization` header value.
        authorization: String,
    },
}

/// Holds RAND, RES (for rspauth), CK/IK (GBA_ME only), and the digest parameters.
///
/// Single use: [`finish`] consumes it. Its secrets zeroize on drop and print redacted.
#[derive(Debug)]
pub struct PendingBootstrap {
    impi: String,
    rand: [u8; 16],
    gba_type: GbaType,
    /// The credentials as sent; rspauth is checked against exactly these.
    sent: Credentials,
    /// The digest password: raw RES (AKAv1-MD5) or the RFC 4169 password (AKAv2-MD5).
    password: SecretBytes,
    /// CK and IK for Ks = CK ‖ IK; `None` for GBA_U, where Ks stays in the card.
    ck_ik: Option<(Secret<16>, Secret<16>)>,
}

impl PendingBootstrap {
    /// RAND of the challenge being answered.
    pub fn rand(&self) -> &[u8; 16] {
        &self.rand
    }
    /// The GBA variant this bootstrap runs.
    pub fn gba_type(&self) -> GbaType {
        self.gba_type
    }
    /// The IMPI the answer was sent for.
    pub fn impi(&self) -> &str {
        &self.impi
    }
}

/// Splits a Ub nonce into RAND and AUTN; server-specific octets after them are
/// ignored (RFC 3310 §3.2).
pub fn split_nonce(nonce: &str) -> Result<([u8; 16], [u8; 16]), SecaError> {
    // Base64 expands 3 octets to 4 characters; bound the text before decoding.
    if nonce.len() > MAX_NONCE_OCTETS.div_ceil(3) * 4 {
        return Err(SecaError::BadResponse("Ub nonce is too long".into()));
    }
    let raw = B64
        .decode(nonce.as_bytes())
        .map_err(|_| SecaError::BadResponse("Ub nonce is not standard base64".into()))?;
    let (rand, rest) = raw
        .split_first_chunk::<16>()
        .ok_or_else(|| SecaError::BadResponse("Ub nonce shorter than RAND ‖ AUTN".into()))?;
    let (autn, _server_data) = rest
        .split_first_chunk::<16>()
        .ok_or_else(|| SecaError::BadResponse("Ub nonce shorter than RAND ‖ AUTN".into()))?;
    Ok((*rand, *autn))
}

/// The card's answer, with the GBA_ME/GBA_U difference folded in.
enum CardAnswer {
    Success {
        res: Secret<8>,
        ck_ik: Option<(Secret<16>, Secret<16>)>,
    },
    SyncFailure {
        auts: [u8; 14],
    },
}

fn run_aka<T: CardTransport>(
    usim: &mut Usim<T>,
    gba_u: bool,
    rand: &[u8; 16],
    autn: &[u8; 16],
) -> Result<CardAnswer, SecaError> {
    if gba_u {
        match usim.gba_u_bootstrap(rand, autn).map_err(usim_error)? {
            GbaUOutcome::Success { res } => Ok(CardAnswer::Success { res, ck_ik: None }),
            GbaUOutcome::SyncFailure { auts } => Ok(CardAnswer::SyncFailure { auts }),
        }
    } else {
        match usim.authenticate_3g(rand, autn).map_err(usim_error)? {
            AkaOutcome::Success { res, ck, ik } => Ok(CardAnswer::Success {
                res,
                ck_ik: Some((ck, ik)),
            }),
            AkaOutcome::SyncFailure { auts } => Ok(CardAnswer::SyncFailure { auts }),
        }
    }
}

/// The qop to answer with: auth-int when offered (it covers the body, and the KMC
/// requires it), else auth, else none (the RFC 2617 form).
fn choose_qop(challenge: &Challenge) -> Option<Qop> {
    if challenge.qop.contains(&Qop::AuthInt) {
        Some(Qop::AuthInt)
    } else if challenge.qop.contains(&Qop::Auth) {
        Some(Qop::Auth)
    } else {
        None
    }
}

fn digest_error(e: DigestError) -> SecaError {
    SecaError::BadResponse(format!("cannot answer the Ub challenge: {e}"))
}

/// Given the 401's WWW-Authenticate value, run AKA on the card and build the answer.
///
/// - GBA_ME cards (`gba_u == false`): AUTHENTICATE in 3G context (RES, CK, IK — CK/IK
///   kept for Ks).
/// - GBA_U cards: AUTHENTICATE in GBA bootstrapping mode (RES only; Ks stays in the card).
/// - Sync failure → an Authorization with `auts=base64(AUTS)` and the digest over an
///   empty password (RFC 3310 §3.4).
/// - MAC failure → `Err(SecaError::NetworkAuthFailed)`; nothing is answered.
///
/// The challenge must use `AKAv1-MD5` or `AKAv2-MD5` (the latter needs CK and IK, so
/// only with GBA_ME). `method` and `uri` are those of the request that will carry the
/// answer (`GET`, `/` on Ub); the request body is empty. `cnonce` must be non-empty
/// when the challenge offers a qop (it always does on Ub).
pub fn answer_challenge<T: CardTransport>(
    usim: &mut Usim<T>,
    gba_u: bool,
    impi: &str,
    www_authenticate: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> Result<ChallengeAnswer, SecaError> {
    let challenge = Challenge::parse(www_authenticate)
        .map_err(|e| SecaError::BadResponse(format!("WWW-Authenticate: {e}")))?;
    match challenge.algorithm {
        Algorithm::AkaV1Md5 => {}
        Algorithm::AkaV2Md5 if !gba_u => {}
        Algorithm::AkaV2Md5 => {
            return Err(SecaError::BadResponse(
                "the BSF asks for AKAv2-MD5, which needs CK and IK; a GBA_U card keeps them".into(),
            ))
        }
        other => {
            return Err(SecaError::BadResponse(format!(
                "Ub challenge uses {}, not an AKA digest algorithm",
                other.token()
            )))
        }
    }
    if challenge.userhash {
        // Ub identifies the subscriber by IMPI; a hashed user name cannot be looked up.
        return Err(SecaError::BadResponse(
            "Ub challenge asks for userhash".into(),
        ));
    }
    let (rand, autn) = split_nonce(&challenge.nonce)?;
    let qop = choose_qop(&challenge);

    match run_aka(usim, gba_u, &rand, &autn)? {
        CardAnswer::SyncFailure { auts } => {
            let mut creds =
                seccf_digest::answer(&challenge, impi, b"", method, uri, qop, 1, cnonce, b"")
                    .map_err(digest_error)?;
            creds.auts = Some(B64.encode(auts));
            Ok(ChallengeAnswer::Resync {
                authorization: creds.to_header_value(),
            })
        }
        CardAnswer::Success { res, ck_ik } => {
            let password = match (challenge.algorithm, &ck_ik) {
                (Algorithm::AkaV2Md5, Some((ck, ik))) => {
                    seccf_digest::akav2_password(res.expose(), ik.expose(), ck.expose())
                }
                // AKAv1-MD5: the password is the raw RES octets (gba.md §11 pitfall 3).
                _ => SecretBytes::from(&res),
            };
            let creds = seccf_digest::answer(
                &challenge,
                impi,
                password.expose(),
                method,
                uri,
                qop,
                1,
                cnonce,
                b"",
            )
            .map_err(digest_error)?;
            Ok(ChallengeAnswer::Respond {
                authorization: creds.to_header_value(),
                pending: PendingBootstrap {
                    impi: impi.to_owned(),
                    rand,
                    gba_type: if gba_u { GbaType::U } else { GbaType::Me },
                    sent: creds,
                    password,
                    ck_ik,
                },
            })
        }
    }
}

/// Verify the 200: Authentication-Info rspauth (constant time) over the exact body
/// bytes, parse BootstrappingInfo, check that the B-TID's RAND part equals the
/// challenge's RAND, and produce the context.
///
/// `expires_at` is in the terminal's clock: when the BSF sent `<currenttime>`, the
/// lifetime is shifted by the difference between `now_unix` and that time, so a
/// terminal with a wrong clock still expires the key when the BSF does.
pub fn finish(
    pending: PendingBootstrap,
    authentication_info: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<BootstrapContext, SecaError> {
    finish_detailed(pending, authentication_info, body, now_unix).map(|(ctx, _)| ctx)
}

/// [`finish`], also returning the parsed BootstrappingInfo (the BSF-clock lifetime is
/// what a GBA_U agent writes to EF_GBABP).
pub fn finish_detailed(
    pending: PendingBootstrap,
    authentication_info: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(BootstrapContext, BootstrappingInfo), SecaError> {
    if body.len() > MAX_BOOTSTRAPPING_INFO_LEN {
        return Err(SecaError::BadResponse(format!(
            "Ub 200 body larger than {MAX_BOOTSTRAPPING_INFO_LEN} bytes"
        )));
    }
    // Mutual authentication first: nothing in the body is trusted before rspauth.
    let header = authentication_info.ok_or(SecaError::BadRspauth)?;
    let info = AuthenticationInfo::parse(header).map_err(|_| SecaError::BadRspauth)?;
    seccf_digest::verify_rspauth(&pending.sent, pending.password.expose(), body, &info)
        .map_err(|_| SecaError::BadRspauth)?;

    let bi = parse_bootstrapping_info(body)?;
    let (btid_rand, _domain) =
        btid::parse_btid(&bi.btid).map_err(|e| SecaError::BadResponse(format!("B-TID: {e}")))?;
    if btid_rand != pending.rand {
        return Err(SecaError::BadResponse(
            "the B-TID's RAND part is not the RAND of the challenge".into(),
        ));
    }
    let expires_at = match bi.current_time_unix {
        Some(bsf_now) => bi
            .lifetime_unix
            .saturating_add(now_unix.saturating_sub(bsf_now)),
        None => bi.lifetime_unix,
    };
    if expires_at <= now_unix {
        return Err(SecaError::BadResponse(
            "the key lifetime has already passed".into(),
        ));
    }
    let ks = pending.ck_ik.as_ref().map(|(ck, ik)| kdf::ks(ck, ik));
    let ctx = BootstrapContext {
        btid: bi.btid.clone(),
        impi: pending.impi.clone(),
        rand: pending.rand,
        expires_at,
        gba_type: pending.gba_type,
        ks,
    };
    Ok((ctx, bi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_split() {
        // gba.md §3.6: nonce = base64(RAND ‖ AUTN) of test set 1.
        let (rand, autn) = split_nonce("I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=").unwrap();
        assert_eq!(hex::encode(rand), "23553cbe9637a89d218ae64dae47bf35");
        assert_eq!(hex::encode(autn), "55f328b43577b9b94a9ffac354dfafb3");
        // Server-specific data after AUTN is ignored.
        let mut long = [0u8; 40];
        long[0] = 1;
        long[16] = 2;
        let (r, a) = split_nonce(&B64.encode(long)).unwrap();
        assert_eq!((r[0], a[0]), (1, 2));
        assert!(split_nonce(&B64.encode([0u8; 31])).is_err());
        assert!(split_nonce("").is_err());
        assert!(split_nonce("not base64!").is_err());
        assert!(split_nonce(&B64.encode(vec![0u8; MAX_NONCE_OCTETS + 3])).is_err());
        // URL-safe alphabet is not the Ub encoding.
        assert!(split_nonce("I1U8vpY3qJ0hiuZNrke_NVXzKLQ1d7m5Sp_6w1Tfr7M=").is_err());
    }

    #[test]
    fn initial_authorization_shape() {
        let v = initial_authorization("001010123456789@ims.example", "bsf.example", "/");
        let c = Credentials::parse(&v).unwrap();
        assert!(c.is_initial());
        assert_eq!(c.username, "001010123456789@ims.example");
        assert_eq!(c.realm, "bsf.example");
        assert_eq!(c.uri, "/");
        assert!(
            v.contains("nonce=\"\"") && v.contains("response=\"\""),
            "{v}"
        );
    }

    #[test]
    fn qop_preference() {
        let mut c = Challenge::new("r", "n", Algorithm::AkaV1Md5);
        c.qop = vec![Qop::Auth, Qop::AuthInt];
        assert_eq!(choose_qop(&c), Some(Qop::AuthInt));
        c.qop = vec![Qop::Auth];
        assert_eq!(choose_qop(&c), Some(Qop::Auth));
        c.qop.clear();
        assert_eq!(choose_qop(&c), None);
    }
}
