//! The generic key derivation function of TS 33.220 Annex B.2.
//!
//! `derived key = HMAC-SHA-256(Key, S)` with `S = FC || P0 || L0 || P1 || L1 || ...`,
//! where each `Li` is the length of `Pi` as two big-endian octets and follows its
//! parameter (reference §11 pitfall 5). Only the one-octet FC form is provided; the
//! two-octet `0xFF || FC2` extension is not used by GBA.

use hmac::{Hmac, Mac};
use seccf_secret::Secret;
use sha2::Sha256;
use zeroize::Zeroize;

/// The largest parameter the two-octet length field can describe (TS 33.220 B.1).
pub const MAX_PARAM_LEN: usize = u16::MAX as usize;

/// FC value of every TS 33.220 GBA derivation (Ks_NAF, Ks_int_NAF, TMPI, GBA_Digest).
pub const FC_GBA: u8 = 0x01;

/// Errors of the key derivation helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KdfError {
    /// Parameter `index` is longer than 65535 octets.
    #[error("KDF parameter {index} is longer than 65535 octets")]
    ParameterTooLong {
        /// Position of the parameter in the list (P0 is 0).
        index: usize,
    },
    /// A character-string input was not ASCII. The KDF needs UTF-8 in NFKC; this crate
    /// accepts only ASCII (its own NFKC form) instead of shipping normalisation tables.
    #[error("KDF string input must be ASCII (NFKC normalisation of other text is not supported)")]
    NonAscii,
    /// The MAC refused the key. HMAC accepts keys of any length, so this is not produced
    /// in practice; it exists so that no code path has to panic.
    #[error("KDF key rejected")]
    InvalidKey,
}

/// TS 33.220 Annex B.2: HMAC-SHA-256(key, FC || P0 || L0 || ... ); each P at most 65535 bytes.
pub fn kdf(key: &[u8], fc: u8, params: &[&[u8]]) -> Result<Secret<32>, KdfError> {
    let lengths = param_lengths(params)?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| KdfError::InvalidKey)?;
    mac.update(&[fc]);
    for (p, l) in params.iter().zip(lengths.iter()) {
        mac.update(p);
        mac.update(l);
    }
    let mut out: [u8; 32] = mac.finalize().into_bytes().into();
    let key = Secret::new(out);
    out.zeroize();
    Ok(key)
}

/// The string S that [`kdf`] feeds to HMAC. Useful to compare with a peer's trace when a
/// derived key does not match; S holds no key material.
pub fn kdf_input(fc: u8, params: &[&[u8]]) -> Result<Vec<u8>, KdfError> {
    let lengths = param_lengths(params)?;
    let total = 1 + params.iter().map(|p| p.len() + 2).sum::<usize>();
    let mut s = Vec::with_capacity(total);
    s.push(fc);
    for (p, l) in params.iter().zip(lengths.iter()) {
        s.extend_from_slice(p);
        s.extend_from_slice(l);
    }
    Ok(s)
}

fn param_lengths(params: &[&[u8]]) -> Result<Vec<[u8; 2]>, KdfError> {
    params
        .iter()
        .enumerate()
        .map(|(index, p)| {
            u16::try_from(p.len())
                .map(u16::to_be_bytes)
                .map_err(|_| KdfError::ParameterTooLong { index })
        })
        .collect()
}

/// Ks = CK || IK (TS 33.220 clause 4.5.2; CK first).
pub fn ks(ck: &Secret<16>, ik: &Secret<16>) -> Secret<32> {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(ck.expose());
    b[16..].copy_from_slice(ik.expose());
    let s = Secret::new(b);
    b.zeroize();
    s
}

/// Fails with [`KdfError::NonAscii`] unless `s` is ASCII (see the crate docs on NFKC).
pub(crate) fn ascii(s: &str) -> Result<&[u8], KdfError> {
    if s.is_ascii() {
        Ok(s.as_bytes())
    } else {
        Err(KdfError::NonAscii)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_layout() {
        let s = kdf_input(0x01, &[b"ab", b"", &[0xff]]).unwrap();
        assert_eq!(s, [0x01, b'a', b'b', 0, 2, 0, 0, 0xff, 0, 1]);
    }

    #[test]
    fn length_limit() {
        let big = vec![0u8; MAX_PARAM_LEN + 1];
        let ok = vec![0u8; MAX_PARAM_LEN];
        assert_eq!(
            kdf(b"k", 1, &[b"x", &big]).unwrap_err(),
            KdfError::ParameterTooLong { index: 1 }
        );
        assert!(kdf(b"k", 1, &[&ok]).is_ok());
    }

    #[test]
    fn ks_order_is_ck_then_ik() {
        let k = ks(&Secret::new([1; 16]), &Secret::new([2; 16]));
        assert_eq!(k.expose()[0], 1);
        assert_eq!(k.expose()[31], 2);
    }

    #[test]
    fn fc_and_params_matter() {
        let a = kdf(b"key", 1, &[b"p"]).unwrap();
        assert_ne!(a, kdf(b"key", 2, &[b"p"]).unwrap());
        assert_ne!(a, kdf(b"key", 1, &[b"q"]).unwrap());
        assert_ne!(a, kdf(b"kez", 1, &[b"p"]).unwrap());
        // Splitting a parameter changes S because of the length fields.
        assert_ne!(
            kdf(b"key", 1, &[b"ab"]).unwrap(),
            kdf(b"key", 1, &[b"a", b"b"]).unwrap()
        );
    }
}
