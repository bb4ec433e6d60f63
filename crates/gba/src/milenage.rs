//! MILENAGE, the example 3GPP authentication and key generation algorithm set
//! (TS 35.205 framework, TS 35.206 specification), with the default rotation and
//! constant values of TS 35.206.
//!
//! Every output is one AES-128 encryption under K of a value mixed with OPc:
//!
//! ```text
//! TEMP = E_K(RAND ^ OPc)
//! OUT1 = E_K(TEMP ^ rot(IN1 ^ OPc, r1) ^ c1) ^ OPc,   IN1 = SQN || AMF || SQN || AMF
//! OUTi = E_K(rot(TEMP ^ OPc, ri) ^ ci) ^ OPc          for i = 2..5
//! ```
//!
//! f1/f1* take their own path through OUT1, which is why the test vectors check them
//! separately from f2-f5 (reference §11 pitfall 1).

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128, Block};
use seccf_secret::Secret;
use zeroize::{Zeroize, Zeroizing};

/// Rotations r1..r5 of TS 35.206 in *bytes* (the spec gives 64, 0, 32, 64, 96 bits; all
/// are multiples of 8, so the 128-bit rotation is a byte rotation).
const R1: usize = 8;
const R2: usize = 0;
const R3: usize = 4;
const R4: usize = 8;
const R5: usize = 12;

/// Last octet of the constants c1..c5 (all other octets are zero).
const C1: u8 = 0x00;
const C2: u8 = 0x01;
const C3: u8 = 0x02;
const C4: u8 = 0x04;
const C5: u8 = 0x08;

/// A subscriber's MILENAGE instance: the long-term key K and the operator variant OPc.
///
/// `Debug` prints redacted values (both fields are [`Secret`]).
#[derive(Clone, Debug)]
pub struct Milenage {
    k: Secret<16>,
    opc: Secret<16>,
}

/// The outputs of f2, f3, f4 and f5 for one RAND.
///
/// RES, CK and IK are secrets. AK only masks SQN inside AUTN; it is not a key, so it is a
/// plain array.
#[derive(Clone, Debug)]
pub struct F2345 {
    /// f2: the response RES (also the network's XRES).
    pub res: Secret<8>,
    /// f3: the cipher key CK.
    pub ck: Secret<16>,
    /// f4: the integrity key IK.
    pub ik: Secret<16>,
    /// f5: the anonymity key AK.
    pub ak: [u8; 6],
}

impl Milenage {
    /// From K and an OPc provisioned by the operator.
    pub fn new(k: Secret<16>, opc: Secret<16>) -> Self {
        Milenage { k, opc }
    }

    /// From K and the operator constant OP; OPc = OP ^ E_K(OP) is computed here.
    pub fn with_op(k: Secret<16>, op: &Secret<16>) -> Self {
        let opc = derive_opc(&k, op);
        Milenage { k, opc }
    }

    /// The OPc in use (for provisioning a card or a subscriber record).
    pub fn opc(&self) -> &Secret<16> {
        &self.opc
    }

    /// f1: the network authentication code MAC-A.
    pub fn f1(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 8] {
        let out1 = self.out1(rand, sqn, amf);
        first8(&out1)
    }

