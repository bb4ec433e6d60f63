//! NAF identifiers and NAF-specific keys (TS 33.220 clause 4.5.2, Annex B.3, Annex H).
//!
//! NAF_Id = FQDN of the NAF (the name the UE used: Host header or SNI) || the 5-octet Ua
//! security protocol identifier. Both ends must derive over exactly the same octets, so
//! [`NafId::new`] normalises the FQDN to lower case; seccf's UE and KMC both go through it.

use std::fmt;
use std::str::FromStr;

use seccf_secret::Secret;

use crate::host::{check_host, HostError, MAX_HOST_LEN};
use crate::kdf::{ascii, kdf, KdfError, FC_GBA};

/// 5-octet Ua security protocol id (TS 33.220 Annex H; OMNA registry for org 0x03).
///
/// Octet 1 is the organisation (0x01 3GPP, 0x03 OMA, ...), octets 2-5 the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UaSecurityProtocolId(pub [u8; 5]);

impl UaSecurityProtocolId {
    /// HTTP Digest authentication per TS 24.109, not inside another listed protocol.
    pub const HTTP_DIGEST: Self = Self([0x01, 0x00, 0x00, 0x00, 0x02]);
    /// Generic Push Layer (TS 33.224).
    pub const GPL: Self = Self([0x01, 0x00, 0x00, 0x00, 0x05]);
    /// Shared-key TLS 1.3 (TS 33.222 clause 5.4.0.2).
    pub const TLS13_SHARED_KEY: Self = Self([0x01, 0x00, 0x00, 0x00, 0x07]);
    /// Generation of the TMPI (TS 33.220 Annex B.4).
    pub const TMPI: Self = Self([0x01, 0x00, 0x00, 0x01, 0x00]);
    /// OMA SEC_CF SIP Digest (OMNA registry, enabler SEC_CF 1.1).
    pub const OMA_SIP_DIGEST: Self = Self([0x03, 0x00, 0x00, 0x00, 0x03]);
    /// OMA LOCSIP (OMNA registry).
    pub const OMA_LOCSIP: Self = Self([0x03, 0x00, 0x00, 0x00, 0x02]);

    /// 3GPP shared-key TLS (TS 33.222 clauses 5.3/5.4): `01 00 01 yy zz`, where yy zz is
    /// the negotiated TLS cipher suite.
    pub fn tls_3gpp(cipher_suite: u16) -> Self {
        let [yy, zz] = cipher_suite.to_be_bytes();
        Self([0x01, 0x00, 0x01, yy, zz])
    }

    /// OMA "versioned scheme" TLS: `03 00 01 yy zz` (OMNA registry).
    pub fn tls_oma(cipher_suite: u16) -> Self {
        let [yy, zz] = cipher_suite.to_be_bytes();
        Self([0x03, 0x00, 0x01, yy, zz])
    }

    /// Parses exactly 10 hex digits (either case), the form TS 29.309 uses for
    /// `uaSecProtId`.
    pub fn from_hex(s: &str) -> Result<Self, NafIdError> {
        if s.len() != 10 {
            return Err(NafIdError::BadUaId);
        }
        let mut out = [0u8; 5];
        hex::decode_to_slice(s, &mut out).map_err(|_| NafIdError::BadUaId)?;
        Ok(Self(out))
    }

    /// Lower-case hex, 10 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The organisation octet.
    pub fn organisation(&self) -> u8 {
        self.0[0]
    }
}

impl fmt::Display for UaSecurityProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for UaSecurityProtocolId {
    type Err = NafIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

/// Why a NAF_Id or Ua security protocol id was refused. Messages never echo the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NafIdError {
    /// The Ua security protocol id was not exactly 10 hex digits.
    #[error("Ua security protocol id must be exactly 10 hex digits")]
    BadUaId,
    /// The FQDN is empty or longer than 253 octets.
    #[error("NAF FQDN must be 1 to 253 octets long")]
    FqdnLength,
    /// The FQDN contains non-ASCII text (IDNs must be given in their A-label form).
    #[error("NAF FQDN must be ASCII (use the punycode A-label form)")]
    NonAscii,
    /// A label of the FQDN is empty or longer than 63 octets.
    #[error("NAF FQDN has an empty label or one longer than 63 octets")]
    LabelLength,
    /// A label contains a character other than letters, digits and '-', or starts or ends
    /// with '-'.
    #[error("NAF FQDN label has a character outside [a-z0-9-] or starts or ends with '-'")]
    BadLabel,
    /// An encoded NAF_Id is too short to hold an FQDN and a 5-octet protocol id, or too long.
    #[error("encoded NAF_Id must be an FQDN followed by a 5-octet Ua security protocol id")]
    BadEncoding,
}

