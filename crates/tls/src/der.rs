//! Just enough DER for what OpenSSL's Rust bindings leave out: encoding a few X.509
//! extension values (AIA, CRL distribution points, authority key id) and reading or
//! adding the nonce extension of OCSP messages.
//!
//! Bounded by construction: the reader only walks the slice it is given (every length
//! is checked against what is left), supports one-byte tags and definite lengths of at
//! most four octets, and never allocates. Inputs larger than [`MAX_DER_LEN`] are refused
//! up front.

/// Largest DER message handled (an OCSP response is a few KiB).
pub(crate) const MAX_DER_LEN: usize = 64 * 1024;

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_ENUMERATED: u8 = 0x0a;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// Context-specific, constructed tag `[n]` (n < 31).
pub(crate) const fn context(n: u8) -> u8 {
    0xa0 | n
}

/// Why a DER structure was not understood. Carries no input bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DerError {
    /// The input ended inside a header or value.
    #[error("truncated")]
    Truncated,
    /// A multi-byte tag, an indefinite length or a length over four octets.
    #[error("unsupported encoding")]
    Unsupported,
    /// A non-minimal length encoding (DER requires the shortest form).
    #[error("non-minimal length")]
    NonMinimal,
    /// Not the expected structure.
    #[error("unexpected structure")]
    Unexpected,
    /// Larger than [`MAX_DER_LEN`].
    #[error("too large")]
    TooLarge,
}

/// One TLV: its tag, its content, and the whole encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) content: &'a [u8],
}

/// Reads consecutive TLVs from a slice.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Result<Self, DerError> {
        if input.len() > MAX_DER_LEN {
            return Err(DerError::TooLarge);
        }
        Ok(Reader { rest: input })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes not read yet.
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// The next TLV, or `None` at the end.
    pub(crate) fn next_tlv(&mut self) -> Result<Option<Tlv<'a>>, DerError> {
        let Some((&tag, after_tag)) = self.rest.split_first() else {
            return Ok(None);
        };
        if tag & 0x1f == 0x1f {
            return Err(DerError::Unsupported);
        }
        let (&first, mut after_len) = after_tag.split_first().ok_or(DerError::Truncated)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(DerError::Unsupported);
            }
            let (bytes, rest) = after_len.split_at_checked(n).ok_or(DerError::Truncated)?;
            after_len = rest;
            if bytes.first() == Some(&0) {
                return Err(DerError::NonMinimal);
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(DerError::NonMinimal);
            }
            len
        };
        let (content, rest) = after_len.split_at_checked(len).ok_or(DerError::Truncated)?;
        self.rest = rest;
        Ok(Some(Tlv { tag, content }))
    }

    /// The next TLV, which must exist and carry `tag`.
    pub(crate) fn expect(&mut self, tag: u8) -> Result<&'a [u8], DerError> {
        match self.next_tlv()? {
            Some(t) if t.tag == tag => Ok(t.content),
            _ => Err(DerError::Unexpected),
        }
    }
}

/// Appends the DER length octets of `len` to `out`.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let significant = bytes.get(skip..).unwrap_or(&[]);
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

/// Encodes one TLV.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// Encodes a TLV whose content is the concatenation of `parts`.
pub(crate) fn tlv_of(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// Encodes the content octets of an OBJECT IDENTIFIER given as arcs.
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut arcs_iter = arcs.iter().copied();
    let first = arcs_iter.next().unwrap_or(0);
    let second = arcs_iter.next().unwrap_or(0);
    push_base128(&mut body, first * 40 + second);
    for arc in arcs_iter {
        push_base128(&mut body, arc);
    }
    tlv(TAG_OID, &body)
}

