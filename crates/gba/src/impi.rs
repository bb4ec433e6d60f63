//! IMS private identity (IMPI) validation.
//!
//! An IMPI is an NAI `username@realm` (TS 23.003 clause 13.3, RFC 7542), for example
//! `001010123456789@ims.mnc001.mcc001.3gppnetwork.org`. It travels in Digest headers and
//! enters the KDF, so the accepted syntax is deliberately narrow: ASCII only (see the crate
//! docs on NFKC), no characters that need quoting in an HTTP header.

use crate::host::check_host;

/// Shortest IMPI accepted (`a@b`).
pub const MIN_IMPI_LEN: usize = 3;
/// Longest IMPI accepted (RFC 7542 recommends supporting at least 253 octets).
pub const MAX_IMPI_LEN: usize = 255;

/// Why an IMPI was refused. Messages never echo the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ImpiError {
    /// Shorter than 3 or longer than 255 octets.
    #[error("IMPI must be 3 to 255 octets long")]
    Length,
    /// Not exactly one '@'.
    #[error("IMPI must contain exactly one '@'")]
    At,
    /// The user part is empty or has a character outside the NAI set (RFC 7542
    /// `utf8-atext` restricted to ASCII, plus '.' between atoms).
    #[error("IMPI user part is empty or has a character that is not allowed")]
    BadUser,
    /// The realm is not a valid host name.
    #[error("IMPI realm is not a valid host name")]
    BadRealm,
}

/// Validates an IMPI (NAI user@realm, printable ASCII, 3..=255 bytes, exactly one '@').
///
/// User part: RFC 7542 atext characters (`A-Z a-z 0-9 ! # $ % & ' * + - / = ? ^ _ \` { | } ~`)
/// and '.', not starting or ending with '.', no "..". Realm: a host name (labels of
/// letters, digits and '-', case kept). Quotes, backslashes, commas, spaces and control
/// characters are refused, so an IMPI can be put in a quoted Digest parameter as is.
pub fn validate_impi(s: &str) -> Result<(), ImpiError> {
    if s.len() < MIN_IMPI_LEN || s.len() > MAX_IMPI_LEN {
        return Err(ImpiError::Length);
    }
    let (user, realm) = s.split_once('@').ok_or(ImpiError::At)?;
    if realm.contains('@') {
        return Err(ImpiError::At);
    }
    if user.is_empty()
        || user.starts_with('.')
        || user.ends_with('.')
        || user.contains("..")
        || !user.bytes().all(|c| is_atext(c) || c == b'.')
    {
        return Err(ImpiError::BadUser);
    }
    check_host(realm, true).map_err(|_| ImpiError::BadRealm)
}

fn is_atext(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts() {
        for ok in [
            "001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
            "a@b",
            "alice.smith+gba@Example.COM",
            "user@localhost",
        ] {
            assert_eq!(validate_impi(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects() {
        let cases = [
            ("", ImpiError::Length),
            ("a@", ImpiError::Length),
            ("abc", ImpiError::At),
            ("a@b@c", ImpiError::At),
            ("@bc", ImpiError::BadUser),
            (".a@b", ImpiError::BadUser),
            ("a.@b", ImpiError::BadUser),
            ("a..b@c", ImpiError::BadUser),
            ("a\"b@c", ImpiError::BadUser),
            ("a b@c", ImpiError::BadUser),
            ("a,b@c", ImpiError::BadUser),
            ("a\\b@c", ImpiError::BadUser),
            ("ü@b.c", ImpiError::BadUser),
            ("a@b..c", ImpiError::BadRealm),
            ("a@b_c", ImpiError::BadRealm),
            ("a@b.c.", ImpiError::BadRealm),
        ];
        for (s, e) in cases {
            assert_eq!(validate_impi(s), Err(e), "{s:?}");
        }
        let long = format!("{}@example.com", "u".repeat(250));
        assert_eq!(validate_impi(&long), Err(ImpiError::Length));
    }
}
