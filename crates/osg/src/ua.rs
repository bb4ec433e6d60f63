//! Which NAF_Id a Ua connection uses, the PSK identity format, and the Digest realm.
//!
//! Everything here is a pure function of what the TLS handshake negotiated; the
//! security agent must make exactly the same choices, so the rules are spelled out:
//!
//! | case | `ua_org = "3gpp"` (default) | `ua_org = "oma"` |
//! |---|---|---|
//! | PSK-TLS 1.2, suite `yy zz` | `01 00 01 yy zz` (TS 33.222 §5.4) | `03 00 01 yy zz` (OMNA "versioned schemes") |
//! | PSK-TLS 1.3 | `01 00 00 00 07` (TS 33.220 Annex H) | `03 00 01 13 01` whatever TLS 1.3 suite is negotiated — **seccf's own choice**: OMNA registers no TLS 1.3 id, and a TLS 1.3 client must pick its PSK in the ClientHello, before any suite is known, so the id cannot depend on the suite |
//! | Digest inside TLS 1.2 or 1.3, suite `yy zz` | `01 00 01 yy zz` (TS 33.222 §5.3: the suite actually negotiated, so 0x1301 … under TLS 1.3) | `03 00 01 yy zz` |
//!
//! `01 00 00 00 02` (Digest over plain HTTP) is never used: the OSG does not offer
//! Digest without TLS.
//!
//! PSK identity (TS 24.109 §5.3.3, Annex F; TS 36.508 §4.7H): `3GPP-bootstrapping` "."
//! B-TID. A bare B-TID is accepted too (clients such as stunnel or `openssl s_client`
//! used by hand often send just the B-TID). No other separator is accepted: gba.md §12
//! item 3 records "." as the only one with a citable source.

use seccf_gba::btid::{parse_btid, BtidError, MAX_BTID_LEN};
use seccf_gba::naf::UaSecurityProtocolId;
use serde::Deserialize;

/// PSK identity hint the server sends in ServerKeyExchange (TS 24.109 Annex F.3).
pub const PSK_IDENTITY_HINT: &str = "3GPP-bootstrapping";

/// Prefix of the client's PSK identity; followed by "." and the B-TID.
pub const PSK_IDENTITY_PREFIX: &str = "3GPP-bootstrapping.";

/// Longest PSK identity looked at (prefix + the longest B-TID).
pub const MAX_PSK_IDENTITY_LEN: usize = PSK_IDENTITY_PREFIX.len() + MAX_BTID_LEN;

/// Realm prefix of GBA Digest challenges (TS 24.109 §5.2; gba.md §5.1).
pub const GBA_REALM_PREFIX: &str = "3GPP-bootstrapping@";

/// The User-Agent product token of GBA-capable clients (TS 24.109 D.3/E.3).
pub const GBA_UA_TOKEN: &str = "3gpp-gba";

/// Which organisation's Ua security protocol ids a listener uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum UaOrg {
    /// 3GPP ids (organisation 0x01).
    #[default]
    #[serde(rename = "3gpp")]
    ThreeGpp,
    /// OMA ids (organisation 0x03).
    #[serde(rename = "oma")]
    Oma,
}

/// TLS protocol version of a connection, as far as the NAF_Id rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Ua id for a PSK-TLS connection (see the module table).
pub fn psk_ua(org: UaOrg, version: TlsVersion, cipher_suite: u16) -> UaSecurityProtocolId {
    match (org, version) {
        (UaOrg::ThreeGpp, TlsVersion::Tls12) => UaSecurityProtocolId::tls_3gpp(cipher_suite),
        (UaOrg::ThreeGpp, TlsVersion::Tls13) => UaSecurityProtocolId::TLS13_SHARED_KEY,
        (UaOrg::Oma, TlsVersion::Tls12) => UaSecurityProtocolId::tls_oma(cipher_suite),
        (UaOrg::Oma, TlsVersion::Tls13) => UaSecurityProtocolId::tls_oma(OMA_TLS13_SUITE),
    }
}

/// The suite code used in the OMA TLS 1.3 PSK id (TLS_AES_128_GCM_SHA256), fixed.
pub const OMA_TLS13_SUITE: u16 = 0x1301;

/// Ua id for HTTP Digest inside a server-certificate TLS connection.
pub fn digest_ua(org: UaOrg, cipher_suite: u16) -> UaSecurityProtocolId {
    match org {
        UaOrg::ThreeGpp => UaSecurityProtocolId::tls_3gpp(cipher_suite),
        UaOrg::Oma => UaSecurityProtocolId::tls_oma(cipher_suite),
    }
}

/// `3GPP-bootstrapping@<fqdn>`.
pub fn gba_realm(fqdn: &str) -> String {
    format!("{GBA_REALM_PREFIX}{fqdn}")
}

/// True when a User-Agent value carries the `3gpp-gba` product token (as a whole
/// token: `3gpp-gba-tmpi` alone does not count, `3gpp-gba` next to it does).
pub fn has_gba_token(user_agent: &str) -> bool {
    user_agent
        .split(|c: char| c.is_ascii_whitespace() || c == ',' || c == ';' || c == '(' || c == ')')
        .any(|t| t.eq_ignore_ascii_case(GBA_UA_TOKEN))
}

