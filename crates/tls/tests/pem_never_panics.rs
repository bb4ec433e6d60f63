//! Randomized robustness of the PEM entry points (the only parsers this crate exposes):
//! thousands of mutated certificates and keys, plus random bytes, must give Ok or a
//! typed error, never a panic or a prompt. Deterministic (xorshift, fixed seed).

use seccf_secret::SecretBytes;
use seccf_tls::pki::{self, CertifiedKey};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = b"AZaz09+/=\n-"[rng.below(11)];
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                let j = rng.below(v.len() + 1);
                let (a, b) = (i.min(j), i.max(j));
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
        }
    }
    v
}

#[test]
fn pem_parsers_never_panic() {
    let ca = pki::generate_ca("fuzz CA", 1).unwrap();
    let leaf = pki::issue_server_cert(&ca, "fuzz", &["localhost"], 1).unwrap();
    let cert = leaf.cert_pem.as_bytes().to_vec();
    let key = leaf.key_pem.expose().to_vec();
    let mut rng = XorShift(0x853c_49e6_748f_ea9b);
    let mut accepted = 0;
    for round in 0..3000 {
        let c = match round % 4 {
            0 => (0..rng.below(600)).map(|_| rng.next() as u8).collect(),
            _ => mutate(&mut rng, &cert),
        };
        let k = if round % 3 == 0 {
            key.clone()
        } else {
            mutate(&mut rng, &key)
        };
        if let Ok(fp) = pki::fingerprint_pem(&c) {
            assert_eq!(fp.len(), 64);
            accepted += 1;
        }
        if let Ok(ck) = CertifiedKey::from_pem(&c, &SecretBytes::new(k)) {
            // Whatever is accepted is self-consistent.
            assert_eq!(
                pki::fingerprint_pem(ck.cert_pem.as_bytes()).unwrap(),
                ck.sha256_fingerprint()
            );
        }
    }
    // Some mutations (e.g. in the header text after the base64) still parse; if none
    // did, the mutator would only be testing the error path.
    assert!(accepted > 0);
}
