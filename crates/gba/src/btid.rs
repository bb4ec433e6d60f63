//! The bootstrapping transaction identifier and the TMPI.
//!
//! B-TID = base64(RAND) "@" BSF domain name (TS 33.220 clause 4.5.2; standard base64 with
//! padding, so RAND's 16 octets give 24 characters ending in `==`). Only this standard
//! form parses: B-TIDs of BSFs that hash other data into the local part are refused.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use seccf_secret::Secret;

use crate::host::check_host;
use crate::kdf::{ascii, kdf, KdfError, FC_GBA};
use crate::naf::UaSecurityProtocolId;

/// Longest B-TID [`parse_btid`] looks at.
pub const MAX_BTID_LEN: usize = 256;

/// Length of base64(16 octets) with padding.
const RAND_B64_LEN: usize = 24;

/// Domain every TMPI lives in (TS 33.220 Annex B.4).
pub const TMPI_DOMAIN: &str = "tmpi.bsf.3gppnetwork.org";

/// Octets of the KDF output that form the TMPI's local part.
const TMPI_OCTETS: usize = 24;

/// Why a B-TID was refused. Messages never echo the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BtidError {
    /// Longer than [`MAX_BTID_LEN`].
    #[error("B-TID is longer than 256 octets")]
    TooLong,
    /// No '@' separating RAND and the domain.
    #[error("B-TID has no '@'")]
    MissingAt,
    /// The local part is not the canonical padded base64 of 16 octets.
    #[error("B-TID local part is not base64 of a 16-octet RAND")]
    BadRand,
    /// The domain is not a valid host name.
    #[error("B-TID domain is not a valid host name")]
    BadDomain,
}

/// B-TID = base64(RAND) "@" BSF domain (standard base64 with padding).
pub fn make_btid(rand: &[u8; 16], bsf_domain: &str) -> String {
    let mut s = STANDARD.encode(rand);
    s.push('@');
    s.push_str(bsf_domain);
    s
}

/// Parses a B-TID: returns (RAND, domain). Bounded (max 256 bytes), strict base64.
///
/// The domain must be a host name (letters, digits, '-', dots); its case is kept.
pub fn parse_btid(btid: &str) -> Result<([u8; 16], &str), BtidError> {
    if btid.len() > MAX_BTID_LEN {
        return Err(BtidError::TooLong);
    }
    // base64 never contains '@', so the first one ends the local part.
    let (local, domain) = btid.split_once('@').ok_or(BtidError::MissingAt)?;
    if local.len() != RAND_B64_LEN {
        return Err(BtidError::BadRand);
    }
    // STANDARD requires canonical padding and zero trailing bits, so each RAND has exactly
    // one accepted spelling and a B-TID cannot be varied to dodge a lookup.
    let raw = STANDARD.decode(local).map_err(|_| BtidError::BadRand)?;
    let rand: [u8; 16] = raw.try_into().map_err(|_| BtidError::BadRand)?;
    check_host(domain, true).map_err(|_| BtidError::BadDomain)?;
    Ok((rand, domain))
}

/// TMPI (Annex B.4) = base64(first 24 octets of KDF(Ks,"gba-me",RAND,IMPI,BSF_Id)) "@tmpi.bsf.3gppnetwork.org",
/// with BSF_Id = `bsf_fqdn` (the name used in the B-TID, taken as given) || `01 00 00 01 00`.
pub fn tmpi(
    ks: &Secret<32>,
    rand: &[u8; 16],
    impi: &str,
    bsf_fqdn: &str,
) -> Result<String, KdfError> {
    let mut bsf_id = ascii(bsf_fqdn)?.to_vec();
    bsf_id.extend_from_slice(&UaSecurityProtocolId::TMPI.0);
    let key = kdf(
        ks.expose(),
        FC_GBA,
        &[b"gba-me", rand, ascii(impi)?, &bsf_id],
    )?;
    let mut s = STANDARD.encode(&key.expose()[..TMPI_OCTETS]);
    s.push('@');
    s.push_str(TMPI_DOMAIN);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let rand = [0xfbu8; 16];
        let b = make_btid(&rand, "bsf.example.org");
        assert_eq!(parse_btid(&b), Ok((rand, "bsf.example.org")));
    }

    #[test]
    fn rejects() {
        let good_local = STANDARD.encode([1u8; 16]);
        assert_eq!(parse_btid("nothing"), Err(BtidError::MissingAt));
        assert_eq!(parse_btid("@bsf.example"), Err(BtidError::BadRand));
        // 15 octets.
        let short = STANDARD.encode([1u8; 15]);
        assert_eq!(
            parse_btid(&format!("{short}@b.example")),
            Err(BtidError::BadRand)
        );
        // Non-canonical trailing bits: last char before "==" changed from 'Q' to 'R'.
        let mut noncanon = good_local.clone();
        assert!(noncanon.ends_with("Q=="), "{noncanon}");
        noncanon.replace_range(21..22, "R");
        assert_eq!(
            parse_btid(&format!("{noncanon}@b.example")),
            Err(BtidError::BadRand)
        );
        // URL-safe alphabet is not standard base64.
        assert_eq!(
            parse_btid("____________________AQ==@b.example"),
            Err(BtidError::BadRand)
        );
        assert_eq!(
            parse_btid(&format!("{good_local}@")),
            Err(BtidError::BadDomain)
        );
        assert_eq!(
            parse_btid(&format!("{good_local}@b@c")),
            Err(BtidError::BadDomain)
        );
        let long = format!("{good_local}@{}", "a.".repeat(120) + "example");
        assert_eq!(parse_btid(&long), Err(BtidError::TooLong));
    }
}