/// Why a PSK identity was not a GBA identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PskIdentityError {
    /// Longer than [`MAX_PSK_IDENTITY_LEN`].
    #[error("PSK identity too long")]
    TooLong,
    /// Not UTF-8 (TLS 1.3 session tickets arrive through the same callback as binary).
    #[error("PSK identity is not text")]
    NotText,
    /// The text after the optional prefix is not a B-TID.
    #[error("PSK identity does not carry a B-TID: {0}")]
    Btid(#[from] BtidError),
}

/// Extracts the B-TID from a PSK identity: `3GPP-bootstrapping.<B-TID>` or a bare
/// B-TID. The B-TID is checked for the standard form (so garbage never reaches Zn).
pub fn parse_psk_identity(identity: &[u8]) -> Result<&str, PskIdentityError> {
    if identity.len() > MAX_PSK_IDENTITY_LEN {
        return Err(PskIdentityError::TooLong);
    }
    let text = std::str::from_utf8(identity).map_err(|_| PskIdentityError::NotText)?;
    let btid = text.strip_prefix(PSK_IDENTITY_PREFIX).unwrap_or(text);
    parse_btid(btid)?;
    Ok(btid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BTID: &str = "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.mnc001.mcc001.pub.3gppnetwork.org";

    #[test]
    fn identity_forms() {
        let prefixed = format!("3GPP-bootstrapping.{BTID}");
        assert_eq!(parse_psk_identity(prefixed.as_bytes()), Ok(BTID));
        assert_eq!(parse_psk_identity(BTID.as_bytes()), Ok(BTID));
        // Other separators and prefixes are not stripped, so the rest is no B-TID.
        for bad in [
            format!("3GPP-bootstrapping,{BTID}"),
            format!("3GPP-bootstrapping{BTID}"),
            format!("3GPP-bootstrapping-uicc.{BTID}"),
            "3GPP-bootstrapping.".to_string(),
            String::new(),
        ] {
            assert!(parse_psk_identity(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            parse_psk_identity(b"\xff\x00ticket"),
            Err(PskIdentityError::NotText)
        );
        let long = format!("{PSK_IDENTITY_PREFIX}{}", "a".repeat(MAX_BTID_LEN + 1));
        assert_eq!(
            parse_psk_identity(long.as_bytes()),
            Err(PskIdentityError::TooLong)
        );
    }

    #[test]
    fn ua_ids_follow_the_table() {
        // TLS_PSK_WITH_AES_128_GCM_SHA256 = 0x00A8.
        assert_eq!(
            psk_ua(UaOrg::ThreeGpp, TlsVersion::Tls12, 0x00A8).0,
            [0x01, 0x00, 0x01, 0x00, 0xA8]
        );
        assert_eq!(
            psk_ua(UaOrg::ThreeGpp, TlsVersion::Tls13, 0x1301).0,
            [0x01, 0x00, 0x00, 0x00, 0x07]
        );
        assert_eq!(
            psk_ua(UaOrg::Oma, TlsVersion::Tls12, 0x00A8).0,
            [0x03, 0x00, 0x01, 0x00, 0xA8]
        );
        assert_eq!(
            psk_ua(UaOrg::Oma, TlsVersion::Tls13, 0x1303).0,
            [0x03, 0x00, 0x01, 0x13, 0x01]
        );
        assert_eq!(
            psk_ua(UaOrg::Oma, TlsVersion::Tls13, 0).0,
            [0x03, 0x00, 0x01, 0x13, 0x01]
        );
        assert_eq!(
            digest_ua(UaOrg::ThreeGpp, 0xC02F).0,
            [0x01, 0x00, 0x01, 0xC0, 0x2F]
        );
        assert_eq!(
            digest_ua(UaOrg::Oma, 0x1302).0,
            [0x03, 0x00, 0x01, 0x13, 0x02]
        );
    }

    #[test]
    fn user_agent_token() {
        assert!(has_gba_token("NAF1 Application Agent; Release-6 3gpp-gba"));
        assert!(has_gba_token("seccf-seca/0.1 3GPP-GBA 3gpp-gba-tmpi"));
        assert!(!has_gba_token("curl/8.0 3gpp-gba-tmpi"));
        assert!(!has_gba_token("curl/8.0"));
        assert!(!has_gba_token("x3gpp-gba"));
    }

    #[test]
    fn realm() {
        assert_eq!(
            gba_realm("naf.example.com"),
            "3GPP-bootstrapping@naf.example.com"
        );
    }

    /// Randomized: the identity parser never panics and only returns B-TIDs.
    #[test]
    fn identity_parser_never_panics() {
        let mut state: u64 = 0x1234_5678_9abc_def1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = format!("3GPP-bootstrapping.{BTID}").into_bytes();
        for i in 0..5000 {
            let mut buf = if i % 2 == 0 {
                valid.clone()
            } else {
                (0..(next() % 300)).map(|_| next() as u8).collect()
            };
            for _ in 0..(next() % 4) {
                if !buf.is_empty() {
                    let at = (next() as usize) % buf.len();
                    buf[at] = b"@.=/+aZ9\xff"[(next() % 9) as usize];
                }
            }
            if let Ok(b) = parse_psk_identity(&buf) {
                assert!(parse_btid(b).is_ok());
            }
        }
    }
}
