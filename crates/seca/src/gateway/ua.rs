//! Which NAF_Id the agent derives its key for, and how it names itself, on each kind of
//! Ua connection — sans-IO.
//!
//! The gateway derives the same key from what the TLS handshake negotiated, so both
//! ends must apply the same rules (seccf's gateway, `seccf-osg`, documents the
//! identical table in its `ua` module):
//!
//! | connection | [`UaOrg::ThreeGpp`] (default) | [`UaOrg::Oma`] |
//! |---|---|---|
//! | PSK-TLS 1.2, suite `yy zz` | `01 00 01 yy zz` (TS 33.222 §5.4, TS 33.220 Annex H) | `03 00 01 yy zz` (OMNA "versioned schemes") |
//! | PSK-TLS 1.3 | `01 00 00 00 07` (shared-key TLS 1.3) | `03 00 01 13 01`, whatever suite is negotiated |
//! | Digest inside TLS, suite `yy zz` | `01 00 01 yy zz` (TS 33.222 §5.3: the suite actually negotiated) | `03 00 01 yy zz` |
//! | Digest over plain HTTP | `01 00 00 00 02` (TS 24.109 §5.2) | `01 00 00 00 02` (OMA registers no id for it) |
//!
//! The OMA TLS 1.3 id is a seccf convention, not a registered value: OMNA has no TLS 1.3
//! row, and a TLS 1.3 client commits to its PSK in the ClientHello, before any suite
//! is known, so the id cannot depend on the suite. UNCONFIRMED against the SEC_CF 1.1
//! TS (gba.md §12 item 8), like the choice between the 3GPP and OMA rows itself.
//!
//! PSK identity: `3GPP-bootstrapping` "." B-TID (TS 24.109 Annex F, TS 36.508 §4.7H;
//! gba.md §5.3). The agent always uses the ME-based key (Ks_NAF, or Ks_ext_NAF from a
//! GBA_U card), whose prefix is plain `3GPP-bootstrapping`.

use std::fmt;
use std::str::FromStr;

use seccf_gba::naf::UaSecurityProtocolId;
use seccf_tls::psk::{PskTlsVersion, GBA_IDENTITY_HINT};

/// Prefix of the agent's PSK identity; the B-TID follows.
pub const PSK_IDENTITY_PREFIX: &str = "3GPP-bootstrapping.";

/// The suite code of the OMA TLS 1.3 PSK id (TLS_AES_128_GCM_SHA256), fixed.
pub const OMA_TLS13_SUITE: u16 = 0x1301;

/// Which organisation's Ua security protocol ids to use with a gateway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UaOrg {
    /// 3GPP ids (organisation octet 0x01).
    #[default]
    ThreeGpp,
    /// OMA ids (organisation octet 0x03).
    Oma,
}

impl fmt::Display for UaOrg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UaOrg::ThreeGpp => "3gpp",
            UaOrg::Oma => "oma",
        })
    }
}

/// `"3gpp"` or `"oma"` was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected \"3gpp\" or \"oma\"")]
pub struct UnknownUaOrg;

impl FromStr for UaOrg {
    type Err = UnknownUaOrg;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("3gpp") {
            Ok(UaOrg::ThreeGpp)
        } else if s.eq_ignore_ascii_case("oma") {
            Ok(UaOrg::Oma)
        } else {
            Err(UnknownUaOrg)
        }
    }
}

/// The Ua id of a PSK-TLS handshake. `None` for TLS 1.2 without a known suite (the
/// key would be a guess; OpenSSL always reports the suite to a TLS 1.2 client
/// callback, see `seccf_tls::psk`).
pub fn psk_ua(
    org: UaOrg,
    version: PskTlsVersion,
    cipher_suite: u16,
) -> Option<UaSecurityProtocolId> {
    match (org, version) {
        (_, PskTlsVersion::Tls12) if cipher_suite == 0 => None,
        (UaOrg::ThreeGpp, PskTlsVersion::Tls12) => {
            Some(UaSecurityProtocolId::tls_3gpp(cipher_suite))
        }
        (UaOrg::Oma, PskTlsVersion::Tls12) => Some(UaSecurityProtocolId::tls_oma(cipher_suite)),
        (UaOrg::ThreeGpp, PskTlsVersion::Tls13) => Some(UaSecurityProtocolId::TLS13_SHARED_KEY),
        (UaOrg::Oma, PskTlsVersion::Tls13) => Some(UaSecurityProtocolId::tls_oma(OMA_TLS13_SUITE)),
    }
}

