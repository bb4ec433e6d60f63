//! Error types. None of them carries a parameter *value*: values may be passwords,
//! responses or attacker-controlled text, and errors end up in logs.

/// What is wrong with a Digest header value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The header value is longer than [`crate::MAX_HEADER_LEN`] bytes.
    #[error("digest header value longer than {} bytes", crate::MAX_HEADER_LEN)]
    TooLong,
    /// More than [`crate::MAX_PARAMS`] parameters (known and unknown together).
    #[error("digest header has more than {} parameters", crate::MAX_PARAMS)]
    TooManyParams,
    /// One parameter value is longer than [`crate::MAX_VALUE_LEN`] bytes.
    #[error(
        "digest parameter value at byte {at} longer than {} bytes",
        crate::MAX_VALUE_LEN
    )]
    ValueTooLong {
        /// Byte offset of the value in the header value.
        at: usize,
    },
    /// The authentication scheme is not `Digest`.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A required parameter is absent.
    #[error("digest parameter {0} is missing")]
    Missing(&'static str),
    /// A parameter appears twice (the name, lowercased and cut to 64 bytes).
    #[error("digest parameter {0} appears more than once")]
    Duplicate(String),
    /// The header value does not follow the auth-param grammar at this byte offset
    /// (bad token, control character, raw CR/LF, unterminated quoted string, …).
    #[error("digest header syntax error at byte {at}")]
    BadSyntax {
        /// Byte offset of the offending character.
        at: usize,
    },
    /// A parameter has a value outside its grammar (named by the parameter).
    #[error("digest parameter {0} has an invalid value")]
    BadValue(&'static str),
    /// The `algorithm` is well-formed but not one this crate implements.
    #[error("digest algorithm not supported")]
    UnsupportedAlgorithm,
    /// The RFC 7616 `username*` extended notation, which this crate does not accept.
    #[error("digest username* (RFC 7616 extended notation) is not supported")]
    ExtendedUsername,
}

/// Why a digest could not be computed or did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The response (or rspauth) does not match the expected value.
    #[error("digest response does not match")]
    Mismatch,
    /// A qop or a `-sess` algorithm is used but the cnonce is empty or absent.
    #[error("digest cnonce is required with qop or a -sess algorithm")]
    MissingCnonce,
    /// A qop is used but the nonce count is not exactly 8 hex digits.
    #[error("digest nonce count must be 8 hex digits when qop is used")]
    BadNonceCount,
    /// A `-sess` algorithm without qop (RFC 7616 defines `-sess` only with qop).
    #[error("digest -sess algorithm used without qop")]
    SessWithoutQop,
    /// The qop asked for is not among those the challenge offers.
    #[error("digest qop not offered by the challenge")]
    QopNotOffered,
    /// The challenge offers qop values but none was chosen (RFC 7616 §3.4 requires one).
    #[error("digest challenge offers qop; the answer must use one")]
    QopRequired,
    /// The credentials carry `userhash=true`: the real user name is needed (use
    /// [`crate::verify_as`] or build a [`crate::DigestInput`]).
    #[error("digest userhash credentials need the real user name")]
    UserhashNeedsUsername,
    /// The credentials do not answer this challenge (the field that differs).
    #[error("digest credentials do not match the challenge ({0})")]
    ChallengeMismatch(&'static str),
    /// An `Authentication-Info` without `rspauth`.
    #[error("authentication-info has no rspauth")]
    MissingRspauth,
}