    /// f1*: the resynchronisation authentication code MAC-S.
    pub fn f1_star(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> [u8; 8] {
        let out1 = self.out1(rand, sqn, amf);
        last8(&out1)
    }

    /// f2, f3, f4 and f5 for `rand`.
    pub fn f2345(&self, rand: &[u8; 16]) -> F2345 {
        let cipher = self.cipher();
        let temp = self.temp(&cipher, rand);
        let out2 = self.out_n(&cipher, &temp, R2, C2);
        let out3 = self.out_n(&cipher, &temp, R3, C3);
        let out4 = self.out_n(&cipher, &temp, R4, C4);
        let mut ak = [0u8; 6];
        ak.copy_from_slice(&out2[..6]);
        F2345 {
            res: Secret::new(last8(&out2)),
            ck: Secret::new(*out3),
            ik: Secret::new(*out4),
            ak,
        }
    }

    /// f5*: the anonymity key AK* that masks SQN_MS inside AUTS.
    pub fn f5_star(&self, rand: &[u8; 16]) -> [u8; 6] {
        let cipher = self.cipher();
        let temp = self.temp(&cipher, rand);
        let out5 = self.out_n(&cipher, &temp, R5, C5);
        let mut ak = [0u8; 6];
        ak.copy_from_slice(&out5[..6]);
        ak
    }

    fn cipher(&self) -> Aes128 {
        // The `zeroize` feature of `aes` wipes the expanded key schedule on drop.
        Aes128::new(Block::from_slice(self.k.expose()))
    }

    /// TEMP = E_K(RAND ^ OPc).
    fn temp(&self, cipher: &Aes128, rand: &[u8; 16]) -> Zeroizing<[u8; 16]> {
        let mut x = Zeroizing::new(*rand);
        xor_into(&mut x, self.opc.expose());
        encrypt(cipher, &mut x);
        x
    }

    fn out1(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> Zeroizing<[u8; 16]> {
        let cipher = self.cipher();
        let temp = self.temp(&cipher, rand);
        let mut in1 = Zeroizing::new([0u8; 16]);
        in1[..6].copy_from_slice(sqn);
        in1[6..8].copy_from_slice(amf);
        in1[8..14].copy_from_slice(sqn);
        in1[14..].copy_from_slice(amf);
        xor_into(&mut in1, self.opc.expose());
        let mut x = rotate(&in1, R1);
        xor_into(&mut x, &temp);
        x[15] ^= C1;
        encrypt(&cipher, &mut x);
        xor_into(&mut x, self.opc.expose());
        x
    }

    fn out_n(&self, cipher: &Aes128, temp: &[u8; 16], r: usize, c: u8) -> Zeroizing<[u8; 16]> {
        let mut t = Zeroizing::new(*temp);
        xor_into(&mut t, self.opc.expose());
        let mut x = rotate(&t, r);
        x[15] ^= c;
        encrypt(cipher, &mut x);
        xor_into(&mut x, self.opc.expose());
        x
    }
}

/// OPc = OP ^ E_K(OP) (TS 35.206 clause 4.1).
pub fn derive_opc(k: &Secret<16>, op: &Secret<16>) -> Secret<16> {
    let cipher = Aes128::new(Block::from_slice(k.expose()));
    let mut x = Zeroizing::new(*op.expose());
    encrypt(&cipher, &mut x);
    xor_into(&mut x, op.expose());
    Secret::new(*x)
}

/// Cyclic rotation towards the most significant end by `r` bytes:
/// byte `i` of the result is byte `i + r` of the input.
fn rotate(x: &[u8; 16], r: usize) -> Zeroizing<[u8; 16]> {
    let mut out = Zeroizing::new([0u8; 16]);
    for (i, o) in out.iter_mut().enumerate() {
        // (i + r) % 16 < 16, so the index is always in range.
        *o = x[(i + r) % 16];
    }
    out
}

fn xor_into(acc: &mut [u8; 16], other: &[u8; 16]) {
    for (a, b) in acc.iter_mut().zip(other) {
        *a ^= b;
    }
}

fn encrypt(cipher: &Aes128, block: &mut [u8; 16]) {
    let mut b = Block::from(*block);
    cipher.encrypt_block(&mut b);
    block.copy_from_slice(&b);
    b.as_mut_slice().zeroize();
}

fn first8(x: &[u8; 16]) -> [u8; 8] {
    let mut o = [0u8; 8];
    o.copy_from_slice(&x[..8]);
    o
}

fn last8(x: &[u8; 16]) -> [u8; 8] {
    let mut o = [0u8; 8];
    o.copy_from_slice(&x[8..]);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h16(s: &str) -> [u8; 16] {
        let v = hex::decode(s).unwrap();
        v.try_into().unwrap()
    }

    /// Intermediate values of test set 1 listed in reference §1.2 (TEMP is also published
    /// by yknaveentel/milenage MilenageTestData.java as CIPHER). Checking the internal
    /// stages pins down a failure to one step.
    #[test]
    fn test_set_1_intermediates() {
        let m = Milenage::new(
            Secret::new(h16("465b5ce8b199b49faa5f0a2ee238a6bc")),
            Secret::new(h16("cd63cb71954a9f4e48a5994e37a02baf")),
        );
        let rand = h16("23553cbe9637a89d218ae64dae47bf35");
        let cipher = m.cipher();
        let temp = m.temp(&cipher, &rand);
        assert_eq!(*temp, h16("9e2980c59739da67b136355e3cede6a2"));
        let sqn = [0xff, 0x9b, 0xb4, 0xd0, 0xb6, 0x07];
        let out1 = m.out1(&rand, &sqn, &[0xb9, 0xb9]);
        assert_eq!(*out1, h16("4a9ffac354dfafb301cfaf9ec4e871e9"));
        assert_eq!(
            *m.out_n(&cipher, &temp, R2, C2),
            h16("aa689c648370ac1ea54211d5e3ba50bf")
        );
        assert_eq!(
            *m.out_n(&cipher, &temp, R5, C5),
            h16("451e8beca43b78e0f940c8db54fd21c1")
        );
    }

    #[test]
    fn rotation_by_eight_swaps_halves() {
        let x: [u8; 16] = core::array::from_fn(|i| i as u8);
        let r = rotate(&x, 8);
        assert_eq!(&r[..8], &x[8..]);
        assert_eq!(&r[8..], &x[..8]);
        assert_eq!(*rotate(&x, 0), x);
        assert_eq!(rotate(&x, 4)[0], 4);
    }

    #[test]
    fn debug_does_not_leak_key() {
        let m = Milenage::new(Secret::new([0x5a; 16]), Secret::new([0xa5; 16]));
        let d = format!("{m:?}");
        assert!(
            !d.contains("5a") && !d.contains("90") && d.contains("REDACTED"),
            "{d}"
        );
    }
}
