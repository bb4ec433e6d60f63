//! Digest computation (RFC 7616 §3.4, RFC 2617 §3.2.2, RFC 3310, RFC 4169).
//!
//! ```text
//! HA1      = H(username ":" realm ":" password)
//! HA1-sess = H(HA1 ":" nonce ":" cnonce)
//! HA2      = H(method ":" uri)                     qop absent or auth
//! HA2      = H(method ":" uri ":" H(entity-body))  qop auth-int
//! response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)   with qop
//! response = H(HA1 ":" nonce ":" HA2)                             without qop
//! rspauth  = the same with an empty method
//! ```
//!
//! H is MD5 (also for both AKA algorithms) or SHA-256, output as lowercase hex. The
//! password is bytes, not text: AKAv1-MD5 uses the raw RES octets (gba.md §3.2, pitfall
//! 3), which need not be UTF-8. HA1 is password-equivalent, so it is kept in zeroizing
//! buffers and hashed incrementally rather than concatenated into a plain buffer.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use seccf_secret::{ct_eq, random_array, RandomError, SecretBytes};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::DigestError;
use crate::header::{parse_nc_text, AuthenticationInfo, Challenge, Credentials};
use crate::{Algorithm, Qop};

/// What goes into a digest computation (all borrowed).
#[derive(Clone, Copy)]
pub struct DigestInput<'a> {
    /// Algorithm in effect.
    pub algorithm: Algorithm,
    /// The real (unhashed) user name.
    pub username: &'a str,
    /// Realm.
    pub realm: &'a str,
    /// Password bytes: raw RES for AKAv1-MD5, [`akav2_password`] output for AKAv2-MD5,
    /// base64(Ks_NAF) text on Ua, the UTF-8 password otherwise; empty for an RFC 3310
    /// resynchronisation request.
    pub password: &'a [u8],
    /// Request method (empty for rspauth).
    pub method: &'a str,
    /// `digest-uri` exactly as in the credentials.
    pub uri: &'a str,
    /// Nonce exactly as sent (for Ub the base64 text, not the decoded bytes).
    pub nonce: &'a str,
    /// qop; `None` is the RFC 2069 form.
    pub qop: Option<Qop>,
    /// Nonce count exactly as sent (8 hex digits); ignored without qop.
    pub nc_text: &'a str,
    /// Client nonce; ignored without qop (except by `-sess`, which needs qop).
    pub cnonce: &'a str,
    /// Entity body for auth-int: the request body, or the response body for rspauth.
    pub body: &'a [u8],
}

impl std::fmt::Debug for DigestInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is never printed; the rest is what is on the wire anyway.
        f.debug_struct("DigestInput")
            .field("algorithm", &self.algorithm)
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("password", &"[REDACTED]")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("nonce", &self.nonce)
            .field("qop", &self.qop)
            .field("nc_text", &self.nc_text)
            .field("cnonce", &self.cnonce)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl<'a> DigestInput<'a> {
    /// The input that `creds` claims to answer, with `creds.username` as the user
    /// name. For `userhash` credentials override `username` with the real name.
    pub fn for_credentials(
        creds: &'a Credentials,
        password: &'a [u8],
        method: &'a str,
        body: &'a [u8],
    ) -> Self {
        DigestInput {
            algorithm: creds.effective_algorithm(),
            username: &creds.username,
            realm: &creds.realm,
            password,
            method,
            uri: &creds.uri,
            nonce: &creds.nonce,
            qop: creds.qop,
            nc_text: creds.nc_text.as_deref().unwrap_or(""),
            cnonce: creds.cnonce.as_deref().unwrap_or(""),
            body,
        }
    }
}

#[derive(Clone, Copy)]
enum HashFn {
    Md5,
    Sha256,
}

impl Algorithm {
    fn hash_fn(self) -> HashFn {
        match self {
            Algorithm::Sha256 | Algorithm::Sha256Sess => HashFn::Sha256,
            Algorithm::Md5 | Algorithm::Md5Sess | Algorithm::AkaV1Md5 | Algorithm::AkaV2Md5 => {
                HashFn::Md5
            }
        }
    }
}

