//! Data fields of the USIM AUTHENTICATE command (INS 0x88, 3GPP TS 31.102 §7.1.2),
//! shared by the card side ([`crate::soft`]) and the terminal side ([`crate::Usim`]).
//!
//! | P2 | mode | command data | success data | sync failure data |
//! |----|------|--------------|--------------|-------------------|
//! | 0x81 | 3G context | `L RAND L AUTN` | `DB L RES L CK L IK [L Kc]` | `DC L AUTS` |
//! | 0x84 | GBA bootstrapping | `DD L RAND L AUTN` | `DB L RES` | `DC L AUTS` |
//! | 0x84 | GBA NAF derivation | `DE L NAF_Id L IMPI` | `DB L Ks_ext_NAF` | — |
//!
//! All length fields are one octet. The layout follows reference §2.8 (public tools,
//! checked against the TS 31.102 clause titles); the normative text was not available.

/// INS of AUTHENTICATE.
pub const INS_AUTHENTICATE: u8 = 0x88;
/// P2: 3G security context.
pub const P2_3G: u8 = 0x81;
/// P2: GBA security context.
pub const P2_GBA: u8 = 0x84;
/// Response tag: successful execution.
pub const TAG_SUCCESS: u8 = 0xDB;
/// Response tag: synchronisation failure.
pub const TAG_SYNC_FAILURE: u8 = 0xDC;
/// Command tag: GBA bootstrapping mode.
pub const TAG_GBA_BOOTSTRAP: u8 = 0xDD;
/// Command tag: GBA NAF derivation mode.
pub const TAG_GBA_NAF_DERIVATION: u8 = 0xDE;

/// Most LV fields a success response may carry (RES, CK, IK, Kc).
const MAX_SUCCESS_FIELDS: usize = 4;

/// A malformed AUTHENTICATE data field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFormatError {
    /// A length field points past the end.
    #[error("AUTHENTICATE data truncated")]
    Truncated,
    /// Unknown leading tag.
    #[error("AUTHENTICATE data has an unknown tag")]
    BadTag,
    /// RAND, AUTN or AUTS has the wrong length, or a field is empty.
    #[error("AUTHENTICATE field has the wrong length")]
    BadLength,
    /// Octets after the last field.
    #[error("AUTHENTICATE data has trailing octets")]
    TrailingData,
    /// A value does not fit a one-octet length or the APDU.
    #[error("AUTHENTICATE field too long")]
    TooLong,
}

/// A parsed AUTHENTICATE command data field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    /// P2 = 0x81.
    ThreeG {
        /// RAND.
        rand: [u8; 16],
        /// AUTN.
        autn: [u8; 16],
    },
    /// P2 = 0x84, tag DD. `autn` is AUTN* when the network runs GBA_U.
    GbaBootstrap {
        /// RAND.
        rand: [u8; 16],
        /// AUTN (or AUTN*).
        autn: [u8; 16],
    },
    /// P2 = 0x84, tag DE.
    GbaNafDerivation {
        /// NAF_Id octets (FQDN || Ua security protocol id).
        naf_id: &'a [u8],
        /// IMPI octets.
        impi: &'a [u8],
    },
}

/// Parses the command data of AUTHENTICATE for the given P2. Unknown P2 values are
/// [`AuthFormatError::BadTag`]; the card decides which status word that maps to.
pub fn parse_request(p2: u8, data: &[u8]) -> Result<AuthRequest<'_>, AuthFormatError> {
    match p2 {
        P2_3G => {
            let mut r = Reader(data);
            let rand = r.fixed::<16>()?;
            let autn = r.fixed::<16>()?;
            r.end()?;
            Ok(AuthRequest::ThreeG { rand, autn })
        }
        P2_GBA => {
            let (&tag, rest) = data.split_first().ok_or(AuthFormatError::Truncated)?;
            let mut r = Reader(rest);
            match tag {
                TAG_GBA_BOOTSTRAP => {
                    let rand = r.fixed::<16>()?;
                    let autn = r.fixed::<16>()?;
                    r.end()?;
                    Ok(AuthRequest::GbaBootstrap { rand, autn })
                }
                TAG_GBA_NAF_DERIVATION => {
                    let naf_id = r.lv()?;
                    let impi = r.lv()?;
                    r.end()?;
                    if naf_id.is_empty() || impi.is_empty() {
                        return Err(AuthFormatError::BadLength);
                    }
                    Ok(AuthRequest::GbaNafDerivation { naf_id, impi })
                }
                _ => Err(AuthFormatError::BadTag),
            }
        }
        _ => Err(AuthFormatError::BadTag),
    }
}