impl From<HostError> for NafIdError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Length => NafIdError::FqdnLength,
            HostError::NonAscii => NafIdError::NonAscii,
            HostError::LabelLength => NafIdError::LabelLength,
            HostError::BadLabel => NafIdError::BadLabel,
        }
    }
}

/// Longest encoded NAF_Id: a 253-octet FQDN and the 5-octet protocol id.
pub const MAX_NAF_ID_LEN: usize = MAX_HOST_LEN + 5;

/// NAF_Id = FQDN || Ua security protocol id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NafId {
    /// The NAF's FQDN as the UE addressed it, lower case.
    pub fqdn: String,
    /// The Ua security protocol in use.
    pub ua: UaSecurityProtocolId,
}

impl NafId {
    /// Validates the FQDN (lower-cased, 1..=253 bytes, DNS labels of \[a-z0-9-\] 1..=63,
    /// no leading/trailing '-'; "localhost" and other single-label names are accepted).
    ///
    /// The FQDN must not carry a port or a trailing dot: strip them from a Host header
    /// first. Upper-case input is lower-cased so that `Naf.Example.com` and
    /// `naf.example.com` derive the same key (DNS names are case-insensitive).
    pub fn new(fqdn: &str, ua: UaSecurityProtocolId) -> Result<Self, NafIdError> {
        check_host(fqdn, true)?;
        Ok(NafId {
            fqdn: fqdn.to_ascii_lowercase(),
            ua,
        })
    }

    /// Parses the octet form (as carried in the Zn `NAF-Id` AVP): the last five octets are
    /// the protocol id, the rest is the FQDN, validated and lower-cased as in
    /// [`NafId::new`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, NafIdError> {
        if b.len() < 6 || b.len() > MAX_NAF_ID_LEN {
            return Err(NafIdError::BadEncoding);
        }
        let (name, ua) = b.split_at(b.len() - 5);
        let ua: [u8; 5] = ua.try_into().map_err(|_| NafIdError::BadEncoding)?;
        let name = std::str::from_utf8(name).map_err(|_| NafIdError::NonAscii)?;
        NafId::new(name, UaSecurityProtocolId(ua))
    }

    /// FQDN octets followed by the 5-octet protocol id.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.fqdn.len() + 5);
        v.extend_from_slice(self.fqdn.as_bytes());
        v.extend_from_slice(&self.ua.0);
        v
    }
}

impl fmt::Display for NafId {
    /// `fqdn/uaid-hex`, for logs (not a wire format).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.fqdn, self.ua)
    }
}

const P0_GBA_ME: &[u8] = b"gba-me";
const P0_GBA_U: &[u8] = b"gba-u";

/// Ks_NAF (GBA_ME) = Ks_ext_NAF (GBA_U) = KDF(Ks, "gba-me", RAND, IMPI, NAF_Id).
pub fn ks_naf(
    ks: &Secret<32>,
    rand: &[u8; 16],
    impi: &str,
    naf: &NafId,
) -> Result<Secret<32>, KdfError> {
    let naf_id = naf_bytes_checked(naf)?;
    ks_naf_from_bytes(ks, rand, ascii(impi)?, &naf_id)
}

/// Ks_int_NAF = KDF(Ks, "gba-u", RAND, IMPI, NAF_Id).
pub fn ks_int_naf(
    ks: &Secret<32>,
    rand: &[u8; 16],
    impi: &str,
    naf: &NafId,
) -> Result<Secret<32>, KdfError> {
    let naf_id = naf_bytes_checked(naf)?;
    ks_int_naf_from_bytes(ks, rand, ascii(impi)?, &naf_id)
}