/// Lowercase hex of H(parts joined by ':'), in a zeroizing string.
fn h_joined(h: HashFn, parts: &[&[u8]]) -> Zeroizing<String> {
    fn run<D: Digest>(parts: &[&[u8]]) -> Zeroizing<String> {
        let mut d = D::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(p);
        }
        let mut out = d.finalize();
        let hex = Zeroizing::new(hex::encode(&out));
        out.as_mut_slice().zeroize();
        hex
    }
    match h {
        HashFn::Md5 => run::<Md5>(parts),
        HashFn::Sha256 => run::<Sha256>(parts),
    }
}

fn compute(input: &DigestInput<'_>, method: &str) -> Result<String, DigestError> {
    let alg = input.algorithm;
    let h = alg.hash_fn();
    if input.qop.is_some() {
        if input.cnonce.is_empty() {
            return Err(DigestError::MissingCnonce);
        }
        if parse_nc_text(input.nc_text).is_none() {
            return Err(DigestError::BadNonceCount);
        }
    } else if alg.is_sess() {
        return Err(DigestError::SessWithoutQop);
    }

    let mut ha1 = h_joined(
        h,
        &[
            input.username.as_bytes(),
            input.realm.as_bytes(),
            input.password,
        ],
    );
    if alg.is_sess() {
        ha1 = h_joined(
            h,
            &[
                ha1.as_bytes(),
                input.nonce.as_bytes(),
                input.cnonce.as_bytes(),
            ],
        );
    }
    let ha2 = match input.qop {
        Some(Qop::AuthInt) => {
            let body_hash = h_joined(h, &[input.body]);
            h_joined(
                h,
                &[
                    method.as_bytes(),
                    input.uri.as_bytes(),
                    body_hash.as_bytes(),
                ],
            )
        }
        Some(Qop::Auth) | None => h_joined(h, &[method.as_bytes(), input.uri.as_bytes()]),
    };
    let out = match input.qop {
        Some(q) => h_joined(
            h,
            &[
                ha1.as_bytes(),
                input.nonce.as_bytes(),
                input.nc_text.as_bytes(),
                input.cnonce.as_bytes(),
                q.token().as_bytes(),
                ha2.as_bytes(),
            ],
        ),
        None => h_joined(h, &[ha1.as_bytes(), input.nonce.as_bytes(), ha2.as_bytes()]),
    };
    // The request digest travels in clear on the wire; it need not stay zeroizing.
    Ok(out.as_str().to_owned())
}

/// The request digest (`response`), lowercase hex (32 digits for MD5, 64 for SHA-256).
///
/// Errors only on inconsistent inputs: a qop with an empty cnonce or an `nc_text` that
/// is not 8 hex digits, or a `-sess` algorithm without qop.
pub fn response(input: &DigestInput<'_>) -> Result<String, DigestError> {
    compute(input, input.method)
}

/// The `rspauth` of `Authentication-Info`: [`response`] with an empty method
/// (RFC 7616 §3.5); `input.method` is ignored and `input.body` is the response body.
pub fn rspauth(input: &DigestInput<'_>) -> Result<String, DigestError> {
    compute(input, "")
}

/// Server side: recomputes the digest of `creds` with `password` and compares it with
/// `creds.response` in constant time. The received hex is compared case-insensitively.
///
/// This checks only the digest. The caller also checks realm/nonce/opaque/algorithm
/// against what it challenged ([`Credentials::check_against`] or its own state), the
/// nonce's validity ([`crate::nonce::NonceFactory::check`]) and nc replay
/// ([`crate::nonce::NonceCounter`]). Fails with [`DigestError::UserhashNeedsUsername`]
/// for `userhash` credentials; use [`verify_as`] for those.
pub fn verify(
    creds: &Credentials,
    password: &[u8],
    method: &str,
    body: &[u8],
) -> Result<(), DigestError> {
    if creds.userhash {
        return Err(DigestError::UserhashNeedsUsername);
    }
    verify_as(creds, &creds.username, password, method, body)
}