/// Command data for P2 = 0x81: `10 RAND 10 AUTN`.
pub fn encode_3g(rand: &[u8; 16], autn: &[u8; 16]) -> Vec<u8> {
    let mut v = Vec::with_capacity(34);
    push_lv(&mut v, rand);
    push_lv(&mut v, autn);
    v
}

/// Command data for P2 = 0x84 bootstrapping: `DD 10 RAND 10 AUTN`.
pub fn encode_gba_bootstrap(rand: &[u8; 16], autn: &[u8; 16]) -> Vec<u8> {
    let mut v = Vec::with_capacity(35);
    v.push(TAG_GBA_BOOTSTRAP);
    push_lv(&mut v, rand);
    push_lv(&mut v, autn);
    v
}

/// Command data for P2 = 0x84 NAF derivation: `DE L NAF_Id L IMPI`. The whole field must
/// fit a short APDU (255 octets).
pub fn encode_naf_derivation(naf_id: &[u8], impi: &[u8]) -> Result<Vec<u8>, AuthFormatError> {
    if naf_id.is_empty() || impi.is_empty() {
        return Err(AuthFormatError::BadLength);
    }
    let total = 3 + naf_id.len() + impi.len();
    if total > crate::apdu::MAX_SHORT_DATA {
        return Err(AuthFormatError::TooLong);
    }
    let mut v = Vec::with_capacity(total);
    v.push(TAG_GBA_NAF_DERIVATION);
    push_lv(&mut v, naf_id);
    push_lv(&mut v, impi);
    Ok(v)
}

/// A parsed AUTHENTICATE response data field (borrowing the buffer, which holds keys:
/// zeroize it after copying them out).
#[derive(Debug, PartialEq, Eq)]
pub enum AuthResponse<'a> {
    /// `DB` followed by one to four LV fields, in order (RES, CK, IK, Kc / RES / Ks_ext_NAF).
    Success(Vec<&'a [u8]>),
    /// `DC 0E AUTS`.
    SyncFailure([u8; 14]),
}

/// Parses the response data of AUTHENTICATE.
pub fn parse_response(data: &[u8]) -> Result<AuthResponse<'_>, AuthFormatError> {
    let (&tag, rest) = data.split_first().ok_or(AuthFormatError::Truncated)?;
    let mut r = Reader(rest);
    match tag {
        TAG_SUCCESS => {
            let mut fields = Vec::new();
            while !r.0.is_empty() {
                if fields.len() == MAX_SUCCESS_FIELDS {
                    return Err(AuthFormatError::TrailingData);
                }
                let f = r.lv()?;
                if f.is_empty() {
                    return Err(AuthFormatError::BadLength);
                }
                fields.push(f);
            }
            if fields.is_empty() {
                return Err(AuthFormatError::Truncated);
            }
            Ok(AuthResponse::Success(fields))
        }
        TAG_SYNC_FAILURE => {
            let auts = r.fixed::<14>()?;
            r.end()?;
            Ok(AuthResponse::SyncFailure(auts))
        }
        _ => Err(AuthFormatError::BadTag),
    }
}

/// Success response data: `DB` and each field as LV. Fields longer than 255 octets are
/// refused.
pub fn encode_success(fields: &[&[u8]]) -> Result<Vec<u8>, AuthFormatError> {
    let mut v = Vec::with_capacity(1 + fields.iter().map(|f| f.len() + 1).sum::<usize>());
    v.push(TAG_SUCCESS);
    for f in fields {
        if f.len() > usize::from(u8::MAX) {
            return Err(AuthFormatError::TooLong);
        }
        push_lv(&mut v, f);
    }
    Ok(v)
}

/// Synchronisation failure response data: `DC 0E AUTS`.
pub fn encode_sync_failure(auts: &[u8; 14]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.push(TAG_SYNC_FAILURE);
    push_lv(&mut v, auts);
    v
}

/// Appends `len || value`. Callers guarantee `value.len() <= 255`.
fn push_lv(v: &mut Vec<u8>, value: &[u8]) {
    v.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
    v.extend_from_slice(value);
}

