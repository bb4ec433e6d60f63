//! GBA crypto core for seccf: everything the KMC (BSF), the gateways (NAFs) and the
//! security agent compute, with no IO at all.
//!
//! What it does:
//! - [`milenage`]: the MILENAGE authentication functions f1, f1*, f2-f5, f5* (TS 35.205/206)
//!   with the default r/c constants, and OPc derivation.
//! - [`sqn`]: the 48-bit sequence number split SEQ || IND (TS 33.102 Annex C), the HE-side
//!   resync arithmetic and the USIM-side freshness window.
//! - [`aka`]: authentication vectors, AUTN checking, AUTS construction/verification, and
//!   the GBA_U AUTN* transform (whose formula is UNCONFIRMED, see [`aka::autn_star`]).
//! - [`mod@kdf`]: the TS 33.220 Annex B.2 key derivation function and Ks = CK || IK.
//! - [`naf`]: Ua security protocol identifiers (TS 33.220 Annex H, OMNA), NAF_Id, and the
//!   NAF-specific keys Ks_NAF / Ks_ext_NAF / Ks_int_NAF.
//! - [`btid`]: B-TID construction and parsing, TMPI derivation (Annex B.4).
//! - [`impi`]: IMPI (NAI) validation.
//!
//! What it does not do: no HTTP/Digest (that is `seccf-digest`), no storage, no clock
//! reads, no random generation (callers pass RAND in), no APDUs (`seccf-uicc`).
//!
//! Character strings enter the KDF as UTF-8 in Unicode NFKC (TS 33.220 B.2.1.2). Pure
//! ASCII is its own NFKC form, so rather than carrying a Unicode normalisation table this
//! crate rejects non-ASCII IMPIs and FQDNs with a typed error.
//!
//! Secrets (K, OPc, RES, CK, IK, Ks, NAF keys) are held in [`Secret`] from `seccf-secret`.

use std::fmt;
use std::str::FromStr;

pub use seccf_secret::{Secret, SecretBytes};

pub mod aka;
pub mod btid;
mod host;
pub mod impi;
pub mod kdf;
pub mod milenage;
pub mod naf;
pub mod sqn;

pub use aka::{AuthVector, AutnError, AutnOk};
pub use btid::{make_btid, parse_btid, tmpi, BtidError};
pub use impi::{validate_impi, ImpiError};
pub use kdf::{kdf, ks, KdfError};
pub use milenage::{derive_opc, Milenage, F2345};
pub use naf::{ks_int_naf, ks_naf, NafId, NafIdError, UaSecurityProtocolId};
pub use sqn::{SqnError, SqnWindow};

/// Which GBA variant a subscriber's card runs (TS 33.220 clause 4 and 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GbaType {
    /// GBA_ME: Ks is computed and kept in the mobile equipment.
    Me,
    /// GBA_U: Ks stays in the UICC; the ME only sees Ks_ext_NAF.
    U,
}

impl GbaType {
    /// The wire/storage name: `GBA_ME` or `GBA_U`.
    pub fn as_str(self) -> &'static str {
        match self {
            GbaType::Me => "GBA_ME",
            GbaType::U => "GBA_U",
        }
    }
}

impl fmt::Display for GbaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not `GBA_ME` or `GBA_U` (case-insensitive; `me`/`u` accepted).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown GBA type (expected GBA_ME or GBA_U)")]
pub struct UnknownGbaType;

impl FromStr for GbaType {
    type Err = UnknownGbaType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "GBA_ME" | "ME" => Ok(GbaType::Me),
            "GBA_U" | "U" => Ok(GbaType::U),
            _ => Err(UnknownGbaType),
        }
    }
}