/// [`verify`] with an explicit real user name (for `userhash` credentials, where
/// `creds.username` is H(user ":" realm) and the server has resolved the user).
pub fn verify_as(
    creds: &Credentials,
    username: &str,
    password: &[u8],
    method: &str,
    body: &[u8],
) -> Result<(), DigestError> {
    let input = DigestInput {
        username,
        ..DigestInput::for_credentials(creds, password, method, body)
    };
    let expected = response(&input)?;
    constant_time_hex_eq(&expected, &creds.response)
}

fn constant_time_hex_eq(expected: &str, received: &str) -> Result<(), DigestError> {
    let received = received.to_ascii_lowercase();
    if ct_eq(expected.as_bytes(), received.as_bytes()) {
        Ok(())
    } else {
        Err(DigestError::Mismatch)
    }
}

/// Server side: the `Authentication-Info` answering verified `creds`, with `rspauth`
/// over `response_body` (used with auth-int; pass the exact bytes that will be sent)
/// and the qop/cnonce/nc echoes. Not for `userhash` credentials (use [`rspauth`]).
pub fn authentication_info(
    creds: &Credentials,
    password: &[u8],
    response_body: &[u8],
    nextnonce: Option<String>,
) -> Result<AuthenticationInfo, DigestError> {
    if creds.userhash {
        return Err(DigestError::UserhashNeedsUsername);
    }
    let input = DigestInput::for_credentials(creds, password, "", response_body);
    Ok(AuthenticationInfo {
        qop: creds.qop,
        rspauth: Some(rspauth(&input)?),
        cnonce: creds.qop.and(creds.cnonce.clone()),
        nc_text: creds.qop.and(creds.nc_text.clone()),
        nextnonce,
    })
}

/// Client side: checks the server's `rspauth` for the request sent as `creds`
/// (mutual authentication; on Ub it proves the BSF knew XRES). Echoed qop, cnonce and
/// nc, when present, must match what was sent. Not for `userhash` credentials.
pub fn verify_rspauth(
    creds: &Credentials,
    password: &[u8],
    response_body: &[u8],
    info: &AuthenticationInfo,
) -> Result<(), DigestError> {
    if creds.userhash {
        return Err(DigestError::UserhashNeedsUsername);
    }
    let received = info.rspauth.as_deref().ok_or(DigestError::MissingRspauth)?;
    if info.qop.is_some() && info.qop != creds.qop {
        return Err(DigestError::Mismatch);
    }
    if info.cnonce.is_some() && info.cnonce != creds.cnonce {
        return Err(DigestError::Mismatch);
    }
    if info.nc_text.is_some() && info.nc_text != creds.nc_text {
        return Err(DigestError::Mismatch);
    }
    let input = DigestInput::for_credentials(creds, password, "", response_body);
    let expected = rspauth(&input)?;
    constant_time_hex_eq(&expected, received)
}

/// RFC 4169 AKAv2-MD5 password: base64(HMAC-MD5(key = RES ‖ IK ‖ CK,
/// "http-digest-akav2-password")), returned as the bytes of that base64 text, ready
/// for [`DigestInput::password`].
pub fn akav2_password(res: &[u8], ik: &[u8; 16], ck: &[u8; 16]) -> SecretBytes {
    let mut key = Zeroizing::new(Vec::with_capacity(res.len() + 32));
    key.extend_from_slice(res);
    key.extend_from_slice(ik);
    key.extend_from_slice(ck);
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(&key)
        .expect("invariant: HMAC accepts keys of any length");
    mac.update(b"http-digest-akav2-password");
    let mut tag = mac.finalize().into_bytes();
    let text = base64::engine::general_purpose::STANDARD.encode(tag.as_slice());
    tag.as_mut_slice().zeroize();
    SecretBytes::new(text.into_bytes())
}