/// The Ua id of HTTP Digest: inside TLS with the negotiated suite `tls_suite`, or over
/// plain HTTP when `None`.
pub fn digest_ua(org: UaOrg, tls_suite: Option<u16>) -> UaSecurityProtocolId {
    match (org, tls_suite) {
        (_, None) => UaSecurityProtocolId::HTTP_DIGEST,
        (UaOrg::ThreeGpp, Some(suite)) => UaSecurityProtocolId::tls_3gpp(suite),
        (UaOrg::Oma, Some(suite)) => UaSecurityProtocolId::tls_oma(suite),
    }
}

/// `3GPP-bootstrapping.<B-TID>`.
pub fn psk_identity(btid: &str) -> String {
    format!("{PSK_IDENTITY_PREFIX}{btid}")
}

/// Whether the server's PSK identity hint lets the agent offer its GBA key: no hint
/// (TLS 1.3 never has one; stunnel-like servers send none) or exactly
/// `3GPP-bootstrapping`. Other hints ask for keys the agent does not offer
/// (`3GPP-bootstrapping-uicc`: Ks_int_NAF, which never leaves the card; `3GPP-AKMA`).
pub fn hint_acceptable(hint: Option<&[u8]>) -> bool {
    match hint {
        None | Some(b"") => true,
        Some(h) => h == GBA_IDENTITY_HINT.as_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_ids_follow_the_table() {
        use PskTlsVersion::*;
        assert_eq!(
            psk_ua(UaOrg::ThreeGpp, Tls12, 0x00a8).unwrap().0,
            [0x01, 0x00, 0x01, 0x00, 0xa8]
        );
        assert_eq!(
            psk_ua(UaOrg::Oma, Tls12, 0xccac).unwrap().0,
            [0x03, 0x00, 0x01, 0xcc, 0xac]
        );
        // TLS 1.3: the suite the callback reports (0 in the ClientHello) is ignored.
        for suite in [0, 0x1301, 0x1303] {
            assert_eq!(
                psk_ua(UaOrg::ThreeGpp, Tls13, suite).unwrap().0,
                [0x01, 0x00, 0x00, 0x00, 0x07]
            );
            assert_eq!(
                psk_ua(UaOrg::Oma, Tls13, suite).unwrap().0,
                [0x03, 0x00, 0x01, 0x13, 0x01]
            );
        }
        assert_eq!(psk_ua(UaOrg::ThreeGpp, Tls12, 0), None);
        assert_eq!(psk_ua(UaOrg::Oma, Tls12, 0), None);
    }

    #[test]
    fn digest_ids_follow_the_table() {
        // gba.md §10 row "01 00 01 00 8C (TLS, TLS_PSK_WITH_AES_128_CBC_SHA)".
        assert_eq!(
            digest_ua(UaOrg::ThreeGpp, Some(0x008c)).0,
            [0x01, 0x00, 0x01, 0x00, 0x8c]
        );
        assert_eq!(
            digest_ua(UaOrg::Oma, Some(0xc02b)).0,
            [0x03, 0x00, 0x01, 0xc0, 0x2b]
        );
        assert_eq!(digest_ua(UaOrg::ThreeGpp, None).0, [1, 0, 0, 0, 2]);
        assert_eq!(digest_ua(UaOrg::Oma, None).0, [1, 0, 0, 0, 2]);
    }

    #[test]
    fn identity_and_hint() {
        assert_eq!(
            psk_identity("I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example"),
            "3GPP-bootstrapping.I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example"
        );
        assert!(hint_acceptable(None));
        assert!(hint_acceptable(Some(b"")));
        assert!(hint_acceptable(Some(b"3GPP-bootstrapping")));
        assert!(!hint_acceptable(Some(b"3GPP-bootstrapping-uicc")));
        assert!(!hint_acceptable(Some(b"3GPP-AKMA")));
        assert!(!hint_acceptable(Some(b"3gpp-bootstrapping")));
    }

    #[test]
    fn org_names() {
        assert_eq!("3gpp".parse::<UaOrg>(), Ok(UaOrg::ThreeGpp));
        assert_eq!("OMA".parse::<UaOrg>(), Ok(UaOrg::Oma));
        assert_eq!("3GPP2".parse::<UaOrg>(), Err(UnknownUaOrg));
        assert_eq!(UaOrg::Oma.to_string(), "oma");
        assert_eq!(UaOrg::default(), UaOrg::ThreeGpp);
    }
}
