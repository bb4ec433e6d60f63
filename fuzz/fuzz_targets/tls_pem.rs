//! Fuzzes the PEM entry points of seccf-tls: certificate fingerprinting and
//! certificate + private key loading. The input is split at the first NUL byte into a
//! certificate part and a key part, so the fuzzer can evolve both independently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_secret::SecretBytes;
use seccf_tls::pki::{self, CertifiedKey};

fuzz_target!(|data: &[u8]| {
    let (cert, key) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let _ = pki::fingerprint_pem(cert);
    if let Ok(ck) = CertifiedKey::from_pem(cert, &SecretBytes::new(key.to_vec())) {
        assert_eq!(
            pki::fingerprint_pem(ck.cert_pem.as_bytes()).ok(),
            Some(ck.sha256_fingerprint())
        );
    }
});
