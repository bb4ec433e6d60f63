//! Elementary files seccf reads or writes, their identifiers and content codecs.
//!
//! - EF_GBABP ('6FD6', USIM, TS 31.102 §4.2.79): `Lrand RAND Lbtid B-TID Llifetime
//!   lifetime`, one-octet lengths; an unused file is filled with 'FF'.
//! - EF_UST ('6F38', USIM service table): bit n-1 (LSB first within each octet) is
//!   service n. Service n°68 is "Generic Bootstrapping Architecture (GBA)", the card-side
//!   GBA support, i.e. GBA_U (number taken from osmocom pySim's TS 31.102 table).
//! - EF_IMPI ('6F02'): the ISIM file (TS 31.103 §4.2.2) holding the NAI in a TLV with tag
//!   '80'. A USIM has no IMPI file; the software card exposes this ISIM-like EF in its one
//!   application so the agent can read the identity the same way from both.

/// Master file.
pub const FID_MF: u16 = 0x3F00;
/// The currently selected application (ADF) by its reserved FID.
pub const FID_ADF: u16 = 0x7FFF;
/// EF_UST, the USIM service table.
pub const FID_UST: u16 = 0x6F38;
/// EF_GBABP, GBA bootstrapping parameters.
pub const FID_GBABP: u16 = 0x6FD6;
/// EF_IMPI (ISIM-like, see the module docs).
pub const FID_IMPI: u16 = 0x6F02;
/// USIM service n°68: GBA.
pub const UST_SERVICE_GBA: usize = 68;

/// Tag of the NAI TLV in EF_IMPI.
const TAG_NAI: u8 = 0x80;
/// Content octet of an erased EF.
const ERASED: u8 = 0xFF;
/// Longest content the parsers look at.
pub const MAX_EF_LEN: usize = 1024;

/// Malformed EF content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EfError {
    /// A length points past the end of the content.
    #[error("EF content truncated")]
    Truncated,
    /// RAND length is not 16 or a TLV tag is wrong.
    #[error("EF content has an unexpected structure")]
    BadStructure,
    /// A text field is not printable ASCII.
    #[error("EF text field is not printable ASCII")]
    BadText,
    /// A field longer than the one-octet length allows, or content over [`MAX_EF_LEN`].
    #[error("EF field too long")]
    TooLong,
}

/// The content of EF_GBABP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gbabp {
    /// RAND of the bootstrapping run (identifies the Ks in the card).
    pub rand: [u8; 16],
    /// The B-TID the BSF assigned.
    pub btid: String,
    /// The key lifetime as received from the BSF (xs:dateTime text).
    pub lifetime: String,
}

impl Gbabp {
    /// Encodes `16 RAND Lbtid B-TID Llifetime lifetime`.
    pub fn encode(&self) -> Result<Vec<u8>, EfError> {
        check_text(&self.btid)?;
        check_text(&self.lifetime)?;
        let lb = u8::try_from(self.btid.len()).map_err(|_| EfError::TooLong)?;
        let ll = u8::try_from(self.lifetime.len()).map_err(|_| EfError::TooLong)?;
        let mut v = Vec::with_capacity(3 + 16 + self.btid.len() + self.lifetime.len());
        v.push(16);
        v.extend_from_slice(&self.rand);
        v.push(lb);
        v.extend_from_slice(self.btid.as_bytes());
        v.push(ll);
        v.extend_from_slice(self.lifetime.as_bytes());
        Ok(v)
    }

    /// Parses EF_GBABP content; `Ok(None)` for an erased or never-written file (first
    /// octet 'FF' or 00). Octets after the lifetime (file padding) are ignored.
    pub fn parse(content: &[u8]) -> Result<Option<Self>, EfError> {
        if content.len() > MAX_EF_LEN {
            return Err(EfError::TooLong);
        }
        match content.first() {
            None | Some(&ERASED) | Some(0) => return Ok(None),
            Some(_) => {}
        }
        let mut rest = content;
        let rand: [u8; 16] = take_lv(&mut rest)?
            .try_into()
            .map_err(|_| EfError::BadStructure)?;
        let btid = text(take_lv(&mut rest)?)?;
        let lifetime = text(take_lv(&mut rest)?)?;
        Ok(Some(Gbabp {
            rand,
            btid,
            lifetime,
        }))
    }
}

/// EF_IMPI content: `80 L NAI` (BER length: one octet below 128, else `81 L`).
pub fn encode_impi(impi: &str) -> Result<Vec<u8>, EfError> {
    check_text(impi)?;
    let len = u8::try_from(impi.len()).map_err(|_| EfError::TooLong)?;
    let mut v = Vec::with_capacity(impi.len() + 3);
    v.push(TAG_NAI);
    if len >= 0x80 {
        v.push(0x81);
    }
    v.push(len);
    v.extend_from_slice(impi.as_bytes());
    Ok(v)
}