/// RFC 7616 §3.4.4 hashed user name, H(username ":" realm), lowercase hex.
pub fn userhash(algorithm: Algorithm, username: &str, realm: &str) -> String {
    h_joined(
        algorithm.hash_fn(),
        &[username.as_bytes(), realm.as_bytes()],
    )
    .as_str()
    .to_owned()
}

/// A fresh client nonce: 16 random bytes as 32 lowercase hex digits (hex needs no
/// escaping in a quoted-string and is what most clients send).
pub fn new_cnonce() -> Result<String, RandomError> {
    Ok(hex::encode(random_array::<16>()?))
}

/// Client side: builds the credentials answering `challenge`.
///
/// `qop` is the caller's choice and must be offered by the challenge; `None` is only
/// allowed when the challenge offers no qop (RFC 2069 form), in which case `nc` and
/// `cnonce` are not sent. The cnonce comes from the caller (sans-IO; see
/// [`new_cnonce`]). When the challenge says `userhash=true` the user name is sent
/// hashed. For an RFC 3310 resynchronisation pass an empty password and set `auts` on
/// the result.
#[allow(clippy::too_many_arguments)] // the signature mirrors the digest inputs one to one
pub fn answer(
    challenge: &Challenge,
    username: &str,
    password: &[u8],
    method: &str,
    uri: &str,
    qop: Option<Qop>,
    nc: u32,
    cnonce: &str,
    body: &[u8],
) -> Result<Credentials, DigestError> {
    match qop {
        Some(q) if !challenge.qop.contains(&q) => return Err(DigestError::QopNotOffered),
        None if !challenge.qop.is_empty() => return Err(DigestError::QopRequired),
        _ => {}
    }
    let nc_text = format!("{nc:08x}");
    let input = DigestInput {
        algorithm: challenge.algorithm,
        username,
        realm: &challenge.realm,
        password,
        method,
        uri,
        nonce: &challenge.nonce,
        qop,
        nc_text: &nc_text,
        cnonce,
        body,
    };
    let response = response(&input)?;
    let wire_username = if challenge.userhash {
        userhash(challenge.algorithm, username, &challenge.realm)
    } else {
        username.to_owned()
    };
    Ok(Credentials {
        username: wire_username,
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_owned(),
        response,
        algorithm: Some(challenge.algorithm),
        qop,
        nc: qop.map(|_| nc),
        nc_text: qop.map(|_| nc_text),
        cnonce: qop.map(|_| cnonce.to_owned()),
        opaque: challenge.opaque.clone(),
        auts: None,
        userhash: challenge.userhash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base<'a>() -> DigestInput<'a> {
        DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            realm: "testrealm@host.com",
            password: b"Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop: Some(Qop::Auth),
            nc_text: "00000001",
            cnonce: "0a4f113b",
            body: b"",
        }
    }

    #[test]
    fn known_md5_intermediates() {
        // RFC 2617 §3.5 example; HA1/HA2 as widely published for it.
        let ha1 = h_joined(
            HashFn::Md5,
            &[b"Mufasa", b"testrealm@host.com", b"Circle Of Life"],
        );
        assert_eq!(ha1.as_str(), "939e7578ed9e3c518a452acee763bce9");
        let ha2 = h_joined(HashFn::Md5, &[b"GET", b"/dir/index.html"]);
        assert_eq!(ha2.as_str(), "39aff3a2bab6126f332b942af96d3366");
        assert_eq!(
            response(&base()).unwrap(),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn vector_intermediates() {
        use crate::testvectors::{digest_vectors, password, testdata_file};
        let (mut n_ha1, mut n_ha2) = (0, 0);
        for v in digest_vectors() {
            let h = Algorithm::parse(v.get("algorithm")).unwrap().hash_fn();
            let pw = password(&v);
            if let Some(want) = v.opt("ha1") {
                let got = h_joined(
                    h,
                    &[v.get("username").as_bytes(), v.get("realm").as_bytes(), &pw],
                );
                assert_eq!(got.as_str(), want, "{}", v.name);
                n_ha1 += 1;
            }
            if let Some(want) = v.opt("ha2") {
                let (m, u) = (v.get("method").as_bytes(), v.get("uri").as_bytes());
                let got = if v.get("qop") == "auth-int" {
                    let body = v.opt("body_file").map(testdata_file).unwrap_or_default();
                    let bh = h_joined(h, &[&body]);
                    h_joined(h, &[m, u, bh.as_bytes()])
                } else {
                    h_joined(h, &[m, u])
                };
                assert_eq!(got.as_str(), want, "{}", v.name);
                n_ha2 += 1;
            }
        }
        assert!(n_ha1 >= 3 && n_ha2 >= 3, "{n_ha1} {n_ha2}");
    }

    #[test]
    fn inconsistent_inputs() {
        let mut i = base();
        i.cnonce = "";
        assert_eq!(response(&i), Err(DigestError::MissingCnonce));
        let mut i = base();
        i.nc_text = "1";
        assert_eq!(response(&i), Err(DigestError::BadNonceCount));
        let mut i = base();
        i.qop = None;
        i.algorithm = Algorithm::Sha256Sess;
        assert_eq!(response(&i), Err(DigestError::SessWithoutQop));
        // Without qop, nc and cnonce do not matter.
        let mut i = base();
        i.qop = None;
        i.nc_text = "";
        i.cnonce = "";
        let a = response(&i).unwrap();
        i.nc_text = "zz";
        i.cnonce = "other";
        assert_eq!(response(&i).unwrap(), a);
    }

    #[test]
    fn every_input_changes_the_response() {
        let r0 = response(&base()).unwrap();
        let variants: Vec<DigestInput<'_>> = vec![
            DigestInput {
                username: "mufasa",
                ..base()
            },
            DigestInput {
                realm: "x",
                ..base()
            },
            DigestInput {
                password: b"Circle of Life",
                ..base()
            },
            DigestInput {
                method: "POST",
                ..base()
            },
            DigestInput { uri: "/", ..base() },
            DigestInput {
                nonce: "n",
                ..base()
            },
            DigestInput {
                nc_text: "00000002",
                ..base()
            },
            DigestInput {
                cnonce: "c",
                ..base()
            },
            DigestInput {
                qop: Some(Qop::AuthInt),
                ..base()
            },
            DigestInput {
                algorithm: Algorithm::Md5Sess,
                ..base()
            },
            DigestInput {
                algorithm: Algorithm::Sha256,
                ..base()
            },
        ];
        for v in variants {
            assert_ne!(response(&v).unwrap(), r0, "{v:?}");
        }
        // The body matters only with auth-int.
        assert_eq!(
            response(&DigestInput {
                body: b"x",
                ..base()
            })
            .unwrap(),
            r0
        );
        let ai = DigestInput {
            qop: Some(Qop::AuthInt),
            ..base()
        };
        assert_ne!(
            response(&DigestInput { body: b"x", ..ai }).unwrap(),
            response(&ai).unwrap()
        );
        // AKA algorithms hash like MD5.
        for a in [Algorithm::AkaV1Md5, Algorithm::AkaV2Md5] {
            assert_eq!(
                response(&DigestInput {
                    algorithm: a,
                    ..base()
                })
                .unwrap(),
                r0
            );
        }
    }

    #[test]
    fn rspauth_differs_from_response_by_method_only() {
        let i = base();
        let with_empty_method = DigestInput { method: "", ..i };
        assert_eq!(rspauth(&i).unwrap(), response(&with_empty_method).unwrap());
        assert_ne!(rspauth(&i).unwrap(), response(&i).unwrap());
    }

    #[test]
    fn debug_hides_password() {
        let s = format!("{:?}", base());
        assert!(!s.contains("Circle"), "{s}");
        assert!(s.contains("REDACTED"));
    }

    #[test]
    fn cnonce_is_fresh_hex() {
        let a = new_cnonce().unwrap();
        let b = new_cnonce().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