/// A cursor over LV-encoded fields.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn lv(&mut self) -> Result<&'a [u8], AuthFormatError> {
        let (&len, rest) = self.0.split_first().ok_or(AuthFormatError::Truncated)?;
        let (value, rest) = rest
            .split_at_checked(usize::from(len))
            .ok_or(AuthFormatError::Truncated)?;
        self.0 = rest;
        Ok(value)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], AuthFormatError> {
        self.lv()?
            .try_into()
            .map_err(|_| AuthFormatError::BadLength)
    }

    fn end(&self) -> Result<(), AuthFormatError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AuthFormatError::TrailingData)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips() {
        let (rand, autn) = ([1u8; 16], [2u8; 16]);
        let d = encode_3g(&rand, &autn);
        assert_eq!(d.len(), 34);
        assert_eq!((d[0], d[17]), (16, 16));
        assert_eq!(
            parse_request(P2_3G, &d),
            Ok(AuthRequest::ThreeG { rand, autn })
        );
        let d = encode_gba_bootstrap(&rand, &autn);
        assert_eq!(d[0], 0xDD);
        assert_eq!(
            parse_request(P2_GBA, &d),
            Ok(AuthRequest::GbaBootstrap { rand, autn })
        );
        let d = encode_naf_derivation(b"naf\x01\x00\x00\x00\x02", b"a@b").unwrap();
        assert_eq!(d[..2], [0xDE, 8]);
        assert_eq!(
            parse_request(P2_GBA, &d),
            Ok(AuthRequest::GbaNafDerivation {
                naf_id: b"naf\x01\x00\x00\x00\x02",
                impi: b"a@b"
            })
        );
    }

    #[test]
    fn request_errors() {
        let d = encode_3g(&[1; 16], &[2; 16]);
        assert_eq!(
            parse_request(P2_3G, &d[..33]),
            Err(AuthFormatError::Truncated)
        );
        let mut long = d.clone();
        long.push(0);
        assert_eq!(
            parse_request(P2_3G, &long),
            Err(AuthFormatError::TrailingData)
        );
        assert_eq!(parse_request(0x80, &d), Err(AuthFormatError::BadTag));
        assert_eq!(parse_request(P2_GBA, &d), Err(AuthFormatError::BadTag));
        assert_eq!(parse_request(P2_GBA, &[]), Err(AuthFormatError::Truncated));
        assert_eq!(
            parse_request(P2_3G, &[15; 34]),
            Err(AuthFormatError::BadLength)
        );
        assert_eq!(
            encode_naf_derivation(&[b'a'; 200], &[b'b'; 53]),
            Err(AuthFormatError::TooLong)
        );
        assert!(encode_naf_derivation(&[b'a'; 200], &[b'b'; 52]).is_ok());
        assert_eq!(
            parse_request(P2_GBA, &[0xDE, 0, 1, b'x']),
            Err(AuthFormatError::BadLength)
        );
    }

    #[test]
    fn response_round_trips() {
        let d = encode_success(&[&[1; 8], &[2; 16], &[3; 16]]).unwrap();
        assert_eq!(d.len(), 1 + 9 + 17 + 17);
        match parse_response(&d).unwrap() {
            AuthResponse::Success(f) => {
                assert_eq!(f, vec![&[1u8; 8][..], &[2u8; 16][..], &[3u8; 16][..]])
            }
            other => panic!("{other:?}"),
        }
        let d = encode_sync_failure(&[7; 14]);
        assert_eq!(parse_response(&d), Ok(AuthResponse::SyncFailure([7; 14])));
        assert_eq!(parse_response(&[0xDB]), Err(AuthFormatError::Truncated));
        assert_eq!(
            parse_response(&[0xDB, 2, 1]),
            Err(AuthFormatError::Truncated)
        );
        assert_eq!(parse_response(&[0xDC, 13]), Err(AuthFormatError::Truncated));
        assert_eq!(parse_response(&[0x00]), Err(AuthFormatError::BadTag));
        let five = encode_success(&[&[1], &[1], &[1], &[1], &[1]]).unwrap();
        assert_eq!(parse_response(&five), Err(AuthFormatError::TrailingData));
        assert_eq!(encode_success(&[&[0; 256]]), Err(AuthFormatError::TooLong));
    }
}