/// Parses EF_IMPI content (trailing 'FF' padding ignored).
pub fn parse_impi(content: &[u8]) -> Result<String, EfError> {
    if content.len() > MAX_EF_LEN {
        return Err(EfError::TooLong);
    }
    let (&tag, rest) = content.split_first().ok_or(EfError::Truncated)?;
    if tag != TAG_NAI {
        return Err(EfError::BadStructure);
    }
    let (&first, rest) = rest.split_first().ok_or(EfError::Truncated)?;
    let (len, rest) = match first {
        0x00..=0x7F => (usize::from(first), rest),
        0x81 => {
            let (&l, rest) = rest.split_first().ok_or(EfError::Truncated)?;
            (usize::from(l), rest)
        }
        _ => return Err(EfError::BadStructure),
    };
    let value = rest.get(..len).ok_or(EfError::Truncated)?;
    text(value)
}

/// Whether service `n` (1-based) is marked available in EF_UST content.
pub fn ust_has_service(ust: &[u8], n: usize) -> bool {
    let Some(i) = n.checked_sub(1) else {
        return false;
    };
    ust.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// EF_UST content of `len` octets with exactly the given services available (services
/// beyond `len * 8` are ignored).
pub fn ust_with_services(len: usize, services: &[usize]) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for &n in services {
        if let Some(i) = n.checked_sub(1) {
            if let Some(b) = v.get_mut(i / 8) {
                *b |= 1 << (i % 8);
            }
        }
    }
    v
}

fn take_lv<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], EfError> {
    let (&len, tail) = rest.split_first().ok_or(EfError::Truncated)?;
    let (value, tail) = tail
        .split_at_checked(usize::from(len))
        .ok_or(EfError::Truncated)?;
    *rest = tail;
    Ok(value)
}

fn is_printable(b: u8) -> bool {
    (0x20..0x7F).contains(&b)
}

fn check_text(s: &str) -> Result<(), EfError> {
    if s.bytes().all(is_printable) {
        Ok(())
    } else {
        Err(EfError::BadText)
    }
}

fn text(b: &[u8]) -> Result<String, EfError> {
    if !b.iter().copied().all(is_printable) {
        return Err(EfError::BadText);
    }
    // Printable ASCII is valid UTF-8.
    String::from_utf8(b.to_vec()).map_err(|_| EfError::BadText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbabp_round_trip() {
        let g = Gbabp {
            rand: [0x23; 16],
            btid: "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example".into(),
            lifetime: "2025-01-01T12:00:00Z".into(),
        };
        let mut content = g.encode().unwrap();
        assert_eq!(content[0], 16);
        assert_eq!(content[17] as usize, g.btid.len());
        content.extend_from_slice(&[0xFF; 40]);
        assert_eq!(Gbabp::parse(&content).unwrap(), Some(g));
        assert_eq!(Gbabp::parse(&[0xFF; 64]).unwrap(), None);
        assert_eq!(Gbabp::parse(&[]).unwrap(), None);
    }

    #[test]
    fn gbabp_errors() {
        assert_eq!(Gbabp::parse(&[15; 20]), Err(EfError::BadStructure));
        assert_eq!(Gbabp::parse(&[16, 1, 2]), Err(EfError::Truncated));
        let mut c = vec![16];
        c.extend_from_slice(&[0; 16]);
        c.extend_from_slice(&[1, 0x07, 0]);
        assert_eq!(Gbabp::parse(&c), Err(EfError::BadText));
        let long = Gbabp {
            rand: [0; 16],
            btid: "x".repeat(256),
            lifetime: String::new(),
        };
        assert_eq!(long.encode(), Err(EfError::TooLong));
    }

    #[test]
    fn impi_tlv() {
        let short = "a@b.c";
        let e = encode_impi(short).unwrap();
        assert_eq!(e[..2], [0x80, 5]);
        assert_eq!(parse_impi(&e).unwrap(), short);
        let long = format!("{}@example.org", "u".repeat(150));
        let mut e = encode_impi(&long).unwrap();
        assert_eq!(e[..3], [0x80, 0x81, long.len() as u8]);
        e.extend_from_slice(&[0xFF; 8]);
        assert_eq!(parse_impi(&e).unwrap(), long);
        assert_eq!(parse_impi(&[0x80, 9, b'a']), Err(EfError::Truncated));
        assert_eq!(parse_impi(&[0x81, 1, b'a']), Err(EfError::BadStructure));
        assert_eq!(parse_impi(&[0x80, 0x82, 0, 1]), Err(EfError::BadStructure));
    }

    #[test]
    fn service_table() {
        let ust = ust_with_services(9, &[1, 68, 200, 0]);
        assert_eq!(ust[0], 0x01);
        assert_eq!(ust[8], 0x08); // service 68 = octet 9, bit 4
        assert!(ust_has_service(&ust, 68));
        assert!(ust_has_service(&ust, 1));
        assert!(!ust_has_service(&ust, 67));
        assert!(!ust_has_service(&ust, 0));
        assert!(!ust_has_service(&ust, 1000));
    }
}
