//! Fingerprints against values printed by the OpenSSL command line
//! (testdata/fingerprints.txt, see testdata/README.md), and PEM loading of files made
//! by other tools.

use std::path::{Path, PathBuf};

use seccf_secret::SecretBytes;
use seccf_tls::pki::{self, CertifiedKey};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// (file, lowercase hex) pairs from the OpenSSL output "FILE sha256 Fingerprint=AA:BB:…".
fn vectors() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(testdata("fingerprints.txt")).unwrap();
    let v: Vec<_> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (file, rest) = l.split_once(' ').unwrap();
            let (_, colon_hex) = rest.split_once('=').unwrap();
            (file.to_owned(), colon_hex.replace(':', "").to_lowercase())
        })
        .collect();
    assert_eq!(v.len(), 2, "fingerprints.txt should list two certificates");
    v
}

#[test]
fn fingerprints_match_openssl_cli() {
    for (file, expected) in vectors() {
        assert_eq!(expected.len(), 64);
        assert_eq!(
            pki::fingerprint_pem_file(&testdata(&file)).unwrap(),
            expected,
            "{file}"
        );
        let pem = std::fs::read(testdata(&file)).unwrap();
        assert_eq!(pki::fingerprint_pem(&pem).unwrap(), expected, "{file}");
    }
}

#[test]
fn first_certificate_of_a_bundle_is_fingerprinted() {
    let (_, ca_fp) = vectors()
        .into_iter()
        .find(|(f, _)| f.contains("ca"))
        .unwrap();
    let (_, srv_fp) = vectors()
        .into_iter()
        .find(|(f, _)| f.contains("server"))
        .unwrap();
    let mut bundle = std::fs::read(testdata("openssl-cli-server.pem")).unwrap();
    bundle.extend(std::fs::read(testdata("openssl-cli-ca.pem")).unwrap());
    assert_eq!(pki::fingerprint_pem(&bundle).unwrap(), srv_fp);
    assert_ne!(srv_fp, ca_fp);
    // A damaged certificate after the first does not change the answer.
    let mut damaged = std::fs::read(testdata("openssl-cli-server.pem")).unwrap();
    damaged.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nAAAA!!\n-----END CERTIFICATE-----\n");
    assert_eq!(pki::fingerprint_pem(&damaged).unwrap(), srv_fp);
    // Non-certificate blocks before it (a key in a combined file) are skipped.
    let mut combined = std::fs::read(testdata("openssl-cli-server.key")).unwrap();
    combined.extend(std::fs::read(testdata("openssl-cli-ca.pem")).unwrap());
    assert_eq!(pki::fingerprint_pem(&combined).unwrap(), ca_fp);
}

#[test]
fn load_pkcs1_rsa_pair_from_other_tools() {
    let ck = pki::load_pem_pair(
        &testdata("openssl-cli-server.pem"),
        &testdata("openssl-cli-server.key"),
    )
    .unwrap();
    let (_, srv_fp) = vectors()
        .into_iter()
        .find(|(f, _)| f.contains("server"))
        .unwrap();
    assert_eq!(ck.sha256_fingerprint(), srv_fp);
    // Re-encoded as PKCS#8.
    assert!(ck
        .key_pem
        .expose()
        .starts_with(b"-----BEGIN PRIVATE KEY-----"));
    // The CA certificate with the server's key is refused.
    assert!(pki::load_pem_pair(
        &testdata("openssl-cli-ca.pem"),
        &testdata("openssl-cli-server.key"),
    )
    .is_err());
}

#[test]
fn not_a_certificate() {
    assert!(pki::fingerprint_pem(b"").is_err());
    assert!(pki::fingerprint_pem(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    .is_err());
    let key = std::fs::read(testdata("openssl-cli-server.key")).unwrap();
    assert!(pki::fingerprint_pem(&key).is_err());
    assert!(pki::fingerprint_pem_file(&testdata("does-not-exist.pem")).is_err());
    assert!(CertifiedKey::from_pem(&key, &SecretBytes::new(key.clone())).is_err());
}
