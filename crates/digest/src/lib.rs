//! HTTP Digest authentication core for seccf, sans-IO.
//!
//! This crate is shared by the three places where seccf speaks Digest:
//!
//! * the KMC's Ub endpoint (server side of RFC 3310 AKAv1-MD5 and RFC 4169 AKAv2-MD5,
//!   where the "password" is the raw RES octets or the RFC 4169 derived password),
//! * the client security agent (client side of Ub, and of Ua with
//!   username = B-TID and password = base64(Ks_NAF)),
//! * the security gateway (server side of Ua: Digest over TLS, RFC 7616 MD5 / SHA-256
//!   and their `-sess` variants, qop `auth` and `auth-int`, RFC 2617 no-qop form).
//!
//! What it does:
//!
//! * parses and formats `WWW-Authenticate: Digest …` ([`Challenge`]),
//!   `Authorization: Digest …` ([`Credentials`]) and `Authentication-Info`
//!   ([`AuthenticationInfo`]) header values with strict, bounded parsers
//!   (see [`MAX_HEADER_LEN`], [`MAX_PARAMS`], [`MAX_VALUE_LEN`]);
//! * computes request digests ([`response`]) and `rspauth` ([`rspauth`]), verifies them
//!   in constant time ([`verify`], [`verify_rspauth`]) and answers challenges ([`answer`]);
//! * derives the RFC 4169 AKAv2-MD5 password ([`akav2_password`]);
//! * issues and checks stateless, HMAC-protected server nonces and detects nonce-count
//!   replays ([`nonce`]).
//!
//! What it does not do: no sockets, no clock reads (every time is a `now_unix` parameter),
//! no user database, no AKA (RES/CK/IK come from the caller), no choice of which challenge
//! to answer when a server offers several, and no logging. It never formats a password,
//! HA1 or a received response into an error or `Debug` output.
//!
//! Ub specifics: the challenge nonce is base64(RAND ‖ AUTN) and is hashed as that text;
//! the password is the raw RES octets; the initial request has an empty nonce and
//! response ([`Credentials::initial`]); a resynchronisation request carries `auts` and its
//! digest uses an empty password (RFC 3310), so the BSF verifies it with `b""`.
//!
//! Each header value holds one challenge: callers split several `WWW-Authenticate`
//! fields (e.g. a SHA-256 and an MD5 challenge) before parsing, and a value that lists
//! two challenges in one field is rejected rather than half-read.
//!
//! The `userhash` parameter of RFC 7616 is parsed, formatted, produced by [`answer`] and
//! computable with [`userhash`]; verifying a userhash credential needs the real user name
//! ([`verify_as`]). The RFC 7616 `username*` extended notation is rejected
//! ([`ParseError::ExtendedUsername`]). SHA-512-256 is not supported.

mod compute;
mod error;
mod header;
pub mod nonce;
mod params;
#[cfg(test)]
mod testvectors;

pub use compute::{
    akav2_password, answer, authentication_info, new_cnonce, response, rspauth, userhash, verify,
    verify_as, verify_rspauth, DigestInput,
};
pub use error::{DigestError, ParseError};
pub use header::{AuthenticationInfo, Challenge, Credentials};
pub use params::{MAX_HEADER_LEN, MAX_PARAMS, MAX_VALUE_LEN};
pub use seccf_secret::RandomError;

/// A Digest `algorithm` value.
///
/// The AKA variants hash with MD5 exactly like [`Algorithm::Md5`]; they differ only in
/// what the caller supplies as the password (RFC 3310: raw RES octets; RFC 4169: the
/// output of [`akav2_password`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 2617 / RFC 7616; also the meaning of an absent `algorithm`).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616).
    Sha256,
    /// `SHA-256-sess` (RFC 7616).
    Sha256Sess,
    /// `AKAv1-MD5` (RFC 3310).
    AkaV1Md5,
    /// `AKAv2-MD5` (RFC 4169).
    AkaV2Md5,
}

impl Algorithm {
    /// Every supported algorithm, for iteration in callers and tests.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Md5,
        Algorithm::Md5Sess,
        Algorithm::Sha256,
        Algorithm::Sha256Sess,
        Algorithm::AkaV1Md5,
        Algorithm::AkaV2Md5,
    ];

    /// The token as it is written on the wire (`"AKAv1-MD5"`, `"SHA-256-sess"`, …).
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::AkaV1Md5 => "AKAv1-MD5",
            Algorithm::AkaV2Md5 => "AKAv2-MD5",
        }
    }

    /// Parses a token, ASCII case-insensitively (RFC 7616 §3.3 says tokens are
    /// case-insensitive). Unknown algorithms give [`ParseError::UnsupportedAlgorithm`].
    pub fn parse(token: &str) -> Result<Self, ParseError> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.token().eq_ignore_ascii_case(token))
            .ok_or(ParseError::UnsupportedAlgorithm)
    }

    /// True for the `-sess` variants, whose HA1 also covers nonce and cnonce.
    pub fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// True for the 3GPP AKA variants (RFC 3310 / RFC 4169).
    pub fn is_aka(self) -> bool {
        matches!(self, Algorithm::AkaV1Md5 | Algorithm::AkaV2Md5)
    }
}

/// A Digest quality of protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: authentication of method and URI.
    Auth,
    /// `auth-int`: also covers the entity body.
    AuthInt,
}

impl Qop {
    /// The token as written on the wire.
    pub fn token(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    /// Parses a token, ASCII case-insensitively; `None` for unknown values.
    pub fn parse(token: &str) -> Option<Self> {
        [Qop::Auth, Qop::AuthInt]
            .into_iter()
            .find(|q| q.token().eq_ignore_ascii_case(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_tokens_round_trip_case_insensitively() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(a.token()), Ok(a));
            assert_eq!(Algorithm::parse(&a.token().to_ascii_lowercase()), Ok(a));
            assert_eq!(Algorithm::parse(&a.token().to_ascii_uppercase()), Ok(a));
        }
        assert_eq!(Algorithm::parse("AKAv1-MD5"), Ok(Algorithm::AkaV1Md5));
        assert_eq!(
            Algorithm::parse("SHA-512-256"),
            Err(ParseError::UnsupportedAlgorithm)
        );
        assert_eq!(Algorithm::parse(""), Err(ParseError::UnsupportedAlgorithm));
        assert_eq!(
            Algorithm::parse("MD5 "),
            Err(ParseError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn qop_tokens() {
        assert_eq!(Qop::parse("auth"), Some(Qop::Auth));
        assert_eq!(Qop::parse("AUTH-INT"), Some(Qop::AuthInt));
        assert_eq!(Qop::parse("auth-conf"), None);
        assert_eq!(Qop::AuthInt.token(), "auth-int");
    }

    #[test]
    fn sess_and_aka_flags() {
        assert!(Algorithm::Md5Sess.is_sess() && Algorithm::Sha256Sess.is_sess());
        assert!(!Algorithm::Md5.is_sess() && !Algorithm::AkaV1Md5.is_sess());
        assert!(Algorithm::AkaV1Md5.is_aka() && Algorithm::AkaV2Md5.is_aka());
        assert!(!Algorithm::Sha256.is_aka());
    }
}