/// [`ks_naf`] over the raw octets of IMPI and NAF_Id, as a UICC computes it: the card uses
/// whatever the ME sent, without normalising. Only the KDF length limits apply.
pub fn ks_naf_from_bytes(
    ks: &Secret<32>,
    rand: &[u8; 16],
    impi: &[u8],
    naf_id: &[u8],
) -> Result<Secret<32>, KdfError> {
    kdf(ks.expose(), FC_GBA, &[P0_GBA_ME, rand, impi, naf_id])
}

/// [`ks_int_naf`] over raw octets; see [`ks_naf_from_bytes`].
pub fn ks_int_naf_from_bytes(
    ks: &Secret<32>,
    rand: &[u8; 16],
    impi: &[u8],
    naf_id: &[u8],
) -> Result<Secret<32>, KdfError> {
    kdf(ks.expose(), FC_GBA, &[P0_GBA_U, rand, impi, naf_id])
}

/// The fields of `NafId` are public, so a hand-built value may bypass [`NafId::new`]; at
/// least keep non-ASCII text out of the KDF.
fn naf_bytes_checked(naf: &NafId) -> Result<Vec<u8>, KdfError> {
    ascii(&naf.fqdn)?;
    Ok(naf.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ua_ids() {
        assert_eq!(
            UaSecurityProtocolId::tls_3gpp(0x008c).0,
            [1, 0, 1, 0x00, 0x8c]
        );
        assert_eq!(
            UaSecurityProtocolId::tls_oma(0x1301).0,
            [3, 0, 1, 0x13, 0x01]
        );
        assert_eq!(
            UaSecurityProtocolId::from_hex("010001008C").unwrap(),
            UaSecurityProtocolId::tls_3gpp(0x8c)
        );
        assert_eq!(UaSecurityProtocolId::tls_3gpp(0x8c).to_hex(), "010001008c");
        assert_eq!(UaSecurityProtocolId::OMA_SIP_DIGEST.organisation(), 3);
        for bad in [
            "",
            "01000000",
            "010000000200",
            "01000000g2",
            "+100000002",
            "０１",
        ] {
            assert_eq!(
                UaSecurityProtocolId::from_hex(bad),
                Err(NafIdError::BadUaId),
                "{bad}"
            );
        }
        assert_eq!(
            "0300000003".parse::<UaSecurityProtocolId>().unwrap(),
            UaSecurityProtocolId::OMA_SIP_DIGEST
        );
    }

    #[test]
    fn naf_id_normalises_and_round_trips() {
        let n = NafId::new("NAF.Example.COM", UaSecurityProtocolId::HTTP_DIGEST).unwrap();
        assert_eq!(n.fqdn, "naf.example.com");
        let b = n.to_bytes();
        assert_eq!(&b[..15], b"naf.example.com");
        assert_eq!(&b[15..], &[1, 0, 0, 0, 2]);
        assert_eq!(NafId::from_bytes(&b).unwrap(), n);
        assert_eq!(NafId::from_bytes(&b[..5]), Err(NafIdError::BadEncoding));
        assert_eq!(
            NafId::new("naf.example.com:443", UaSecurityProtocolId::GPL),
            Err(NafIdError::BadLabel)
        );
        assert_eq!(
            NafId::new("", UaSecurityProtocolId::GPL),
            Err(NafIdError::FqdnLength)
        );
        assert_eq!(
            NafId::new("naf.example.com.", UaSecurityProtocolId::GPL),
            Err(NafIdError::LabelLength)
        );
        assert!(NafId::new("localhost", UaSecurityProtocolId::GPL).is_ok());
    }

    #[test]
    fn gba_me_and_gba_u_keys_differ_and_reject_non_ascii() {
        let ks = Secret::new([4u8; 32]);
        let naf = NafId::new("a.example", UaSecurityProtocolId::HTTP_DIGEST).unwrap();
        let me = ks_naf(&ks, &[1; 16], "u@r", &naf).unwrap();
        let u = ks_int_naf(&ks, &[1; 16], "u@r", &naf).unwrap();
        assert_ne!(me, u);
        assert_eq!(
            ks_naf(&ks, &[1; 16], "ü@r", &naf).unwrap_err(),
            KdfError::NonAscii
        );
        let hand_built = NafId {
            fqdn: "ä.example".into(),
            ua: UaSecurityProtocolId::GPL,
        };
        assert_eq!(
            ks_int_naf(&ks, &[1; 16], "u@r", &hand_built).unwrap_err(),
            KdfError::NonAscii
        );
    }
}
