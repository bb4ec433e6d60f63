//! UMTS AKA tokens (TS 33.102 clause 6.3) built on [`Milenage`]: authentication vectors
//! on the network side, AUTN checking and AUTS on the USIM side, and the GBA_U AUTN*.

use seccf_secret::{ct_eq, Secret};
use sha1::{Digest, Sha1};

use crate::milenage::{Milenage, F2345};
use crate::sqn;

/// The dummy AMF* that MAC-S is computed with during resynchronisation (TS 33.102 6.3.3).
const AMF_STAR: [u8; 2] = [0, 0];

/// One authentication vector (network side).
#[derive(Clone, Debug)]
pub struct AuthVector {
    /// The random challenge.
    pub rand: [u8; 16],
    /// AUTN = (SQN ^ AK) || AMF || MAC-A.
    pub autn: [u8; 16],
    /// The expected response.
    pub xres: Secret<8>,
    /// The cipher key.
    pub ck: Secret<16>,
    /// The integrity key.
    pub ik: Secret<16>,
}

/// Builds an authentication vector for `sqn` (only its low 48 bits are used).
pub fn generate_av(m: &Milenage, rand: [u8; 16], sqn: u64, amf: [u8; 2]) -> AuthVector {
    let sqn_b = sqn::to_bytes(sqn);
    let mac_a = m.f1(&rand, &sqn_b, &amf);
    let keys = m.f2345(&rand);
    let mut autn = [0u8; 16];
    for (i, (s, a)) in sqn_b.iter().zip(keys.ak.iter()).enumerate() {
        autn[i] = s ^ a;
    }
    autn[6..8].copy_from_slice(&amf);
    autn[8..].copy_from_slice(&mac_a);
    AuthVector {
        rand,
        autn,
        xres: keys.res,
        ck: keys.ck,
        ik: keys.ik,
    }
}

/// GBA_U: AUTN* = SQN^AK || AMF || (MAC-A XOR Trunc64(SHA-1(IK))).
///
/// **UNCONFIRMED formula.** The reference (gba.md §2.8, open item 4) only confirms that
/// GBA_U uses a modified AUTN called AUTN*; this MAC* = MAC ^ Trunc64(SHA-1(IK)) is from
/// memory and must be checked against TS 33.220 §5.3.2 before interworking with a real
/// GBA_U UICC or BSF. It lives only in this function so a correction is one edit.
///
/// The transform is an involution (XOR with a value that depends only on RAND through IK),
/// so the card undoes it by calling it again: see [`autn_from_autn_star`].
pub fn autn_star(autn: &[u8; 16], ik: &Secret<16>) -> [u8; 16] {
    let digest = Sha1::digest(ik.expose());
    let mut out = *autn;
    for (o, d) in out[8..].iter_mut().zip(digest.iter()) {
        *o ^= d;
    }
    out
}

/// GBA_U card side: recovers AUTN from AUTN* (the inverse of [`autn_star`], which is the
/// same XOR).
pub fn autn_from_autn_star(autn_star_value: &[u8; 16], ik: &Secret<16>) -> [u8; 16] {
    autn_star(autn_star_value, ik)
}

/// A verified AUTN: the recovered SQN and AMF, and the keys for this RAND.
#[derive(Clone, Debug)]
pub struct AutnOk {
    /// SQN recovered from AUTN (check it with [`crate::sqn::SqnWindow`]).
    pub sqn: u64,
    /// AMF from AUTN.
    pub amf: [u8; 2],
    /// RES, CK, IK, AK.
    pub keys: F2345,
}

/// Why AUTN was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AutnError {
    /// MAC-A did not verify: the challenge did not come from the subscriber's home network
    /// (or was corrupted). No RES may be returned.
    #[error("AUTN MAC verification failed")]
    MacFailure,
}