fn push_base128(out: &mut Vec<u8>, mut v: u64) {
    const N: usize = 10; // ceil(64 / 7)
    let mut tmp = [0u8; N];
    let mut i = N;
    loop {
        i -= 1;
        let continuation = if i == N - 1 { 0 } else { 0x80 };
        if let Some(slot) = tmp.get_mut(i) {
            *slot = (v & 0x7f) as u8 | continuation;
        }
        v >>= 7;
        if v == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(tmp.get(i..).unwrap_or(&[]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_roundtrip_at_the_boundaries() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536] {
            let enc = tlv(TAG_OCTET_STRING, &vec![7u8; len]);
            if enc.len() <= MAX_DER_LEN {
                let mut r = Reader::new(&enc).unwrap();
                let t = r.next_tlv().unwrap().unwrap();
                assert_eq!((t.tag, t.content.len()), (TAG_OCTET_STRING, len));
                assert!(r.is_empty());
            } else {
                assert_eq!(Reader::new(&enc).unwrap_err(), DerError::TooLarge);
            }
        }
        // Known encodings (X.690 8.1.3).
        assert_eq!(tlv(0x04, &[0; 127])[..2], [0x04, 0x7f]);
        assert_eq!(tlv(0x04, &[0; 128])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(0x04, &[0; 256])[..4], [0x04, 0x82, 0x01, 0x00]);
    }

    #[test]
    fn oids_match_known_encodings() {
        // id-pkix-ocsp-nonce 1.3.6.1.5.5.7.48.1.2 (RFC 6960 4.4.1).
        assert_eq!(
            oid(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 2]),
            [0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02]
        );
        // 1.2.840.113549 (RSA) has a multi-byte arc: 86 f7 0d.
        assert_eq!(
            oid(&[1, 2, 840, 113_549]),
            [0x06, 0x06, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]
        );
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let cases: &[(&[u8], DerError)] = &[
            (&[0x30], DerError::Truncated),
            (&[0x30, 0x02, 0x01], DerError::Truncated),
            (&[0x1f, 0x01, 0x00], DerError::Unsupported),
            (&[0x30, 0x80], DerError::Unsupported),
            (&[0x30, 0x85, 1, 1, 1, 1, 1], DerError::Unsupported),
            (&[0x30, 0x81, 0x05, 1, 2, 3, 4, 5], DerError::NonMinimal),
            (&[0x30, 0x82, 0x00, 0x90], DerError::NonMinimal),
            (&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], DerError::Truncated),
        ];
        for (input, want) in cases {
            let got = Reader::new(input).unwrap().next_tlv().unwrap_err();
            assert_eq!(got, *want, "{input:02x?}");
        }
        assert_eq!(
            Reader::new(&vec![0; MAX_DER_LEN + 1]).unwrap_err(),
            DerError::TooLarge
        );
        let mut r = Reader::new(&[0x02, 0x01, 0x05]).unwrap();
        assert_eq!(r.expect(TAG_SEQUENCE), Err(DerError::Unexpected));
    }

    /// Randomized: the reader never panics and never returns content that is not a
    /// sub-slice of its input.
    #[test]
    fn reader_never_panics() {
        let mut state: u64 = 0x1234_5678_9abc_def1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seed = tlv_of(
            TAG_SEQUENCE,
            &[&oid(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 2]), &tlv(4, &[1; 200])],
        );
        for i in 0..5000 {
            let mut v = if i % 2 == 0 {
                seed.clone()
            } else {
                (0..(next() % 64)).map(|_| next() as u8).collect()
            };
            for _ in 0..(next() % 4) {
                if v.is_empty() {
                    break;
                }
                let at = (next() % v.len() as u64) as usize;
                match next() % 3 {
                    0 => v[at] = next() as u8,
                    1 => v.truncate(at),
                    _ => v.insert(at, [0x80, 0x81, 0x84, 0xff, 0x00][(next() % 5) as usize]),
                }
            }
            let mut r = Reader::new(&v).unwrap();
            let mut steps = 0;
            while let Ok(Some(t)) = r.next_tlv() {
                assert!(t.content.len() <= v.len());
                // Descend once, as the OCSP code does.
                let mut inner = Reader::new(t.content).unwrap();
                while let Ok(Some(_)) = inner.next_tlv() {}
                steps += 1;
                assert!(steps <= v.len());
            }
        }
    }
}