/// UE side: check AUTN (MAC), recover SQN. SQN freshness is the caller's
/// ([`crate::sqn::SqnWindow`]).
pub fn check_autn(m: &Milenage, rand: &[u8; 16], autn: &[u8; 16]) -> Result<AutnOk, AutnError> {
    let keys = m.f2345(rand);
    let mut sqn_b = [0u8; 6];
    for (i, (c, a)) in autn.iter().zip(keys.ak.iter()).enumerate() {
        sqn_b[i] = c ^ a;
    }
    let amf = [autn[6], autn[7]];
    let xmac = m.f1(rand, &sqn_b, &amf);
    if !ct_eq(&xmac, &autn[8..]) {
        return Err(AutnError::MacFailure);
    }
    Ok(AutnOk {
        sqn: sqn::from_bytes(&sqn_b),
        amf,
        keys,
    })
}

/// AUTS = (SQN_MS ^ AK*) || MAC-S with AMF* = 0000.
pub fn build_auts(m: &Milenage, rand: &[u8; 16], sqn_ms: u64) -> [u8; 14] {
    let sqn_b = sqn::to_bytes(sqn_ms);
    let ak_star = m.f5_star(rand);
    let mac_s = m.f1_star(rand, &sqn_b, &AMF_STAR);
    let mut auts = [0u8; 14];
    for (i, (s, a)) in sqn_b.iter().zip(ak_star.iter()).enumerate() {
        auts[i] = s ^ a;
    }
    auts[6..].copy_from_slice(&mac_s);
    auts
}

/// Network side: Some(SQN_MS) iff MAC-S verifies (constant-time compare).
pub fn verify_auts(m: &Milenage, rand: &[u8; 16], auts: &[u8; 14]) -> Option<u64> {
    let ak_star = m.f5_star(rand);
    let mut sqn_b = [0u8; 6];
    for (i, (c, a)) in auts.iter().zip(ak_star.iter()).enumerate() {
        sqn_b[i] = c ^ a;
    }
    let xmac_s = m.f1_star(rand, &sqn_b, &AMF_STAR);
    ct_eq(&xmac_s, &auts[6..]).then(|| sqn::from_bytes(&sqn_b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Milenage {
        Milenage::new(Secret::new([0x11; 16]), Secret::new([0x22; 16]))
    }

    #[test]
    fn av_round_trip_and_tamper() {
        let m = m();
        let rand = [7u8; 16];
        let av = generate_av(&m, rand, 0x1234, [0x80, 0]);
        let ok = check_autn(&m, &rand, &av.autn).unwrap();
        assert_eq!(ok.sqn, 0x1234);
        assert_eq!(ok.amf, [0x80, 0]);
        assert_eq!(ok.keys.res, av.xres);
        for i in 0..16 {
            let mut bad = av.autn;
            bad[i] ^= 0x01;
            assert_eq!(
                check_autn(&m, &rand, &bad).unwrap_err(),
                AutnError::MacFailure,
                "flip in byte {i}"
            );
        }
        // Wrong key.
        let other = Milenage::new(Secret::new([0x12; 16]), Secret::new([0x22; 16]));
        assert!(check_autn(&other, &rand, &av.autn).is_err());
    }

    #[test]
    fn autn_star_changes_only_mac_and_inverts() {
        let m = m();
        let rand = [3u8; 16];
        let av = generate_av(&m, rand, 99, [0, 0]);
        let star = autn_star(&av.autn, &av.ik);
        assert_eq!(star[..8], av.autn[..8]);
        assert_ne!(star[8..], av.autn[8..]);
        assert_eq!(autn_from_autn_star(&star, &av.ik), av.autn);
        // AUTN* does not pass as a plain AUTN.
        assert_eq!(
            check_autn(&m, &rand, &star).unwrap_err(),
            AutnError::MacFailure
        );
    }

    #[test]
    fn auts_round_trip_and_tamper() {
        let m = m();
        let rand = [9u8; 16];
        let auts = build_auts(&m, &rand, 0xabcdef);
        assert_eq!(verify_auts(&m, &rand, &auts), Some(0xabcdef));
        let mut bad = auts;
        bad[13] ^= 0x80;
        assert_eq!(verify_auts(&m, &rand, &bad), None);
        assert_eq!(verify_auts(&m, &[8u8; 16], &auts), None);
    }
}
